#!/usr/bin/env bash
# Install hearkit's torch-free runtime on an x86-64 Linux machine (x86-avx2 profile).
#
#   devices/x86-avx2/setup.sh [WHEEL_OR_SOURCE]      # default: this checkout, else "hearkit" from PyPI
#
# Makes a venv at ${HEARKIT_VENV:-$HOME/hearkit-venv} with numpy, onnxruntime (>= 1.22),
# soundfile, soxr and click (no torch) and checks the CPU has the instructions the
# profile's int8 recipe is chosen for.
set -euo pipefail
VENV="${HEARKIT_VENV:-$HOME/hearkit-venv}"
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="${1:-}"
if [ -z "$SRC" ]; then
  if [ -f "$HERE/../../pyproject.toml" ]; then SRC="$(cd "$HERE/../.." && pwd)"; else SRC=hearkit; fi
fi
[ "$(uname -m)" = x86_64 ] || { echo "error: this profile is for x86-64, not $(uname -m)" >&2; exit 1; }
grep -qw avx2 /proc/cpuinfo || echo "warning: this CPU has no AVX2; no shipped profile fits, write your own profile.toml" >&2
grep -qwE "avx512_vnni|avx_vnni" /proc/cpuinfo && echo "note: this CPU has VNNI; the x86-vnni profile (S8S8, no reduce_range) fits it better" >&2 || true
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "onnxruntime>=1.22" "$SRC"
"$VENV/bin/python" -c "import onnxruntime as ort, hearkit; print('onnxruntime', ort.__version__, ort.get_available_providers(), '| hearkit', hearkit.__version__)"
"$VENV/bin/hearkit" devices x86-avx2
cat <<MSG
ok. Next:
  $VENV/bin/hearkit package OUT --device x86-avx2 -o BUNDLE     (on a machine with hearkit[train])
  $VENV/bin/hearkit package --verify BUNDLE
  $VENV/bin/hearkit bench BUNDLE --device x86-avx2
MSG
