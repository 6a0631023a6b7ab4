#!/bin/sh
# Build the pypi adapter component with componentize-py (0.25):
#   plugins/python/pypi/build.sh [OUT.wasm]
# COMPONENTIZE_PY names the executable (default: componentize-py on PATH).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/pypi.wasm}"
cd "$here"
"${COMPONENTIZE_PY:-componentize-py}" -d ../../../wit -w adapter componentize app -o "$out"
