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

/* ---- the traffic history: read whole, or its last minutes again with the rest kept ---- */

#include "store/tsdb.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HIST_T0 1700000040LL /* a whole minute */

static const char hist_spec[] = "apiVersion: tide/v1\n"
                                "kind: Workload\n"
                                "metadata: {name: web}\n"
                                "spec:\n"
                                "  target: {kind: Deployment, namespace: default, name: web}\n"
                                "  minReplicas: 1\n"
                                "  maxReplicas: 10\n"
                                "  metrics:\n"
                                "    utilization: {name: cpu, selector: '{__name__=\"cpu\"}', "
                                "target: 60}\n"
                                "    traffic:\n"
                                "      - {name: requests, selector: '%s'}\n"
                                "  providers:\n"
                                "    - {type: predictive, priority: 10, model: profile}\n";

static workload_spec *hist_spec_parse(const char *selector) {
    char y[2048];
    snprintf(y, sizeof y, hist_spec, selector);
    workload_spec *s = calloc(1, sizeof *s);
    if (s && wl_parse(y, strlen(y), s, NULL) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* minutes [from, to) of the traffic series, skipping the minute `gap` (-1 none) */
static void hist_fill(tsdb *db, uint32_t id, int from, int to, int gap) {
    for (int k = from; k < to; k++) {
        if (k == gap) continue;
        int64_t ts = (HIST_T0 + (int64_t)k * 60) * 1000;
        double v = 100 + 50 * sin(k / 200.0) + k % 7;
        tsdb_append(db, NULL, 0, id, &ts, &v, 1);
    }
}

static observe_result *hist_read(tsdb *db, const workload_spec *s, int64_t now,
                                 const observe_prev_hist *prev) {
    observe_result *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->now = now;
    o->prev = prev;
    observe_read(db, NULL, s, o);
    o->prev = NULL;
    return o;
}

static int hist_same(const observe_result *a, const observe_result *b) {
    if (a->hist_rc != 0 || b->hist_rc != 0 || a->hist.n != b->hist.n || a->hist.t0 != b->hist.t0)
        return 0;
    for (size_t k = 0; k < a->hist.n; k++)
        if (!(a->y[k] == b->y[k] || (isnan(a->y[k]) && isnan(b->y[k])))) return 0;
    return 1;
}

TEST(observe_history_incremental_equals_whole) {
    tsdb *db;
    char err[128];
    tsdb_options opt = {0};
    T_EQ_INT(tsdb_open(&db, &opt, err, sizeof err), 0);
    tsdb_label l[2] = {{"__name__", "req"}, {"app", "web"}};
    uint32_t id;
    T_EQ_INT(tsdb_series(db, l, 2, &id), 0);
    workload_spec *s = hist_spec_parse("{__name__=\"req\"}");
    workload_spec *other = hist_spec_parse("{__name__=\"req\",app=\"web\"}");
    T_ASSERT(s && other);
    /* two days, minute 2875 missing for now (it arrives late) */
    hist_fill(db, id, 0, 2880, 2875);
    int64_t now1 = HIST_T0 + 2880 * 60 + 5;
    observe_result *o1 = hist_read(db, s, now1, NULL);
    T_ASSERT(o1);
    T_EQ_INT(o1->hist_rc, 0);
    T_EQ_INT(o1->hist_incremental, 0);
    T_EQ_INT((long long)o1->hist.t0, (long long)HIST_T0);
    T_ASSERT(o1->hist.n >= 2870);
    observe_prev_hist *prev = observe_prev_from(o1, s);
    T_ASSERT(prev);
    /* an hour later, with the late minute in: the incremental read is the whole one */
    hist_fill(db, id, 2875, 2876, -1);
    hist_fill(db, id, 2880, 2940, -1);
    int64_t now2 = now1 + 3600;
    observe_result *inc = hist_read(db, s, now2, prev), *whole = hist_read(db, s, now2, NULL);
    T_ASSERT(inc && whole);
    T_EQ_INT(inc->hist_incremental, 1);
    T_EQ_INT(whole->hist_incremental, 0);
    T_ASSERT(hist_same(inc, whole));
    T_ASSERT(!isnan(inc->y[(2875 * 60 + HIST_T0 - inc->hist.t0) / 60]));
    /* a fit due reads it whole; another traffic query never splices onto this history */
    observe_result *full = calloc(1, sizeof *full);
    T_ASSERT(full);
    full->now = now2;
    full->prev = prev;
    full->full_history = 1;
    observe_read(db, NULL, s, full);
    T_EQ_INT(full->hist_incremental, 0);
    T_ASSERT(hist_same(full, whole));
    observe_result *o_other = hist_read(db, other, now2, prev);
    T_ASSERT(o_other);
    T_EQ_INT(o_other->hist_incremental, 0);
    /* a history older than the 7 days is no base either */
    observe_result *late = hist_read(db, s, now1 + 8 * 86400, prev);
    T_ASSERT(late);
    T_EQ_INT(late->hist_incremental, 0);
    /* a read that went wrong is no base */
    snprintf(o1->m[OBSERVE_TRAFFIC].error, sizeof o1->m[OBSERVE_TRAFFIC].error, "prometheus: x");
    T_ASSERT(observe_prev_from(o1, s) == NULL);
    observe_free(late);
    observe_free(o_other);
    observe_free(full);
    observe_free(inc);
    observe_free(whole);
    observe_prev_free(prev);
    observe_free(o1);
    free(s);
    free(other);
    tsdb_close(db);
}

TEST(observe_source_window) {
    wl_source src;
    memset(&src, 0, sizeof src);
    T_EQ_INT(observe_source_window_s(&src), 0);
    snprintf(src.query, sizeof src.query, "%s", "cpu{app=\"web\"} * 100");
    T_EQ_INT(observe_source_window_s(&src), 0);
    snprintf(src.query, sizeof src.query, "%s",
             "avg_over_time(cpu[1m]) * 100 + max_over_time(cpu[90s]) * 0");
    T_EQ_INT(observe_source_window_s(&src), 90);
    snprintf(src.query, sizeof src.query, "%s", "avg_over_time(cpu[1m"); /* does not parse */
    T_EQ_INT(observe_source_window_s(&src), 0);
}
