#!/usr/bin/env bash
# deb_packages.sh: the Debian packages of `make deb` (build/deb, or $TIDE_DEB_DIR) installed with
# dpkg on this machine, checked, run and removed, leaving the machine as it was:
#   - dpkg -i tide-agent tide-controlplane tidectl: programs in /usr/bin, units in
#     /usr/lib/systemd/system (enabled through multi-user.target.wants), /etc/tide/agent.conf and
#     controlplane.conf registered as conffiles, the system user tide (sysusers), /etc/tide
#     0750 root:tide (tmpfiles), a generated token 0640 root:tide, man pages man(1) finds;
#   - running the postinst again keeps the token and the user;
#   - systemd-analyze verify on the installed units prints nothing (security scores printed);
#   - the daemons started: with systemd as PID 1 by systemctl; otherwise (a container) as their
#     units' ExecStart= lines with the unit's user and directories, the agent inside an emulation
#     of its unit's sandbox (_unit_sandbox.sh: ProtectProc=, ProtectKernelTunables=, its
#     capability bounding set, NoNewPrivileges=), on free loopback ports: the agent connects,
#     tidectl reaches the control plane on the default socket, the agent samples a cgroup made
#     here, and standby freezes it and activate thaws it (through tidectl node-action);
#   - apt-get remove keeps the conffiles; the purge (dpkg --purge) removes them, the token, the store
#     (/var/lib/tide), the spool (/var/lib/tide-agent) and the enable links. The user tide stays
#     after a purge (Debian practice); the test removes it when it made it.
# Building the packages takes minutes, so this test does not: it runs when build/deb holds
# packages newer than the sources (`make deb-check` builds them and runs it; CI runs that after
# `make check`) and skips otherwise. Root only; skipped under sanitizers (the packages are a
# release build).
# timeout: 120
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (dpkg -i)"
[ "${TIDE_FLAVOR:-plain}" = plain ] || skip "the packages are a release build: nothing to sanitize"
command -v dpkg > /dev/null || skip "not a Debian system"
DEBS=${TIDE_DEB_DIR:-$TIDE_SRC/build/deb}
changes=$(ls "$DEBS"/tide_*.changes 2>/dev/null | head -1 || true)
[ -n "$changes" ] || skip "no packages in $DEBS: run make deb (or make deb-check)"
newer=$(cd "$TIDE_SRC" && find agent controlplane shared systemd man debian scripts completion Makefile \
    -type f -newer "$changes" -print -quit)
[ -z "$newer" ] || skip "the packages in $DEBS are older than $newer: run make deb (or make deb-check)"
PKGS=(tide-agent tide-controlplane tidectl)
for p in "${PKGS[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ -z "$st" ] || [ "$st" = not-installed ] || skip "$p is already on this machine ($st): not touching it"
done
for d in /etc/tide /var/lib/tide /var/lib/tide-agent /run/tide; do
    [ ! -e "$d" ] || skip "$d exists already (another installation): not touching it"
done
user_existed=0
getent passwd tide > /dev/null && user_existed=1

# dpkg and apt-get under the dpkg lock another session may hold: wait for it (up to 60 s)
export DEBIAN_FRONTEND=noninteractive
dpkg_locked() { grep -q -E 'lock|dpkg frontend' "$W/dpkg.err"; }
with_dpkg() {
    local deadline=$(($(date +%s) + 60))
    while ! "$@" > "$W/dpkg.out" 2> "$W/dpkg.err"; do
        dpkg_locked && [ "$(date +%s)" -lt "$deadline" ] || { cat "$W/dpkg.out" "$W/dpkg.err" >&2; return 1; }
        sleep 1
    done
}
restore() {
    local rc=$? p st
    # daemons first (the purge removes their directories), then the packages, user and dirs
    for p in "${_PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    for p in "${_PIDS[@]:-}"; do [ -n "$p" ] && timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || true; done
    if [ -d /run/systemd/system/tide-agent.service.d ]; then
        systemctl stop tide-agent tide-controlplane 2>/dev/null || true
        rm -rf /run/systemd/system/tide-controlplane.service.d /run/systemd/system/tide-agent.service.d
        systemctl daemon-reload 2>/dev/null || true
    fi
    for p in "${PKGS[@]}"; do
        st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        [ -z "$st" ] || [ "$st" = not-installed ] || with_dpkg dpkg --purge "$p" || true
    done
    [ $user_existed = 1 ] || ! getent passwd tide > /dev/null || userdel tide 2>/dev/null || true
    [ $user_existed = 1 ] || ! getent group tide > /dev/null || groupdel tide 2>/dev/null || true
    rm -rf /run/tide
    return $rc
}
trap 'restore; _cleanup' EXIT

