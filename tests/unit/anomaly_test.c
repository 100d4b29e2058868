/* anomaly_test.c: the online anomaly detector (models/anomaly.c) and its CSV runner
 * (offline/anomaly_csv.c): spikes and level shifts are flagged, normal noise is not, a point's
 * score never depends on later data, learning and refractory periods hold, bad input is refused
 * with the line. */
#include "models/anomaly.h"
#include "offline/anomaly_csv.h"
#include "test.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* Deterministic noise: xorshift64* mapped to a sum of uniforms (roughly Gaussian, sd 1). */
static double noise(uint64_t *s) {
    double acc = 0;
    for (int i = 0; i < 4; i++) {
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        acc += (double)((*s * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
    }
    return (acc - 2.0) * 1.732;
}

/* A 5-minute series with a daily cycle and noise, n points. */
static double *daily_series(size_t n, uint64_t seed) {
    double *y = malloc(n * sizeof *y);
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        y[i] = 100 + 30 * sin(2 * M_PI * (double)i / 288.0) + 3 * noise(&s);
    return y;
}

static anom_detector *det_new(int64_t step) {
    anom_opts o = {.step = step};
    anom_detector *d = NULL;
    char err[128];
    if (anom_new(&d, &o, err, sizeof err) != 0) return NULL;
    return d;
}

TEST(anomaly_flags_spike_not_noise) {
    size_t n = 4 * 288;
    double *y = daily_series(n, 7);
    size_t spike = 3 * 288 + 50;
    y[spike] += 60;
    anom_detector *d = det_new(300);
    T_ASSERT(d != NULL);
    size_t others = 0;
    int hit = 0;
    double at_spike = 0;
    for (size_t i = 0; i < n; i++) {
        anom_result r = anom_step(d, y[i]);
        T_ASSERT(r.score >= 0 && r.score <= 1);
        if (i == spike) {
            hit = r.anomaly;
            at_spike = r.score;
        } else {
            others += r.anomaly != 0;
        }
    }
    anom_free(d);
    free(y);
    T_ASSERT(hit);
    T_NEAR(at_spike, 1.0, 1e-9);
    /* three days of plain noise after learning: at most one flag a day by the refractory
     * period, and in fact fewer */
    T_ASSERT(others <= 1);
}

TEST(anomaly_flags_level_shift) {
    size_t n = 4 * 288;
    double *y = daily_series(n, 11);
    size_t at = 3 * 288;
    for (size_t i = at; i < n; i++)
        y[i] += 40;
    anom_detector *d = det_new(300);
    T_ASSERT(d != NULL);
    int hit = 0;
    for (size_t i = 0; i < n; i++)
        if (anom_step(d, y[i]).anomaly && i >= at && i <= at + 3) hit = 1;
    anom_free(d);
    free(y);
    T_ASSERT(hit);
}

TEST(anomaly_is_online) {
    /* the same first 700 points, different futures: identical scores on the shared prefix */
    size_t n = 900, cut = 700;
    double *a = daily_series(n, 3), *b = daily_series(n, 3);
    for (size_t i = cut; i < n; i++)
        b[i] = 1000 + (double)i;
    anom_detector *da = det_new(300), *db = det_new(300);
    T_ASSERT(da && db);
    for (size_t i = 0; i < n; i++) {
        anom_result ra = anom_step(da, a[i]), rb = anom_step(db, b[i]);
        if (i < cut && (ra.score != rb.score || ra.anomaly != rb.anomaly))
            T_FAIL("point %zu scored differently with different later data", i);
    }
    T_EQ_INT(anom_count(da), n);
    anom_free(da);
    anom_free(db);
    free(a);
    free(b);
}

TEST(anomaly_learning_period_holds) {
    /* a 1-minute series: the learning period is one day = 1440 points */
    anom_opts o = {.step = 60};
    anom_detector *d = NULL;
    char err[128];
    T_EQ_INT(anom_new(&d, &o, err, sizeof err), 0);
    uint64_t s = 5;
    for (size_t i = 0; i < 1440; i++) {
        double x = 50 + noise(&s) + (i == 1000 ? 500 : 0);
        anom_result r = anom_step(d, x);
        if (r.anomaly || r.score != 0)
            T_FAIL("point %zu scored %g during the learning period", i, r.score);
    }
    anom_result r = anom_step(d, 5000);
    T_ASSERT(r.anomaly);
    anom_free(d);
}

TEST(anomaly_refractory_one_flag_per_episode) {
    size_t n = 5 * 288;
    double *y = daily_series(n, 21);
    size_t s1 = 2 * 288, s2 = s1 + 20, s3 = s1 + 288 + 30;
    y[s1] += 80;
    y[s2] += 80;
    y[s3] += 80;
    anom_detector *d = det_new(300);
    T_ASSERT(d != NULL);
    int f1 = 0, f2 = 0, f3 = 0;
    for (size_t i = 0; i < n; i++) {
        int a = anom_step(d, y[i]).anomaly;
        f1 |= a && i == s1;
        f2 |= a && i == s2;
        f3 |= a && i == s3;
    }
    anom_free(d);
    free(y);
    T_ASSERT(f1);
    T_ASSERT(!f2); /* within a day of the first */
    T_ASSERT(f3);
}

TEST(anomaly_missing_values_and_constant_series) {
    anom_detector *d = det_new(300);
    T_ASSERT(d != NULL);
    for (size_t i = 0; i < 600; i++) {
        anom_result r = anom_step(d, i % 50 == 7 ? NAN : 10.0);
        T_ASSERT(!isnan(r.score));
        T_ASSERT(!r.anomaly);
    }
    T_ASSERT(anom_step(d, INFINITY).score == 0);
    anom_result r = anom_step(d, 12.0);
    T_ASSERT(r.anomaly);
    T_ASSERT(r.score > 0.9);
    anom_free(d);
}

TEST(anomaly_rejects_bad_options) {
    anom_detector *d = NULL;
    char err[128] = "";
    anom_opts o = {.step = 0};
    T_EQ_INT(anom_new(&d, &o, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "step") != NULL);
    o = (anom_opts){.step = 60, .threshold = 1.5};
    T_EQ_INT(anom_new(&d, &o, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "threshold") != NULL);
    o = (anom_opts){.step = 60, .learn_s = -1};
    T_EQ_INT(anom_new(&d, &o, err, sizeof err), -EINVAL);
    T_ASSERT(d == NULL);
    anom_free(NULL);
}

static int parse(const char *text, anom_rows *r, char *err) {
    return anom_rows_parse(text, strlen(text), r, err, 256);
}

TEST(anomaly_csv_rows_kept_as_given) {
    anom_rows r;
    char err[256] = "", ts[64];
    /* a gap (1200), a duplicate (900 twice): every row stays a row */
    T_EQ_INT(parse("timestamp,value\r\n300,1\r\n600,2\r\n900,3\r\n900,4\r\n2100,5\r\n", &r, err),
             0);
    T_EQ_INT(r.n, 5);
    T_EQ_INT(r.step, 300);
    T_EQ_INT(r.datetime, 0);
    anom_rows_format_ts(&r, 4, ts, sizeof ts);
    T_EQ_STR(ts, "2100");
    anom_result res[5];
    anom_opts o = {0};
    T_EQ_INT(anom_rows_run(&r, &o, res, err, sizeof err), 0);
    anom_rows_fini(&r);
    /* a UTF-8 byte order mark before the first row is not part of it */
    T_EQ_INT(parse("\xEF\xBB\xBF"
                   "300,1\n600,2\n",
                   &r, err),
             0);
    T_EQ_INT(r.n, 2);
    anom_rows_fini(&r);
    /* NAB's own date format, echoed back the same way */
    T_EQ_INT(parse("timestamp,value\n2014-04-10 00:04:00,20.1\n2014-04-10 00:09:00,21\n", &r, err),
             0);
    T_EQ_INT(r.datetime, 1);
    T_EQ_INT(r.t[0], 1397088240);
    anom_rows_format_ts(&r, 1, ts, sizeof ts);
    T_EQ_STR(ts, "2014-04-10 00:09:00");
    anom_rows_fini(&r);
}

TEST(anomaly_csv_errors_name_line) {
    anom_rows r;
    char err[256] = "";
    T_EQ_INT(parse("timestamp,value\n600,1\n660,abc\n", &r, err), -EINVAL);
    T_ASSERT(strstr(err, "line 3") && strstr(err, "bad value"));
    T_EQ_INT(parse("600,1\n660,2\n630,3\n", &r, err), -EINVAL);
    T_ASSERT(strstr(err, "line 3") && strstr(err, "back in time"));
    T_EQ_INT(parse("600,1\n660\n", &r, err), -EINVAL);
    T_ASSERT(strstr(err, "line 2"));
    T_EQ_INT(parse("600,1\n2014-04-10 00:09:00,2\n", &r, err), -EINVAL);
    T_ASSERT(strstr(err, "line 2"));
    T_EQ_INT(parse("600,1\n660,inf\n", &r, err), -EINVAL);
    T_EQ_INT(parse("timestamp,value\n600,1\n", &r, err), -EINVAL);
    T_ASSERT(strstr(err, "fewer than 2"));
    T_EQ_INT(parse("600,1\n600,2\n", &r, err), -EINVAL);
    T_ASSERT(strstr(err, "no step"));
}
