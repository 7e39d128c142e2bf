#!/usr/bin/env python3
"""Times onnxruntime (CPU) on the Kokoro ONNX model for token ids, for scripts/bench.

Reads a JSON list of cases on stdin. A case is {"name", "chunks": [{"ids", "ref_s", "speed"}, ...]}
(the chunks a text is split into, in order, with the token ids our backend makes for each), or
the older single-chunk form {"name", "ids", "ref_s", "speed"} (the golden fixtures' phonemes as
`tts-kokoro synthesize --dump input_ids,ref_s,speed` writes them).

Each case runs once to warm up and then --runs times; a run feeds the chunks one after another,
as our server does. Prints one JSON line per case: median wall seconds of a whole run
(`median_s`), median seconds until the first chunk's audio exists (`first_s`: onnxruntime cannot
stream inside a chunk, so this is its time to first audio), audio seconds and samples, and the
peak RSS of this process so far (`maxrss_mb`, from getrusage ru_maxrss: model load included; run
one case per process (--only NAME) for one case's peak). --audio-dir writes each case's audio as
<name>.npy (float32, chunks concatenated) for the log-spectral comparison.
"""
import argparse
import json
import pathlib
import resource
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--audio-dir")
ap.add_argument("--only", help="run only the case of this name (one case per process: its own peak RSS)")
args = ap.parse_args()

opts = ort.SessionOptions()
opts.intra_op_num_threads = args.threads
opts.inter_op_num_threads = 1
sess = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
inputs = {i.name: i for i in sess.get_inputs()}


def feed(chunk):
    ids = np.asarray(chunk["ids"], dtype=np.int64).reshape(1, -1)
    style = np.asarray(chunk["ref_s"], dtype=np.float32).reshape(1, -1)
    speed = np.asarray([chunk["speed"]], dtype=np.float32)
    out = {}
    for name, meta in inputs.items():
        if "int" in meta.type:
            out[name] = ids
        elif len(meta.shape) == 1:
            out[name] = speed
        else:
            out[name] = style
    return out


def run(feeds):
    """One pass over the chunks: (total seconds, seconds to the first chunk's audio, audio)."""
    parts = []
    t0 = time.perf_counter()
    first = None
    for f in feeds:
        parts.append(np.asarray(sess.run(None, f)[0], dtype=np.float32).ravel())
        if first is None:
            first = time.perf_counter() - t0
    return time.perf_counter() - t0, first, np.concatenate(parts)


def maxrss_mb():
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


for case in json.load(sys.stdin):
    if args.only and case["name"] != args.only:
        continue
    chunks = case.get("chunks") or [case]
    feeds = [feed(c) for c in chunks]
    _, _, audio = run(feeds)
    totals, firsts = [], []
    for _ in range(args.runs):
        total, first, audio = run(feeds)
        totals.append(total)
        firsts.append(first)
    if args.audio_dir:
        np.save(pathlib.Path(args.audio_dir) / f"{case['name']}.npy", audio)
    n = int(audio.size)
    print(f"[bench] ort {case['name']}: {n / 24000:.2f} s audio in {statistics.median(totals):.2f} s "
          f"(RTF {n / 24000 / statistics.median(totals):.2f}), first chunk {statistics.median(firsts):.3f} s, "
          f"{len(chunks)} chunk(s), peak RSS {maxrss_mb():.0f} MB", file=sys.stderr, flush=True)
    print(json.dumps({"case": case["name"], "engine": "onnxruntime " + ort.__version__,
                      "chunks": len(chunks), "median_s": statistics.median(totals),
                      "first_s": statistics.median(firsts), "runs_s": totals,
                      "samples": n, "audio_s": n / 24000, "maxrss_mb": maxrss_mb()}), flush=True)
