#!/usr/bin/env bash
# Regenerates .ci/advisory-db/: a snapshot of the RustSec advisory database
# (https://github.com/rustsec/advisory-db) pruned to the crates in our two
# Cargo.lock files, so `cargo deny` and `cargo audit` in .ci/run work on a
# machine that cannot reach GitHub.
#
#   .ci/update-advisory-db.sh                   # clones from GitHub
#   .ci/update-advisory-db.sh /path/to/clone    # a local clone (work tree
#                                               # or bare/git dir)
#
# Run it after changing dependencies (a crate new to the lock files has no
# advisories in the snapshot until then) and from time to time for new
# advisories; commit the result. SNAPSHOT in the output records the source
# commit and its date; `cargo audit` refuses a snapshot older than
# ADVISORY_DB_MAX_AGE_DAYS (see .ci/run), which is the reminder.
#
# The snapshot is a git repository with one commit (tracked here as plain
# files under .ci/advisory-db/, its .git recreated by .ci/run): both tools
# read the database through git.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC="${1:-https://github.com/rustsec/advisory-db}"
OUT=.ci/advisory-db
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

git clone -q --depth 1 "$( [ -d "$SRC" ] && echo "file://$(cd "$SRC" && pwd)" || echo "$SRC")" "$TMP/db"
COMMIT="$(git -C "$TMP/db" rev-parse HEAD)"
DATE="$(git -C "$TMP/db" log -1 --format=%cI)"

# Every package name in the lock files (any version, any source).
NAMES="$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.lock plugins/Cargo.lock | sort -u)"

rm -rf "$OUT"
mkdir -p "$OUT/crates"
cp "$TMP/db/LICENSE.txt" "$TMP/db/README.md" "$OUT/"
kept=0
for n in $NAMES; do
  if [ -d "$TMP/db/crates/$n" ]; then
    cp -r "$TMP/db/crates/$n" "$OUT/crates/"
    kept=$((kept + 1))
  fi
done
total="$(find "$TMP/db/crates" -name '*.md' | wc -l)"
advisories="$(find "$OUT/crates" -name '*.md' | wc -l)"
cat > "$OUT/SNAPSHOT" <<EOF
source: https://github.com/rustsec/advisory-db
commit: $COMMIT
date: $DATE
generated: $(date -u +%Y-%m-%dT%H:%M:%SZ) by .ci/update-advisory-db.sh
crates in Cargo.lock + plugins/Cargo.lock: $(echo "$NAMES" | wc -l), with advisories: $kept
advisories kept: $advisories of $total
EOF
cat "$OUT/SNAPSHOT"