debs=()
for p in "${PKGS[@]}"; do debs+=("$(ls "$DEBS/${p}_"*.deb)"); done
with_dpkg dpkg -i "${debs[@]}" || fail "dpkg -i failed"
for p in "${PKGS[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p")" = installed ] || fail "$p is not installed"
done

# ---- files, user, conffiles ----------------------------------------------------------------
for f in /usr/bin/tide-agent /usr/bin/tide-controlplane /usr/bin/tidectl \
    /usr/lib/systemd/system/tide-agent.service /usr/lib/systemd/system/tide-controlplane.service \
    /usr/lib/sysusers.d/tide.conf /usr/lib/tmpfiles.d/tide.conf \
    /usr/share/bash-completion/completions/tidectl /usr/share/doc/tide-agent/README.md; do
    [ -f "$f" ] || fail "not installed: $f"
done
[ ! -e /etc/systemd/system/tide-agent.service ] || fail "a unit in /etc/systemd/system (the admin's)"
for m in tidectl tide-agent tide-controlplane; do
    man -w "$m" > /dev/null 2>&1 || fail "man $m: no page"
done
dpkg-query -W -f='${Conffiles}\n' tide-agent | grep >/dev/null '^ /etc/tide/agent.conf ' || fail "agent.conf is not a conffile"
dpkg-query -W -f='${Conffiles}\n' tide-controlplane | grep >/dev/null '^ /etc/tide/controlplane.conf ' \
    || fail "controlplane.conf is not a conffile"
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd tide) || fail "no user tide after install"
[ "$uid" -lt 1000 ] || fail "tide is not a system user (uid $uid)"
case "$shell" in */nologin | /bin/false) ;; *) fail "tide's shell is $shell" ;; esac
[ "$(stat -c '%a %U %G' /etc/tide)" = "750 root tide" ] || fail "/etc/tide is $(stat -c '%a %U %G' /etc/tide)"
[ "$(stat -c '%a %U %G' /etc/tide/token)" = "640 root tide" ] || fail "token is $(stat -c '%a %U %G' /etc/tide/token)"
[ "$(wc -c < /etc/tide/token)" -ge 16 ] || fail "token shorter than 16 bytes"
for u in tide-agent tide-controlplane; do
    [ -L /etc/systemd/system/multi-user.target.wants/$u.service ] || fail "$u is not enabled"
done
echo "[${SECONDS}s] installed: $(dpkg-query -W -f='${Package} ${Version}, ' "${PKGS[@]}")user tide uid $uid"
# the postinst run again (as an upgrade or a dpkg-reconfigure runs it) keeps the token and the
# user (keeping edited conffiles is dpkg's part, given the Conffiles above)
token_sum=$(md5sum < /etc/tide/token)
/var/lib/dpkg/info/tide-controlplane.postinst configure 0.1.0 > "$W/postinst.log" 2>&1 \
    || fail "postinst configure again: $(cat "$W/postinst.log")"
[ "$(md5sum < /etc/tide/token)" = "$token_sum" ] || fail "postinst again changed the token"
[ "$(getent passwd tide | cut -d: -f3)" = "$uid" ] || fail "postinst again changed the user"

