/* sim_test.c: the trace simulator and its policies. */
#include "offline/series_csv.h"
#include "offline/sim.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static workload_spec tide_spec(const char *model) {
    workload_spec s;
    wl_defaults(&s);
    snprintf(s.name, sizeof s.name, "web");
    s.min_replicas = 1;
    s.max_replicas = 40;
    s.n_traffic = 1;
    snprintf(s.traffic[0].name, sizeof s.traffic[0].name, "requests");
    s.n_providers = 2;
    memset(s.providers, 0, 2 * sizeof s.providers[0]);
    wl_provider *p = &s.providers[0];
    p->type = WL_PROV_PREDICTIVE;
    snprintf(p->name, sizeof p->name, "predictive");
    snprintf(p->model, sizeof p->model, "%s", model);
    p->quantile = 0.5;
    p->horizon_seconds = 3600;
    p->retrain_seconds = 86400;
    p->reforecast_seconds = 300;
    p->max_age_seconds = 30 * 86400;
    s.providers[1].type = WL_PROV_REACTIVE;
    snprintf(s.providers[1].name, sizeof s.providers[1].name, "reactive");
    s.down.stabilization_seconds = 0;
    s.keep_alive_seconds = 3600;
    return s;
}

/* 4 days of 1-minute demand: 50/min, jumping to 200/min every day from 12:00 to 14:00. */
static double *step_trace(size_t *n, int64_t *t0) {
    *n = 4 * 1440;
    *t0 = 1782864000;
    double *y = malloc(*n * sizeof *y);
    for (size_t i = 0; i < *n; i++) {
        int minute = (int)(i % 1440);
        y[i] = minute >= 720 && minute < 840 ? 200 : 50;
    }
    return y;
}

TEST(sim_step_demand_tide_anticipates_hpa_overloads_static_covers) {
    size_t n;
    int64_t t0;
    double *y = step_trace(&n, &t0);
    sim_trace tr = {y, n, t0, 60};
    sim_config cfg;
    sim_config_defaults(&cfg);
    cfg.eval_days = 1;
    cfg.peak_replicas = 10; /* capacity = 200 / (0.6 * 10) */
    workload_spec s = tide_spec("snaive-day");
    sim_result r[3];
    char err[256] = "";
    for (int p = 0; p < 3; p++) {
        int rc = sim_run(&cfg, &s, &tr, (sim_policy)p, &r[p], err, sizeof err);
        if (rc) printf("  %s\n", err);
        T_EQ_INT(rc, 0);
    }
    T_NEAR(r[0].capacity, 200 / 6.0, 1e-9);
    T_EQ_INT(r[2].static_replicas, 10);
    T_NEAR(r[2].overload_minutes, 0, 0);
    T_NEAR(r[2].replica_minutes, 10 * 1440, 1e-6);
    /* the 4x jump is beyond the HPA's 40% headroom until new pods are up (cold start 120 s) */
    T_ASSERT(r[1].overload_minutes >= 2.0);
    /* Tide starts the replicas ahead of the jump it has seen every day */
    T_ASSERT(r[0].overload_minutes < 0.1);
    T_ASSERT(r[0].replica_minutes < r[2].replica_minutes);
    T_ASSERT(r[0].scale_actions > 0 && r[1].scale_actions > 0);
    T_EQ_INT(r[2].scale_actions, 0);
    T_EQ_STR(r[0].model, "snaive-day");
    free(y);
}

/* The models are refitted every retrainSeconds of the evaluated span, as in the daemon. */
TEST(sim_refits_at_retrain_seconds) {
    size_t n;
    int64_t t0;
    double *y = step_trace(&n, &t0);
    sim_trace tr = {y, n, t0, 60};
    sim_config cfg;
    sim_config_defaults(&cfg);
    cfg.eval_days = 2;
    cfg.peak_replicas = 10;
    workload_spec s = tide_spec("snaive-day");
    sim_result r;
    char err[256] = "";
    T_EQ_INT(sim_run(&cfg, &s, &tr, SIM_TIDE, &r, err, sizeof err), 0);
    T_EQ_INT(r.fits, 2); /* before the span, and a day into it */
    s.providers[0].retrain_seconds = 6 * 3600;
    T_EQ_INT(sim_run(&cfg, &s, &tr, SIM_TIDE, &r, err, sizeof err), 0);
    T_EQ_INT(r.fits, 8);
    T_ASSERT(r.overload_minutes < 0.1);
    free(y);
}

