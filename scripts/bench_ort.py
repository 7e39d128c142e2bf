#!/usr/bin/env python3
"""Times onnxruntime (CPU) on the Kokoro ONNX model for phoneme strings, for scripts/bench.

Reads a JSON list of cases {"name", "ids", "ref_s", "speed"} on stdin (written by
`tts-kokoro synthesize --dump input_ids,ref_s,speed`), runs each case once to warm up and then
--runs times, and prints one JSON line per case: median wall seconds, audio seconds, samples.
"""
import argparse
import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--runs", type=int, default=3)
args = ap.parse_args()

opts = ort.SessionOptions()
opts.intra_op_num_threads = args.threads
opts.inter_op_num_threads = 1
sess = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
inputs = {i.name: i for i in sess.get_inputs()}


def feed(case):
    ids = np.asarray(case["ids"], dtype=np.int64).reshape(1, -1)
    style = np.asarray(case["ref_s"], dtype=np.float32).reshape(1, -1)
    speed = np.asarray([case["speed"]], dtype=np.float32)
    out = {}
    for name, meta in inputs.items():
        if "int" in meta.type:
            out[name] = ids
        elif len(meta.shape) == 1:
            out[name] = speed
        else:
            out[name] = style
    return out


for case in json.load(sys.stdin):
    f = feed(case)
    audio = sess.run(None, f)[0]
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        audio = sess.run(None, f)[0]
        times.append(time.perf_counter() - t0)
    n = int(np.asarray(audio).size)
    print(json.dumps({"case": case["name"], "engine": "onnxruntime " + ort.__version__,
                      "median_s": statistics.median(times), "samples": n, "audio_s": n / 24000}))
