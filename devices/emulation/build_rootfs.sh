#!/usr/bin/env bash
# Build (once, cached) an emulated Raspberry Pi userland on an x86 machine (docs/design.md §9):
# a Debian bookworm arm64 root with python3.11 and libsndfile1, plus the aarch64
# wheels of hearkit's runtime dependencies in a separate site folder.
#
#   devices/emulation/build_rootfs.sh            # builds into $HEARKIT_ARM64_ROOT
#   HEARKIT_ARM64_ROOT=/tmp/arm64 devices/emulation/build_rootfs.sh
#
# Layout (outside the repository, never committed):
#   $ROOT/rootfs   Debian bookworm arm64 (minbase + python3 + libsndfile1)
#   $ROOT/site     aarch64 wheels for cp311 (onnxruntime numpy soundfile soxr click)
#   $ROOT/.stamp   written last; its content is the recipe, so a changed recipe rebuilds
#
# Needs: debootstrap, dpkg-deb (dpkg), python3 with pip on the host, network access
# to the Debian mirror and PyPI. No root-only steps: --foreign stops before running
# any arm64 binary, and every .deb is unpacked with `dpkg -x` (no maintainer scripts).
set -euo pipefail

ROOT="${HEARKIT_ARM64_ROOT:-$HOME/.cache/hearkit/arm64}"
SUITE=bookworm
# python3 in bookworm is 3.11; the wheels below are chosen for exactly that version.
PYVER=3.11
PACKAGES="python3,libsndfile1"
# The runtime's dependencies (pyproject `dependencies`); onnxruntime >= 1.22 because
# 1.21 crashes on the Pi 4.
WHEELS="${HEARKIT_ARM64_WHEELS:-onnxruntime>=1.22 numpy soundfile soxr click}"
# Host pip that downloads the aarch64 wheels (`make test-arm` passes the venv's).
PIP="${PIP:-python3 -m pip}"

# The Debian mirror configured for apt on this machine (deb822 or one-line format), so
# the build works wherever apt works; override with HEARKIT_DEBIAN_MIRROR.
mirror_from_apt() {
  local m=""
  m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
  if [ -z "$m" ]; then
    m=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | grep -v security \
        | sed -E 's/^deb (\[[^]]*\] )?//' | awk '{print $1}' | head -1 || true)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}
MIRROR="${HEARKIT_DEBIAN_MIRROR:-$(mirror_from_apt)}"

RECIPE="suite=$SUITE packages=$PACKAGES python=$PYVER wheels=$WHEELS"
if [ -f "$ROOT/.stamp" ] && [ "$(cat "$ROOT/.stamp")" = "$RECIPE" ]; then
  echo "arm64 rootfs cached at $ROOT (delete $ROOT/.stamp to rebuild)"
  exit 0
fi

for tool in debootstrap dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found (apt-get install debootstrap dpkg)" >&2; exit 2; }
done

echo "building arm64 rootfs in $ROOT from $MIRROR" >&2
rm -rf "$ROOT/rootfs" "$ROOT/site" "$ROOT/.stamp"
mkdir -p "$ROOT"
# --foreign: download and unpack the base set only, no second stage (that would need
# binfmt or a chroot); the extra packages are unpacked below by hand.
debootstrap --arch=arm64 --foreign --variant=minbase --include="$PACKAGES" \
  "$SUITE" "$ROOT/rootfs" "$MIRROR" >"$ROOT/debootstrap.log" 2>&1 \
  || { tail -20 "$ROOT/debootstrap.log" >&2; exit 1; }
# Unpack every downloaded package (the --include ones and their dependencies are
# only downloaded by --foreign). Maintainer scripts never run; none is needed to
# import python, numpy or onnxruntime.
n=0
for deb in "$ROOT"/rootfs/var/cache/apt/archives/*.deb; do
  dpkg-deb -x "$deb" "$ROOT/rootfs"
  n=$((n + 1))
done
echo "unpacked $n packages" >&2
test -x "$ROOT/rootfs/usr/bin/python$PYVER" || { echo "error: python$PYVER missing from the rootfs" >&2; exit 1; }
# The debs are not needed any more; keep the cache small.
rm -f "$ROOT"/rootfs/var/cache/apt/archives/*.deb

# aarch64 wheels, chosen by the host pip for the guest's platform and Python.
# shellcheck disable=SC2086
$PIP install --quiet --disable-pip-version-check --target "$ROOT/site" \
  --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 \
  --python-version "$PYVER" --implementation cp --only-binary=:all: $WHEELS
echo "$RECIPE" >"$ROOT/.stamp"
echo "arm64 rootfs ready at $ROOT ($(du -sh "$ROOT" | cut -f1))" >&2