TEST(sim_rejects_short_trace_and_missing_capacity) {
    size_t n;
    int64_t t0;
    double *y = step_trace(&n, &t0);
    sim_trace tr = {y, n, t0, 60};
    sim_config cfg;
    sim_config_defaults(&cfg);
    cfg.eval_days = 4; /* leaves no training day */
    cfg.peak_replicas = 10;
    workload_spec s = tide_spec("snaive-day");
    sim_result r;
    char err[256] = "";
    T_EQ_INT(sim_run(&cfg, &s, &tr, SIM_TIDE, &r, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "too short") != NULL);
    cfg.eval_days = 1;
    cfg.peak_replicas = 0;
    T_EQ_INT(sim_run(&cfg, &s, &tr, SIM_HPA, &r, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "--peak-replicas") != NULL);
    free(y);
}

TEST(sim_plot_writes_svg) {
    size_t n;
    int64_t t0;
    double *y = step_trace(&n, &t0);
    sim_trace tr = {y, n, t0, 60};
    sim_config cfg;
    sim_config_defaults(&cfg);
    cfg.eval_days = 1;
    cfg.peak_replicas = 10;
    cfg.record = 1;
    workload_spec s = tide_spec("snaive-day");
    sim_result r[2];
    char err[256] = "";
    T_EQ_INT(sim_run(&cfg, &s, &tr, SIM_TIDE, &r[0], err, sizeof err), 0);
    T_EQ_INT(sim_run(&cfg, &s, &tr, SIM_HPA, &r[1], err, sizeof err), 0);
    T_EQ_INT(r[0].npts, 1440);
    T_NEAR(r[0].demand[720], 200, 0);
    T_ASSERT(!isnan(r[0].forecast[720]));
    char path[] = "/tmp/tide-sim-test-XXXXXX";
    int fd = mkstemp(path);
    T_ASSERT(fd >= 0);
    close(fd);
    T_EQ_INT(sim_plot_svg(path, r, 2, err, sizeof err), 0);
    FILE *f = fopen(path, "r");
    char buf[8192];
    size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[len] = 0;
    if (f) fclose(f);
    unlink(path);
    T_ASSERT(strstr(buf, "<svg") != NULL);
    T_ASSERT(strstr(buf, "<polyline") != NULL);
    T_EQ_INT(sim_plot_svg("/nonexistent-dir/x.svg", r, 2, err, sizeof err), -ENOENT);
    T_ASSERT(strstr(err, "/nonexistent-dir/x.svg") != NULL);
    sim_result_fini(&r[0]);
    sim_result_fini(&r[1]);
    free(y);
}

TEST(sim_nasa_benchmark_goal) {
    /* the benchmark: Tide at most 0.3x the HPA's overload with no more replica-minutes */
    const char *path = test_shared_data("nasa_http_1m.csv");
    if (!path) {
        test_skip("../shared/data/nasa_http_1m.csv not present");
        return;
    }
    series_csv csv;
    char err[512];
    T_EQ_INT(series_csv_load(path, NULL, &csv, err, sizeof err), 0);
    workload_spec s;
    wl_problems probs;
    wl_problems_init(&probs);
    char spec_path[4096];
    const char *root = getenv("TIDE_SRC");
    snprintf(spec_path, sizeof spec_path, "%s/deploy/examples/simulate.yaml", root ? root : ".");
    int rc = wl_load(spec_path, &s, &probs);
    wl_problems_fini(&probs);
    T_EQ_INT(rc, 0);
    sim_trace tr = {csv.y, csv.n, csv.t0, csv.step};
    sim_config cfg;
    sim_config_defaults(&cfg);
    cfg.peak_replicas = 20;
    sim_result tide, hpa;
    T_EQ_INT(sim_run(&cfg, &s, &tr, SIM_TIDE, &tide, err, sizeof err), 0);
    T_EQ_INT(sim_run(&cfg, &s, &tr, SIM_HPA, &hpa, err, sizeof err), 0);
    printf("  tide overload %.1f min, %.0f replica-min; hpa overload %.1f min, %.0f replica-min\n",
           tide.overload_minutes, tide.replica_minutes, hpa.overload_minutes, hpa.replica_minutes);
    series_csv_fini(&csv);
    T_ASSERT(hpa.overload_minutes > 10);
    T_ASSERT(tide.overload_minutes <= 0.3 * hpa.overload_minutes);
    T_ASSERT(tide.replica_minutes <= hpa.replica_minutes);
}

