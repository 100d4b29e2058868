#!/usr/bin/env bash
# run.sh DIR SECONDS: runs every libFuzzer binary in DIR for SECONDS each, on its seed corpus
# tests/fuzz/corpus/NAME (copied, so the checked-in corpus only changes by hand). The targets run
# FUZZ_JOBS at a time (default: the number of cores; each target is one single-threaded process),
# so make check's short run takes SECONDS x targets / cores. A failure prints the target's log
# and where its crashing input was kept, and the run exits 1 after the others have finished.
set -u
dir=$1 secs=$2
jobs=${FUZZ_JOBS:-$(nproc)}
cd "$(dirname "$0")/../.."
n=0 failed=0 running=0
tmp=$(mktemp -d /tmp/tide-fuzz.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

one() { # one BINARY: a target's whole run; its status is the target's
    local f=$1 name work
    name=$(basename "$f")
    work=$(mktemp -d /tmp/tide-fuzz-"$name".XXXXXX)
    [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/"
    if ! "$f" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$work/" "$work" > "$work.log" 2>&1; then
        tail -50 "$work.log"; echo "fuzz: $name FAILED (artifacts in $work)"; return 1
    fi
    echo "fuzz: $name for ${secs}s: $(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$work.log" | grep -oE '[0-9]+$') runs"
    rm -rf "$work" "$work.log"
}

reap() { # waits for one running target and counts it
    wait -n; [ $? -eq 0 ] || failed=$((failed + 1))
    running=$((running - 1))
}

for f in "$dir"/fuzz_*; do
    [ -x "$f" ] || continue
    [ "$running" -ge "$jobs" ] && reap
    one "$f" > "$tmp/$(basename "$f").out" 2>&1 &
    running=$((running + 1)) n=$((n + 1))
done
while [ "$running" -gt 0 ]; do reap; done
cat "$tmp"/*.out
echo "fuzz: $((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
