#!/usr/bin/env bash
# Runs the openai-client tests against the real tts-host: creates/uses <repo>/.venv, installs the
# pinned requirements from PyPI, builds the binary and test plugins, then runs pytest.
# Extra arguments go to pytest. Set TTS_E2E_NO_BUILD=1 to skip the cargo build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv || {
    echo "run.sh: 'python3 -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2
    exit 1
  }
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
if [ "${TTS_E2E_NO_BUILD:-0}" != 1 ]; then
  cargo build --quiet -p tts-host -p tts-backend-sine -p tts-backend-faulty
fi
exec .venv/bin/python -m pytest tests/python -q "$@"
