#!/usr/bin/env bash
# run.sh: runs the unit-test binaries and the integration tests, ends with "N passed, N failed".
#   tests/run.sh --bin DIR --build DIR [--unit-only|--integration-only] [--sanitized|--valgrind] [NAME...]
# Integration tests are tests/integration/*.sh (bash) and *.py (/usr/bin/python3), run from
# the source root with TIDE_BIN, TIDE_SRC, TIDE_BUILD set, each under a hard timeout (a line
# "# timeout: SECONDS" in the file, default 180). Exit 0 = pass, 77 = skipped, else failed.
set -u
cd "$(dirname "$0")/.."
SRC=$(pwd)
BIN=bin BUILD=build MODE=all FLAVOR=plain
names=()
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) BIN=$2; shift ;;
    --build) BUILD=$2; shift ;;
    --unit-only) MODE=unit ;;
    --integration-only) MODE=integration ;;
    --sanitized) FLAVOR=sanitized ;;
    --valgrind) FLAVOR=valgrind ;;
    *) names+=("$1") ;;
    esac
    shift
done
export TIDE_SRC=$SRC TIDE_BIN=$SRC/$BIN TIDE_BUILD=$SRC/$BUILD TIDE_FLAVOR=$FLAVOR
LOGDIR=$(mktemp -d /tmp/tide-tests.XXXXXX)
passed=0 failed=0 skipped=0 failures=()

wanted() { # wanted NAME: true when no names were given or NAME is one of them
    [ ${#names[@]} -eq 0 ] && return 0
    local n; for n in "${names[@]}"; do [ "$n" = "$1" ] && return 0; done; return 1
}

if [ "$MODE" != integration ]; then
    for t in "$BUILD"/tests/*_test; do
        [ -x "$t" ] || continue
        name=$(basename "$t"); wanted "$name" || continue
        runner=()
        [ "$FLAVOR" = valgrind ] && runner=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite)
        timeout -k 5 600 "${runner[@]}" "$t" > "$LOGDIR/$name.log" 2>&1
        rc=$?
        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOGDIR/$name.log" | tail -1)
        p=$(echo "$line" | awk '{print $1}'); f=$(echo "$line" | awk '{print $3}'); s=$(echo "$line" | awk '{print $5}')
        p=${p:-0}; f=${f:-0}; s=${s:-0}
        if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; fi  # crashed, leaked or timed out
        passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
        if [ "$f" != 0 ]; then
            failures+=("$name"); echo "FAIL unit $name (rc $rc):"; grep -vE '^ok ' "$LOGDIR/$name.log" | tail -40
        else
            echo "ok   unit $name ($p tests)"
        fi
    done
fi

if [ "$MODE" != unit ]; then
    for t in tests/integration/*.sh tests/integration/*.py; do
        [ -f "$t" ] || continue
        name=$(basename "$t"); name=${name%.*}
        # Helpers sourced or imported by the tests are not tests themselves.
        case "$name" in lib | _*) continue ;; esac
        wanted "$name" || continue
        limit=$(sed -n 's/^# timeout: *\([0-9]*\).*/\1/p' "$t" | head -1); limit=${limit:-180}
        case "$t" in *.py) cmd=(/usr/bin/python3 "$t") ;; *) cmd=(bash "$t") ;; esac
        start=$(date +%s)
        timeout -k 10 "$limit" "${cmd[@]}" > "$LOGDIR/$name.log" 2>&1
        rc=$?
        secs=$(( $(date +%s) - start ))
        if [ $rc -eq 0 ]; then passed=$((passed + 1)); echo "ok   integration $name (${secs}s)"
        elif [ $rc -eq 77 ]; then skipped=$((skipped + 1)); echo "skip integration $name: $(tail -1 "$LOGDIR/$name.log")"
        else
            failed=$((failed + 1)); failures+=("$name")
            [ $rc -eq 124 ] && echo "FAIL integration $name: timed out after ${limit}s" || echo "FAIL integration $name (rc $rc, ${secs}s):"
            # the test's own verdict first (the tail is mostly the daemons' logs it dumps)
            grep -m 3 -B 3 -E '^(FAIL|Traceback|AssertionError|timed out after)' "$LOGDIR/$name.log" | sed 's/^/> /'
            tail -40 "$LOGDIR/$name.log"
        fi
    done
fi

[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]} (logs in $LOGDIR)" || rm -rf "$LOGDIR"
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