# ---- the installed units -------------------------------------------------------------------
out=$(systemd-analyze verify /usr/lib/systemd/system/tide-agent.service \
    /usr/lib/systemd/system/tide-controlplane.service 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify complained: $out"
for u in tide-agent tide-controlplane; do
    score=$(systemd-analyze security --offline=true /usr/lib/systemd/system/$u.service 2>/dev/null |
        sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
    echo "systemd-analyze security --offline=true $u: ${score:-?}"
done

# ---- run them --------------------------------------------------------------------------------
P=$(port); H=$(port); AH=$(port)
# a replica to sample, freeze and thaw: a sleeping process in /$T/r1 of every hierarchy
CG=/sys/fs/cgroup T=tide-deb-$$ hier=()
for h in cpuacct freezer pids unified; do [ -d "$CG/$h" ] && hier+=("$CG/$h"); done
MEMSELF=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup); [ "$MEMSELF" = / ] && MEMSELF=
[ -d "$CG/memory" ] && hier+=("$CG/memory$MEMSELF")
[ -f "$CG/cgroup.controllers" ] && hier=("$CG")   # a pure v2 host
for h in "${hier[@]}"; do cg_make "$h/$T" "$h/$T/r1"; done
spawn replica sh -c "$(for h in "${hier[@]}"; do printf 'echo $$ > %s/%s/r1/cgroup.procs; ' "$h" "$T"; done) exec sleep 600"
V2=${CG}; [ -d "$CG/unified" ] && V2=$CG/unified
AGENT_FLAGS=(--controlplane 127.0.0.1:$P --http-listen 127.0.0.1:$AH --node deb-test --cgroup-roots /$T)
if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
    echo "systemd is PID 1: systemctl start"
    mkdir -p /run/systemd/system/tide-controlplane.service.d /run/systemd/system/tide-agent.service.d
    printf '[Service]\nExecStart=\nExecStart=/usr/bin/tide-controlplane --config /etc/tide/controlplane.conf --listen 127.0.0.1:%s --http 127.0.0.1:%s\n' \
        "$P" "$H" > /run/systemd/system/tide-controlplane.service.d/test.conf
    printf '[Service]\nExecStart=\nExecStart=%s %s\n' "$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/tide-agent.service)" \
        "${AGENT_FLAGS[*]}" > /run/systemd/system/tide-agent.service.d/test.conf
    systemctl daemon-reload
    systemctl restart tide-controlplane tide-agent || fail "systemctl start: $(systemctl status tide-controlplane tide-agent 2>&1 | tail -20)"
    stop_daemons() {
        systemctl stop tide-agent tide-controlplane
        rm -rf /run/systemd/system/tide-controlplane.service.d /run/systemd/system/tide-agent.service.d
        systemctl daemon-reload
    }
else
    echo "systemd is not PID 1 here ($(cat /proc/1/comm)): the units' ExecStart= lines run by hand" \
        "with the unit's user and directories, the agent in an emulation of its unit's sandbox"
    cp_exec=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/tide-controlplane.service)
    ag_exec=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/tide-agent.service)
    # what RuntimeDirectory=, StateDirectory= and User= do
    install -d -o tide -g tide -m 0750 /run/tide /var/lib/tide
    install -d -m 0700 /var/lib/tide-agent
    # shellcheck disable=SC2086
    spawn cp setpriv --reuid=tide --regid=tide --init-groups -- $cp_exec \
        --listen 127.0.0.1:$P --http 127.0.0.1:$H
    CPID=$SPAWNED
    # shellcheck disable=SC2086
    spawn agent "$TIDE_SRC/tests/integration/_unit_sandbox.sh" /usr/lib/systemd/system/tide-agent.service \
        $ag_exec "${AGENT_FLAGS[@]}"
    APID=$SPAWNED
    stop_daemons() {
        kill -TERM "$APID" "$CPID" 2>/dev/null || true
        wait_until 20 sh -c "! kill -0 $APID 2>/dev/null && ! kill -0 $CPID 2>/dev/null"
    }
