/* actions_test.c: the node action table both sides share (shared/actions.h): names, argument
 * schema errors, default deadlines, placeholder expansion; and the agent's replica record and
 * HTTP status-line parsers (agent/actions/replica_proc.h). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "actions.h"
#include "actions/replica_proc.h"
#include "test.h"

static int check(enum tide_action a, const char *json, char *err, size_t errlen) {
    cJSON *o = cJSON_Parse(json);
    int rc = tide_action_args_check(a, o, err, errlen);
    cJSON_Delete(o);
    return rc;
}

TEST(action_names) {
    T_EQ_INT(tide_action_find("drain"), TIDE_ACT_DRAIN);
    T_EQ_INT(tide_action_find("replica-start"), TIDE_ACT_REPLICA_START);
    T_EQ_INT(tide_action_find("reboot"), -1);
    T_EQ_INT(tide_action_find(NULL), -1);
    for (int i = 0; i < TIDE_ACT_COUNT; i++) {
        T_EQ_INT(tide_action_find(tide_action_name(i)), i);
        T_ASSERT(strstr(tide_action_list(), tide_action_name(i)));
    }
}

TEST(action_args_schema) {
    char err[256];
    T_EQ_INT(check(TIDE_ACT_DRAIN, "{\"bogus\": 1}", err, sizeof err), -EINVAL);
    T_EQ_STR(err, "unknown argument \"bogus\"");
    T_EQ_INT(check(TIDE_ACT_DRAIN, "{\"timeout_ms\": 0}", err, sizeof err), -EINVAL);
    T_EQ_STR(err, "\"timeout_ms\" must be a number in [1, 3600000]");
    T_EQ_INT(check(TIDE_ACT_DRAIN, "{\"force\": 1}", err, sizeof err), -EINVAL);
    T_EQ_STR(err, "\"force\" must be true or false");
    T_EQ_INT(check(TIDE_ACT_STANDBY, "{\"cgroup\": \"/x\", \"force\": true}", err, sizeof err), 0);
    /* the warm-up spec keys only where they belong */
    T_EQ_INT(check(TIDE_ACT_WARMUP, "{\"rate\": 5, \"path\": \"/\"}", err, sizeof err), 0);
    T_EQ_INT(check(TIDE_ACT_DRAIN, "{\"rate\": 5}", err, sizeof err), -EINVAL);
    /* replica-start */
    T_EQ_INT(check(TIDE_ACT_REPLICA_START, "{}", err, sizeof err), -EINVAL);
    T_EQ_STR(err, "\"id\" is required");
    T_EQ_INT(check(TIDE_ACT_REPLICA_START, "{\"id\": \"a\"}", err, sizeof err), -EINVAL);
    T_EQ_STR(err, "\"command\" is required");
    T_EQ_INT(check(TIDE_ACT_REPLICA_START, "{\"id\": \"a\", \"command\": []}", err, sizeof err),
             -EINVAL);
    T_EQ_STR(err, "\"command\" must hold 1 to 256 strings");
    T_EQ_INT(check(TIDE_ACT_REPLICA_START, "{\"id\": \"a\", \"command\": [\"\"]}", err, sizeof err),
             -EINVAL);
    T_EQ_STR(err, "\"command\"[0] (the program) must not be empty");
    T_EQ_INT(
        check(TIDE_ACT_REPLICA_START, "{\"id\": \"a\", \"command\": [\"x\", 3]}", err, sizeof err),
        -EINVAL);
    T_EQ_STR(err, "\"command\"[1] must be a string of at most 4095 bytes");
    T_EQ_INT(check(TIDE_ACT_REPLICA_START,
                   "{\"id\": \"a\", \"command\": [\"x\"], \"env\": {\"A=B\": \"1\"}}", err,
                   sizeof err),
             -EINVAL);
    T_EQ_STR(err, "\"env\": bad name \"A=B\"");
    T_EQ_INT(check(TIDE_ACT_REPLICA_START,
                   "{\"id\": \"a\", \"command\": [\"x\"], \"stop_signal\": \"SEGV\"}", err,
                   sizeof err),
             -EINVAL);
    T_EQ_INT(check(TIDE_ACT_REPLICA_START,
                   "{\"id\": \"a\", \"command\": [\"x\"], \"readiness\": {\"pth\": \"/\"}}", err,
                   sizeof err),
             -EINVAL);
    T_EQ_STR(err, "readiness: unknown argument \"pth\"");
    T_EQ_INT(check(TIDE_ACT_REPLICA_START,
                   "{\"id\": \"web-7f9c-x.1\", \"command\": [\"srv\", \"{port}\"], \"port\": 8080, "
                   "\"env\": {\"A_1\": \"v\"}, \"cpu_quota\": 0.5, \"memory_bytes\": 1048576, "
                   "\"readiness\": {\"path\": \"/h\", \"timeout_ms\": 5}, \"stop_signal\": "
                   "\"SIGTERM\", \"grace_ms\": 10, \"labels\": {\"app.kubernetes.io/x\": \"y\"}}",
                   err, sizeof err),
             -EINVAL); /* '/' is not a label name character */
    T_EQ_INT(check(TIDE_ACT_REPLICA_START,
                   "{\"id\": \"web-7f9c-x.1\", \"command\": [\"srv\", \"{port}\"], \"port\": 8080, "
                   "\"env\": {\"A_1\": \"v\"}, \"cpu_quota\": 0.5, \"memory_bytes\": 1048576, "
                   "\"readiness\": {\"path\": \"/h\", \"timeout_ms\": 5}, \"stop_signal\": "
                   "\"SIGTERM\", \"grace_ms\": 10, \"labels\": {\"workload\": \"web\"}}",
                   err, sizeof err),
             0);
    T_EQ_INT(check(TIDE_ACT_REPLICA_STOP, "{\"id\": \"a\", \"signal\": \"KILL\"}", err, sizeof err),
             0);
    T_EQ_INT(check(TIDE_ACT_REPLICAS, "{}", err, sizeof err), 0);
    T_EQ_INT(check(TIDE_ACT_REPLICAS, "[]", err, sizeof err), -EINVAL);
}

