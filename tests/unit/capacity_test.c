/* capacity_test.c: the capacity model recovers a known law (util = a*traffic/replicas + b + a
 * weekend bump), the solver returns the known replica count, and the gates say why they fail. */
#include "models/capacity.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>

static double noise(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return ((*s >> 8) & 0xffff) / 32768.0 - 1.0;
}

#define LAW_A 0.01
#define LAW_B 0.10
#define BUMP 0.05

static int weekend(int64_t ts) {
    int dow = (int)((ts / 86400 + 4) % 7); /* 0 = Sunday */
    return dow == 0 || dow == 6;
}

/* 14 days at 5-minute steps: daily traffic cycle, replicas following traffic with jitter. */
static cap_obs *synthetic(size_t *n_out, int correlated) {
    size_t n = 14 * 288;
    cap_obs *o = malloc(n * sizeof *o);
    unsigned s = 42;
    int64_t t0 = 1700006400; /* a UTC midnight (Wednesday) */
    for (size_t i = 0; i < n; i++) {
        int64_t ts = t0 + (int64_t)i * 300;
        double T = 600 + 400 * sin(2 * M_PI * (double)(ts % 86400) / 86400.0) + 50 * noise(&s);
        double r = ceil(T / 40) + (double)((int)(3 * (noise(&s) + 1)) - 2);
        if (r < 1) r = 1;
        double u = LAW_A * T / r + LAW_B + (weekend(ts) ? BUMP : 0) + 0.01 * noise(&s);
        if (!correlated) u = 0.4 + 0.2 * noise(&s);
        o[i] = (cap_obs){.ts = ts, .traffic = T, .replicas = r, .util = u};
    }
    *n_out = n;
    return o;
}

TEST(cap_recovers_known_law_and_solves) {
    size_t n;
    cap_obs *o = synthetic(&n, 1);
    cap_model *m = NULL;
    cap_report rep;
    char err[256] = "";
    cap_options opt = {.use_residual = 1, .seed = 1};
    T_EQ_INT(cap_fit(&m, o, n, &opt, &rep, err, sizeof err), 0);
    free(o);
    T_ASSERT(rep.passed);
    T_NEAR(rep.coef, LAW_A, 0.05 * LAW_A);
    T_NEAR(rep.intercept, LAW_B + BUMP * 2 / 7, 0.02);
    T_ASSERT(rep.corr > 0.9);
    T_ASSERT(rep.holdout_mape < 0.05);
    int64_t wed_noon = 1700006400 + 7 * 86400 + 43200, sat_noon = 1700006400 + 3 * 86400 + 43200;
    T_ASSERT(!weekend(wed_noon) && weekend(sat_noon));
    /* the residual trees add the weekend bump back */
    T_NEAR(cap_predict_util(m, 1000, 25, wed_noon), LAW_A * 40 + LAW_B, 0.006);
    T_NEAR(cap_predict_util(m, 1000, 25, sat_noon), LAW_A * 40 + LAW_B + BUMP, 0.006);
    /* a*1000/n + b <= target holds first at n = 25 (24.5 exactly at the boundary) */
    double target = LAW_A * 1000 / 24.5 + LAW_B;
    T_EQ_INT(cap_solve_replicas(m, 1000, wed_noon, target, 1, 200), 25);
    T_EQ_INT(cap_solve_replicas(m, 1000, sat_noon, target + BUMP, 1, 200), 25);
    T_EQ_INT(cap_solve_replicas(m, 1000, wed_noon, target, 30, 200), 30); /* min respected */
    T_EQ_INT(cap_solve_replicas(m, 1000, wed_noon, 0.01, 1, 50), 50);     /* none: max */
    cap_free(m);
}

TEST(cap_linear_only_without_residual) {
    size_t n;
    cap_obs *o = synthetic(&n, 1);
    cap_model *m = NULL;
    cap_report rep;
    char err[256] = "";
    cap_options opt = {.use_residual = 0};
    T_EQ_INT(cap_fit(&m, o, n, &opt, &rep, err, sizeof err), 0);
    free(o);
    T_NEAR(rep.coef, LAW_A, 0.05 * LAW_A);
    T_NEAR(cap_predict_util(m, 1000, 25, 0), rep.intercept + rep.coef * 40, 1e-12);
    T_ASSERT(rep.l1_ratio >= 0.1 && rep.l1_ratio <= 1);
    cap_free(m);
}

TEST(cap_gate_fails_without_correlation) {
    size_t n;
    cap_obs *o = synthetic(&n, 0);
    cap_model *m = NULL;
    cap_report rep;
    char err[256] = "";
    T_EQ_INT(cap_fit(&m, o, n, NULL, &rep, err, sizeof err), 0);
    free(o);
    T_ASSERT(!rep.passed);
    T_ASSERT(strstr(rep.reason, "correlation") != NULL);
    cap_free(m);
}

TEST(cap_gate_needs_a_day_of_history) {
    size_t n;
    cap_obs *o = synthetic(&n, 1);
    cap_model *m = NULL;
    cap_report rep;
    char err[256] = "";
    T_EQ_INT(cap_fit(&m, o, 200, NULL, &rep, err, sizeof err), 0); /* 200 x 5 min < 1 day */
    free(o);
    T_ASSERT(!rep.passed);
    T_ASSERT(strstr(rep.reason, "hold out a day") != NULL);
    cap_free(m);
}

TEST(cap_bad_input_named) {
    cap_obs o[20];
    for (int i = 0; i < 20; i++)
        o[i] = (cap_obs){.ts = i * 60, .traffic = 1, .replicas = 1, .util = 0.1};
    o[7].replicas = 0;
    cap_model *m = NULL;
    char err[256] = "";
    T_EQ_INT(cap_fit(&m, o, 20, NULL, NULL, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "observation 7") != NULL);
    T_ASSERT(m == NULL);
}
