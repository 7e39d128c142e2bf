#!/usr/bin/env python3
"""Our engine's half of scripts/bench (standard library + numpy; run from .venv-bench).

Subcommands (each prints JSON lines on stdout, progress on stderr):

  golden  For each golden fixture and each model file: `tts-kokoro synthesize` on the fixture's
          phonemes, voice and speed, --runs times, a fresh process each time (model loading
          excluded: the time is the `time:` line, synthesis only). Peak RSS of each process from
          wait4's ru_maxrss. The log-spectral distance of the first run's float audio
          (`--dump audio`) to the fixture's `audio` array. Also dumps input_ids, ref_s, speed for
          onnxruntime.

  chunks  For each text: the chunks our backend cuts it into and each chunk's token ids, through
          `tts-kokoro phonemize` (the backend's phonemizer, normaliser and the model file's
          vocabulary), with a port of the chunker's policy (backends/kokoro/src/text/chunk.rs:
          boundary levels, first chunk of one sentence within 100 tokens, 510 after it,
          galloping + bisection). Writes the onnxruntime cases (ids, style row, speed).

  server  For each text: a fresh `tts-host -np 1` on a free 127.0.0.1 port, one warm-up request,
          --runs timed requests (streamed pcm), then VmHWM of the server and its espeak worker.
          --np4 TEXT: a fresh `-np 4` server, four concurrent requests of TEXT, VmHWM.
          --soak N: a fresh `-np 1` server, one warm-up, VmRSS, N sequential requests, VmRSS.
"""
import argparse
import bisect
import http.client
import json
import os
import pathlib
import re
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

SAMPLE_RATE = 24000