TEST(replica_id_valid) {
    char id[300];
    memset(id, 'a', 253);
    id[253] = 0;
    T_ASSERT(tide_replica_id_valid(id)); /* a Kubernetes pod name's maximum */
    id[253] = 'a';
    id[254] = 0;
    T_ASSERT(!tide_replica_id_valid(id));
    T_ASSERT(!tide_replica_id_valid(""));
    T_ASSERT(!tide_replica_id_valid(".."));
    T_ASSERT(!tide_replica_id_valid("-x"));
    T_ASSERT(!tide_replica_id_valid("a/b"));
    T_ASSERT(tide_replica_id_valid("web-5d8f7c9b-xk2lp"));
}

TEST(action_default_timeouts) {
    cJSON *o = cJSON_Parse("{\"warmup\": {\"duration_ms\": 500}}");
    T_EQ_INT(tide_action_default_timeout_ms(TIDE_ACT_DRAIN, NULL), 30000);
    T_EQ_INT(tide_action_default_timeout_ms(TIDE_ACT_STANDBY, NULL), 10000);
    T_EQ_INT(tide_action_default_timeout_ms(TIDE_ACT_ACTIVATE, NULL), 10000);
    T_EQ_INT(tide_action_default_timeout_ms(TIDE_ACT_ACTIVATE, o), 10000 + 500 + 2000);
    T_EQ_INT(tide_action_default_timeout_ms(TIDE_ACT_WARMUP, NULL), 2000 + 2000 + 10000);
    cJSON_Delete(o);
    o = cJSON_Parse("{\"readiness\": {\"timeout_ms\": 1000}, \"grace_ms\": 200}");
    T_EQ_INT(tide_action_default_timeout_ms(TIDE_ACT_REPLICA_START, o), 6000);
    T_EQ_INT(tide_action_default_timeout_ms(TIDE_ACT_REPLICA_STOP, o), 5200);
    T_EQ_INT(tide_action_timeout_ms(TIDE_ACT_REPLICA_STOP, o), 5200);
    cJSON_AddNumberToObject(o, "timeout_ms", 77);
    T_EQ_INT(tide_action_timeout_ms(TIDE_ACT_REPLICA_STOP, o), 77);
    cJSON_Delete(o);
    T_EQ_INT(tide_action_default_timeout_ms(TIDE_ACT_REPLICA_START, NULL), 35000);
}

