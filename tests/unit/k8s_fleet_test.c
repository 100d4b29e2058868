/* k8s_fleet_test.c: the pure rules of exec/k8s_fleet.h: a pod's Tide state from its label or
 * readiness, finding the pod of a replica id, the replicas to write so that exactly the pods
 * marked deleting go (a Deployment: the ReplicaSet already removes live - spec; a StatefulSet:
 * only an unbroken run of the highest ordinals, the pod in the way named), the ordinal picks
 * that skip replicas with an action under way, and the pod fields the executor reads (replica
 * annotation, since, QoS, IP, container port, ContainersReady). */
#include "test.h"
#include "exec/k8s_fleet.h"

#include <errno.h>
#include <string.h>

static k8s_pod pod(const char *name, const char *state, int ready, int ordinal, int terminating) {
    k8s_pod p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "%s", name);
    snprintf(p.state, sizeof p.state, "%s", state);
    p.ready = ready;
    p.ordinal = ordinal;
    p.terminating = terminating;
    p.gate = -1;
    return p;
}

TEST(k8s_fleet_states) {
    T_EQ_INT(k8s_tstate_parse("standby"), K8S_TS_STANDBY);
    T_EQ_INT(k8s_tstate_parse(""), K8S_TS_NONE);
    T_EQ_INT(k8s_tstate_parse("Standby"), K8S_TS_NONE); /* labels are exact */
    T_EQ_STR(k8s_tstate_name(K8S_TS_DELETING), "deleting");
    k8s_pod a = pod("a", "", 1, -1, 0), b = pod("b", "", 0, -1, 0),
            c = pod("c", "cutoff", 1, -1, 0);
    T_EQ_INT(k8s_pod_tstate(&a), K8S_TS_ONLINE); /* no label: by readiness */
    T_EQ_INT(k8s_pod_tstate(&b), K8S_TS_STARTING);
    T_EQ_INT(k8s_pod_tstate(&c), K8S_TS_CUTOFF);
}

TEST(k8s_fleet_find_by_replica) {
    k8s_pod pods[3] = {pod("web-x1", "online", 1, -1, 0), pod("web-x2", "online", 1, -1, 0),
                       pod("web-x3", "online", 1, -1, 1)};
    snprintf(pods[0].replica, sizeof pods[0].replica, "web-7");
    snprintf(pods[2].replica, sizeof pods[2].replica, "web-9");
    k8s_fleet f = {.kind = K8S_DEPLOYMENT, .pods = pods, .n = 3};
    T_ASSERT(k8s_fleet_find(&f, "web-7") == &pods[0]);
    T_ASSERT(k8s_fleet_find(&f, "web-x2") == &pods[1]); /* no annotation: its own name */
    T_ASSERT(k8s_fleet_find(&f, "web-9") == NULL);      /* terminating */
    T_EQ_STR(k8s_pod_replica(&pods[1]), "web-x2");
}

TEST(k8s_fleet_delete_target_deployment) {
    k8s_pod pods[4] = {pod("a", "online", 1, -1, 0), pod("b", "deleting", 0, -1, 0),
                       pod("c", "deleting", 0, -1, 0), pod("d", "online", 1, -1, 0)};
    k8s_fleet f = {.kind = K8S_DEPLOYMENT, .pods = pods, .n = 4};
    const k8s_pod *blk = (const k8s_pod *)1;
    T_EQ_INT(k8s_fleet_delete_target(&f, 4, &blk), 2); /* two marked: two fewer */
    T_ASSERT(blk == NULL);
    /* already lowered by one (the controller removes one marked pod by itself): one more */
    T_EQ_INT(k8s_fleet_delete_target(&f, 3, NULL), 2);
    /* lowered for both: nothing more (never twice for the same pods) */
    T_EQ_INT(k8s_fleet_delete_target(&f, 2, NULL), 2);
    /* a marked pod already terminating is not counted */
    pods[1].terminating = 1;
    T_EQ_INT(k8s_fleet_delete_target(&f, 3, NULL), 2);
    pods[2].state[0] = 0;
    pods[2].ready = 1;
    T_EQ_INT(k8s_fleet_delete_target(&f, 3, NULL), 3); /* nothing marked */
}

