/* fuzz_promql.c: libFuzzer target for the PromQL parser and evaluator: any input either parses
 * or is refused with a message that stays valid JSON; what parses is evaluated over a small
 * in-memory store, instant and range, under a small sample budget, and its JSON parses. */
#include "query/promql.h"
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
    const char *inst[3] = {"a", "b", "c"}, *les[3] = {"0.5", "1", "+Inf"};
    for (int i = 0; i < 3; i++) {
        tsdb_label l[3] = {{"__name__", "rps"}, {"inst", inst[i]}, {"le", les[i]}};
        uint32_t id;
        if (tsdb_series(db, l, 3, &id)) abort();
        for (int k = 0; k < 40; k++) {
            int64_t ts = 1000000 + k * 15000;
            double v = k == 20 ? 0 : k * (i + 1); /* a counter reset */
            tsdb_append(db, NULL, 0, id, &ts, &v, 1);
        }
    }
}

static void json_ok(char *j) {
    cJSON *doc = j ? cJSON_Parse(j) : NULL;
    if (j && !doc) abort();
    cJSON_Delete(doc);
    free(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!db) setup();
    if (size > 4096) return 0;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    char err[512];
    pq_node *n;
    if (promql_parse(text, &n, err, sizeof err) != 0) {
        json_ok(query_error_json("bad_data", err));
        free(text);
        return 0;
    }
    promql_free(n);
    promql_limits lim = {.max_samples = 200000};
    query_ctx ctx = {.db = db, .lim = &lim};
    query_result r;
    if (query_range(&ctx, text, 1000000 + 300000, 1000000 + 300000, 1000, &r, err, sizeof err) ==
        0) {
        json_ok(query_result_vector_json(&r));
        query_result_fini(&r);
    } else
        json_ok(query_error_json("bad_data", err));
    if (query_range(&ctx, text, 1000000, 1000000 + 600000, 30000, &r, err, sizeof err) == 0) {
        json_ok(query_result_json(&r));
        query_result_fini(&r);
    }
    free(text);
    return 0;
}