/* The queue with known inputs: 2/s against 1/s for 120 s, then 0.5/s: the backlog grows 1/s
 * to 120 (a 120 s wait), drains at 0.5/s for 240 s; at a 30 s bound the arrivals of seconds
 * 30..298 wait longer, so minutes 0-4 violate and minute 5 (still queued, waits < 30 s) does
 * not. */
TEST(sim_queue_step_backlog_drain_and_violating_minutes) {
    sim_queue q = {0};
    sim_second s;
    double traffic[8] = {0}, late[8] = {0}, failed[8] = {0}, maxwait = 0;
    int queued = 0, first_late = -1, last_late = -1;
    for (int i = 0; i < 480; i++) {
        double a = i < 120 ? 2.0 : 0.5;
        sim_queue_second(&q, a, 1.0, 0, &s);
        T_NEAR(s.accepted, a, 1e-12);
        T_NEAR(s.failed, 0, 0);
        T_NEAR(s.served, 1.0 < a + q.backlog + s.served ? 1.0 : s.served, 1e-12);
        if (i == 119) T_NEAR(q.backlog, 120, 1e-9);
        traffic[i / 60] += a;
        if (s.wait > 30) {
            late[i / 60] += s.accepted;
            if (first_late < 0) first_late = i;
            last_late = i;
        }
        if (s.wait > maxwait) maxwait = s.wait;
        queued += q.backlog > 0;
    }
    T_NEAR(maxwait, 120, 1e-9);
    T_EQ_INT(first_late, 30);
    T_EQ_INT(last_late, 298);
    T_EQ_INT(queued, 359); /* seconds 0..358 end with traffic waiting; 359 empties it */
    T_NEAR(q.backlog, 0, 0);
    int viol[8];
    for (int m = 0; m < 8; m++)
        viol[m] = sim_minute_violates(traffic[m], late[m], failed[m]);
    for (int m = 0; m < 5; m++)
        T_EQ_INT(viol[m], 1);
    T_EQ_INT(viol[5], 0);
    T_EQ_INT(viol[6], 0);
    T_EQ_INT(viol[7], 0);
}

/* The queue timeout (HAProxy's `timeout queue`): at most timeout x capacity waits; the rest
 * fails, also when the capacity falls under what waits; with no capacity, arrivals fail at
 * once and the backlog waits for a replica. */
TEST(sim_queue_timeout_and_no_capacity) {
    sim_queue q = {0};
    sim_second s;
    for (int i = 0; i < 5; i++) { /* 3/s against 1/s: the backlog grows 2/s to 10 */
        sim_queue_second(&q, 3, 1, 10, &s);
        T_NEAR(s.failed, 0, 0);
    }
    T_NEAR(q.backlog, 10, 1e-12);
    sim_queue_second(&q, 3, 1, 10, &s); /* room for one: 2 fail, the wait stays 10 s */
    T_NEAR(s.accepted, 1, 1e-12);
    T_NEAR(s.failed, 2, 1e-12);
    T_NEAR(s.wait, 10, 1e-12);
    sim_queue_second(&q, 0, 0.5, 10, &s); /* capacity halved: 5 of the 10 waiting time out */
    T_NEAR(s.failed, 5, 1e-12);
    T_NEAR(s.served, 0.5, 1e-12);
    T_NEAR(q.backlog, 4.5, 1e-12);
    sim_queue_second(&q, 7, 0, 10, &s); /* no replica online: refused at once */
    T_NEAR(s.failed, 7, 0);
    T_NEAR(s.served, 0, 0);
    T_NEAR(q.backlog, 4.5, 1e-12);
    sim_queue q2 = {0}; /* demand exactly at capacity leaves no queue */
    for (int i = 0; i < 100; i++)
        sim_queue_second(&q2, 0.1 * 3, 0.3, 0, &s);
    T_NEAR(q2.backlog, 0, 0);
    /* the minute's rule: p99 above the bound = more than 1% of the answered late; failed
     * more than 0.1% */
    T_EQ_INT(sim_minute_violates(100, 1, 0), 0);
    T_EQ_INT(sim_minute_violates(100, 1.01, 0), 1);
    T_EQ_INT(sim_minute_violates(1000, 0, 1), 0);
    T_EQ_INT(sim_minute_violates(1000, 0, 1.5), 1);
    T_EQ_INT(sim_minute_violates(0, 0, 0), 0);
}