TEST(k8s_fleet_delete_target_statefulset) {
    k8s_pod pods[4] = {pod("db-0", "online", 1, 0, 0), pod("db-1", "online", 1, 1, 0),
                       pod("db-2", "deleting", 0, 2, 0), pod("db-3", "deleting", 0, 3, 0)};
    k8s_fleet f = {.kind = K8S_STATEFULSET, .pods = pods, .n = 4};
    const k8s_pod *blk;
    T_EQ_INT(k8s_fleet_delete_target(&f, 4, &blk), 2);
    T_ASSERT(blk == NULL);
    /* db-3 gone already (absent), db-2 marked: down to 2 */
    T_EQ_INT(k8s_fleet_delete_target(&f, 3, &blk), 2);
    /* db-3 not marked: db-2 cannot go, db-3 is in its way */
    snprintf(pods[3].state, sizeof pods[3].state, "standby");
    T_EQ_INT(k8s_fleet_delete_target(&f, 4, &blk), 4);
    T_ASSERT(blk == &pods[3]);
}

TEST(k8s_fleet_ordinal_pick_skips_busy) {
    k8s_pod pods[4] = {pod("db-0", "online", 1, 0, 0), pod("db-1", "online", 1, 1, 0),
                       pod("db-2", "online", 1, 2, 0), pod("db-3", "standby", 0, 3, 0)};
    snprintf(pods[2].replica, sizeof pods[2].replica, "db-7");
    k8s_fleet f = {.kind = K8S_STATEFULSET, .pods = pods, .n = 4};
    T_ASSERT(k8s_fleet_ordinal_pick(&f, K8S_TS_ONLINE, 1, NULL, 0) == &pods[2]);
    T_ASSERT(k8s_fleet_ordinal_pick(&f, K8S_TS_ONLINE, 0, NULL, 0) == &pods[0]);
    char busy[1][K8S_REPLICA_MAX] = {"db-7"};
    T_ASSERT(k8s_fleet_ordinal_pick(&f, K8S_TS_ONLINE, 1, busy, 1) == &pods[1]);
    T_ASSERT(k8s_fleet_ordinal_pick(&f, K8S_TS_STANDBY, 0, NULL, 0) == &pods[3]);
    T_ASSERT(k8s_fleet_ordinal_pick(&f, K8S_TS_CUTOFF, 1, NULL, 0) == NULL);
}

TEST(k8s_fleet_pod_fields) {
    const char *js =
        "{\"metadata\":{\"name\":\"web-1\",\"namespace\":\"shop\",\"uid\":\"u-1\","
        "\"labels\":{\"tide.io/state\":\"standby\"},\"annotations\":{\"tide.io/replica\":"
        "\"web-4\",\"tide.io/since\":\"1765000000000\"}},\"spec\":{\"nodeName\":\"n1\","
        "\"containers\":[{\"name\":\"w\",\"ports\":[{\"containerPort\":8080}]}]},"
        "\"status\":{\"phase\":\"Running\",\"qosClass\":\"Burstable\",\"podIP\":\"10.1.2.3\","
        "\"conditions\":[{\"type\":\"ContainersReady\",\"status\":\"True\"},{\"type\":\"Ready\","
        "\"status\":\"False\"}]}}";
    k8s_pod p;
    char err[256];
    T_EQ_INT(k8s_pod_parse(js, strlen(js), "tide.io/serving", &p, err, sizeof err), 0);
    T_EQ_STR(p.replica, "web-4");
    T_ASSERT(p.since_ms == 1765000000000LL);
    T_EQ_STR(p.qos, "Burstable");
    T_EQ_STR(p.ip, "10.1.2.3");
    T_EQ_INT(p.port, 8080);
    T_EQ_INT(p.containers_ready, 1);
    T_EQ_INT(p.ready, 0);
    T_EQ_INT(k8s_pod_tstate(&p), K8S_TS_STANDBY);
    const char *bad = "{\"metadata\":{\"name\":\"w\",\"uid\":\"u\",\"annotations\":{"
                      "\"tide.io/replica\":7}}}";
    T_EQ_INT(k8s_pod_parse(bad, strlen(bad), NULL, &p, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "tide.io/replica"));
}
