/* hb_record_test.c: the HAProxyBackend executor's record (exec/hb_record.h). */
#include "exec/hb_record.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

TEST(hb_record_round_trips) {
    hb_rec_replica in[2];
    memset(in, 0, sizeof in);
    snprintf(in[0].id, sizeof in[0].id, "web-1");
    snprintf(in[0].node, sizeof in[0].node, "app1");
    snprintf(in[0].addr, sizeof in[0].addr, "10.0.0.11");
    in[0].port = 8100;
    snprintf(in[0].slot, sizeof in[0].slot, "r3");
    snprintf(in[0].cgroup, sizeof in[0].cgroup, "/tide-replicas/web-1");
    in[0].pid = 4242;
    in[0].state = EXEC_RS_STANDBY;
    in[0].since_ms = 1700000000123;
    in[1] = in[0];
    snprintf(in[1].id, sizeof in[1].id, "web-2");
    in[1].slot[0] = 0;
    in[1].state = EXEC_RS_STARTING;
    char *txt = hb_record_format("web", in, 2);
    T_ASSERT(txt != NULL);
    hb_rec_replica *out;
    size_t n;
    char err[256];
    T_EQ_INT(hb_record_parse(txt, strlen(txt), "web", &out, &n, err, sizeof err), 0);
    T_EQ_INT(n, 2);
    T_ASSERT(memcmp(&out[0], &in[0], sizeof in[0]) == 0);
    T_EQ_STR(out[1].id, "web-2");
    T_EQ_STR(out[1].slot, "");
    T_EQ_INT(out[1].state, EXEC_RS_STARTING);
    free(out);
    /* another workload's record is refused */
    T_EQ_INT(hb_record_parse(txt, strlen(txt), "api", &out, &n, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "not the record of workload api") != NULL);
    free(txt);
}

TEST(hb_record_names_the_bad_entry) {
    struct {
        const char *text, *want;
    } cases[] = {
        {"[", "not valid JSON"},
        {"{\"workload\":\"web\"}", "\"replicas\" must be an array"},
        {"{\"workload\":\"web\",\"replicas\":[{\"id\":\"-x\",\"node\":\"a\",\"port\":1,\"pid\":0,"
         "\"since\":0,\"state\":\"Online\"}]}",
         "replicas[0].id is not a valid replica id"},
        {"{\"workload\":\"web\",\"replicas\":[{\"id\":\"w\",\"node\":\"a\",\"port\":70000,"
         "\"pid\":0,\"since\":0,\"state\":\"Online\"}]}",
         "replicas[0].port must be a number in [1, 65535]"},
        {"{\"workload\":\"web\",\"replicas\":[{\"id\":\"w\",\"node\":\"a\",\"port\":1,\"pid\":0,"
         "\"since\":0,\"state\":\"Gone\"}]}",
         "replicas[0].state must be"},
        {"{\"workload\":\"web\",\"replicas\":[{\"id\":\"w\",\"node\":\"a\",\"port\":1,\"pid\":0,"
         "\"since\":0,\"state\":\"Online\"},{\"id\":\"w\",\"node\":\"a\",\"port\":2,\"pid\":0,"
         "\"since\":0,\"state\":\"Online\"}]}",
         "replicas[1].id w given twice"},
        {"{\"workload\":\"web\",\"replicas\":[{\"id\":\"w\",\"port\":1,\"pid\":0,\"since\":0,"
         "\"state\":\"Online\"}]}",
         "replicas[0].node must be a string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hb_rec_replica *out = NULL;
        size_t n = 99;
        char err[256] = "";
        T_EQ_INT(
            hb_record_parse(cases[i].text, strlen(cases[i].text), "web", &out, &n, err, sizeof err),
            -EINVAL);
        T_ASSERT(out == NULL && n == 0);
        if (!strstr(err, cases[i].want)) T_FAIL("case %zu: error \"%s\"", i, err);
    }
}