/* Through sim_run: a fleet that serves half what it is sized for (service capacity) overloads
 * at the 200/min peak (120% of its real capacity at 10 replicas) for two hours: the queue grows
 * until the timeout refuses traffic, and drains after the peak; the static policy's size is
 * unchanged, and with its real capacity nothing waits. */
TEST(sim_run_queue_slo_minutes_and_service_capacity) {
    size_t n;
    int64_t t0;
    double *y = step_trace(&n, &t0);
    sim_trace tr = {y, n, t0, 60};
    sim_config cfg;
    sim_config_defaults(&cfg);
    cfg.eval_days = 1;
    cfg.peak_replicas = 10; /* capacity 200 / 6 per minute */
    cfg.slo_delay = 30;
    cfg.queue_timeout = 600;
    workload_spec s = tide_spec("snaive-day");
    sim_result r;
    char err[256] = "";
    T_EQ_INT(sim_run(&cfg, &s, &tr, SIM_STATIC, &r, err, sizeof err), 0);
    T_EQ_INT(r.slo_assessed, 1);
    T_NEAR(r.slo_violation_minutes, 0, 0);
    T_NEAR(r.backlog_max_s, 0, 0);
    T_NEAR(r.queue_minutes, 0, 0);
    T_NEAR(r.traffic, 50 * 1320 + 200 * 120, 1e-6);
    sim_result_fini(&r);
    cfg.service_capacity = 200 / 6.0 * 0.5; /* 10 replicas serve 166.7/min: the peak is 120% */
    T_EQ_INT(sim_run(&cfg, &s, &tr, SIM_STATIC, &r, err, sizeof err), 0);
    T_EQ_INT(r.static_replicas, 10);
    T_NEAR(r.overload_minutes, 120, 1e-6);
    /* 33.3/min more than served: the wait passes 30 s (a backlog of 83.3) 150 s into the peak
     * (minute 722), the timeout (600 s: 1,666.7 waiting) after 3,000 s, after which traffic
     * fails; after the peak the queue drains at 116.7/min, under 30 s of wait 814 s later
     * (minute 853): minutes 722..853 violate */
    printf("  %.0f SLO minutes from minute %lld, %.1f failed, max wait %.1f s\n",
           r.slo_violation_minutes, (long long)(r.slo_minutes[0] - r.t0) / 60, r.failed,
           r.backlog_max_s);
    T_NEAR(r.backlog_max_s, 600, 1e-6);
    T_NEAR(r.failed, (200 - 200 / 6.0 * 5) * 70, 1e-6); /* 70 of the 120 minutes past it */
    T_NEAR(r.slo_violation_minutes, 132, 0);
    T_EQ_INT(r.n_slo_minutes, 132);
    T_EQ_INT(r.slo_minutes[0], r.t0 + 722 * 60);
    T_EQ_INT(r.slo_minutes[131], r.t0 + 853 * 60);
    for (size_t i = 1; i < r.n_slo_minutes; i++)
        T_ASSERT(r.slo_minutes[i] > r.slo_minutes[i - 1]);
    sim_result_fini(&r);
    /* the HPA meets the 4x jump with cold starts: the queue shows, and a trailing metric window
     * runs without changing what is accounted */
    cfg.service_capacity = 0;
    cfg.metric_window = 60;
    T_EQ_INT(sim_run(&cfg, &s, &tr, SIM_HPA, &r, err, sizeof err), 0);
    T_ASSERT(r.backlog_max_s > 30);
    T_ASSERT(r.slo_violation_minutes >= 1);
    sim_result_fini(&r);
    cfg.slo_delay = 0; /* not assessed without a bound */
    T_EQ_INT(sim_run(&cfg, &s, &tr, SIM_HPA, &r, err, sizeof err), 0);
    T_EQ_INT(r.slo_assessed, 0);
    T_ASSERT(r.slo_minutes == NULL);
    sim_result_fini(&r);
    free(y);
}

/* The first-come-first-served waits: 100 waiting at 1/s wait 100 s while the capacity stays;
 * when it doubles 10 s later, the last of them leaves after 10 + 90 / 2 = 55 s. Streamed with a
 * bounded memory: past it, the oldest take the estimate made at arrival. */