def say(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


def die(msg):
    say("error:", msg)
    sys.exit(1)


# --- log-spectral distance (shared/tools/kokoro-reference/spec_compare.py, golden-reference.md §4)


def logspec(a):
    n = 1 + (len(a) - 1024) // 256
    fr = np.stack([a[i * 256:i * 256 + 1024] for i in range(n)]) * np.hanning(1024)
    return 20 * np.log10(np.abs(np.fft.rfft(fr, axis=1)) + 1e-7)


def spectral_distance(audio, golden):
    """Mean |Δ| dB of the log spectrograms over the golden's active frames and bins, RMS ratio,
    and whether the lengths are equal (else the common prefix is compared)."""
    a = np.asarray(audio, dtype=np.float64).ravel()
    b = np.asarray(golden, dtype=np.float64).ravel()
    m = min(len(a), len(b))
    A, B = logspec(a[:m]), logspec(b[:m])
    act = B.max(1) > B.max() - 40
    bins = B[act] > B[act].max() - 60
    return {"lsd_db": float(np.abs(A - B)[act][bins].mean()),
            "rms_ratio": float(np.sqrt((a[:m] ** 2).mean() / (b[:m] ** 2).mean())),
            "same_length": len(a) == len(b), "samples": len(a), "golden_samples": len(b)}


# --- golden -----------------------------------------------------------------------------------


def spawn_with_rusage(cmd):
    """Runs cmd to completion; returns (returncode, stdout, stderr, peak RSS MiB)."""
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(w_out, 1)
            os.dup2(w_err, 2)
            fd = os.open(os.devnull, os.O_RDONLY)
            os.dup2(fd, 0)
            os.execv(cmd[0], cmd)
        finally:
            os._exit(127)
    os.close(w_out)
    os.close(w_err)
    chunks = {r_out: [], r_err: []}
    # Drain both pipes together so that neither fills up.
    sel = selectors.DefaultSelector()
    sel.register(r_out, selectors.EVENT_READ)
    sel.register(r_err, selectors.EVENT_READ)
    open_fds = 2
    while open_fds:
        for key, _ in sel.select():
            data = os.read(key.fd, 65536)
            if data:
                chunks[key.fd].append(data)
            else:
                sel.unregister(key.fd)
                os.close(key.fd)
                open_fds -= 1
    _, status, ru = os.wait4(pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    return (rc, b"".join(chunks[r_out]).decode(), b"".join(chunks[r_err]).decode(), ru.ru_maxrss / 1024)


def cmd_golden(a):
    fixtures = sorted(pathlib.Path(a.fixtures).glob("*.json"))
    if not fixtures:
        die(f"no golden fixtures (*.json) in {a.fixtures}")
    work = pathlib.Path(a.work)
    for fx in fixtures:
        j = json.loads(fx.read_text(encoding="utf-8"))
        golden = np.load(fx.with_suffix(".npz"))["audio"]
        for typ, model in zip(a.types, a.models):
            dump = work / "golden" / typ / fx.stem
            dump.mkdir(parents=True, exist_ok=True)
            times, rss = [], []
            quality = None
            for run in range(a.runs):
                cmd = [a.kokoro, "synthesize", "--model", model, "--phonemes", j["phonemes"],
                       "--voice", j["voice"], "--speed", str(j["speed"]), "--threads", str(a.threads),
                       "-o", str(dump / "out.wav"), "--dump", "input_ids,ref_s,speed,audio",
                       "--dump-dir", str(dump)]
                rc, out, err, peak = spawn_with_rusage(cmd)
                if rc != 0:
                    die(f"tts-kokoro synthesize failed ({rc}) on {fx.stem} with {model}:\n{err}")
                m = re.search(r"^time:\s*([0-9.]+) s", out, re.M)
                if not m:
                    die(f"no 'time:' line in tts-kokoro synthesize output:\n{out}")
                times.append(float(m.group(1)))
                rss.append(peak)
                if quality is None:
                    quality = spectral_distance(np.load(dump / "audio.npy"), golden)
            med = statistics.median(times)
            audio_s = quality["samples"] / SAMPLE_RATE
            say(f"ours {typ:5} {fx.stem}: {audio_s:.2f} s audio in {med:.2f} s "
                f"(RTF {audio_s / med:.2f}), peak RSS {max(rss):.0f} MB, LSD {quality['lsd_db']:.2f} dB")
            print(json.dumps({"kind": "golden", "case": fx.stem, "type": typ, "median_s": med,
                              "runs_s": times, "first_s": med, "audio_s": audio_s,
                              "rss_mb": statistics.median(rss), **quality}), flush=True)
    # onnxruntime gets the ids, style and speed our code path made (f32 dump; they do not depend
    # on the file type).
    cases = []
    for fx in fixtures:
        d = work / "golden" / a.types[0] / fx.stem
        cases.append({"name": fx.stem, "chunks": [{
            "ids": np.load(d / "input_ids.npy").ravel().tolist(),
            "ref_s": np.load(d / "ref_s.npy").ravel().tolist(),
            "speed": float(np.load(d / "speed.npy").ravel()[0])}]})
    (work / "ort_golden.json").write_text(json.dumps(cases))


# --- chunks -----------------------------------------------------------------------------------

SENTENCE, STRONG_CLAUSE, WEAK_CLAUSE, WORD = range(4)
SENTENCE_MARKS = set(".!?…。！？")
CLOSERS = set("\"'”’)]}»")
MAX_TOKENS, FIRST_CHUNK_TOKENS = 510, 100


def find_boundaries(text):
    """Port of chunk.rs find_boundaries (offsets in characters)."""
    n = len(text)
    at_level, paragraph_ends = [], []

    def is_space_at(k):
        return k >= n or text[k].isspace()

    k = 0
    while k < n:
        c = text[k]
        if c.isspace():
            run_start, newlines = k, 0
            while k < n and text[k].isspace():
                newlines += text[k] == "\n"
                k += 1
            if run_start > 0:
                if newlines == 0:
                    at_level.append((run_start, WORD))
                elif newlines == 1:
                    at_level.append((run_start, WEAK_CLAUSE))
                else:
                    paragraph_ends.append(run_start)
            continue
        end = k + 1
        level = None
        if c in SENTENCE_MARKS:
            while end < n and text[end] in SENTENCE_MARKS:
                end += 1
            level = SENTENCE
        elif c in ";:":
            level = STRONG_CLAUSE
        elif c == ",":
            level = WEAK_CLAUSE
        if level is not None:
            while end < n and text[end] in CLOSERS:
                end += 1
            if is_space_at(end) and end < n:
                at_level.append((end, level))
            k = end
            continue
        if c in "—–" or (c == "-" and k > 0 and is_space_at(k - 1) and is_space_at(k + 1)):
            at_level.append((k + 1, WEAK_CLAUSE))
        k += 1
    paragraph_ends.append(n)
    cuts = [sorted({b for b, lv in at_level if lv <= level} | set(paragraph_ends)) for level in range(4)]
    return cuts, paragraph_ends


def largest_fitting(n, fits):
    if n == 0 or not fits(1):
        return 0
    good, step = 1, 1
    while True:
        probe = good + step
        if probe > n:
            bad = n + 1
            break
        if fits(probe):
            good, step = probe, step * 2
        else:
            bad = probe
            break
    while bad - good > 1:
        mid = good + (bad - good) // 2
        if fits(mid):
            good = mid
        else:
            bad = mid
    return good


def split_chunks(text, count):
    """Port of chunk.rs Chunker with the default options; count(text) -> tokens."""
    cuts, paragraph_ends = find_boundaries(text)
    n = len(text)
    pos, first, chunks = 0, True, []
    while True:
        rest = text[pos:]
        start = pos + (len(rest) - len(rest.lstrip()))
        if start >= n:
            return chunks
        budget = min(FIRST_CHUNK_TOKENS, MAX_TOKENS) if first else MAX_TOKENS
        pe = paragraph_ends[min(bisect.bisect_right(paragraph_ends, start), len(paragraph_ends) - 1)]
        limit, end = pe, None
        for level in range(4):
            lst = cuts[level]
            cands = lst[bisect.bisect_right(lst, start):bisect.bisect_right(lst, limit)]
            if not cands:
                continue
            if first and level == SENTENCE:
                cands = cands[:1]
            taken = largest_fitting(len(cands), lambda k: count(text[start:cands[k - 1]].rstrip()) <= budget)
            if taken:
                end = cands[taken - 1]
                break
            limit = cands[0]
        if end is None:
            die(f"a word of the text is longer than {budget} tokens: the bench's chunker port "
                "does not do hard splits; use another text")
        chunks.append(text[start:end].rstrip())
        pos, first = end, False


class Phonemizer:
    def __init__(self, kokoro, model, lang):
        self.kokoro, self.model, self.lang, self.cache = kokoro, model, lang, {}

    def run(self, text, normalize):
        cmd = [self.kokoro, "phonemize", "--lang", self.lang, "--model", self.model]
        if not normalize:
            cmd.append("--no-normalize")
        p = subprocess.run(cmd + [text], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            die(f"tts-kokoro phonemize failed: {p.stderr}")
        return p.stdout

    def normalized(self, text):
        m = re.search(r"^normalized:\s+(.*)$", self.run(text, True), re.M)
        return m.group(1) if m else text

    def ids(self, text):
        if text not in self.cache:
            m = re.search(r"^token ids:\s+\[([0-9, ]*)\]", self.run(text, False), re.M)
            if not m:
                die(f"no 'token ids:' line from tts-kokoro phonemize for {text!r}")
            self.cache[text] = [int(x) for x in m.group(1).split(",") if x.strip()]
        return self.cache[text]


def cmd_chunks(a):
    voices = np.load(a.voices)
    if a.voice not in voices:
        die(f"voice {a.voice} is not in {a.voices}")
    pack = voices[a.voice]  # (510, 1, 256)
    ph = Phonemizer(a.kokoro, a.model, a.lang)
    cases = []
    for path in a.texts:
        path = pathlib.Path(path)
        text = ph.normalized(path.read_text(encoding="utf-8").strip())
        chunks = split_chunks(text, lambda t: len(ph.ids(t)))
        out = []
        for c in chunks:
            ids = ph.ids(c)
            row = min(max(len(ids) - 1, 0), pack.shape[0] - 1)
            out.append({"ids": [0] + ids + [0], "ref_s": pack[row].ravel().tolist(), "speed": 1.0, "text": c})
        say(f"text {path.stem}: {len(text.split())} words, {len(chunks)} chunk(s) of "
            f"{', '.join(str(len(c['ids']) - 2) for c in out)} tokens")
        cases.append({"name": path.stem, "chunks": out})
    json.dump(cases, sys.stdout)


# --- server -----------------------------------------------------------------------------------


def proc_status(pid, key):
    """A /proc/PID/status field in MiB (0 if the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(d))
    return out


def memory(pid, key):
    """(server, workers) of a /proc status field, MiB; workers = the server's child processes
    (its espeak-ng workers)."""
    return proc_status(pid, key), sum(proc_status(c, key) for c in children(pid))


class Server:
    def __init__(self, a, model, np_, log):
        self.a = a
        if a.port:
            self.port = a.port
            if port_busy(self.port):
                die(f"port {self.port} on 127.0.0.1 is busy (BENCH_PORT); free it or choose another")
        else:
            self.port = free_port()
        cmd = [a.host, "-mp", model, "-np", str(np_), "-nt", str(a.threads), "-p", str(self.port),
               "--host", "127.0.0.1", "--timeout", "7200", "--queue-size", "16"]
        self.log_path = log
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        with open(a.pidfile, "a") as f:
            f.write(f"{self.proc.pid}\n")
        self.wait_ready()

    def log_tail(self):
        try:
            return pathlib.Path(self.log_path).read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def wait_ready(self):
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                if "in use" in tail.lower():
                    die(f"tts-host could not bind 127.0.0.1:{self.port} (port busy):\n{tail}")
                die(f"tts-host exited with {self.proc.returncode} before it was ready:\n{tail}")
            try:
                status, body = self.get("/health")
                if status == 200 and json.loads(body).get("status") == "ok":
                    return
            except (OSError, http.client.HTTPException, ValueError):
                pass
            time.sleep(0.2)
        die(f"tts-host was not ready after 300 s:\n{self.log_tail()}")

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def speak(self, text):
        """One streamed pcm request: (seconds to the first body byte, total seconds, bytes)."""
        body = json.dumps({"model": "kokoro", "input": text, "voice": self.a.voice, "language": self.a.lang,
                           "response_format": "pcm", "stream_format": "audio"})
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=7200)
        try:
            t0 = time.perf_counter()
            c.request("POST", "/v1/audio/speech", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            if r.status != 200:
                die(f"POST /v1/audio/speech answered {r.status}: {r.read()[:500]!r}")
            first, n = None, 0
            while True:
                data = r.read1(1 << 16)
                if not data:
                    break
                if first is None:
                    first = time.perf_counter() - t0
                n += len(data)
            return first, time.perf_counter() - t0, n
        finally:
            c.close()

    def memory(self, key):
        return memory(self.proc.pid, key)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_busy(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def read_text(texts, name):
    return pathlib.Path(texts, f"{name}.txt").read_text(encoding="utf-8").strip()


def cmd_server(a):
    work = pathlib.Path(a.work)
    for name in a.cases:
        text = read_text(a.texts, name)
        srv = Server(a, a.model, 1, work / f"host-{a.type}-{name}.log")
        try:
            srv.speak(text)  # warm-up
            firsts, totals, sizes = [], [], []
            for _ in range(a.runs):
                first, total, n = srv.speak(text)
                firsts.append(first)
                totals.append(total)
                sizes.append(n)
            host, workers = srv.memory("VmHWM")
        finally:
            srv.stop()
        audio_s = sizes[-1] / 2 / SAMPLE_RATE
        med, ttfa = statistics.median(totals), statistics.median(firsts)
        say(f"ours {a.type:5} {name} (server): {audio_s:.2f} s audio in {med:.2f} s (RTF {audio_s / med:.2f}), "
            f"first audio {ttfa:.3f} s, VmHWM {host:.0f} MB + worker {workers:.0f} MB")
        print(json.dumps({"kind": "text", "case": name, "type": a.type, "median_s": med, "runs_s": totals,
                          "first_s": ttfa, "firsts_s": firsts, "audio_s": audio_s,
                          "samples": sizes[-1] // 2, "rss_mb": host + workers, "rss_host_mb": host,
                          "rss_workers_mb": workers}), flush=True)
    if a.np4:
        text = read_text(a.texts, a.np4)
        srv = Server(a, a.model, 4, work / f"host-{a.type}-np4.log")
        try:
            results, errors, busy = [None] * 4, [], [0]

            def one(i):
                try:
                    results[i] = srv.speak(text)
                except BaseException as e:  # noqa: BLE001 (reported below)
                    errors.append(e)

            threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                try:
                    status, body = srv.get("/health")
                    if status == 200:
                        busy[0] = max(busy[0], int(json.loads(body).get("busy", 0)))
                except (OSError, http.client.HTTPException, ValueError):
                    pass
                time.sleep(0.5)
            if errors or None in results:
                die(f"a concurrent request failed: {errors}")
            host, workers = srv.memory("VmHWM")
        finally:
            srv.stop()
        say(f"ours {a.type:5} {a.np4} x4 on -np 4: VmHWM {host:.0f} MB + workers {workers:.0f} MB, "
            f"most busy seen {busy[0]}, request times {', '.join(f'{r[1]:.1f}' for r in results)} s")
        print(json.dumps({"kind": "np4", "case": a.np4, "type": a.type, "rss_mb": host + workers,
                          "rss_host_mb": host, "rss_workers_mb": workers, "max_busy": busy[0],
                          "totals_s": [r[1] for r in results]}), flush=True)
    if a.soak:
        text = read_text(a.texts, a.soak_text)
        srv = Server(a, a.model, 1, work / f"host-{a.type}-soak.log")
        try:
            srv.speak(text)
            before = srv.memory("VmRSS")
            t0 = time.monotonic()
            for i in range(a.soak):
                srv.speak(text)
                if (i + 1) % 50 == 0:
                    now = srv.memory("VmRSS")
                    say(f"soak {i + 1}/{a.soak}: VmRSS {now[0]:.1f} MB + worker {now[1]:.1f} MB "
                        f"({time.monotonic() - t0:.0f} s)")
            after = srv.memory("VmRSS")
        finally:
            srv.stop()
        growth = 100 * (sum(after) - sum(before)) / sum(before)
        growth_host = 100 * (after[0] - before[0]) / before[0]
        say(f"soak: VmRSS {sum(before):.1f} -> {sum(after):.1f} MB ({growth:+.2f} %), server alone "
            f"{before[0]:.1f} -> {after[0]:.1f} MB ({growth_host:+.2f} %)")
        print(json.dumps({"kind": "soak", "case": a.soak_text, "type": a.type, "requests": a.soak,
                          "before_mb": sum(before), "after_mb": sum(after), "growth_pct": growth,
                          "before_host_mb": before[0], "after_host_mb": after[0],
                          "growth_host_pct": growth_host}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("golden")
    g.add_argument("--kokoro", required=True)
    g.add_argument("--fixtures", required=True)
    g.add_argument("--types", nargs="+", required=True)
    g.add_argument("--models", nargs="+", required=True)
    g.add_argument("--threads", type=int, default=2)
    g.add_argument("--runs", type=int, default=3)
    g.add_argument("--work", required=True)
    c = sub.add_parser("chunks")
    c.add_argument("--kokoro", required=True)
    c.add_argument("--model", required=True)
    c.add_argument("--voices", required=True)
    c.add_argument("--voice", default="jf_alpha")
    c.add_argument("--lang", default="en-us")
    c.add_argument("texts", nargs="+")
    s = sub.add_parser("server")
    s.add_argument("--host", required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--type", required=True)
    s.add_argument("--texts", required=True)
    s.add_argument("--cases", nargs="*", default=[])
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--runs", type=int, default=3)
    s.add_argument("--voice", default="jf_alpha")
    s.add_argument("--lang", default="en-us")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--np4", default="")
    s.add_argument("--soak", type=int, default=0)
    s.add_argument("--soak-text", default="short")
    s.add_argument("--pidfile", required=True)
    s.add_argument("--work", required=True)
    a = ap.parse_args()
    if a.cmd == "golden":
        if len(a.types) != len(a.models):
            die("--types and --models differ in length")
        cmd_golden(a)
    elif a.cmd == "chunks":
        cmd_chunks(a)
    else:
        cmd_server(a)


if __name__ == "__main__":
    main()
