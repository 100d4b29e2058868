/* backtest_test.c: protocol arithmetic (T0, origins, 10-minute bins) and metrics on
 * hand-computed examples. */
#include "offline/backtest.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>

TEST(bt_metrics_hand_computed) {
    double f[4] = {10, 8, 0, 5};
    double y[4] = {8, 10, 2, 5};
    double mae, rmse, wape, mase, under;
    bt_metrics(f, y, 4, 2.0, &mae, &rmse, &wape, &mase, &under);
    T_NEAR(mae, (2 + 2 + 2 + 0) / 4.0, 1e-12);
    T_NEAR(rmse, sqrt((4 + 4 + 4) / 4.0), 1e-12);
    T_NEAR(wape, 6.0 / 25.0, 1e-12);
    T_NEAR(mase, 1.5 / 2.0, 1e-12);
    T_NEAR(under, 2 / 4.0, 1e-12); /* 8 < 9 and 0 < 1.8; 5 = 5 is not under */
}

/* pinball_p90: mean of 0.9 (y - f) where f is under y and 0.1 (f - y) where over, / scale */
TEST(bt_pinball_hand_computed) {
    double f[] = {10, 10, 10, 10}, y[] = {12, 10, 5, 20};
    /* 0.9*2 + 0 + 0.1*5 + 0.9*10 = 11.3; / 4 points / scale 2 */
    T_NEAR(bt_pinball(f, y, 4, 0.9, 2.0), 11.3 / 4 / 2, 1e-12);
    /* at q = 0.5 it is half the MASE: MAE (2+0+5+10)/4 = 4.25 -> 4.25 / 2 / 2 */
    T_NEAR(bt_pinball(f, y, 4, 0.5, 2.0), 4.25 / 2 / 2, 1e-12);
    T_ASSERT(isnan(bt_pinball(f, y, 0, 0.9, 2.0)));
}

TEST(bt_task_names) {
    bt_task t;
    T_EQ_INT(bt_task_parse("scale-1h", &t), 0);
    T_EQ_INT(t, BT_SCALE_1H);
    T_EQ_INT(bt_task_parse("day-ahead", &t), 0);
    T_EQ_INT(t, BT_DAY_AHEAD);
    T_EQ_INT(bt_task_parse("hourly", &t), -EINVAL);
}

/* 10 days at 1 min starting 00:07:00 UTC on a Monday (not on a bin edge). */
TEST(bt_origins_and_bins) {
    size_t n = 10 * 1440;
    double *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++)
        y[i] = (double)(i % 1440) + (i % 1440 == 5 ? (double)(i / 1440) : 0);
    int64_t t0 = 345600 + 7 * 60; /* 1970-01-05 00:07 UTC */
    fc_series s = {.y = y, .n = n, .t0 = t0, .step = 60};
    bt_data d;
    char err[256] = "";
    T_EQ_INT(bt_prepare(&s, BT_SCALE_1H, &d, err, sizeof err), 0);
    T_EQ_INT(d.horizon, 60);
    T_EQ_INT(d.n_train, 3 * 1440);
    T_EQ_INT(d.n_origins, 168);
    T_EQ_INT(d.origins[0], 3 * 1440);
    T_EQ_INT(d.origins[167], 3 * 1440 + 167 * 60);
    /* one point a day changes by 1 from the day before: scale = 1/1440 */
    T_NEAR(d.mase_scale, 2.0 / (3.0 * 1440.0 - 1440.0), 1e-12);
    bt_data_fini(&d);
    free(y);
}

