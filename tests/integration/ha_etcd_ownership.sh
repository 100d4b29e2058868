#!/usr/bin/env bash
# ha_etcd_ownership.sh: three control planes share 60 workloads through a real 3-member etcd
# cluster: a spec applied on one is run by its rendezvous owner, every control plane lists it
# and names the owner; a clean leave and a join each move at most 1.5 x W/N workloads (the
# number is reported); kill -9 of a member: the others own all of its workloads once its
# lease expires; SIGSTOP of a member past its lease: the others take over, and after SIGCONT
# it says it cannot prove its lease, does not act for the workloads it had, and rejoins with
# new fencing tokens while every workload has exactly one owner acting for it.
# timeout: 180
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_etcd.sh"

etcd_cluster 3
for i in 1 2 3; do ha_cp $i; done
W_N=60
for n in $(seq 1 $W_N); do wl_spec "w$n" > "$W/w$n.yaml"; done
for n in $(seq 1 $W_N); do ctl $((n % 3 + 1)) apply -f "$W/w$n.yaml" > /dev/null; done

# every control plane has every spec; each workload has one owner; the owners act
all_owned() { # I MEMBERS: cp I sees every workload owned by one of MEMBERS live members
    cl_is "$1" "c['workloads']==$W_N and c['unowned']==0 and len(c['members'])==$2 and sum(m['owns'] for m in c['members'])==$W_N"
}
for i in 1 2 3; do wait_until 30 all_owned $i 3; done
for i in 1 2 3; do wait_until 10 wls_is $i "len(w)==$W_N"; done
# one acting owner per workload, named the same by everyone
one_actor() {
    local a b c
    a=$(wls 1 "sorted(x['name'] for x in w if x['acting_here'])")
    b=$(wls 2 "sorted(x['name'] for x in w if x['acting_here'])")
    c=$(wls 3 "sorted(x['name'] for x in w if x['acting_here'])")
    /usr/bin/python3 -c "import sys; s=[eval(x) for x in sys.argv[1:]]
assert sum(len(x) for x in s)==$W_N and len(set().union(*s))==$W_N, s" "$a" "$b" "$c"
}
wait_until 20 one_actor
wls_is 2 "all(x['owner'] is not None for x in w)" || fail "a workload without an owner on cp2"
owner1=$(wls 1 "[x['owner']['member'] for x in w if x['name']=='w1'][0]")
other=$(( ${owner1#cp} % 3 + 1 ))
wls_is $other "[x for x in w if x['name']=='w1'][0]['acting_here'] is False" \
    || fail "cp$other acts for w1, owned by $owner1"
ctl "${owner1#cp}" events w1 | grep >/dev/null "ownership: owned here with fencing token" \
    || fail "no ownership event for w1 on $owner1"
# only the owner builds a workload's controller (planner, models): elsewhere it is dormant
built() { wls_is "$1" "[x for x in w if x['name']=='$2'][0]['dormant'] is False"; }
# every workload owned by another member is dormant on cp I, and w1 is built where it is owned
others_dormant() { wls_is "$1" "all(x['dormant'] for x in w if x['owner'] and not x['owner']['self'])"; }
wait_until 10 built "${owner1#cp}" w1 || fail "w1 not built on its owner $owner1"
wait_until 10 others_dormant $other || fail "cp$other: a workload owned elsewhere is not dormant"
echo "ok: $W_N workloads over 3 control planes, one acting owner each (dormant elsewhere)"

# a clean leave (SIGTERM: the lease is revoked) and a join: each moves <= 1.5 W/N
kill -TERM "${CPID[3]}"; wait "${CPID[3]}" 2>/dev/null || true
wait_until 15 all_owned 1 2
moved=$(cl 1 "c['last_rebalance']['moved'] if c['last_rebalance']['members_after']==2 else -1")
[ "$moved" -ge 0 ] && [ "$moved" -le $((W_N * 3 / 2 / 3)) ] || fail "leave moved $moved of $W_N"
ha_cp 3
for i in 1 2 3; do wait_until 30 all_owned $i 3; done
moved=$(cl 1 "c['last_rebalance']['moved'] if c['last_rebalance']['members_after']==3 else -1")
[ "$moved" -ge 0 ] && [ "$moved" -le $((W_N * 3 / 2 / 3)) ] || fail "join moved $moved of $W_N"
echo "ok: leave and join moved at most 1.5 W/N ($moved on the join)"

# kill -9 the owner of w1: the others own everything within the TTL (+ the watch)
owner=$(wls 1 "[x['owner']['member'] for x in w if x['name']=='w1'][0]"); k=${owner#cp}
a=$(( k % 3 + 1 )); b=$(( a % 3 + 1 ))
kill -9 "${CPID[$k]}"
wait_until 20 all_owned $a 2
wait_until 10 wls_is $a "sum(1 for x in w if x['acting_here'])+0 >= 0"
new=$(wls $a "[x['owner']['member'] for x in w if x['name']=='w1'][0]")
[ "$new" != "$owner" ] || fail "w1 still owned by the killed $owner"
# the event is written at the new owner's next sync of w1: awaited
took_over() { ctl "${new#cp}" events w1 | grep >/dev/null "ownership: owned here"; }
wait_until 20 took_over || fail "no take-over event on $new"
wait_until 10 built "${new#cp}" w1 || fail "w1 not built on its new owner $new"
echo "ok: kill -9 of $owner: w1 taken over (and built) by $new"
ha_cp $k
for i in 1 2 3; do wait_until 30 all_owned $i 3; done

# SIGSTOP the owner of w2 past its lease: the others take over; SIGCONT: it steps down
owner=$(wls 1 "[x['owner']['member'] for x in w if x['name']=='w2'][0]"); k=${owner#cp}
a=$(( k % 3 + 1 ))
fence_before=$(wls $k "[x['fence'] for x in w if x['name']=='w2'][0]")
kill -STOP "${CPID[$k]}"
wait_until 20 all_owned $a 2
kill -CONT "${CPID[$k]}"
wait_until 10 grep -q "cp$k: not acting for any workload: the lease cannot be proven" "$W/cp$k.log"
wait_until 10 grep -q "is gone in etcd (expired while this control plane could not renew it)" "$W/cp$k.log"
stepped_down() { ctl $k events w2 | grep >/dev/null "ownership: not acting from now on"; }
wait_until 20 stepped_down || fail "cp$k: no step-down event for w2"
for i in 1 2 3; do wait_until 30 all_owned $i 3; done
wait_until 20 one_actor
fence_after=$(wls 1 "[x['fence'] for x in w if x['name']=='w2' and x['acting_here']] or [0]")
for i in 2 3; do
    f=$(wls $i "[x['fence'] for x in w if x['name']=='w2' and x['acting_here']]")
    [ "$f" != "[]" ] && fence_after=$f
done
/usr/bin/python3 -c "import sys; a=eval(sys.argv[2]); a=a[0] if isinstance(a,list) else a; assert a > float(sys.argv[1]), (sys.argv)" \
    "$fence_before" "$fence_after" || fail "w2's fencing token did not grow: $fence_before -> $fence_after"
cl_is $k "c['stepdowns']>=1 and c['lease_losses']>=1" || fail "cp$k: step-down not counted"
# what cp k no longer owns was released (dormant)
wait_until 10 others_dormant $k || fail "cp$k: a workload owned elsewhere is not dormant"
echo "ok: SIGSTOP past the lease: cp$k stepped down, w2's token $fence_before -> $fence_after"
echo "ha_etcd_ownership: ok"
