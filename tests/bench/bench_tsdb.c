/* bench_tsdb.c: the store's figures: ingest rate with the WAL on (goal >= 1 M samples/s on
 * one core), bytes per stored sample at 1-minute resolution (goal <= 4), query_range over
 * 7 days at 1-minute step for one series (goal < 2 ms) and for 1,000 series summed (goal
 * < 200 ms). Real traffic from ../shared/data where present, synthetic otherwise. */
#include "query/promql.h"
#include "query/query.h"
#include "store/tsdb.h"

#include <ev.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Reads a timestamp,value CSV from ../shared/data; returns the count (0 if absent). */
static size_t load_csv(const char *name, double **out) {
    char path[512];
    snprintf(path, sizeof path, "%s/../shared/data/%s",
             getenv("TIDE_SRC") ? getenv("TIDE_SRC") : ".", name);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = 0, cap = 1024;
    double *v = malloc(cap * sizeof *v);
    char line[256];
    while (v && fgets(line, sizeof line, f)) {
        char *comma = strchr(line, ',');
        if (!comma || !strncmp(line, "timestamp", 9)) continue;
        if (n == cap) {
            cap *= 2;
            double *nv = realloc(v, cap * sizeof *nv);
            if (!nv) break;
            v = nv;
        }
        v[n++] = strtod(comma + 1, NULL);
    }
    fclose(f);
    *out = v;
    return n;
}

static tsdb *open_mem(void) {
    tsdb *db;
    char err[256];
    tsdb_options o = {.retention_raw_s = 3600};
    if (tsdb_open(&db, &o, err, sizeof err)) {
        fprintf(stderr, "open: %s\n", err);
        exit(1);
    }
    return db;
}

static uint32_t series(tsdb *db, const char *name, int i) {
    char app[32], grp[16];
    snprintf(app, sizeof app, "s%d", i);
    snprintf(grp, sizeof grp, "g%d", i % 10);
    tsdb_label l[3] = {{"__name__", name}, {"app", app}, {"grp", grp}};
    uint32_t id = 0;
    if (tsdb_series(db, l, 3, &id)) exit(1);
    return id;
}

static int outstanding;
static void on_durable(void *arg, int status) {
    (void)arg;
    if (status) {
        fprintf(stderr, "durable: %d\n", status);
        exit(1);
    }
    outstanding--;
}

static void bench_ingest(void) {
    char dir[] = "/tmp/bench_tsdb.XXXXXX";
    if (!mkdtemp(dir)) exit(1);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    tsdb *db;
    char err[256];
    tsdb_options o = {.dir = dir, .loop = loop, .retention_raw_s = 3600};
    if (tsdb_open(&db, &o, err, sizeof err)) {
        fprintf(stderr, "open: %s\n", err);
        exit(1);
    }
    enum { NSERIES = 1000, PER = 10, ROUNDS = 500 };
    uint32_t ids[NSERIES];
    for (int i = 0; i < NSERIES; i++)
        ids[i] = series(db, "cpu_usage", i);
    int64_t ts[PER];
    double v[PER];
    double base[NSERIES];
    for (int i = 0; i < NSERIES; i++)
        base[i] = (double)(rnd() % 100000) / 1000;
    double t0 = now_s(), c0 = thread_cpu_s();
    int64_t t = 1700000000000;
    uint64_t seq = 0;
    for (int r = 0; r < ROUNDS; r++) {
        /* one agent batch: 10 samples of each of 1,000 series, 10 s apart, values like an
         * agent's CPU percentages (three decimals) */
        seq++;
        for (int i = 0; i < NSERIES; i++) {
            for (int k = 0; k < PER; k++) {
                ts[k] = t + k * 10000;
                base[i] += (double)((int)(rnd() % 2001) - 1000) / 1000;
                v[k] = round(base[i] * 1000) / 1000;
            }
            if (tsdb_append(db, "agent-1", seq, ids[i], ts, v, PER)) exit(1);
        }
        t += PER * 10000;
        outstanding++;
        tsdb_when_durable(db, on_durable, NULL);
        ev_run(loop, EVRUN_NOWAIT);
    }
    double c1 = thread_cpu_s();
    while (outstanding > 0)
        ev_run(loop, EVRUN_ONCE);
    double t1 = now_s();
    double n = (double)NSERIES * PER * ROUNDS;
    tsdb_stats st;
    tsdb_get_stats(db, &st);
    printf("ingest_wal: %.0f samples in %.3f s wall = %.2f M samples/s; loop thread CPU %.3f s = "
           "%.2f M samples/s per core (goal >= 1.0); %llu fsyncs, mean %.2f ms, WAL %.1f MB\n",
           n, t1 - t0, n / (t1 - t0) / 1e6, c1 - c0, n / (c1 - c0) / 1e6,
           (unsigned long long)st.fsyncs,
           st.fsyncs ? st.fsync_seconds_total / (double)st.fsyncs * 1000 : 0,
           (double)st.wal_written / 1e6);
    tsdb_close(db);
    ev_loop_destroy(loop);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
}