TEST(bt_day_ahead_bins) {
    size_t n = 10 * 1440;
    double *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++)
        y[i] = 1.0 + (double)(i % 7); /* not daily-periodic */
    int64_t t0 = 345600 + 7 * 60;
    fc_series s = {.y = y, .n = n, .t0 = t0, .step = 60};
    bt_data d;
    char err[256] = "";
    T_EQ_INT(bt_prepare(&s, BT_DAY_AHEAD, &d, err, sizeof err), 0);
    T_EQ_INT(d.step, 600);
    T_EQ_INT(d.horizon, 144);
    T_EQ_INT(d.t0, 345600 + 600); /* first complete bin starts 00:10 */
    /* bins end 10 days later at 00:07 -> last complete bin ends 00:00 of day 10 */
    T_EQ_INT(d.n, 10 * 144 - 1);
    /* first bin holds native samples 3..12 (00:10..00:19) */
    double want = 0;
    for (int i = 3; i < 13; i++)
        want += 1.0 + (double)(i % 7);
    T_NEAR(d.y[0], want, 1e-9);
    /* T0 = 3 days after t0 = day 3 00:07: training bins end at or before it */
    T_EQ_INT(d.n_train, 3 * 144 - 1);
    /* origins: midnights of days 4..9 whose 144 bins fit (day 9 ends at the data end) */
    T_EQ_INT(d.n_origins, 6);
    T_EQ_INT(d.t0 + (int64_t)d.origins[0] * 600, 345600 + 4 * 86400);
    bt_data_fini(&d);
    free(y);
}

/* The protocol's bins are [b, b + 600) for b a multiple of 600 s: a native sample belongs to
 * the bin its own timestamp falls in. NAB's 5-minute series are stamped hh:02, hh:07, ...; bin
 * 00:00 holds the samples at 00:02 and 00:07 (not 23:57 and 00:02), and it is complete though
 * it starts before the first sample. */
TEST(bt_day_ahead_bins_off_the_step_grid) {
    size_t n = 10 * 288;
    double *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++)
        y[i] = (double)(i * i % 1009); /* every bin's sum names its samples */
    int64_t t0 = 345600 + 120;         /* 1970-01-05 00:02 UTC */
    fc_series s = {.y = y, .n = n, .t0 = t0, .step = 300};
    bt_data d;
    char err[256] = "";
    T_EQ_INT(bt_prepare(&s, BT_DAY_AHEAD, &d, err, sizeof err), 0);
    T_EQ_INT(d.t0, 345600); /* samples 00:02 and 00:07 make the first complete bin */
    T_EQ_INT(d.n, 10 * 144);
    for (size_t b = 0; b < d.n; b++) {
        if (fabs(d.y[b] - (y[2 * b] + y[2 * b + 1])) > 1e-9) {
            T_FAIL("bin %zu holds %g, not samples %zu and %zu (%g)", b, d.y[b], 2 * b, 2 * b + 1,
                   y[2 * b] + y[2 * b + 1]);
            break;
        }
    }
    /* T0 = day 3 00:02: the 432 bins of days 0..2 end at or before it */
    T_EQ_INT(d.n_train, 3 * 144);
    T_EQ_INT(d.n_origins, 6);
    T_EQ_INT(d.t0 + (int64_t)d.origins[0] * 600, 345600 + 4 * 86400);
    T_EQ_INT(d.origins[5] + 144, d.n);
    bt_data_fini(&d);

    /* 1-minute samples at hh:mm:30 from 00:07:30: bin 00:00 misses 00:00:30..00:06:30, so
     * the first complete bin is 00:10, holding 00:10:30..00:19:30 (samples 3..12); the last
     * sample (day 10 00:06:30) leaves day 9 23:50 the last complete bin. */
    size_t m = 10 * 1440;
    double *z = malloc(m * sizeof *z);
    for (size_t i = 0; i < m; i++)
        z[i] = (double)(i * i % 1009);
    fc_series u = {.y = z, .n = m, .t0 = 345600 + 7 * 60 + 30, .step = 60};
    T_EQ_INT(bt_prepare(&u, BT_DAY_AHEAD, &d, err, sizeof err), 0);
    T_EQ_INT(d.t0, 345600 + 600);
    T_EQ_INT(d.n, 10 * 144 - 1);
    double want = 0;
    for (size_t i = 3; i < 13; i++)
        want += z[i];
    T_NEAR(d.y[0], want, 1e-9);
    want = 0;
    for (size_t i = m - 7 - 10; i < m - 7; i++)
        want += z[i];
    T_NEAR(d.y[d.n - 1], want, 1e-9);
    bt_data_fini(&d);
    free(z);
    free(y);
}

TEST(bt_too_short_is_an_error) {
    double y[100] = {0};
    fc_series s = {.y = y, .n = 100, .t0 = 0, .step = 60};
    bt_data d;
    char err[256] = "";
    T_EQ_INT(bt_prepare(&s, BT_SCALE_1H, &d, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "too short") != NULL);
}

