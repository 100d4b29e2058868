/* observe_test.c: how the reactive provider counts the replicas an executor runs. */
#include "workloads/observe.h"
#include "test.h"

TEST(observe_replica_pod_states) {
    const int64_t now = 1000000000000LL, sync = 15;
    /* online for long: a ready pod; since unknown: trusted */
    T_EQ_INT(observe_replica_pod("Online", now - 3600 * 1000, now, sync, 0), OBSERVE_POD_READY);
    T_EQ_INT(observe_replica_pod("Online", -1, now, sync, 0), OBSERVE_POD_READY);
    /* online for less than two sync periods: its sample may cover its start or its standby */
    T_EQ_INT(observe_replica_pod("Online", now - 29 * 1000, now, sync, 0), OBSERVE_POD_UNREADY);
    T_EQ_INT(observe_replica_pod("Online", now - 30 * 1000, now, sync, 0), OBSERVE_POD_READY);
    T_EQ_INT(observe_replica_pod("Online", now - 59 * 1000, now, 30, 0), OBSERVE_POD_UNREADY);
    /* a utilization averaged over a minute: not ready until a sync past one whole window */
    T_EQ_INT(observe_replica_pod("Online", now - 74 * 1000, now, sync, 60), OBSERVE_POD_UNREADY);
    T_EQ_INT(observe_replica_pod("Online", now - 75 * 1000, now, sync, 60), OBSERVE_POD_READY);
    T_EQ_INT(observe_replica_pod("Online", now - 29 * 1000, now, sync, 10), OBSERVE_POD_UNREADY);
    T_EQ_INT(observe_replica_pod("Online", now - 30 * 1000, now, sync, 10), OBSERVE_POD_READY);
    /* coming: not ready */
    T_EQ_INT(observe_replica_pod("Starting", now, now, sync, 0), OBSERVE_POD_UNREADY);
    T_EQ_INT(observe_replica_pod("Activating", now - 3600 * 1000, now, sync, 0),
             OBSERVE_POD_UNREADY);
    /* outside the scaled set: neither (a standby replica's 0% series held scale-ups back) */
    T_EQ_INT(observe_replica_pod("Standby", now - 3600 * 1000, now, sync, 0), OBSERVE_POD_LEFT_OUT);
    T_EQ_INT(observe_replica_pod("Cutoff", now, now, sync, 0), OBSERVE_POD_LEFT_OUT);
    T_EQ_INT(observe_replica_pod("Gone", now, now, sync, 0), OBSERVE_POD_LEFT_OUT);
    T_EQ_INT(observe_replica_pod("Lost", now, now, sync, 0), OBSERVE_POD_LEFT_OUT);
}
