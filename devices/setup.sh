#!/usr/bin/env bash
# Install hearkit's torch-free runtime on a device, for one of the shipped device profiles.
#
#   devices/setup.sh PROFILE [WHEEL_OR_SOURCE]     # default source: this checkout
#
# hearkit is not on PyPI: give the wheel `make wheel` built (dist/hearkit-*.whl, copied over)
# or a checkout; run from a checkout, the checkout is the default.
#
#   raspberry-pi-4, raspberry-pi-5   64-bit Raspberry Pi OS (bookworm)
#   jetson-orin                      JetPack 6 (L4T r36, CUDA 12, TensorRT)
#   x86-avx2, x86-vnni               x86-64 Linux
#
# Makes a venv at ${HEARKIT_VENV:-$HOME/hearkit-venv} with numpy, onnxruntime (>= 1.22:
# 1.21 crashes on the Pi 4), soundfile, soxr and click; no torch. Checks first that the
# machine fits the profile, then that onnxruntime imports with a recent enough version
# and that `hearkit devices PROFILE` works. What differs per profile:
#
# - Raspberry Pi: refuses a 32-bit OS (onnxruntime has no 32-bit ARM wheels); installs
#   python3-venv, python3-pip and libsndfile1 with apt.
# - Jetson: the onnxruntime on PyPI for aarch64 is CPU-only. The CUDA and TensorRT execution
#   providers come from NVIDIA's onnxruntime-gpu build for the JetPack version, served by
#   the Jetson AI Lab pip index (set JETSON_PIP_INDEX if yours differs: the index for
#   JetPack 6.x with CUDA 12.6 is .../jp6/cu126; see https://elinux.org/Jetson_Zoo too).
#   The venv sees the system site-packages (TensorRT's Python bindings and CUDA come with
#   JetPack). hearkit is installed with --no-deps after its other dependencies: its
#   requirement "onnxruntime" is not satisfied by "onnxruntime-gpu", and pip would otherwise
#   add the CPU wheel beside the GPU one (two packages writing the same `onnxruntime` module).
#   Fails unless the TensorRT and CUDA providers are available.
# - x86: checks the CPU has the instructions the profile's int8 recipe is chosen for
#   (AVX2 without VNNI for x86-avx2, VNNI for x86-vnni). No apt step.
set -euo pipefail

PROFILES=(raspberry-pi-4 raspberry-pi-5 jetson-orin x86-avx2 x86-vnni)
usage() { echo "usage: $0 PROFILE [WHEEL_OR_SOURCE]    PROFILE: ${PROFILES[*]}"; }
PROFILE="${1:-}"
case "$PROFILE" in
  -h | --help) usage; exit 0 ;;
  "") usage >&2; exit 2 ;;
esac
case " ${PROFILES[*]} " in
  *" $PROFILE "*) ;;
  *) echo "error: no setup for profile '$PROFILE'; supported: ${PROFILES[*]}" >&2; exit 2 ;;
esac

VENV="${HEARKIT_VENV:-$HOME/hearkit-venv}"
JETSON_INDEX="${JETSON_PIP_INDEX:-https://pypi.jetson-ai-lab.io/jp6/cu126}"
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="${2:-}"
if [ -z "$SRC" ]; then
  # In a checkout pyproject.toml sits beside devices/; the copy shipped in the wheel
  # (hearkit/devices_data/setup.sh) has none and needs the wheel named: no index has hearkit.
  if [ -f "$HERE/../pyproject.toml" ]; then
    SRC="$(cd "$HERE/.." && pwd)"
  else
    echo "error: name the hearkit wheel (\`make wheel\` in a checkout builds dist/hearkit-*.whl) or a checkout: hearkit is not on a package index" >&2
    exit 2
  fi
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
ARCH="$(uname -m)"