typedef struct waits {
    int n;
    int64_t t[16];
    double amount[16], wait[16];
} waits;

static void collect(void *ctx, int64_t t, double amount, double wait) {
    waits *w = ctx;
    if (w->n < 16) {
        w->t[w->n] = t;
        w->amount[w->n] = amount;
        w->wait[w->n++] = wait;
    }
}

static void fifo_run(const double *acc, const double *cap, int n, size_t max, waits *w) {
    sim_queue q = {0};
    sim_fifo f;
    memset(w, 0, sizeof *w);
    sim_fifo_init(&f, max, collect, w);
    for (int i = 0; i < n; i++) {
        sim_second s;
        sim_queue_second(&q, acc[i], cap[i], 0, &s);
        T_EQ_INT(sim_fifo_second(&f, i, s.accepted, s.dropped, s.served, cap[i], q.backlog, s.wait),
                 0);
    }
    sim_fifo_finish(&f);
}

TEST(sim_fifo_waits_follow_the_capacity_that_came) {
    enum { N = 200 };
    double acc[N] = {0}, cap[N];
    waits w;
    acc[0] = 101; /* 101 arrive in second 0; 1 served in it, 100 wait */
    acc[150] = 1; /* later, served within its second */
    for (int i = 0; i < N; i++)
        cap[i] = 1;
    fifo_run(acc, cap, N, 1000, &w);
    T_EQ_INT(w.n, 2);
    T_EQ_INT(w.t[0], 0);
    T_NEAR(w.amount[0], 101, 1e-9);
    T_NEAR(w.wait[0], 100, 1e-9);
    T_EQ_INT(w.t[1], 150);
    T_NEAR(w.wait[1], 0, 0);
    for (int i = 11; i < N; i++)
        cap[i] = 2;
    fifo_run(acc, cap, N, 1000, &w);
    T_NEAR(w.wait[0], 55, 1e-9);
    /* never served within the span: the estimate at arrival (100 / 1) */
    fifo_run(acc, cap, 20, 1000, &w);
    T_EQ_INT(w.n, 1);
    T_NEAR(w.wait[0], 100, 1e-9);
    /* a bound of 2 waiting seconds: the third pushes the oldest out with its estimate */
    double acc3[6] = {3, 3, 3, 0, 0, 0}, cap3[6] = {1, 1, 1, 10, 10, 10};
    fifo_run(acc3, cap3, 6, 2, &w);
    T_EQ_INT(w.n, 3);
    T_EQ_INT(w.t[0], 0);
    T_NEAR(w.wait[0], 2, 1e-9); /* backlog 2 at capacity 1 */
    T_EQ_INT(w.t[1], 1); /* 3 of second 1 and 3 of second 2 wait: served at 10/s in second 3 */
    T_NEAR(w.wait[1], 1.3, 1e-9);
    T_NEAR(w.wait[2], 0.6, 1e-9);
}

/* The settle rule: pods online only lately are not ready (0% on a scale-up). The HPA meets the
 * 4x jump with 4 new pods; once they are up, 7 pods run at 86%: ready at once, the HPA scales
 * to 10 within a sync; with a 10-minute settle the 4 read as 0% for 10 minutes and hold the
 * scale-up back, so the fleet runs above the target minutes longer. */
TEST(sim_settle_holds_scale_ups_back) {
    size_t n;
    int64_t t0;
    double *y = step_trace(&n, &t0);
    sim_trace tr = {y, n, t0, 60};
    sim_config cfg;
    sim_config_defaults(&cfg);
    cfg.eval_days = 1;
    cfg.peak_replicas = 10;
    workload_spec s = tide_spec("snaive-day");
    sim_result a, b;
    char err[256] = "";
    T_EQ_INT(sim_run(&cfg, &s, &tr, SIM_HPA, &a, err, sizeof err), 0);
    cfg.settle_seconds = 600;
    T_EQ_INT(sim_run(&cfg, &s, &tr, SIM_HPA, &b, err, sizeof err), 0);
    printf("  above target: %.1f min ready at once, %.1f min with a 600 s settle\n",
           a.above_target_minutes, b.above_target_minutes);
    T_ASSERT(b.above_target_minutes > a.above_target_minutes + 5);
    T_ASSERT(b.replica_minutes < a.replica_minutes);
    free(y);
}