TEST(template_expand) {
    char out[64], err[256];
    T_EQ_INT(tide_template_expand("--port={port} {id}@{node}", "r1", 8080, "n1", out, sizeof out,
                                  err, sizeof err),
             (int)strlen("--port=8080 r1@n1"));
    T_EQ_STR(out, "--port=8080 r1@n1");
    T_EQ_INT(tide_template_expand("{{json}}", "r1", 1, "n", out, sizeof out, err, sizeof err), 6);
    T_EQ_STR(out, "{json}");
    T_EQ_INT(tide_template_expand("{nope}", "r1", 1, "n", out, sizeof out, err, sizeof err),
             -EINVAL);
    T_ASSERT(strstr(err, "unknown placeholder {nope}"));
    T_EQ_INT(tide_template_expand("{port}", "r1", -1, "n", out, sizeof out, err, sizeof err),
             -EINVAL);
    T_ASSERT(strstr(err, "placeholder {port} has no value here"));
    T_EQ_INT(tide_template_expand("a}", "r1", 1, "n", out, sizeof out, err, sizeof err), -EINVAL);
    T_EQ_INT(tide_template_expand("{port", "r1", 1, "n", out, sizeof out, err, sizeof err),
             -EINVAL);
    T_EQ_INT(tide_template_expand("0123456789", "r", 1, "n", out, 8, err, sizeof err), -E2BIG);
    T_EQ_INT(tide_template_expand("{id}{id}", "abcd", 1, "n", out, 8, err, sizeof err), -E2BIG);
    T_EQ_INT(tide_template_expand("{id}", "abcd", 1, "n", out, 5, err, sizeof err), 4);
}

TEST(replica_http_status_line) {
    T_EQ_INT(replica_http_status("HTTP/1.1 200 OK\r\n", 17), 200);
    T_EQ_INT(replica_http_status("HTTP/1.0 503", 12), 503);
    T_EQ_INT(replica_http_status("HTTP/1.1 2", 10), 0);
    T_EQ_INT(replica_http_status("HTT", 3), 0);
    T_EQ_INT(replica_http_status("SSH-2.0-x\r\n", 11), -EINVAL);
    T_EQ_INT(replica_http_status("HTTP/1.1 999 x", 14), -EINVAL);
    T_EQ_INT(replica_http_status("HTTP/1.1 2x0 x", 14), -EINVAL);
}

TEST(replica_record_roundtrip) {
    replica_record r;
    char err[256];
    const char *ok = "{\"id\": \"r1\", \"cgroup\": \"/tide-replicas/r1\", \"pid\": 42, "
                     "\"starttime\": \"123456789012\", \"stop_signal\": 2, \"grace_ms\": 500, "
                     "\"port\": 8080, \"started_at\": 1700000000000, \"ready_at\": 0, "
                     "\"exit_status\": -1, \"labels\": {\"workload\": \"web\"}, "
                     "\"dirs\": [\"/sys/fs/cgroup/unified/tide-replicas/r1\"]}";
    T_EQ_INT(replica_record_parse(ok, strlen(ok), &r, err, sizeof err), 0);
    T_EQ_STR(r.id, "r1");
    T_EQ_INT(r.pid, 42);
    T_ASSERT(r.starttime == 123456789012ULL);
    T_EQ_INT(r.stop_signal, SIGINT);
    T_EQ_INT(r.port, 8080);
    T_EQ_INT(r.exit_status, -1);
    T_EQ_INT(r.ndirs, 1);
    T_ASSERT(r.labels);
    replica_record_fini(&r);
    const char *bad_dir = "{\"id\": \"r1\", \"cgroup\": \"/t/r1\", \"pid\": 1, \"starttime\": "
                          "\"1\", \"dirs\": [\"/etc/passwd\"]}";
    T_EQ_INT(replica_record_parse(bad_dir, strlen(bad_dir), &r, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "\"dirs\": an entry that is not a cgroup directory");
    replica_record_fini(&r);
    const char *bad_id = "{\"id\": \"../x\", \"cgroup\": \"/t/r1\", \"pid\": 1, \"starttime\": "
                         "\"1\", \"dirs\": []}";
    T_EQ_INT(replica_record_parse(bad_id, strlen(bad_id), &r, err, sizeof err), -EINVAL);
    replica_record_fini(&r);
    T_EQ_INT(replica_record_parse("[1]", 3, &r, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "not a JSON object");
    replica_record_fini(&r);
}
