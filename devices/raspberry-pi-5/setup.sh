#!/usr/bin/env bash
# Install hearkit's torch-free runtime on a Raspberry Pi 5 running 64-bit Raspberry Pi OS (bookworm).
#
#   devices/raspberry-pi-5/setup.sh [WHEEL_OR_SOURCE]      # default: this checkout, else "hearkit" from PyPI
#
# Makes a venv at ${HEARKIT_VENV:-$HOME/hearkit-venv} with numpy, onnxruntime (>= 1.22:
# 1.21 crashes on the Pi 4), soundfile, soxr and click; no torch. Then checks that
# onnxruntime imports with a recent enough version and that `hearkit devices raspberry-pi-5` works.
set -euo pipefail
VENV="${HEARKIT_VENV:-$HOME/hearkit-venv}"
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="${1:-}"
if [ -z "$SRC" ]; then
  if [ -f "$HERE/../../pyproject.toml" ]; then SRC="$(cd "$HERE/../.." && pwd)"; else SRC=hearkit; fi
fi

if [ "$(uname -m)" != aarch64 ]; then
  echo "error: needs the 64-bit OS (uname -m = aarch64), this is $(uname -m); onnxruntime has no 32-bit ARM wheels" >&2
  exit 1
fi
# libsndfile1 for soundfile's system fallback; python3-venv for the venv.
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -q
$SUDO apt-get install -y -q python3-venv python3-pip libsndfile1

python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
# onnxruntime pinned from below: 1.21 crashes on the Pi 4 (docs/design.md, pyproject).
"$VENV/bin/pip" install --quiet "onnxruntime>=1.22" "$SRC"

echo "checking the install"
"$VENV/bin/python" - <<'PY'
import numpy as np, onnxruntime as ort, platform
major, minor = (int(x) for x in ort.__version__.split(".")[:2])
assert (major, minor) >= (1, 22), f"onnxruntime {ort.__version__} < 1.22 (1.21 crashes on the Pi 4)"
import hearkit, hearkit.devices
print("machine", platform.machine(), "| onnxruntime", ort.__version__, ort.get_available_providers(), "| hearkit", hearkit.__version__)
PY
"$VENV/bin/hearkit" devices raspberry-pi-5
cat <<MSG
ok. Next, with a bundle made on your PC by `hearkit package OUT --device raspberry-pi-5 -o BUNDLE`:
  $VENV/bin/hearkit package --verify BUNDLE
  $VENV/bin/hearkit run BUNDLE clip.wav
  $VENV/bin/hearkit bench BUNDLE --device raspberry-pi-5
MSG