/* The loop's pause for a snapshot: tsdb_snapshot() runs on the loop, the snapshot is then
 * written by the WAL worker (timed until it reports back on the loop). */
static void bench_snapshot(void) {
    char dir[] = "/tmp/bench_tsdb_snap.XXXXXX";
    if (!mkdtemp(dir)) exit(1);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    tsdb *db;
    char err[256];
    tsdb_options o = {.dir = dir, .loop = loop};
    if (tsdb_open(&db, &o, err, sizeof err)) {
        fprintf(stderr, "open: %s\n", err);
        exit(1);
    }
    enum { NSERIES = 1000, PER = 4320, BATCH = 60 }; /* 3 days of one-minute samples each */
    uint32_t ids[NSERIES];
    for (int i = 0; i < NSERIES; i++)
        ids[i] = series(db, "snap_gauge", i);
    int64_t t = 1700000000000;
    int64_t ts[BATCH];
    double v[BATCH];
    for (int b = 0; b < PER / BATCH; b++) {
        for (int i = 0; i < NSERIES; i++) {
            for (int k = 0; k < BATCH; k++) {
                ts[k] = t + (int64_t)(b * BATCH + k) * 60000;
                v[k] = (double)(rnd() % 100000) / 100;
            }
            if (tsdb_append(db, NULL, 0, ids[i], ts, v, BATCH)) exit(1);
        }
        outstanding++;
        tsdb_when_durable(db, on_durable, NULL);
        ev_run(loop, EVRUN_NOWAIT);
    }
    while (outstanding > 0)
        ev_run(loop, EVRUN_ONCE);
    double pause[5], cpu[5], total[5];
    for (int r = 0; r < 5; r++) {
        tsdb_stats st;
        tsdb_get_stats(db, &st);
        uint64_t before = st.snapshots + st.snapshot_errors;
        double t0 = now_s(), c0 = thread_cpu_s();
        if (tsdb_snapshot(db)) exit(1);
        double t1 = now_s(), c1 = thread_cpu_s();
        while (st.snapshots + st.snapshot_errors == before) {
            ev_run(loop, EVRUN_ONCE);
            tsdb_get_stats(db, &st);
        }
        if (st.snapshot_errors) {
            fprintf(stderr, "snapshot failed\n");
            exit(1);
        }
        pause[r] = (t1 - t0) * 1000;
        cpu[r] = (c1 - c0) * 1000;
        total[r] = (now_s() - t0) * 1000;
    }
    qsort(pause, 5, sizeof *pause, cmp_double);
    qsort(total, 5, sizeof *total, cmp_double);
    qsort(cpu, 5, sizeof *cpu, cmp_double);
    printf("snapshot: loop pause %.2f ms wall, %.2f ms CPU for %d series / %d samples; worker "
           "%.0f ms until durable and reported back (medians of 5)\n",
           pause[2], cpu[2], NSERIES, NSERIES * PER, total[2]);
    tsdb_close(db);
    ev_loop_destroy(loop);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
}

