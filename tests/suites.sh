#!/usr/bin/env bash
# suites.sh NAME COMMAND... [-- NAME COMMAND...]...: runs test suites side by side (make check:
# the plain suite and the ASan/UBSan one). Most of an integration test's time is spent waiting on
# the daemons it started, so on two cores the pair takes about as long as the longer one, not
# the sum. Each line is shown as it comes, prefixed "NAME| "; when all have ended, each suite's
# summary line ("N passed, N failed, N skipped", tests/run.sh's last line) is printed again
# without the prefix, after the report of each failed test (its FAIL line and the log tail
# tests/run.sh printed under it, at most 50 lines each: a CI log cut to its end still names and
# shows every failure), and the status is non-zero when any suite failed.
set -u
tmp=$(mktemp -d /tmp/tide-suites.XXXXXX)
trap 'kill $(jobs -p) 2> /dev/null; rm -rf "$tmp"' EXIT
names=() pids=()
while [ $# -gt 0 ]; do
    name=$1; shift; cmd=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do cmd+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    [ ${#cmd[@]} -gt 0 ] || { echo "suites.sh: suite $name has no command" >&2; exit 2; }
    i=${#names[@]}
    ( "${cmd[@]}" 2>&1; echo $? > "$tmp/$i.rc" ) | tee "$tmp/$i.log" | sed -u "s/^/$name| /" &
    names+=("$name") pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
status=0
for i in "${!names[@]}"; do
    rc=$(cat "$tmp/$i.rc" 2> /dev/null || echo 1)
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$tmp/$i.log" | tail -1)
    if [ "$rc" != 0 ]; then
        # a failure's report: from its "FAIL " line to the next test's "ok"/"skip"/"FAIL" line
        awk -v n="${names[$i]}" '/^(ok |skip |FAIL |failed: |[0-9]+ passed, )/ { on = 0; k = 0 }
            /^FAIL / { on = 1 } /^failed: / { print n "| " $0 }
            on && k++ < 50 { print n "| " $0 }' "$tmp/$i.log"
    fi
    echo "suite ${names[$i]}: status $rc"
    [ -n "$summary" ] && echo "$summary"
    [ "$rc" = 0 ] || status=1
done
exit $status
