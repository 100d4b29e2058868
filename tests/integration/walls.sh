#!/usr/bin/env bash
# walls.sh: the build refuses a dependency that points the wrong way. In a scratch copy of the
# sources, a forbidden include is planted per wall and the build must stop with a message naming
# the file and the rule; the unplanted copy passes:
#   - shared/ including a daemon header (also refused by the compiler: shared/ is built with
#     -Ishared alone);
#   - the agent including a control plane header (-Ishared -Iagent only);
#   - models/ and scaling/ (pure layers) including the event loop, threads or logging;
#   - offline/ including a daemon module; a lower layer including a higher one.
# timeout: 120
source "$(dirname "$0")/lib.sh"

S="$W/src"
mkdir -p "$S"
(cd "$TIDE_SRC" && cp -r Makefile scripts shared agent controlplane "$S/")
walls() { (cd "$S" && scripts/walls.sh) > "$W/walls.out" 2>&1; }
walls || fail "the clean copy is refused: $(cat "$W/walls.out")"
echo "ok: the clean tree passes"

# plant FILE LINE EXPECTED-REGEX: append LINE to FILE, the walls must refuse it naming FILE,
# then restore FILE.
plant() {
    local f=$1 line=$2 want=$3
    cp "$S/$f" "$W/orig"
    printf '%s\n' "$line" >> "$S/$f"
    if walls; then fail "$f with '$line' was not refused"; fi
    grep -q "^$f:[0-9]*: .*$want" "$W/walls.out" || fail "refusal of '$line' in $f does not say '$want': $(cat "$W/walls.out")"
    echo "ok: $(grep "^$f" "$W/walls.out" | head -1)"
    cp "$W/orig" "$S/$f"
}
plant shared/log.c '#include "agent.h"' 'shared/'
plant agent/uplink.c '#include "cp.h"' 'not in agent/'
plant controlplane/models/auto.c '#include <ev.h>' 'pure layer'
plant controlplane/models/auto.c '#include "log.h"' 'pure layer'
plant controlplane/scaling/planner.c '#include <pthread.h>' 'pure layer'
plant controlplane/scaling/planner.c '#include "store/tsdb.h"' 'may not include'
plant controlplane/offline/sim.c '#include "agents/agents.h"' 'may not include'
plant controlplane/store/tsdb.c '#include "query/query.h"' 'may not include'
plant agent/collect/collect.c '#include "actions/action.h"' 'may not include'
walls || fail "the restored copy is refused: $(cat "$W/walls.out")"

# the build runs the walls before compiling anything, and the compiler's include paths hold
# the side walls even without them
printf '#include "controlplane/cp.h"\n' >> "$S/agent/uplink.c"
out=$(cd "$S" && make -n NODEPS=1 build/obj/agent/uplink.o 2>&1) || true
(cd "$S" && make build/obj/agent/uplink.o > "$W/make.out" 2>&1) && fail "make built an agent object including a control plane header"
grep -q "walls: layer violations" "$W/make.out" || fail "make did not stop at the walls: $(tail -5 "$W/make.out")"
echo "ok: make stops at the walls before compiling"
cp "$TIDE_SRC/agent/uplink.c" "$S/agent/uplink.c"
printf '#include "agents/agents.h"\n' > "$S/shared/zz_wall_probe.c"
cc -std=c11 -fsyntax-only -Ishared "$S/shared/zz_wall_probe.c" > "$W/cc.out" 2>&1 \
    && fail "shared/ compiled an include of a control plane header"
grep -q "agents/agents.h" "$W/cc.out" || fail "unexpected compiler output: $(cat "$W/cc.out")"
echo "ok: shared/'s include path (-Ishared) cannot reach the daemons' headers"
