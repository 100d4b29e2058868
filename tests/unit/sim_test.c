/* sim_test.c: the trace simulator and its policies. */
#include "offline/series_csv.h"
#include "offline/sim.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static workload_spec tide_spec(const char *model) {
    workload_spec s;
    workload_defaults(&s);
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
    int rc = workload_load(spec_path, &s, &probs);
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
