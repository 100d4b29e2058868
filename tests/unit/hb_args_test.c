/* hb_args_test.c: the HAProxyBackend executor's node-action arguments pass the shared schema. */
#include "test.h"
#include "actions.h"
#include "exec/hb_args.h"

#include <stdlib.h>

static int schema_ok(enum tide_action a, const cJSON *args) {
    char err[256];
    int rc = tide_action_args_check(a, args, err, sizeof err);
    if (rc) printf("  %s: %s\n", tide_action_name(a), err);
    return rc == 0;
}

TEST(hb_args_from_the_example_pass_the_action_schema) {
    static workload_spec s;
    T_EQ_INT(wl_load(test_fixture("../../deploy/examples/haproxy-backend.yaml"), &s, NULL), 0);
    cJSON *a = hb_start_args(&s.target, "web-7", 8103, "web", 42);
    T_ASSERT(a && schema_ok(TIDE_ACT_REPLICA_START, a));
    char *txt = cJSON_PrintUnformatted(a);
    T_ASSERT(strstr(txt, "\"command\":[\"/srv/web/bin/server\",\"--listen\",\"0.0.0.0:{port}\""));
    T_ASSERT(strstr(txt, "\"memory_bytes\":536870912"));
    T_ASSERT(strstr(txt, "\"readiness\":{\"path\":\"/healthz\",\"timeout_ms\":30000}"));
    T_ASSERT(strstr(txt, "\"grace_ms\":10000"));
    T_ASSERT(strstr(txt, "\"labels\":{\"workload\":\"web\",\"generation\":\"42\"}"));
    T_ASSERT(strstr(txt, "\"env\":{\"WEB_ROLE\":\"replica\",\"WEB_NODE\":\"{node}\"}"));
    /* the agent's deadline covers the readiness timeout */
    T_ASSERT(tide_action_timeout_ms(TIDE_ACT_REPLICA_START, a) >= 30000);
    free(txt);
    cJSON_Delete(a);

    a = hb_stop_args(&s.target, "web-7");
    T_ASSERT(a && schema_ok(TIDE_ACT_REPLICA_STOP, a));
    cJSON_Delete(a);
    a = hb_slots_args(&s.target);
    T_ASSERT(a && schema_ok(TIDE_ACT_HAPROXY_SLOTS, a));
    cJSON_Delete(a);
    a = hb_slot_args(&s.target, "r3", "10.0.0.11", 8103, "ready");
    T_ASSERT(a && schema_ok(TIDE_ACT_HAPROXY_SLOT, a));
    txt = cJSON_PrintUnformatted(a);
    T_EQ_STR(txt, "{\"haproxy_socket\":\"/run/haproxy/admin.sock\",\"haproxy_server\":\"web/r3\","
                  "\"addr\":\"10.0.0.11\",\"port\":8103,\"state\":\"ready\"}");
    free(txt);
    cJSON_Delete(a);
    a = hb_slot_args(&s.target, "r3", NULL, 0, "drain");
    T_ASSERT(a && schema_ok(TIDE_ACT_HAPROXY_SLOT, a));
    T_ASSERT(!cJSON_GetObjectItemCaseSensitive(a, "addr"));
    T_ASSERT(!cJSON_GetObjectItemCaseSensitive(a, "port"));
    cJSON_Delete(a);
}

TEST(hb_start_args_minimal_template_and_longest_id) {
    static workload_spec s;
    const char *y = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\nspec:\n"
                    "  target:\n    kind: HAProxyBackend\n    name: be\n"
                    "    haproxy: {node: lb, socket: /run/h.sock, serverPrefix: r}\n"
                    "    nodes: [n1]\n"
                    "    replica:\n      command: [python3, app.py, '{port}', '{id}']\n"
                    "      ports: {first: 9000, last: 9003}\n"
                    "  maxReplicas: 4\n";
    T_EQ_INT(wl_parse(y, strlen(y), &s, NULL), 0);
    char id[TIDE_REPLICA_ID_MAX + 1];
    memset(id, 'a', sizeof id - 1);
    id[sizeof id - 1] = 0;
    cJSON *a = hb_start_args(&s.target, id, 9000, "w", 1);
    T_ASSERT(a && schema_ok(TIDE_ACT_REPLICA_START, a));
    T_ASSERT(!cJSON_GetObjectItemCaseSensitive(a, "readiness"));
    T_ASSERT(!cJSON_GetObjectItemCaseSensitive(a, "env"));
    T_ASSERT(!cJSON_GetObjectItemCaseSensitive(a, "cpu_quota"));
    T_EQ_STR(cJSON_GetObjectItemCaseSensitive(a, "stop_signal")->valuestring, "TERM");
    cJSON_Delete(a);
}
