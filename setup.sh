#!/usr/bin/env bash
# One-time (idempotent) set-up on Debian with Python 3.11: system libraries for headless
# rendering (EGL/Mesa) and the fast allocator (tcmalloc), then a virtual environment in
# .venv with the pinned requirements and this package.
#   ./setup.sh         CPU (the default)
#   ./setup.sh cuda    NVIDIA GPUs (requirements-cuda.txt)
#   ./setup.sh tpu     Cloud TPU VMs (requirements-tpu.txt)
set -euo pipefail
cd "$(dirname "$0")"

REQ="requirements.txt"
case "${1:-cpu}" in
  cpu) ;;
  cuda|gpu) REQ="requirements-cuda.txt" ;;
  tpu) REQ="requirements-tpu.txt" ;;
  *) echo "setup: unknown accelerator '$1' (use cpu, cuda or tpu)" >&2; exit 2 ;;
esac


DEBS="libegl1 libegl-mesa0 libgl1-mesa-dri libtcmalloc-minimal4"
missing=""
for p in $DEBS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing Debian packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=".venv/.requirements.sha"
want="$(cat requirements.txt "$REQ" pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python requirements (about a minute)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r "$REQ"
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi
