#!/usr/bin/env bash
# walls.sh [ROOT]: the layer walls of the source tree, checked before anything is compiled.
# Every #include "..." in shared/, agent/ and controlplane/ is resolved to the folder that holds
# the header and must be one that the including folder may use (the table below: dependencies
# point down). The pure layers (models, scaling) may not include an event loop, threads, sockets,
# HTTP or logging: time and data are passed in. Prints every violation as FILE:LINE: reason and
# exits 1 when there is any, 0 otherwise. One awk pass: it runs before every build.
set -euo pipefail
cd "${1:-.}"

# folder: the folders its files may include from ("shared" is shared/, "core" the side's top
# folder: controlplane/cp.h, agent/agent.h), or single headers of a folder ("api/ops.h": the ops
# command registry, and nothing else of api/). A folder may always include its own headers.
# query/ uses core for its Prometheus client module (query/prom_module.c registers with cp.h).
# alerts/ (alert rules, their evaluation threads and Alertmanager delivery) reads metrics as the
# workloads do (workloads/observe.h) and renders label values with api/metrics.h's escaping;
# it raises the built-in alert of a control plane that cannot prove its etcd lease (cluster.h).
# cluster/ (etcd client, membership, ownership, the spec mirror) sits below workloads and api:
# they ask it who may act and show its state; it knows nothing of them (specs reach the
# workloads through a sink they register), so it uses only core and shared.
# agent/collect's haproxy collector reads HAProxy's stats socket with the runtime API client and
# `show stat` parser of actions/haproxy.h (one client for both, not a second copy).
TABLE='
shared:
agent: shared collect actions
agent/collect: shared core actions/haproxy.h
agent/actions: shared core
controlplane: shared store query models spec scaling agents api exec workloads alerts cluster
controlplane/store: shared
controlplane/models: shared
controlplane/query: shared core store
controlplane/spec: shared query store models
controlplane/scaling: shared models spec
controlplane/offline: shared scaling models spec
controlplane/agents: shared core store api/ops.h
controlplane/exec: shared core agents api/ops.h store spec
controlplane/workloads: shared core store query models spec scaling agents api/ops.h exec cluster
controlplane/alerts: shared core store query models spec workloads api/ops.h api/metrics.h cluster
controlplane/api: shared core store query models spec scaling agents exec workloads alerts cluster
controlplane/cluster: shared core
controlplane/cli: shared offline scaling models spec query store api
'
# the pure layers, and what they must not include (system and project headers)
PURE='controlplane/models controlplane/scaling'
PURE_RE='^(ev\.h|pthread\.h|threads\.h|sys/socket\.h|netinet/|arpa/|netdb\.h|curl/|microhttpd\.h|log\.h|notify\.h|daemon\.h|wire\.h|syslog\.h)'

files=$(find shared agent controlplane -name '*.[ch]' | sort)
headers=$(find shared agent controlplane -name '*.h')
# shellcheck disable=SC2086
awk -v table="$TABLE" -v pure="$PURE" -v pure_re="$PURE_RE" -v headers="$headers" '
function dirof(p,   i) { i = match(p, /\/[^\/]*$/); return i ? substr(p, 1, i - 1) : "." }
function bad(where, msg) { print where ": " msg; nbad++ }
BEGIN {
    n = split(table, rows, "\n")
    for (i = 1; i <= n; i++) {
        if (rows[i] == "") continue
        k = substr(rows[i], 1, index(rows[i], ":") - 1)
        may[k] = " " substr(rows[i], index(rows[i], ":") + 1) " "
        known[k] = 1
    }
    n = split(pure, p, " "); for (i = 1; i <= n; i++) ispure[p[i]] = 1
    n = split(headers, h, "\n"); for (i = 1; i <= n; i++) exists[h[i]] = 1
}
FNR == 1 {
    dir = dirof(FILENAME); side = FILENAME; sub(/\/.*/, "", side)
    if (!(dir in known)) bad(FILENAME, "folder " dir "/ has no place in the layer table (scripts/walls.sh)")
}
!(dir in known) { next }
/^[ \t]*#[ \t]*include[ \t]*</ {
    match($0, /<[^>]+>/); hdr = substr($0, RSTART + 1, RLENGTH - 2)
    if ((dir in ispure) && hdr ~ pure_re)
        bad(FILENAME ":" FNR, "<" hdr "> in " substr(dir, index(dir, "/") + 1) "/, a pure layer (no event loop, threads, sockets or logging)")
    next
}
/^[ \t]*#[ \t]*include[ \t]*"/ {
    match($0, /"[^"]+"/); hdr = substr($0, RSTART + 1, RLENGTH - 2)
    if ((dir in ispure) && hdr ~ pure_re) {
        bad(FILENAME ":" FNR, "\"" hdr "\" in " substr(dir, index(dir, "/") + 1) "/, a pure layer (no event loop, threads, sockets or logging)")
        next
    }
    if ((dir "/" hdr) in exists) next
    if (side != "shared" && ((side "/" hdr) in exists)) tdir = dirof(side "/" hdr)
    else if (("shared/" hdr) in exists) tdir = "shared"
    else {
        if (side == "shared") bad(FILENAME ":" FNR, "shared/ includes \"" hdr "\", which is not in shared/: shared/ depends on nothing of the daemons")
        else bad(FILENAME ":" FNR, "\"" hdr "\" is not in " dir "/, " side "/ or shared/")
        next
    }
    if (tdir == dir) next
    t = (tdir == "shared") ? "shared" : (tdir == side) ? "core" : substr(tdir, length(side) + 2)
    if (index(may[dir], " " t " ") == 0 && index(may[dir], " " hdr " ") == 0)
        bad(FILENAME ":" FNR, dir "/ may not include \"" hdr "\" (" tdir "/): allowed are" may[dir])
}
END {
    if (nbad) { print "walls: layer violations above (the table is in scripts/walls.sh)"; exit 1 }
}' $files
