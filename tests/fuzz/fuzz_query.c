/* fuzz_query.c: libFuzzer target for the query selector parser, the time/duration parsers and
 * the evaluation of whatever parses over a small in-memory store. */
#include "query/query.h"
#include "store/tsdb.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static tsdb *db;

static void setup(void) {
    tsdb_options o = {0};
    char err[128];
    if (tsdb_open(&db, &o, err, sizeof err)) abort();
    const char *apps[3] = {"web", "db", ""};
    for (int i = 0; i < 3; i++) {
        tsdb_label l[3] = {{"__name__", "rps"}, {"app", apps[i]}, {"zone", i ? "b" : "a"}};
        uint32_t id;
        if (tsdb_series(db, l, apps[i][0] ? 3 : 1, &id) && tsdb_series(db, l, 1, &id)) abort();
        for (int k = 0; k < 20; k++) {
            int64_t ts = 1000000 + k * 60000;
            double v = k * (i + 1);
            tsdb_append(db, NULL, 0, id, &ts, &v, 1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!db) setup();
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char err[256];
    query_expr *e;
    int prc = query_parse(text, &e, err, sizeof err);
    if (prc != 0) {
        /* the error echoes the input: the HTTP body must still be valid JSON */
        char *j = query_error_json("bad_data", err);
        cJSON *doc = j ? cJSON_Parse(j) : NULL;
        if (j && !doc) abort();
        cJSON_Delete(doc);
        free(j);
    }
    if (prc == 0) {
        char *promql = query_selector_promql(e);
        /* what we send to Prometheus must parse again to the same selector */
        query_expr *e2;
        if (promql && query_parse(promql, &e2, err, sizeof err) != 0) abort();
        if (promql) query_expr_free(e2);
        free(promql);
        query_expr_free(e);
        query_ctx ctx = {.db = db};
        query_result r;
        if (query_range(&ctx, text, 1000000, 1000000 + 30 * 60000, 60000, &r, err, sizeof err) ==
            0) {
            char *j = query_result_json(&r);
            cJSON *doc = j ? cJSON_Parse(j) : NULL;
            if (j && !doc) abort();
            cJSON_Delete(doc);
            free(j);
            query_result_fini(&r);
        }
    }
    int64_t ms;
    query_parse_time(text, &ms);
    query_parse_duration(text, &ms);
    free(text);
    return 0;
}
