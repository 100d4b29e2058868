#!/usr/bin/env bash
# man-keys.sh PROGRAM MANPAGE [--check|--update]: the CONFIGURATION KEYS list of a daemon's man
# page, written from `PROGRAM --help` (every key, its help line and its default, in --help's
# order) so that the page cannot drift from the program. The list sits in MANPAGE between the
# lines `.\" keys: begin` and `.\" keys: end`.
#   (no option)  prints the list
#   --check      exit 1 with a diff when MANPAGE's list differs (tests/integration/man_pages.sh)
#   --update     rewrites MANPAGE's list (run it after adding or changing a key)
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 PROGRAM MANPAGE [--check|--update]" >&2; exit 2; }
prog=$1 page=$2 mode=${3:-print}
help=$("$prog" --help) || { echo "$0: $prog --help failed" >&2; exit 1; }

# roff-escapes one string for use inside a macro argument or text line
block=$(printf '%s\n' "$help" | awk '
    function esc(s) { gsub(/\\/, "\\e", s); gsub(/-/, "\\-", s); gsub(/"/, "\\(dq", s); return s }
    /^  [a-z][a-z0-9_]* / {
        line = $0; sub(/^  /, "", line)
        key = line; sub(/ .*/, "", key)
        rest = line; sub(/^[a-z0-9_]+ +/, "", rest)
        i = 0
        for (j = 1; j <= length(rest); j++) if (substr(rest, j, 9) == "(default ") i = j
        if (i == 0 || substr(rest, length(rest)) != ")") next
        text = substr(rest, 1, i - 2)
        def = substr(rest, i + 9, length(rest) - i - 9)
        if (def == "") def = "\"\""
        printf ".TP\n.BR %s \" (default \" \"%s\" )\n", esc(key), esc(def)
        t = esc(text); if (t ~ /^[.\047]/) t = "\\&" t
        print t
        n++
    }
    END { if (n == 0) { print "man-keys.sh: no keys in --help" > "/dev/stderr"; exit 1 } }')

case "$mode" in
print) printf '%s\n' "$block" ;;
--check | --update)
    grep -q '^\.\\" keys: begin' "$page" && grep -q '^\.\\" keys: end' "$page" || {
        echo "$page: no '.\\\" keys: begin' / '.\\\" keys: end' lines" >&2
        exit 1
    }
    current=$(sed -n '/^\.\\" keys: begin/,/^\.\\" keys: end/p' "$page" | sed '1d;$d')
    if [ "$mode" = --check ]; then
        [ "$current" = "$block" ] && exit 0
        echo "$page: the configuration keys differ from $(basename "$prog") --help" \
            "(run scripts/man-keys.sh $prog $page --update):" >&2
        diff <(printf '%s\n' "$current") <(printf '%s\n' "$block") >&2 || true
        exit 1
    fi
    tmp=$(mktemp)
    awk -v blockfile=<(printf '%s\n' "$block") '
        /^\.\\" keys: begin/ { print; while ((getline l < blockfile) > 0) print l; skip = 1; next }
        /^\.\\" keys: end/ { skip = 0 }
        !skip' "$page" > "$tmp"
    cat "$tmp" > "$page" && rm -f "$tmp"
    ;;
*) echo "$0: unknown option $mode" >&2; exit 2 ;;
esac
