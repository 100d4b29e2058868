/* hb_args_test.c: the HAProxyBackend executor's node-action arguments pass the shared schema. */
#include "test.h"
#include "actions.h"
#include "exec/hb_args.h"
#include "actions/warmup.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

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

/* The spec's warm-up block reaches the agent's activate as a spec its parser takes field for
 * field (agent/actions/warmup.h), aimed at the replica's address. */
TEST(hb_activate_args_carry_the_spec_warmup_to_the_agent) {
    static workload_spec s;
    const char *y = "apiVersion: tide/v1\nkind: Workload\nmetadata: {name: w}\nspec:\n"
                    "  target:\n    kind: HAProxyBackend\n    name: be\n"
                    "    haproxy: {node: lb, socket: /run/h.sock, serverPrefix: r}\n"
                    "    nodes: [n1]\n"
                    "    replica:\n      command: [/bin/app]\n"
                    "      ports: {first: 9000, last: 9003}\n"
                    "      warmup: {method: POST, path: /w, body: hi, headers: {X-A: b},\n"
                    "               rate: 40, startRate: 4, durationSeconds: 1.5, rampSeconds: 1,\n"
                    "               maxInflight: 3, requestTimeoutSeconds: 0.5}\n"
                    "  maxReplicas: 4\n";
    T_EQ_INT(wl_parse(y, strlen(y), &s, NULL), 0);
    cJSON *a = hb_activate_args(&s.target.warmup, "/tide/r1", "10.0.0.7", 9001);
    T_ASSERT(a && schema_ok(TIDE_ACT_ACTIVATE, a));
    T_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a, "endpoint")), "10.0.0.7:9001");
    /* the deadlines: the agent's covers the warm-up, the executor adds the same */
    T_ASSERT(tide_action_timeout_ms(TIDE_ACT_ACTIVATE, a) >= TIDE_ACTIVATE_TIMEOUT_MS + 2000);
    T_EQ_INT(hb_warmup_ms(&s.target.warmup), 2000);
    warmup_spec ws;
    char err[256] = "";
    int rc = warmup_spec_from_json(cJSON_GetObjectItem(a, "warmup"), "10.0.0.7:9001", &ws, err,
                                   sizeof err);
    if (rc) printf("  %s\n", err);
    T_EQ_INT(rc, 0);
    T_EQ_STR(ws.url, "http://10.0.0.7:9001/w");
    T_EQ_STR(ws.method, "POST");
    T_EQ_STR(ws.body, "hi");
    T_ASSERT(ws.headers && !strcmp(ws.headers->data, "X-A: b") && !ws.headers->next);
    T_NEAR(ws.rate, 40, 0);
    T_NEAR(ws.start_rate, 4, 0);
    T_EQ_INT(ws.duration_ms, 1500);
    T_EQ_INT(ws.ramp_ms, 1000);
    T_EQ_INT(ws.max_inflight, 3);
    T_EQ_INT(ws.request_timeout_ms, 500);
    warmup_spec_fini(&ws);
    cJSON_Delete(a);
    /* IPv6: bracketed; without a warm-up or an address: the cgroup alone */
    a = hb_activate_args(&s.target.warmup, "/tide/r1", "fd00::7", 9001);
    T_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(a, "endpoint")), "[fd00::7]:9001");
    cJSON_Delete(a);
    a = hb_activate_args(&s.target.warmup, "/tide/r1", "", 0);
    T_ASSERT(a && !cJSON_GetObjectItem(a, "warmup") && !cJSON_GetObjectItem(a, "endpoint"));
    cJSON_Delete(a);
    wl_warmup none = {0};
    a = hb_activate_args(&none, "/tide/r1", "10.0.0.7", 9001);
    char *txt = cJSON_PrintUnformatted(a);
    T_EQ_STR(txt, "{\"cgroup\":\"/tide/r1\"}");
    free(txt);
    cJSON_Delete(a);
    T_EQ_INT(hb_warmup_ms(&none), 0);
    /* the figures an event reports */
    cJSON *res = cJSON_Parse("{\"thaw_ms\":1,\"warmup\":{\"requests\":30,\"errors\":2,"
                             "\"duration_ms\":1500,\"first_second\":{}}}");
    cJSON *sum = hb_warmup_summary(res);
    txt = cJSON_PrintUnformatted(sum);
    T_EQ_STR(txt, "{\"requests\":30,\"errors\":2,\"duration_ms\":1500}");
    free(txt);
    cJSON_Delete(sum);
    cJSON_Delete(res);
    T_ASSERT(hb_warmup_summary(NULL) == NULL);
}
