#!/usr/bin/env python3
"""Turns scripts/bench's measurements into the markdown tables docs/benchmarks.md and the README
carry. Reads <work>/ours.jsonl (scripts/bench_ours.py) and <work>/ort.jsonl
(scripts/bench_ort.py), plus onnxruntime's golden audio in <work>/ort-audio/ for its own
log-spectral distance. See docs/benchmarks.md for what each column means.
"""
import argparse
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_ours import spectral_distance  # noqa: E402

# Targets (issue 9), at 2 threads.
SPEED_MIN = 2.0          # ORT time / our time, every case
TTFA_MEDIUM_MAX = 0.4    # seconds, medium paragraph streamed as pcm
RSS_EXTRA_MAX = 64.0     # MB per extra busy instance
RSS_MEDIUM_RATIO_MAX = 0.5
SOAK_GROWTH_MAX = 5.0    # percent over 500 requests

ap = argparse.ArgumentParser()
ap.add_argument("--work", required=True)
ap.add_argument("--fixtures", required=True)
ap.add_argument("--types", nargs="+", required=True)
ap.add_argument("--threads", required=True)
ap.add_argument("--runs", required=True)
ap.add_argument("--soak", default="")
args = ap.parse_args()
work = pathlib.Path(args.work)


def jsonl(path):
    p = work / path
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []


ours = jsonl("ours.jsonl")
ort = {o["case"]: o for o in jsonl("ort.jsonl")}
by = {(o["kind"], o["case"], o["type"]): o for o in ours}

ort_lsd = {}
for name, o in ort.items():
    audio = work / "ort-audio" / f"{name}.npy"
    fx = pathlib.Path(args.fixtures) / f"{name}.npz"
    if audio.exists() and fx.exists():
        ort_lsd[name] = spectral_distance(np.load(audio), np.load(fx)["audio"])["lsd_db"]


def f(x, fmt="{:.2f}"):
    return "—" if x is None else fmt.format(x)


def mark(ok):
    return "—" if ok is None else ("pass" if ok else "**FAIL**")


