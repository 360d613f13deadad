#!/usr/bin/env bash
# Run a command of the emulated Raspberry Pi's python under qemu-aarch64-static (docs/design.md §9).
#
#   devices/emulation/run_arm64.sh [--cpu cortex-a76|cortex-a72] [--pythonpath DIR] -- python3 ARGS...
#   devices/emulation/run_arm64.sh --cpu cortex-a72 -- python3 -c "import onnxruntime; print(onnxruntime.__version__)"
#
# The first word after `--` is a program inside the arm64 rootfs (`python3` is
# /usr/bin/python3.11 there); the rest are its arguments, with host paths (qemu's -L
# only redirects a path when it exists under the rootfs, so /tmp/x stays /tmp/x).
#
# onnxruntime's CPU detection reads the host's x86 /sys topology and SIGSEGVs at
# import, so the command runs in a private mount namespace (unshare -m as root,
# unshare -r -m with unprivileged user namespaces otherwise) where an arm64 CPU description is bind-mounted over
# /sys/devices/system/cpu and /proc/cpuinfo: 4 cores of the chosen part (A76:
# part 0xd0b with the asimddp dot-product feature, like the Pi 5; A72: part 0xd08
# without it, like the Pi 4). Nothing outside the namespace is touched.
#
# Environment: HEARKIT_ARM64_ROOT (default ~/.cache/hearkit/arm64, built by
# build_rootfs.sh). --pythonpath is prepended to the wheels' site folder, e.g. a
# staged copy of runtime/ named hearkit (see stage_hearkit below).
set -euo pipefail

ROOT="${HEARKIT_ARM64_ROOT:-$HOME/.cache/hearkit/arm64}"
CPU=cortex-a76
EXTRA_PATH=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) CPU="$2"; shift 2 ;;
    --pythonpath) EXTRA_PATH="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--cpu cortex-a76|cortex-a72] [--pythonpath DIR] -- PROGRAM ARGS..." >&2; exit 2; }
[ -f "$ROOT/.stamp" ] || { echo "error: no arm64 rootfs at $ROOT; run devices/emulation/build_rootfs.sh first" >&2; exit 2; }

case "$CPU" in
  # part numbers from the Arm TRMs; features as /proc/cpuinfo prints them on the boards.
  cortex-a76) PART=0xd0b; REV=1; VARIANT=0x4
    FEATURES="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" ;;
  cortex-a72) PART=0xd08; REV=3; VARIANT=0x0
    FEATURES="fp asimd evtstrm crc32 cpuid" ;;
  *) echo "error: --cpu must be cortex-a76 or cortex-a72, got '$CPU'" >&2; exit 2 ;;
esac

PROG="$1"; shift
case "$PROG" in
  python3|python) PROG=/usr/bin/python3.11 ;;
esac

# The fake CPU description lives in a temporary folder removed on exit.
FAKE="$(mktemp -d "${TMPDIR:-/tmp}/hearkit-arm64-cpu.XXXXXX")"
trap 'rm -rf "$FAKE"' EXIT
mkdir -p "$FAKE/cpu"
for f in possible present online; do echo "0-3" >"$FAKE/cpu/$f"; done
echo "" >"$FAKE/cpu/offline"
: >"$FAKE/cpuinfo"
for i in 0 1 2 3; do
  d="$FAKE/cpu/cpu$i"
  mkdir -p "$d/topology" "$d/cpufreq" "$d/regs/identification"
  echo 1 >"$d/online"
  echo 0 >"$d/topology/physical_package_id"
  echo 0 >"$d/topology/cluster_id"
  echo "$i" >"$d/topology/core_id"
  echo "0-3" >"$d/topology/core_siblings_list"
  echo "0-3" >"$d/topology/cluster_cpus_list"
  echo "$i" >"$d/topology/thread_siblings_list"
  echo 2400000 >"$d/cpufreq/cpuinfo_max_freq"
  echo 1000000 >"$d/cpufreq/cpuinfo_min_freq"
  cat >>"$FAKE/cpuinfo" <<CPUINFO
processor	: $i
BogoMIPS	: 108.00
Features	: $FEATURES
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: $VARIANT
CPU part	: $PART
CPU revision	: $REV

CPUINFO
done

SITE="$ROOT/site"
PYPATH="$SITE"
[ -z "$EXTRA_PATH" ] || PYPATH="$EXTRA_PATH:$SITE"

# Inside the namespace: bind the description, then exec qemu. -L makes the guest's
# /usr/lib, /lib/ld-linux-aarch64.so.1 etc. come from the rootfs. No exec here, so
# the EXIT trap removes the fake description afterwards. Without root, a user
# namespace (-r) grants the mount rights inside the namespace only.
USERNS=""
[ "$(id -u)" = 0 ] || USERNS="-r"
unshare $USERNS -m --propagation private /bin/bash -c '
  set -e
  mount --bind "$1/cpu" /sys/devices/system/cpu
  mount --bind "$1/cpuinfo" /proc/cpuinfo
  shift
  exec "$@"
' _ "$FAKE" \
  qemu-aarch64-static -cpu "$CPU" -L "$ROOT/rootfs" \
    -E PYTHONPATH="$PYPATH" -E PYTHONDONTWRITEBYTECODE=1 -E OMP_NUM_THREADS=1 \
    "$ROOT/rootfs$PROG" "$@"
