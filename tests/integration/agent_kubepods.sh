#!/usr/bin/env bash
# agent_kubepods.sh: Kubernetes and systemd discovery end to end on real cgroups. The test
# makes the hierarchies the kubelet makes (cgroupfs driver: kubepods[/burstable]/pod<uid>/<id>;
# systemd driver: kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid>.slice/
# cri-containerd-<id>.scope) and a system.slice service, with the agent's default discovery
# (no extra roots): `tidectl top --json` shows pods and containers with qos, pod_uid and
# container_id, the service with its name, a busy container's CPU; a container started later
# shows up and a removed one stops being sampled, each within a couple of intervals.
# Skipped on a host that already has kubepods or system.slice cgroups (a real node).
# timeout: 90
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_controlplane.sh"

R=/sys/fs/cgroup
[ -w "$R/cpuacct" ] && [ -d "$R/memory" ] || skip "needs writable cgroup v1 cpuacct/memory"
for d in kubepods kubepods.slice system.slice; do
    [ -e "$R/cpuacct/$d" ] && skip "this host has a real $R/cpuacct/$d"
done
MEMSELF=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup); [ "$MEMSELF" = / ] && MEMSELF=
UID1=6f1b2c3d-4e5f-4a7b-8c9d-$(printf '%012d' $$)
UID2=0a0b0c0d-1111-2222-3333-$(printf '%012d' $$)
UID3=99aa88bb-7777-6666-5555-$(printf '%012d' $$)
CID1=c1$(printf '%062d' $$)
CID3=c3$(printf '%062d' $$)
SVC=tide-it-$$.service
P1=/kubepods/burstable/pod$UID1
P2=/kubepods/pod$UID2
S3=/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID3//-/_}.slice
for h in "$R/cpuacct" "$R/cpu" "$R/memory$MEMSELF"; do
    cg_make "$h/kubepods" "$h/kubepods/burstable" "$h$P1" "$h$P1/$CID1" "$h$P2" "$h$P2/c2" \
        "$h/kubepods.slice" "$h/kubepods.slice/kubepods-besteffort.slice" "$h$S3" \
        "$h$S3/cri-containerd-$CID3.scope" "$h/system.slice" "$h/system.slice/$SVC"
done
echo 10000 > "$R/cpu$P1/$CID1/cpu.cfs_quota_us"
spawn busy sh -c "echo \$\$ > $R/cpuacct$P1/$CID1/cgroup.procs; echo \$\$ > $R/cpu$P1/$CID1/cgroup.procs; exec sh -c 'while :; do :; done'"

cp_start
spawn agent "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node k8s-node --token-file "$W/token" \
    --interval 500ms --cgroup-prefix memory=self --log-level debug

# row CGROUP: the top --json row as "kind qos pod_uid container_id service cpu"
row() {
    "${CTL[@]}" top --json | /usr/bin/python3 -c "import json,sys
for r in json.load(sys.stdin)['cgroups']:
    if r['cgroup']=='$1':
        print(*[r.get(k,'-') for k in ('kind','qos','pod_uid','container_id','service')], r.get('cpu_usage_cores','-'))"
}
has_cpu() { local r; r=$(row "$1"); [ -n "$r" ] && [ "${r##* }" != - ]; }
wait_until 30 has_cpu "$P1/$CID1" || fail "no CPU for the burstable container"
check() { # check CGROUP EXPECTED-PREFIX
    local r; r=$(row "$1")
    case "$r" in "$2"*) ;; *) fail "row for $1: '$r', expected '$2 ...'" ;; esac
}
check "$P1/$CID1" "container burstable $UID1 $CID1 -"
check "$P1" "pod burstable $UID1 - -"
check "$P2" "pod guaranteed $UID2 - -"
wait_until 10 has_cpu "$P2/c2" || fail "no row for the guaranteed pod's container"
check "$P2/c2" "container guaranteed $UID2 c2 -"
check "$S3" "pod besteffort $UID3 - -"
check "$S3/cri-containerd-$CID3.scope" "container besteffort $UID3 $CID3 -"
check "/system.slice/$SVC" "service - - - $SVC"
[ -z "$(row /kubepods/burstable)" ] || fail "a QoS level cgroup was sampled"
[ -z "$(row /kubepods.slice)" ] || fail "kubepods.slice itself was sampled"
read -r cpu <<< "$(row "$P1/$CID1" | awk '{print $NF}')"
# measured, and never above its 0.1 quota (a busy machine may give it less: agent_cgroups.sh
# checks the figure itself against the kernel's count)
/usr/bin/python3 -c "import sys; sys.exit(0 if 0 < $cpu <= 0.13 else 1)" || fail "container at quota 0.1 reported $cpu"

# a container starts, another goes away
for h in "$R/cpuacct" "$R/cpu" "$R/memory$MEMSELF"; do cg_make "$h$P1/c-new"; done
wait_until 10 has_cpu "$P1/c-new" || fail "a new container was not picked up"
for h in "$R/memory$MEMSELF" "$R/cpu" "$R/cpuacct"; do rmdir "$h$P2/c2"; done
wait_until 10 grep -q "cgroup $P2/c2 is gone" "$W/agent.log" || fail "the removed container is still sampled"
grep -q "vanished" "$W/agent.log" && echo "(removal raced a read: handled)"
echo ok