/* A training part without day-to-day variation leaves MASE undefined; the error says whether
 * it is constant (an export of zeros) or repeats a daily shape exactly. */
TEST(bt_mase_undefined_names_why) {
    size_t n = 10 * 1440;
    double *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++)
        y[i] = i < 3 * 1440 ? 0 : (double)i;
    fc_series s = {.y = y, .n = n, .t0 = 0, .step = 60};
    bt_data d;
    char err[256] = "";
    T_EQ_INT(bt_prepare(&s, BT_SCALE_1H, &d, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "the training data is constant (all 4320 steps 0)") != NULL);
    for (size_t i = 0; i < n; i++)
        y[i] = (double)(i % 1440);
    T_EQ_INT(bt_prepare(&s, BT_SCALE_1H, &d, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "repeats exactly every day") != NULL);
    free(y);
}

#include "offline/series_csv.h"

/* The shared NASA trace as a series (1), or a skip without the shared data (0). */
static int load_nasa(series_csv *s, fc_series *nat) {
    const char *p = test_shared_data("nasa_http_1m.csv");
    if (!p) {
        test_skip("no shared data");
        return 0;
    }
    char err[256] = "";
    if (series_csv_load(p, NULL, s, err, sizeof err) != 0) {
        test_fail(__FILE__, __LINE__, "loading %s: %s", p, err);
        return 0;
    }
    *nat = (fc_series){.y = s->y, .n = s->n, .t0 = s->t0, .step = s->step};
    return 1;
}

/* The protocol reproduces the reference figures of the issue for the baselines on NASA
 * (last 0.696 / 1.405, seasonal naive week 0.823 / 0.618, day 0.874 / 0.826). */
TEST(bt_nasa_baselines_match_reference) {
    series_csv s;
    fc_series nat;
    char err[256] = "";
    if (!load_nasa(&s, &nat)) return;
    static const char *models[] = {"last", "snaive-week", "snaive-day"};
    static const double ref[2][3] = {{0.696, 0.823, 0.874}, {1.405, 0.618, 0.826}};
    for (int t = 0; t < 2; t++) {
        bt_data d;
        T_EQ_INT(bt_prepare(&nat, t ? BT_DAY_AHEAD : BT_SCALE_1H, &d, err, sizeof err), 0);
        T_EQ_INT(d.n_origins, t ? 6 : 168);
        for (int m = 0; m < 3; m++) {
            bt_result r;
            T_EQ_INT(bt_run(&d, models[m], NULL, 0, &r, err, sizeof err), 0);
            T_NEAR(r.mase, ref[t][m], 0.0006);
            bt_result_fini(&r);
        }
        bt_data_fini(&d);
    }
    series_csv_fini(&s);
}

/* A NAB-style export (date-times 53 s past the minute, as realTweets) gives the protocol the
 * same series, split, bins and scores as the same rows written in unix seconds: the bins of
 * day-ahead hold the samples stamped hh:m2:53 and hh:m7:53. */
