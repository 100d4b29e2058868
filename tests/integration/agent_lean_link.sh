#!/usr/bin/env bash
# agent_lean_link.sh: tide-agent's resident-memory budget (< 10 MB with 500 cgroups) depends
# on what it maps at start: it must not link libcurl (loaded with dlopen by the first warm-up,
# agent/actions/curl_lazy.c) nor what libcurl drags in (libssl, gnutls). libcrypto is linked on
# purpose (the handshake's HMAC, shared/hmac.c). Fails when a build or toolchain change (e.g.
# --no-as-needed) brings libcurl back as DT_NEEDED, and checks that a running agent has none of
# them mapped, before and after a warm-up (which runs in a helper process), and that the
# helper is gone afterwards.
# timeout: 30
source "$(dirname "$0")/lib.sh"

command -v readelf >/dev/null || skip "readelf missing"
needed=$(readelf -d "$TIDE_BIN/tide-agent" | awk '/NEEDED/{print $NF}')
echo "tide-agent DT_NEEDED: $(echo $needed | tr -d '[]')"
for lib in libcurl libssl libgnutls; do
    echo "$needed" | grep >/dev/null "\[$lib" && fail "tide-agent links $lib (DT_NEEDED)"
done

# a running agent connected to a control plane maps neither, also after a warm-up: the
# warm-up runs in a helper process that loads libcurl there (agent/actions/warmup.c)
printf 'lean-link-token-0123456789abcdef\n' > "$W/token"; chmod 600 "$W/token"
P=$(port)
CTL=("$TIDE_BIN/tidectl" --socket "$W/cp.sock")
spawn cp "$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:$P --socket "$W/cp.sock" \
    --token-file "$W/token" --data-dir "$W/data" --http 127.0.0.1:0
wait_until 20 test -S "$W/cp.sock"
spawn agent "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node lean --token-file "$W/token" \
    --interval 1s --cgroup-kubernetes false --cgroup-systemd false
AG=$SPAWNED
wait_until 20 grep -q "connected to" "$W/agent.log" || fail "agent did not connect"
mapped() { grep -E "/(libcurl|libssl|libgnutls)[.-]" "/proc/$AG/maps" | awk '{print $NF}' | sort -u; }
[ -z "$(mapped)" ] || fail "the running agent mapped $(mapped | tr '\n' ' ') before any warm-up"
HP=$(port)
spawn http /usr/bin/python3 -m http.server --bind 127.0.0.1 "$HP" --directory "$W"
wait_until 10 /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $HP), 1)"
out=$("${CTL[@]}" --json node-action lean warmup - --endpoint "127.0.0.1:$HP" \
      --args '{"path": "/token", "rate": 20, "duration_ms": 600}' 2>&1) || fail "warm-up failed: $out"
echo "warm-up: $out"
req=$(echo "$out" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); r=d.get("result", d); print(r["requests"], r["errors"])') \
    || fail "no warm-up result in: $out"
read -r n e <<< "$req"
[ "$n" -gt 0 ] && [ "$e" = 0 ] || fail "warm-up sent $n requests with $e errors"
[ -z "$(mapped)" ] || fail "the agent mapped $(mapped | tr '\n' ' ') after a warm-up"
[ -z "$(pgrep -P "$AG")" ] || fail "warm-up helper process left behind: $(pgrep -P "$AG")"
grep -q "ERROR" "$W/agent.log" && fail "agent logged errors"
echo "tide-agent maps no libcurl, libssl or gnutls, before and after a warm-up ($n requests)"
