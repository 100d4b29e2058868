#!/usr/bin/env bash
# walls.sh [ROOT]: the layer walls of the source tree, checked before anything is compiled.
# Every #include "..." in shared/, agent/ and controlplane/ is resolved to the folder that holds
# the header and must be one that the including folder may use (the table below: dependencies
# point down). The pure layers (models, scaling) may not include an event loop, threads, sockets,
# HTTP or logging: time and data are passed in. Prints every violation as FILE:LINE: reason and
# exits 1 when there is any, 0 otherwise.
set -euo pipefail
ROOT=${1:-.}
cd "$ROOT"

# folder -> the folders its files may include from ("shared" is shared/, "core" the side's top
# folder: controlplane/cp.h, agent/agent.h), or single headers of a folder ("api/ops.h": the ops
# command registry, and nothing else of api/). A folder may always include its own headers.
# query/ uses core for its Prometheus client module (query/prom_module.c registers with cp.h).
declare -A MAY=(
  [shared]=""
  [agent]="shared collect actions"
  [agent/collect]="shared core"
  [agent/actions]="shared core"
  [controlplane]="shared store query models spec scaling agents api exec workloads"
  [controlplane/store]="shared"
  [controlplane/models]="shared"
  [controlplane/query]="shared core store"
  [controlplane/spec]="shared query store"
  [controlplane/scaling]="shared models spec"
  [controlplane/offline]="shared scaling models spec"
  [controlplane/agents]="shared core store api/ops.h"
  [controlplane/exec]="shared core agents api/ops.h store"
  [controlplane/workloads]="shared core store query models spec scaling agents api/ops.h exec"
  [controlplane/api]="shared core store query models spec scaling agents exec workloads"
  [controlplane/cli]="shared offline scaling models spec query store api"
)
# what the pure layers must not include (system and project headers)
PURE_RE='^(ev\.h|pthread\.h|threads\.h|sys/socket\.h|netinet/|arpa/|netdb\.h|curl/|microhttpd\.h|log\.h|notify\.h|daemon\.h|wire\.h|syslog\.h)'
declare -A PURE=([controlplane/models]=1 [controlplane/scaling]=1)

bad=0
violation() { echo "$1: $2"; bad=1; }

while IFS= read -r f; do
    dir=$(dirname "$f")
    side=${dir%%/*}
    [ -n "${MAY[$dir]+x}" ] || { violation "$f" "folder '$dir' has no place in the layer table (scripts/walls.sh)"; continue; }
    allowed=" ${MAY[$dir]} "
    while IFS=: read -r line kind hdr; do
        if [ "$kind" = sys ]; then
            if [ -n "${PURE[$dir]+x}" ] && [[ $hdr =~ $PURE_RE ]]; then
                violation "$f:$line" "<$hdr> in ${dir#*/}/, a pure layer (no event loop, threads, sockets or logging)"
            fi
            continue
        fi
        if [ -n "${PURE[$dir]+x}" ] && [[ $hdr =~ $PURE_RE ]]; then
            violation "$f:$line" "\"$hdr\" in ${dir#*/}/, a pure layer (no event loop, threads, sockets or logging)"
            continue
        fi
        # resolve: the including folder, then the side's top folder, then shared/
        if [ -e "$dir/$hdr" ]; then
            continue
        elif [ "$side" != shared ] && [ -e "$side/$hdr" ]; then
            tdir=$(dirname "$side/$hdr")
        elif [ -e "shared/$hdr" ]; then
            tdir=shared
        else
            violation "$f:$line" "\"$hdr\" is not in $dir/, $side/ or shared/"
            continue
        fi
        [ "$tdir" = "$dir" ] && continue
        if [ "$tdir" = shared ]; then t=shared
        elif [ "$tdir" = "$side" ]; then t=core
        else t=${tdir#"$side"/}; fi
        if [ "$side" = shared ] && [ "$t" != shared ]; then
            violation "$f:$line" "shared/ includes \"$hdr\" of $tdir/: shared/ depends on nothing of the daemons"
        elif [[ $allowed != *" $t "* && $allowed != *" $hdr "* ]]; then
            violation "$f:$line" "$dir/ may not include \"$hdr\" ($tdir/): allowed are${MAY[$dir]:+ ${MAY[$dir]}}"
        fi
    done < <(awk '/^[ \t]*#[ \t]*include[ \t]*"/ { match($0, /"[^"]+"/); print FNR ":proj:" substr($0, RSTART + 1, RLENGTH - 2) }
                  /^[ \t]*#[ \t]*include[ \t]*</ { match($0, /<[^>]+>/); print FNR ":sys:" substr($0, RSTART + 1, RLENGTH - 2) }' "$f")
done < <(find shared agent controlplane -name '*.[ch]' | sort)

[ "$bad" = 0 ] || { echo "walls: layer violations above (the table is in scripts/walls.sh)"; exit 1; }
