#!/usr/bin/env bash
# Install hearkit's torch-free runtime on a Jetson Orin with JetPack 6 (L4T r36, CUDA 12, TensorRT).
#
#   devices/jetson-orin/setup.sh [WHEEL_OR_SOURCE]     # default: this checkout, else "hearkit" from PyPI
#
# The onnxruntime on PyPI for aarch64 is CPU-only. The CUDA and TensorRT execution
# providers come from NVIDIA's onnxruntime-gpu build for the JetPack version, served
# by the Jetson AI Lab pip index (set JETSON_PIP_INDEX if yours differs: the index for
# JetPack 6.x with CUDA 12.6 is .../jp6/cu126; see https://elinux.org/Jetson_Zoo too).
#
# hearkit is installed with --no-deps after its other dependencies: its requirement
# "onnxruntime" is not satisfied by "onnxruntime-gpu", and pip would otherwise add the
# CPU wheel beside the GPU one (two packages writing the same `onnxruntime` module).
set -euo pipefail
VENV="${HEARKIT_VENV:-$HOME/hearkit-venv}"
INDEX="${JETSON_PIP_INDEX:-https://pypi.jetson-ai-lab.io/jp6/cu126}"
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="${1:-}"
if [ -z "$SRC" ]; then
  if [ -f "$HERE/../../pyproject.toml" ]; then SRC="$(cd "$HERE/../.." && pwd)"; else SRC=hearkit; fi
fi

[ "$(uname -m)" = aarch64 ] || { echo "error: run this on the Jetson (aarch64), not $(uname -m)" >&2; exit 1; }
if [ -f /etc/nv_tegra_release ]; then
  echo "L4T: $(head -1 /etc/nv_tegra_release)"
  grep -q "R36" /etc/nv_tegra_release || echo "warning: this profile is for JetPack 6 (L4T R36); pick the onnxruntime-gpu index of your JetPack" >&2
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -q
$SUDO apt-get install -y -q python3-venv python3-pip libsndfile1

# --system-site-packages: the TensorRT Python bindings and CUDA libraries come with JetPack.
python3 -m venv --system-site-packages "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" uninstall -y -q onnxruntime 2>/dev/null || true
"$VENV/bin/pip" install --quiet --extra-index-url "$INDEX" "onnxruntime-gpu>=1.22"
"$VENV/bin/pip" install --quiet numpy soundfile soxr click
"$VENV/bin/pip" install --quiet --no-deps "$SRC"

echo "checking the install"
"$VENV/bin/python" - <<'PY'
import onnxruntime as ort
prov = ort.get_available_providers()
print("onnxruntime", ort.__version__, prov)
missing = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p not in prov]
if missing:
    raise SystemExit(f"missing {missing}: this is not NVIDIA's onnxruntime-gpu for JetPack (check JETSON_PIP_INDEX)")
PY
"$VENV/bin/hearkit" devices jetson-orin
cat <<MSG
ok. Next, with a bundle made on your PC by \`hearkit package OUT --device jetson-orin -o BUNDLE\`:
  $VENV/bin/hearkit package --verify BUNDLE
  $VENV/bin/hearkit bench BUNDLE --device jetson-orin     # first run builds TensorRT engines (cached in ~/.cache/hearkit/tensorrt)
  $VENV/bin/hearkit run BUNDLE clip.wav
The runtime warns once if TensorRT or CUDA is missing or if nodes fall back to the CPU.
MSG