TEST(bt_date_time_csv_matches_unix_seconds) {
    size_t n = 10 * 288, cap = n * 40 + 32;
    char *dates = malloc(cap), *secs = malloc(cap);
    size_t ld = (size_t)snprintf(dates, cap, "timestamp,value\n");
    size_t ls = (size_t)snprintf(secs, cap, "timestamp,value\n");
    int64_t t0 = 1424908800 + 2 * 60 + 53; /* 2015-02-26 00:02:53 UTC */
    for (size_t i = 0; i < n; i++) {
        int64_t t = t0 + (int64_t)i * 300, day = t / 86400, s = t % 86400;
        double v = 100 + 50 * sin(2 * M_PI * (double)s / 86400) + (double)(i * 7 % 13);
        /* days 0..9 are 2015-02-26..28 and 2015-03-01..07 */
        int64_t dd = day - 16492; /* 2015-02-26 is day 16492 */
        unsigned mo = dd < 3 ? 2 : 3, dm = dd < 3 ? (unsigned)(26 + dd) : (unsigned)(dd - 2);
        ld += (size_t)snprintf(dates + ld, cap - ld, "2015-%02u-%02u %02lld:%02lld:%02lld,%.6f\n",
                               mo, dm, (long long)(s / 3600), (long long)(s / 60 % 60),
                               (long long)(s % 60), v);
        ls += (size_t)snprintf(secs + ls, cap - ls, "%lld,%.6f\n", (long long)t, v);
    }
    series_csv a, b;
    char err[256] = "";
    T_EQ_INT(series_csv_parse(dates, ld, NULL, &a, err, sizeof err), 0);
    T_EQ_INT(series_csv_parse(secs, ls, NULL, &b, err, sizeof err), 0);
    T_EQ_INT(a.t0, t0);
    T_EQ_INT(a.step, 300);
    T_EQ_INT(a.n, b.n);
    T_EQ_INT(a.stats.snapped + a.stats.filled + a.stats.duplicates, 0);
    for (int t = 0; t < 2; t++) {
        fc_series na = {.y = a.y, .n = a.n, .t0 = a.t0, .step = a.step};
        fc_series nb = {.y = b.y, .n = b.n, .t0 = b.t0, .step = b.step};
        bt_data da, db;
        T_EQ_INT(bt_prepare(&na, t ? BT_DAY_AHEAD : BT_SCALE_1H, &da, err, sizeof err), 0);
        T_EQ_INT(bt_prepare(&nb, t ? BT_DAY_AHEAD : BT_SCALE_1H, &db, err, sizeof err), 0);
        T_EQ_INT(da.t0, db.t0);
        T_EQ_INT(da.n, db.n);
        T_EQ_INT(da.n_train, db.n_train);
        T_EQ_INT(da.n_origins, db.n_origins);
        if (t) { /* the first bin, 00:00-00:10, holds the 00:02:53 and 00:07:53 samples */
            T_EQ_INT(da.t0, 1424908800);
            T_NEAR(da.y[0], a.y[0] + a.y[1], 1e-9);
        }
        for (size_t i = 0; i < da.n; i++)
            if (da.y[i] != db.y[i]) {
                T_FAIL("task %d value %zu differs", t, i);
                break;
            }
        bt_result ra, rb;
        T_EQ_INT(bt_run(&da, "snaive-day", NULL, 0, &ra, err, sizeof err), 0);
        T_EQ_INT(bt_run(&db, "snaive-day", NULL, 0, &rb, err, sizeof err), 0);
        T_NEAR(ra.mase, rb.mase, 0);
        bt_result_fini(&ra);
        bt_result_fini(&rb);
        bt_data_fini(&da);
        bt_data_fini(&db);
    }
    series_csv_fini(&a);
    series_csv_fini(&b);
    free(dates);
    free(secs);
}

/* What each origin's forecast used: one name at every origin for a model that does not choose
 * again (the fit's name), and for auto the online choices, which on NASA's day-ahead week move
 * off the fit's choice (BENCHMARKS.md: the upward factor is chosen again at every origin); the
 * counts add up to the origins. */
TEST(bt_used_online_counts_every_origin) {
    series_csv s;
    fc_series nat;
    char err[256] = "";
    if (!load_nasa(&s, &nat)) return;
    bt_data d;
    T_EQ_INT(bt_prepare(&nat, BT_DAY_AHEAD, &d, err, sizeof err), 0);
    bt_result r;
    T_EQ_INT(bt_run(&d, "snaive-week", NULL, 0, &r, err, sizeof err), 0);
    T_EQ_INT(r.n_used, 1);
    T_ASSERT(strcmp(r.used[0].name, "snaive-week") == 0);
    T_EQ_INT(r.used[0].origins, d.n_origins);
    bt_result_fini(&r);
    T_EQ_INT(bt_run(&d, "auto", NULL, 0, &r, err, sizeof err), 0);
    T_ASSERT(r.n_used >= 2 && r.n_used <= BT_USED_MAX);
    size_t sum = r.used_other, fit = 0;
    for (size_t i = 0; i < r.n_used; i++) {
        T_ASSERT(strncmp(r.used[i].name, "auto:", 5) == 0);
        sum += r.used[i].origins;
        fit += strcmp(r.used[i].name, r.model) == 0;
    }
    T_EQ_INT(sum, d.n_origins);
    T_ASSERT(fit <= 1);
    bt_result_fini(&r);
    bt_data_fini(&d);
    series_csv_fini(&s);
}