fi
wait_until 30 test -S /run/tide/controlplane.sock || fail "no ops socket /run/tide/controlplane.sock"
[ "$(stat -c '%a %U %G' /run/tide/controlplane.sock)" = "660 tide tide" ] \
    || fail "ops socket is $(stat -c '%a %U %G' /run/tide/controlplane.sock)"
wait_until 30 sh -c '/usr/bin/tidectl agents --json | grep >/dev/null "\"deb-test\""' \
    || fail "the agent did not connect: $(/usr/bin/tidectl agents 2>&1)"
/usr/bin/tidectl status > "$W/status.log" || fail "tidectl status: $(cat "$W/status.log")"
wait_until 20 curl -sf "http://127.0.0.1:$AH/healthz" || fail "agent /healthz"
curl -sf "http://127.0.0.1:$H/healthz" > /dev/null || fail "control plane /healthz"
wait_until 30 sh -c "/usr/bin/tidectl top --node deb-test --json | grep >/dev/null '/$T/r1'" \
    || fail "the agent does not sample /$T/r1: $(/usr/bin/tidectl top --node deb-test 2>&1 | tail -5)"
out=$(/usr/bin/tidectl node-action deb-test standby "/$T/r1" 2>&1) || fail "standby: $out"
grep -qx 'frozen 1' "$V2/$T/r1/cgroup.events" || fail "standby did not freeze /$T/r1: $out"
out=$(/usr/bin/tidectl node-action deb-test activate "/$T/r1" 2>&1) || fail "activate: $out"
grep -qx 'frozen 0' "$V2/$T/r1/cgroup.events" || fail "activate did not thaw /$T/r1: $out"
[ -n "$(ls -A /var/lib/tide)" ] || fail "the control plane wrote nothing to /var/lib/tide"
[ -d /var/lib/tide-agent/spool ] || fail "no spool in /var/lib/tide-agent"
stop_daemons
echo "[${SECONDS}s] ran: agent connected, tidectl status and both /healthz answered, /$T/r1 sampled, frozen, thawed"

# ---- remove, then purge ----------------------------------------------------------------------
with_dpkg apt-get remove -y -q -o DPkg::Lock::Timeout=60 "${PKGS[@]}" || fail "apt-get remove"
for p in "${PKGS[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    case "$p:$st" in tidectl:not-installed | tidectl: | tide-*:config-files) ;; *) fail "$p after remove: '$st'" ;; esac
done
[ ! -e /usr/bin/tide-agent ] && [ ! -e /usr/lib/systemd/system/tide-agent.service ] || fail "files left after remove"
[ -f /etc/tide/agent.conf ] && [ -f /etc/tide/controlplane.conf ] || fail "remove took the conffiles"
echo "[${SECONDS}s] removed (conffiles kept)"
# dpkg --purge is what apt-get purge runs for packages already removed; a second apt-get (20 s
# of reading package lists on this machine under load) would not test anything more
with_dpkg dpkg --purge "${PKGS[@]}" || fail "dpkg --purge"
for p in "${PKGS[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ -z "$st" ] || [ "$st" = not-installed ] || fail "$p after purge: '$st'"
done
for f in /etc/tide /var/lib/tide /var/lib/tide-agent /run/tide \
    /etc/systemd/system/multi-user.target.wants/tide-agent.service \
    /etc/systemd/system/multi-user.target.wants/tide-controlplane.service; do
    [ ! -e "$f" ] && [ ! -L "$f" ] || fail "left after purge: $f"
done
getent passwd tide > /dev/null || fail "purge removed the user tide (it should stay)"
echo "[${SECONDS}s] deb_packages: ok"
