#!/usr/bin/env bash
# default-conf.sh PROGRAM PATH: prints the default configuration file of a Tide daemon, written
# from `PROGRAM --help` so that it always names every key with its current default and help line
# (all commented out: the file changes nothing until the admin edits it). PATH is where the file
# is installed, named in its header. The Debian packages ship the output as conffiles
# (/etc/tide/agent.conf, /etc/tide/controlplane.conf).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 PROGRAM PATH" >&2; exit 2; }
prog=$1 path=$2
name=$(basename "$prog")
help=$("$prog" --help) || { echo "$0: $prog --help failed" >&2; exit 1; }

cat <<HDR
# $path: configuration of $name; see $name(8).
# One \`key = value\` per line (values may be in double quotes); \`#\` starts a comment line.
# Every key is listed below with its help line and its default, commented out: remove the \`#\`
# and change the value to set one. Flags on the command line (--key value) win over this file.
# \`systemctl reload $name\` (SIGHUP) reads it again: log_level and the other reloadable keys
# take effect at once, the rest at the next restart (the log says which).
HDR
# Key lines of --help: two spaces, the key, its help, "(default VALUE)" at the end.
printf '%s\n' "$help" | awk '
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
        printf "\n# %s\n#%s = %s\n", text, key, def
        n++
    }
    END { if (n == 0) { print "default-conf.sh: no keys in --help" > "/dev/stderr"; exit 1 } }'
