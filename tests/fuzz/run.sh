#!/usr/bin/env bash
# run.sh DIR SECONDS: runs every libFuzzer binary in DIR for SECONDS each, on its seed corpus
# tests/fuzz/corpus/NAME (copied, so the checked-in corpus only changes by hand).
set -eu
dir=$1 secs=$2
cd "$(dirname "$0")/../.."
n=0
for f in "$dir"/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    work=$(mktemp -d /tmp/tide-fuzz.XXXXXX)
    [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/"
    echo "fuzz: $name for ${secs}s"
    if ! "$f" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$work/" "$work" > "$work.log" 2>&1; then
        tail -50 "$work.log"; echo "fuzz: $name FAILED (artifacts in $work)"; exit 1
    fi
    grep -E 'stat::number_of_executed_units' "$work.log" || true
    rm -rf "$work" "$work.log"
    n=$((n + 1))
done
echo "fuzz: $n passed, 0 failed"
