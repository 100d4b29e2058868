/* fuzz_http_params.c: libFuzzer target for the HTTP query API's parameters: the input is split
 * at NUL bytes into time, duration, step and match[] values as a client could send them; each
 * goes through the parser the listener uses (times, durations, label names, vector selectors),
 * and whatever is accepted is used for a range query over a small store. */
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
    tsdb_label l[2] = {{"__name__", "m"}, {"inst", "a"}};
    uint32_t id;
    if (tsdb_series(db, l, 2, &id)) abort();
    for (int k = 0; k < 30; k++) {
        int64_t ts = 1000000 + k * 60000;
        double v = k;
        tsdb_append(db, NULL, 0, id, &ts, &v, 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!db) setup();
    if (size > 8192) return 0;
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    const char *f[5] = {"", "", "", "", ""};
    size_t nf = 0;
    for (size_t i = 0; i <= size && nf < 5;) {
        f[nf++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    int64_t start = 0, end = 0, step = 0, t;
    int ok = query_parse_time(f[0], &start) == 0;
    ok &= query_parse_time(f[1], &end) == 0;
    ok &= query_parse_duration(f[2], &step) == 0;
    (void)query_parse_duration(f[3], &t);
    (void)query_label_name_ok(f[3]);
    char err[512];
    pq_node *n;
    if (promql_parse(f[4], &n, err, sizeof err) == 0) {
        if (n->kind == PQ_SEL && !n->range_ms && ok && step > 0 && end >= start &&
            (end - start) / step < 1000) {
            promql_limits lim = {.max_samples = 100000};
            query_ctx ctx = {.db = db, .lim = &lim};
            query_result r;
            if (query_range(&ctx, f[4], start, end, step, &r, err, sizeof err) == 0) {
                char *j = query_result_json(&r);
                cJSON *doc = j ? cJSON_Parse(j) : NULL;
                if (j && !doc) abort();
                cJSON_Delete(doc);
                free(j);
                query_result_fini(&r);
            }
        }
        promql_free(n);
    }
    free(buf);
    return 0;
}
