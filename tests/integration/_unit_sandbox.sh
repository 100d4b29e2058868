#!/usr/bin/env bash
# _unit_sandbox.sh UNIT CMD [ARGS...]: execs CMD (same pid) under an emulation of UNIT's sandbox,
# for machines where systemd is not PID 1 and cannot start the unit itself. Read from UNIT:
#   ProtectProc=invisible|noaccess|ptraceable  a fresh /proc mounted with that hidepid= value
#   ProtectKernelTunables=yes                  /proc/sys and the sysfs mount read-only (the cgroup
#                                              mounts below /sys stay writable, as systemd keeps
#                                              them with ReadWritePaths=/sys/fs/cgroup)
#   CapabilityBoundingSet=CAP_...              the bounding set (a root process keeps only these)
#   NoNewPrivileges=yes                        no_new_privs
# in a private mount namespace (unshare -m), so nothing outside sees the mounts. Not emulated:
# ProtectSystem=, PrivateTmp=, PrivateDevices=, the system call filter and the rest. Used by
# tests/integration/deb_packages.sh on the installed tide-agent.service; also to run any agent
# test under the unit's sandbox: a directory with this wrapper as tide-agent, e.g.
#   printf '#!/bin/sh\nexec %s systemd/tide-agent.service %s "$@"\n' "$PWD/tests/integration/_unit_sandbox.sh" "$PWD/bin/tide-agent" > /tmp/sb/tide-agent
# (plus links to tide-controlplane and tidectl), then TIDE_BIN=/tmp/sb bash tests/integration/node_actions.sh
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 UNIT CMD [ARGS...]" >&2; exit 2; }
unit=$1; shift
val() { sed -n "s/^$1=//p" "$unit" | tail -1; }
proc=$(val ProtectProc) tunables=$(val ProtectKernelTunables) caps=$(val CapabilityBoundingSet)
nnp=$(val NoNewPrivileges)
setup=""
case "$proc" in
invisible | noaccess | ptraceable) setup+="mount -t proc -o hidepid=$proc proc /proc;" ;;
"" | default) ;;
*) echo "$0: ProtectProc=$proc not emulated" >&2; exit 2 ;;
esac
if [ "$tunables" = yes ]; then
    setup+="mount --bind /proc/sys /proc/sys; mount -o remount,bind,ro /proc/sys;"
    setup+="mount -o remount,bind,ro /sys;"
fi
priv=()
if grep -q '^CapabilityBoundingSet=' "$unit"; then
    bset="-all"
    for c in $caps; do
        c=${c#CAP_}; bset+=",+${c,,}"
    done
    priv+=(--bounding-set="$bset" --inh-caps=-all)
fi
[ "$nnp" = yes ] && priv+=(--no-new-privs)
# shellcheck disable=SC2016
exec unshare -m --propagation private -- /bin/bash -c 'set -e; '"$setup"'
exec setpriv "$@"' _unit_sandbox "${priv[@]}" -- "$@"
