#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each (default 180),
# one after the other, single job, from the committed seeds plus the local
# corpus in fuzz/corpus/<target> (git-ignored, grows between runs).
#
#   fuzz/run.sh                 # all targets, 3 minutes each
#   SECONDS_PER_TARGET=600 fuzz/run.sh config api_decode
#
# Needs `cargo install cargo-fuzz`. cargo-fuzz passes nightly-only flags
# (-Zsanitizer); RUSTC_BOOTSTRAP=1 lets a stable toolchain accept them.
# Not part of .ci/run or the test suite: it takes minutes of CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${SECONDS_PER_TARGET:-180}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(config api_decode urn gateway sign_verify web_config)
fi
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    corpora=("fuzz/corpus/$t")
    [ -d "fuzz/seeds/$t" ] && corpora+=("fuzz/seeds/$t")
    flags=(-max_total_time="$seconds" -print_final_stats=1)
    [ -f "fuzz/dicts/$t.dict" ] && flags+=(-dict="fuzz/dicts/$t.dict")
    echo "=== $t (${seconds}s)"
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "${corpora[@]}" -- "${flags[@]}"
done