# 1. Does this machine fit the profile?
case "$PROFILE" in
  raspberry-pi-*)
    if [ "$ARCH" != aarch64 ]; then
      echo "error: needs the 64-bit OS (uname -m = aarch64), this is $ARCH; onnxruntime has no 32-bit ARM wheels" >&2
      exit 1
    fi
    ;;
  jetson-orin)
    [ "$ARCH" = aarch64 ] || { echo "error: run this on the Jetson (aarch64), not $ARCH" >&2; exit 1; }
    if [ -f /etc/nv_tegra_release ]; then
      echo "L4T: $(head -1 /etc/nv_tegra_release)"
      grep -q "R36" /etc/nv_tegra_release || echo "warning: this profile is for JetPack 6 (L4T R36); pick the onnxruntime-gpu index of your JetPack" >&2
    fi
    ;;
  x86-avx2)
    [ "$ARCH" = x86_64 ] || { echo "error: this profile is for x86-64, not $ARCH" >&2; exit 1; }
    grep -qw avx2 /proc/cpuinfo || echo "warning: this CPU has no AVX2; no shipped profile fits, write your own profile.toml" >&2
    if grep -qwE "avx512_vnni|avx_vnni" /proc/cpuinfo; then
      echo "note: this CPU has VNNI; the x86-vnni profile (S8S8, no reduce_range) fits it better" >&2
    fi
    ;;
  x86-vnni)
    [ "$ARCH" = x86_64 ] || { echo "error: this profile is for x86-64, not $ARCH" >&2; exit 1; }
    grep -qwE "avx512_vnni|avx_vnni" /proc/cpuinfo || echo "warning: this CPU has no VNNI (avx512_vnni / avx_vnni); use the x86-avx2 profile" >&2
    ;;
esac

# 2. System packages on the boards (Debian-based OS images): libsndfile1 for soundfile's
# system fallback, python3-venv for the venv.
case "$PROFILE" in
  raspberry-pi-* | jetson-orin)
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q python3-venv python3-pip libsndfile1
    ;;
esac

# 3. The venv and the runtime.
PIP="$VENV/bin/pip"
if [ "$PROFILE" = jetson-orin ]; then
  # --system-site-packages: the TensorRT Python bindings and CUDA libraries come with JetPack.
  python3 -m venv --system-site-packages "$VENV"
  "$PIP" install --quiet --upgrade pip
  "$PIP" uninstall -y -q onnxruntime 2>/dev/null || true
  "$PIP" install --quiet --extra-index-url "$JETSON_INDEX" "onnxruntime-gpu>=1.22"
  "$PIP" install --quiet numpy soundfile soxr click
  "$PIP" install --quiet --no-deps "$SRC"
else
  python3 -m venv "$VENV"
  "$PIP" install --quiet --upgrade pip
  # onnxruntime pinned from below: 1.21 crashes on the Pi 4 (pyproject.toml's dependencies).
  "$PIP" install --quiet "onnxruntime>=1.22" "$SRC"
fi

# 4. Does it run?
echo "checking the install"
"$VENV/bin/python" - "$PROFILE" <<'PY'
import platform
import sys

import onnxruntime as ort

import hearkit
import hearkit.devices

profile = sys.argv[1]
prov = ort.get_available_providers()
print("machine", platform.machine(), "| onnxruntime", ort.__version__, prov, "| hearkit", hearkit.__version__)
major, minor = (int(x) for x in ort.__version__.split(".")[:2])
if (major, minor) < (1, 22):
    raise SystemExit(f"onnxruntime {ort.__version__} < 1.22 (1.21 crashes on the Pi 4)")
if profile == "jetson-orin":
    missing = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p not in prov]
    if missing:
        raise SystemExit(f"missing {missing}: this is not NVIDIA's onnxruntime-gpu for JetPack (check JETSON_PIP_INDEX)")
PY
"$VENV/bin/hearkit" devices "$PROFILE"

# 5. What to do next.
echo "ok. Next, with a bundle made by \`hearkit package OUT --device $PROFILE -o BUNDLE\` on a machine with hearkit[train] (your PC):"
echo "  $VENV/bin/hearkit package --verify BUNDLE"
if [ "$PROFILE" = jetson-orin ]; then
  echo "  $VENV/bin/hearkit bench BUNDLE --device $PROFILE     # first run builds TensorRT engines (cached in ~/.cache/hearkit/tensorrt)"
  echo "  $VENV/bin/hearkit run BUNDLE clip.wav"
  echo "The runtime warns once if TensorRT or CUDA is missing or if nodes fall back to the CPU."
else
  echo "  $VENV/bin/hearkit run BUNDLE clip.wav"
  echo "  $VENV/bin/hearkit bench BUNDLE --device $PROFILE"
fi
