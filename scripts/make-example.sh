#!/bin/sh
# Makes precast's example model and data: scripts/make-example.sh [OUT_DIR]
# OUT_DIR defaults to var/example under the checkout root (works from any cwd).
# Writes model.onnx, model.pt, labels.txt, input.csv (100,000 rows), expected.csv;
# does nothing ("up to date") when they exist and the maker is unchanged.
# Needs Debian's python3-torch, python3-onnx, python3-numpy, python3-sklearn, which are
# installed for /usr/bin/python3 only, hence the explicit interpreter.
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
root=$(dirname -- "$here")
out=${1:-"$root/var/example"}

mkdir -p -- "$out"
exec /usr/bin/python3 "$here/make_example.py" "$out"
