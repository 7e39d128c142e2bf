"""Starts the real tts-host binary with a real plugin on 127.0.0.1:0 for the openai-client tests.

The binary and plugins come from `cargo build` (run.sh builds them); this file only finds them:
`$CARGO_TARGET_DIR/debug` or `<workspace>/target/debug`.
"""

import os
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
if not TARGET.is_absolute():
    TARGET = ROOT / TARGET
PROFILE = TARGET / "debug"
LISTENING = re.compile(r"listening on (https?)://([0-9.]+):(\d+)")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def built(name: str) -> Path:
    path = PROFILE / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `cargo build --workspace` first (or tests/python/run.sh)")
    return path


class Server:
    """One tts-host process; `log` collects its stderr."""

    def __init__(self, plugin: str, *args: str):
        cmd = [str(built("tts-host")), "--backend", str(built(f"libtts_backend_{plugin}.so")),
               "-p", "0", "--host", "127.0.0.1", *args]
        env = dict(os.environ, NO_COLOR="1", RUST_LOG="info")
        env.pop("TTS_API_KEY", None)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._port = None
        self._found = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self._found.wait(30):
            self.stop()
            raise RuntimeError(f"tts-host did not start listening:\n{self.log}")
        self.url = f"http://127.0.0.1:{self._port}"
        self.base_url = f"{self.url}/v1"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"tts-host never became healthy:\n{self.log}")
            time.sleep(0.02)

    def _read(self):
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            line = ANSI.sub("", line)
            with self._lock:
                self._lines.append(line)
            m = LISTENING.search(line)
            if m and not self._found.is_set():
                self._port = int(m.group(3))
                self._found.set()

    @property
    def log(self) -> str:
        with self._lock:
            return "".join(self._lines)

    def count(self, needle: str) -> int:
        return sum(needle in line for line in self.log.splitlines())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture(scope="session")
def sine_server():
    server = Server("sine")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def faulty_server():
    server = Server("faulty")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def keyed_server():
    server = Server("sine", "--api-key", "sesame")
    yield server
    server.stop()
