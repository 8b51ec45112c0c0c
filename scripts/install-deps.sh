#!/bin/sh
# Installs every Debian package precast needs to build, test, benchmark and run its demo.
# Idempotent: apt-get skips what is already installed. Run as root (or with sudo).
set -eu

PACKAGES="
  build-essential pkg-config make
  libopenmpi-dev openmpi-bin
  libleveldb-dev zlib1g-dev
  libopenblas-dev libdnnl-dev
  check
  python3 python3-numpy python3-onnx python3-torch python3-sklearn
  valgrind clang libclang-rt-14-dev
  libonnx-testdata
  libmicrohttpd-dev curl redis-tools redis-server wrk
  gnuplot-nox
"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  echo "install-deps: all packages present"
  exit 0
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