/* Bytes per point of the 1-minute tier for a series fed one sample a minute. */
static void bench_bytes(const char *what, const double *vals, size_t n) {
    tsdb *db = open_mem();
    uint32_t id = series(db, "m", 0);
    int64_t t = 1700000000000 - 1700000000000 % 60000;
    for (size_t i = 0; i < n; i++) {
        int64_t ts = t + (int64_t)i * 60000;
        if (tsdb_append(db, NULL, 0, id, &ts, &vals[i], 1)) exit(1);
    }
    tsdb_series_info info;
    tsdb_series_stat(db, id, &info);
    printf("bytes_per_sample_1m[%s]: %.2f bytes/point over %zu points (goal <= 4; raw float64 + "
           "int64 = 16)\n",
           what, (double)info.bytes[TSDB_1M] / (double)info.points[TSDB_1M], info.points[TSDB_1M]);
    tsdb_close(db);
}

/* The 1-minute tier fed four samples a minute (an agent sampling every 15 s): each bucket
 * keeps sum, count, min and max of four values. */
static void bench_bytes_multi(const double *vals, size_t n) {
    tsdb *db = open_mem();
    uint32_t id = series(db, "m", 0);
    int64_t t = 1700000000000 - 1700000000000 % 60000;
    size_t total = n ? n : 20000;
    for (size_t i = 0; i < total; i++) {
        int64_t ts = t + (int64_t)i * 15000;
        double v = vals ? vals[i] : round((double)(rnd() % 100000)) / 1000;
        if (tsdb_append(db, NULL, 0, id, &ts, &v, 1)) exit(1);
    }
    tsdb_series_info info;
    tsdb_series_stat(db, id, &info);
    printf("bytes_per_bucket_1m[4 samples/min, %s]: %.2f bytes/bucket (sum, count, min, max) over "
           "%zu buckets\n",
           vals ? "nab cpu %" : "synthetic",
           (double)info.bytes[TSDB_1M] / (double)info.points[TSDB_1M], info.points[TSDB_1M]);
    tsdb_close(db);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median wall time of `runs` queries; *cpu_s gets the median CPU time of this thread (what
 * the query costs when the machine is shared). */
static double median_query(query_ctx *ctx, const char *q, int64_t s, int64_t e, int runs,
                           size_t *nseries, size_t *npoints, double *cpu_s) {
    double t[64], cpu[64];
    for (int r = 0; r < runs; r++) {
        query_result res;
        char err[256];
        double c0 = thread_cpu_s();
        double t0 = now_s();
        if (query_range(ctx, q, s, e, 60000, &res, err, sizeof err)) {
            fprintf(stderr, "query: %s\n", err);
            exit(1);
        }
        t[r] = now_s() - t0;
        cpu[r] = thread_cpu_s() - c0;
        *nseries = res.n;
        *npoints = 0;
        for (size_t i = 0; i < res.n; i++)
            for (size_t k = 0; k < res.nsteps; k++)
                *npoints += !isnan(res.s[i].v[k]);
        query_result_fini(&res);
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_d);
    qsort(cpu, (size_t)runs, sizeof *cpu, cmp_d);
    *cpu_s = cpu[runs / 2];
    return t[runs / 2];
}

static void bench_query(const double *nasa, size_t nn) {
    enum { NSERIES = 1000, DAYS = 8 };
    size_t per = (size_t)DAYS * 1440;
    tsdb *db = open_mem();
    int64_t t = 1700000000000 - 1700000000000 % 600000;
    double t0 = now_s();
    for (int i = 0; i < NSERIES; i++) {
        uint32_t id = series(db, "http_requests", i);
        for (size_t k = 0; k < per; k++) {
            int64_t ts = t + (int64_t)k * 60000;
            double v = nn ? nasa[(k + (size_t)i * 37) % nn] : (double)(rnd() % 500);
            if (tsdb_append(db, NULL, 0, id, &ts, &v, 1)) exit(1);
        }
    }
    double load = now_s() - t0;
    tsdb_stats st;
    tsdb_get_stats(db, &st);
    printf("query_setup: %d series x %zu one-minute samples in %.2f s (%.2f M samples/s, memory "
           "only); 1m tier %.2f bytes/point\n",
           NSERIES, per, load, (double)NSERIES * (double)per / load / 1e6,
           (double)st.bytes[TSDB_1M] / (double)st.points[TSDB_1M]);
    query_ctx ctx = {.db = db};
    int64_t end = t + (int64_t)(per - 1) * 60000, start = end - 7 * 86400000LL;
    size_t ns, np;
    double cpu;
    double one = median_query(&ctx, "http_requests{app=\"s7\"}", start, end, 21, &ns, &np, &cpu);
    printf("query_range_7d_1m_one_series: %.3f ms wall, %.3f ms CPU, median of 21 (%zu series, "
           "%zu points; goal < 2 ms)\n",
           one * 1000, cpu * 1000, ns, np);
    double sum = median_query(&ctx, "sum(http_requests)", start, end, 7, &ns, &np, &cpu);
    printf("query_range_7d_1m_sum_1000_series: %.1f ms wall, %.1f ms CPU, median of 7 (%zu "
           "series, %zu points; goal < 200 ms)\n",
           sum * 1000, cpu * 1000, ns, np);
    double by = median_query(&ctx, "sum by (app) (http_requests{app=~\"s1.*\"})", start, end, 7,
                             &ns, &np, &cpu);
    printf("query_range_7d_1m_sum_by_app_111_series: %.1f ms wall, %.1f ms CPU, median of 7 "
           "(%zu series)\n",
           by * 1000, cpu * 1000, ns);
    /* issue 17's goal: rate(x[5m]) summed by a label over 1,000 series x 7 days at 1 min */
    const char *rq = "sum by (grp) (rate(http_requests[5m]))"; /* 10 groups of 100 */
    double rate1 = median_query(&ctx, rq, start, end, 5, &ns, &np, &cpu);
    printf("query_range_7d_step1m_sum_by_rate_1000_series: %.1f ms wall, %.1f ms CPU, median of "
           "5 (%zu series, %zu points; goal < 300 ms)\n",
           rate1 * 1000, cpu * 1000, ns, np);
    /* the same at a 10-minute step (a 7-day Grafana panel), and the sample budget it needs:
     * the smallest query_max_samples (in steps of 1 M) under which it still runs */
    for (int pass = 0; pass < 2; pass++) {
        int64_t step = pass ? 600000 : 60000;
        uint64_t need = 0;
        for (uint64_t b = 1000000; b <= 64000000 && !need; b += 1000000) {
            promql_limits lim = {.max_samples = b};
            query_ctx lc = {.db = db, .lim = &lim};
            query_result res;
            char err[256];
            if (query_range(&lc, rq, start, end, step, &res, err, sizeof err) == 0) {
                need = b;
                query_result_fini(&res);
            }
        }
        double w[5];
        struct rusage ru0, ru1;
        getrusage(RUSAGE_SELF, &ru0);
        for (int r = 0; r < 5; r++) {
            query_result res;
            char err[256];
            double q0 = now_s();
            if (query_range(&ctx, rq, start, end, step, &res, err, sizeof err)) exit(1);
            w[r] = now_s() - q0;
            query_result_fini(&res);
        }
        getrusage(RUSAGE_SELF, &ru1);
        qsort(w, 5, sizeof *w, cmp_d);
        printf("query_range_7d_step%s_sum_by_rate_1000_series: %.1f ms wall (median of 5); "
               "needs query_max_samples <= %.0f M (refused 422 below); peak RSS %ld MB\n",
               pass ? "10m" : "1m", w[2] * 1000, (double)need / 1e6, ru1.ru_maxrss / 1024);
    }
    tsdb_close(db);
}

/* BENCH_TSDB_EXPORT=DIR: the query benchmark's data (1,000 series x 8 days, one sample a
 * minute, the same values as bench_query) written twice for tests/bench/promql_prometheus.sh:
 * DIR/data.om in OpenMetrics for promtool's backfill and DIR/data as a Tide store directory
 * (WAL) for tide-controlplane --data-dir. Samples sit at the last millisecond of each minute,
 * where a one-minute bucket of Tide's is stamped, so both hold the same points and answer the
 * same values. Prints the 7-day query window: "window START_S END_S". */
static int export_data(const char *dir, const double *nasa, size_t nn) {
    enum { NSERIES = 1000, DAYS = 8 };
    size_t per = (size_t)DAYS * 1440;
    char path[4096], err[256];
    snprintf(path, sizeof path, "%s/data.om", dir);
    FILE *om = fopen(path, "w");
    if (!om) {
        perror(path);
        return 1;
    }
    snprintf(path, sizeof path, "%s/data", dir);
    tsdb *db;
    tsdb_options o = {.dir = path}; /* the control plane's default retentions */
    if (tsdb_open(&db, &o, err, sizeof err)) {
        fprintf(stderr, "open %s: %s\n", path, err);
        return 1;
    }
    int64_t t = 1700000000000 - 1700000000000 % 600000 + 59999;
    fprintf(om, "# TYPE http_requests gauge\n");
    for (int i = 0; i < NSERIES; i++) {
        uint32_t id = series(db, "http_requests", i);
        for (size_t k = 0; k < per; k++) {
            int64_t ts = t + (int64_t)k * 60000;
            double v = nn ? nasa[(k + (size_t)i * 37) % nn] : (double)(rnd() % 500);
            if (tsdb_append(db, NULL, 0, id, &ts, &v, 1)) return 1;
            fprintf(om, "http_requests{app=\"s%d\",grp=\"g%d\"} %.17g %lld.%03lld\n", i, i % 10, v,
                    (long long)(ts / 1000), (long long)(ts % 1000));
        }
    }
    fprintf(om, "# EOF\n");
    if (fclose(om)) {
        perror("data.om");
        return 1;
    }
    tsdb_close(db);
    int64_t end = t - 59999 + (int64_t)(per - 1) * 60000, start = end - 7 * 86400000LL;
    printf("window %lld %lld\n", (long long)(start / 1000), (long long)(end / 1000));
    return 0;
}

int main(void) {
    double *nasa = NULL, *cpu = NULL;
    size_t nn = load_csv("nasa_http_1m.csv", &nasa);
    size_t nc = load_csv("nab_cpu_utilization_asg_misconfiguration.csv", &cpu);
    if (!nn || !nc) printf("(../shared/data missing: synthetic series only)\n");
    if (getenv("BENCH_TSDB_EXPORT")) {
        int rc = export_data(getenv("BENCH_TSDB_EXPORT"), nasa, nn);
        free(nasa);
        free(cpu);
        return rc;
    }
    if (getenv("BENCH_TSDB_QUERY_ONLY")) { /* the query figures alone */
        bench_query(nasa, nn);
        free(nasa);
        free(cpu);
        return 0;
    }
    bench_ingest();
    bench_snapshot();
    if (nn) bench_bytes("nasa_http_1m requests/min", nasa, nn);
    if (nc) bench_bytes("nab cpu % (3 decimals)", cpu, nc);
    size_t ns = 20160;
    double *syn = malloc(ns * sizeof *syn);
    double level = 50;
    for (size_t i = 0; i < ns; i++) {
        level += ((double)(rnd() % 2001) - 1000) / 1000;
        syn[i] = round(level * 100) / 100;
    }
    bench_bytes("synthetic gauge, 2 decimals", syn, ns);
    for (size_t i = 0; i < ns; i++)
        syn[i] = (double)rnd() / 1e10;
    bench_bytes("random full-precision doubles (worst case)", syn, ns);
    free(syn);
    bench_bytes_multi(nc ? cpu : NULL, nc);
    bench_query(nasa, nn);
    free(nasa);
    free(cpu);
    return 0;
}