rows = []
golden_cases = sorted({o["case"] for o in ours if o["kind"] == "golden"})
text_cases = [c for c in ("short", "medium", "long") if any(o["case"] == c and o["kind"] == "text" for o in ours)]
print("| case | file | audio s | RTF ours | RTF ORT | speed ours/ORT | TTFA ours s | TTFA ORT s "
      "| TTFA ours/ORT | peak RSS ours MB | peak RSS ORT MB | RSS ours/ORT | LSD ours dB | LSD ORT dB |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
speed = {t: [] for t in args.types}
for kind, cases in (("golden", golden_cases), ("text", text_cases)):
    for case in cases:
        o = ort.get(case)
        for t in args.types:
            r = by.get((kind, case, t))
            if r is None:
                continue
            sp = o["median_s"] / r["median_s"] if o else None
            if sp is not None:
                speed[t].append(sp)
            label = case.replace("golden_", "").replace(".canon", "") if kind == "golden" else f"text: {case}"
            print(f"| {label} | {t} | {r['audio_s']:.2f} | {r['audio_s'] / r['median_s']:.2f} | "
                  f"{f(o and o['audio_s'] / o['median_s'])} | {f(sp)}× | {r['first_s']:.3f} | "
                  f"{f(o and o['first_s'], '{:.3f}')} | {f(o and r['first_s'] / o['first_s'])} | "
                  f"{r['rss_mb']:.0f} | {f(o and o['maxrss_mb'], '{:.0f}')} | {f(o and r['rss_mb'] / o['maxrss_mb'])} | "
                  f"{f(r.get('lsd_db'))} | {f(ort_lsd.get(case) if kind == 'golden' else None)} |")

print()
print("| target (" + args.threads + " threads) | " + " | ".join(args.types) + " |")
print("|---|" + "---|" * len(args.types))
cells = []
for t in args.types:
    worst = min(speed[t]) if speed[t] else None
    cells.append(f"{f(worst)}× {mark(worst >= SPEED_MIN if worst is not None else None)}")
print(f"| speed ≥ {SPEED_MIN:g}× ORT on every case (worst case) | " + " | ".join(cells) + " |")
cells = []
for t in args.types:
    r = by.get(("text", "medium", t))
    cells.append(f"{r['first_s']:.3f} s {mark(r['first_s'] <= TTFA_MEDIUM_MAX)}" if r else "not run")
print(f"| time to first audio, medium text, streamed pcm ≤ {TTFA_MEDIUM_MAX:g} s | " + " | ".join(cells) + " |")
cells = []
for t in args.types:
    one, four = by.get(("text", "medium", t)), by.get(("np4", "medium", t))
    if one and four:
        extra = (four["rss_mb"] - one["rss_mb"]) / 3
        cells.append(f"{extra:.0f} MB {mark(extra <= RSS_EXTRA_MAX)}")
    else:
        cells.append("not run")
print(f"| RSS per extra busy instance (medium, -np 4 with 4 busy vs -np 1) ≤ {RSS_EXTRA_MAX:g} MB | "
      + " | ".join(cells) + " |")
cells = []
for t in args.types:
    r, o = by.get(("text", "medium", t)), ort.get("medium")
    if r and o:
        ratio = r["rss_mb"] / o["maxrss_mb"]
        cells.append(f"{ratio:.2f}× {mark(ratio <= RSS_MEDIUM_RATIO_MAX)}")
    else:
        cells.append("not run")
print(f"| peak RSS, medium text ≤ {RSS_MEDIUM_RATIO_MAX:g}× ORT's | " + " | ".join(cells) + " |")
cells = []
for t in args.types:
    r = next((o for o in ours if o["kind"] == "soak" and o["type"] == t), None)
    if r:
        cells.append(f"{r['growth_pct']:+.2f} % {mark(r['growth_pct'] <= SOAK_GROWTH_MAX)}")
    else:
        cells.append("not run" + (" (BENCH_SOAK=1)" if not args.soak else ""))
soak_n = next((o["requests"] for o in ours if o["kind"] == "soak"), 500)
print(f"| RSS growth over {soak_n} sequential short requests ≤ {SOAK_GROWTH_MAX:g} % | " + " | ".join(cells) + " |")
print()
engine = next(iter(ort.values()))["engine"] if ort else "onnxruntime"
print(f"{args.threads} threads; median of {args.runs} timed run(s) after one warm-up; {engine} on the int8 "
      "ONNX model. RSS of ours: golden cases = the tts-kokoro process; texts = tts-host VmHWM + its "
      "espeak-ng worker's VmHWM. TTFA of golden cases (one chunk, no server) = the synthesis time for both.")

# Details, for the log (not part of the README table).
print()
print("Details:")
for r in ours:
    if r["kind"] == "text":
        o = ort.get(r["case"], {})
        print(f"- {r['type']} {r['case']}: {r['samples']} samples (ORT {o.get('samples')}, {o.get('chunks')} chunk(s)), "
              f"server VmHWM {r['rss_host_mb']:.0f} MB + worker {r['rss_workers_mb']:.0f} MB, "
              f"runs {', '.join(f'{x:.2f}' for x in r['runs_s'])} s")
    elif r["kind"] == "np4":
        print(f"- {r['type']} -np 4, 4× {r['case']}: server VmHWM {r['rss_host_mb']:.0f} MB + workers "
              f"{r['rss_workers_mb']:.0f} MB, most busy instances seen {r['max_busy']}, request times "
              f"{', '.join(f'{x:.1f}' for x in r['totals_s'])} s")
    elif r["kind"] == "soak":
        print(f"- {r['type']} soak, {r['requests']}× {r['case']}: VmRSS {r['before_mb']:.1f} → {r['after_mb']:.1f} MB "
              f"(server alone {r['before_host_mb']:.1f} → {r['after_host_mb']:.1f} MB, {r['growth_host_pct']:+.2f} %)")
    elif r["kind"] == "golden":
        print(f"- {r['type']} {r['case']}: {r['samples']} samples (golden {r['golden_samples']}), RMS ratio "
              f"{r['rms_ratio']:.3f}, runs {', '.join(f'{x:.2f}' for x in r['runs_s'])} s")
