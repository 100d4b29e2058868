/* forecast_test.c: the forecasters behind forecast.h: baselines, quantiles, Holt-Winters on a
 * synthetic seasonal series, the outage mask. */
#include "models/forecast.h"
#include "models/model.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

TEST(fc_unknown_model_named) {
    forecaster *f = NULL;
    char err[256] = "";
    T_EQ_INT(fc_new(&f, "prophet", NULL, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "prophet") != NULL);
    T_ASSERT(f == NULL);
}

TEST(fc_baselines_on_hand_series) {
    /* step 1 h: a day is 24 steps, a week 168 */
    enum { N = 24 * 15 };
    double *y = malloc(N * sizeof *y);
    for (int i = 0; i < N; i++)
        y[i] = i; /* value = index makes lags visible */
    fc_series s = {.y = y, .n = N, .t0 = 0, .step = 3600};
    fc_options o = {.horizon = 30};
    char err[256] = "";
    double out[30];
    const char *names[] = {"last", "snaive-day", "snaive-week"};
    for (int m = 0; m < 3; m++) {
        forecaster *f = NULL;
        T_EQ_INT(fc_new(&f, names[m], &o, err, sizeof err), 0);
        T_EQ_INT(fc_fit(f, &s, err, sizeof err), 0);
        T_EQ_STR(fc_name(f), names[m]);
        T_EQ_INT(fc_predict(f, &s, 30, 0.5, out, err, sizeof err), 0);
        if (m == 0) T_NEAR(out[29], N - 1, 0);
        if (m == 1) {
            T_NEAR(out[0], N - 24, 0);
            T_NEAR(out[23], N - 1, 0);
            T_NEAR(out[24], N - 24, 0); /* two days back for h > 1 day */
            T_NEAR(out[29], N - 19, 0);
        }
        if (m == 2) T_NEAR(out[5], N - 168 + 5, 0);
        fc_free(f);
    }
    free(y);
}

TEST(fc_outage_mask) {
    double y[1000];
    for (int i = 0; i < 1000; i++)
        y[i] = 5;
    for (int i = 10; i < 50; i++)
        y[i] = 0; /* 40 min at 1-min step: outage */
    y[70] = 0;    /* a single zero: real */
    unsigned char mask[1000];
    T_EQ_INT(fc__mask_outages(y, 1000, 60, mask), 40);
    T_EQ_INT(mask[9], 1);
    T_EQ_INT(mask[10], 0);
    T_EQ_INT(mask[49], 0);
    T_EQ_INT(mask[70], 1);
}

/* Deterministic pseudo-noise in [-1, 1). */
static double noise(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return ((*s >> 8) & 0xffff) / 32768.0 - 1.0;
}

/* 21 days at 10-minute steps of 100 + 30 sin(day) + a weekend bump + noise: the seasonal
 * models must learn the daily shape, and p90 must sit above p50. */
static double *synthetic_seasonal(size_t n, int64_t t0, unsigned seed) {
    double *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        int64_t ts = t0 + (int64_t)i * 600;
        double ph = 2 * M_PI * (double)(ts % 86400) / 86400.0;
        int dow = (int)((ts / 86400 + 4) % 7); /* 0 = Sunday */
        y[i] = 100 + 30 * sin(ph) + (dow == 0 || dow == 6 ? 15 : 0) + 4 * noise(&seed);
    }
    return y;
}

static void check_seasonal_model(const char *model, double max_mae) {
    size_t n = 21 * 144, H = 144;
    int64_t t0 = 1700006400; /* a UTC midnight */
    double *y = synthetic_seasonal(n + H, t0, 7);
    fc_series s = {.y = y, .n = n, .t0 = t0, .step = 600};
    fc_options o = {.horizon = (int)H, .seed = 1};
    forecaster *f = NULL;
    char err[256] = "";
    double p50[144], p90[144];
    T_EQ_INT(fc_new(&f, model, &o, err, sizeof err), 0);
    T_EQ_INT(fc_fit(f, &s, err, sizeof err), 0);
    T_EQ_INT(fc_predict(f, &s, (int)H, 0.5, p50, err, sizeof err), 0);
    T_EQ_INT(fc_predict(f, &s, (int)H, 0.9, p90, err, sizeof err), 0);
    double mae = 0;
    int above = 0;
    for (size_t i = 0; i < H; i++) {
        int64_t ts = t0 + (int64_t)(n + i) * 600;
        double ph = 2 * M_PI * (double)(ts % 86400) / 86400.0;
        int dow = (int)((ts / 86400 + 4) % 7);
        double truth = 100 + 30 * sin(ph) + (dow == 0 || dow == 6 ? 15 : 0);
        mae += fabs(p50[i] - truth) / (double)H;
        above += p90[i] > p50[i];
    }
    fc_free(f);
    free(y);
    if (!(mae < max_mae))
        T_FAIL("%s: MAE %.3f against the noise-free truth, want < %.3f", model, mae, max_mae);
    T_ASSERT(above == (int)H);
}

TEST(fc_holt_winters_learns_daily_and_weekly_shape) {
    check_seasonal_model("holt-winters", 3.0);
}
TEST(fc_profile_learns_daily_shape) {
    check_seasonal_model("profile", 10.0);
}

/* A day of an incident (a retry storm doubling the traffic) two days before the end of a
 * steady daily series: the profile of the next day must not carry it (a plain mean over D
 * days would add 100/D). A guard of the property, not of one mechanism: the grid search may
 * avoid the incident with D = 1 as well as with the trimmed mean (MAE 0.59 and 0.73 here). */
TEST(fc_profile_ignores_one_incident_day) {
    size_t day = 144, n = 21 * day, H = 144;
    int64_t t0 = 1700006400; /* a UTC midnight */
    double *y = malloc((n + H) * sizeof *y);
    T_ASSERT(y != NULL);
    unsigned seed = 11;
    for (size_t i = 0; i < n + H; i++)
        y[i] = 100 + 30 * sin(2 * M_PI * (double)(i % day) / (double)day) + 4 * noise(&seed);
    for (size_t i = n - 2 * day; i < n - day; i++)
        y[i] += 100;
    fc_series s = {.y = y, .n = n, .t0 = t0, .step = 600};
    fc_options o = {.horizon = (int)H, .seed = 1};
    forecaster *f = NULL;
    char err[256] = "";
    double p50[144];
    T_EQ_INT(fc_new(&f, "profile", &o, err, sizeof err), 0);
    T_EQ_INT(fc_fit(f, &s, err, sizeof err), 0);
    T_EQ_INT(fc_predict(f, &s, (int)H, 0.5, p50, err, sizeof err), 0);
    double mae = 0;
    for (size_t i = 0; i < H; i++)
        mae += fabs(p50[i] - (100 + 30 * sin(2 * M_PI * (double)i / (double)day))) / (double)H;
    fc_free(f);
    free(y);
    if (!(mae < 2)) T_FAIL("profile: MAE %.3f after an incident day, want < 2", mae);
}

/* Three hours of one-minute data with NaN holes (what a young workload has): every model fits
 * or says why not, and forecasts finite values at any quantile, also past its horizon. */
TEST(fc_every_model_copes_with_short_gappy_history) {
    enum { N = 180 };
    double y[N];
    for (int i = 0; i < N; i++)
        y[i] = (i % 17 == 3) ? NAN : 50 + 10 * sin(i / 9.0);
    fc_series s = {.y = y, .n = N, .t0 = 1700000040, .step = 60};
    fc_options o = {.horizon = 60, .seed = 3, .max_epochs = 1};
    for (size_t m = 0; fc_model_names[m]; m++) {
        forecaster *f = NULL;
        char err[256] = "";
        T_EQ_INT(fc_new(&f, fc_model_names[m], &o, err, sizeof err), 0);
        int rc = fc_fit(f, &s, err, sizeof err);
        if (rc != 0) {
            /* only the networks may refuse, and they must say why */
            if (strcmp(fc_model_names[m], "neural") != 0 && strcmp(fc_model_names[m], "lstm") != 0)
                T_FAIL("%s refused a short history: %s", fc_model_names[m], err);
            T_ASSERT(strstr(err, "too little usable history") != NULL);
            fc_free(f);
            continue;
        }
        double out[90];
        for (int q = 1; q <= 9; q += 4) {
            T_EQ_INT(fc_predict(f, &s, 90, q / 10.0, out, err, sizeof err), 0);
            for (int i = 0; i < 90; i++)
                if (!isfinite(out[i]))
                    T_FAIL("%s: forecast %d at q %.1f is %g", fc_model_names[m], i, q / 10.0,
                           out[i]);
        }
        fc_free(f);
    }
}

/* auto on a series that repeats a jagged daily shape exactly (5-minute steps, 16 days), with
 * one huge spike in the middle of the validation days: only the seasonal naive forecasts
 * are exact there, and the spike (and its echo a day later in that forecast) must not
 * talk auto out of it. The choice is the same on a second fit (deterministic). */
TEST(fc_auto_keeps_seasonal_naive_despite_a_spike) {
    enum { DAY = 288, N = 16 * DAY };
    double *y = malloc(N * sizeof *y);
    T_ASSERT(y != NULL);
    uint32_t r = 12345;
    for (int i = 0; i < DAY; i++) {
        r = r * 1103515245u + 12345u;
        y[i] = 100 + 40 * sin(i * 6.283185 / DAY) + (double)((r >> 16) % 60);
    }
    for (int i = DAY; i < N; i++)
        y[i] = y[i - DAY];
    for (int i = 0; i < 6; i++)
        y[N - 4 * DAY + 100 + i] = 5000;
    fc_series s = {.y = y, .n = N, .t0 = 1700006400, .step = 300};
    fc_options o = {.horizon = 12, .context = 24, .seed = 1, .max_epochs = 1};
    char name[2][96];
    for (int run = 0; run < 2; run++) {
        forecaster *f = NULL;
        char err[256] = "";
        T_EQ_INT(fc_new(&f, "auto", &o, err, sizeof err), 0);
        T_EQ_INT(fc_fit(f, &s, err, sizeof err), 0);
        snprintf(name[run], sizeof name[run], "%s", fc_name(f));
        double out[12];
        fc_series ctx = s;
        ctx.n = N - DAY / 2;
        T_EQ_INT(fc_predict(f, &ctx, 12, 0.5, out, err, sizeof err), 0);
        for (int i = 0; i < 12; i++)
            T_NEAR(out[i], y[ctx.n + (size_t)i], 1e-6 * y[ctx.n + (size_t)i]);
        fc_free(f);
    }
    /* the weekly seasonal naive forecast is exact too: either or a blend of the two */
    T_ASSERT(strcmp(name[0], "auto:snaive-day") == 0 || strcmp(name[0], "auto:snaive-week") == 0 ||
             strcmp(name[0], "auto:snaive-day+snaive-week") == 0 ||
             strcmp(name[0], "auto:snaive-week+snaive-day") == 0);
    T_EQ_STR(name[1], name[0]);
    free(y);
}

/* auto fit on s at horizon h (seed 1); NULL, with the reason reported, when it cannot be
 * created or fit (the caller then returns). */
static forecaster *fit_auto(const fc_series *s, int h) {
    fc_options o = {.horizon = h, .seed = 1};
    char err[256] = "";
    forecaster *f = NULL;
    if (fc_new(&f, "auto", &o, err, sizeof err) != 0 || fc_fit(f, s, err, sizeof err) != 0) {
        test_fail(__FILE__, __LINE__, "auto on %zu values: %s", s->n, err);
        fc_free(f);
        return NULL;
    }
    return f;
}

/* auto keeps choosing after training: a series that repeats a daily shape exactly for 16 days
 * (only the seasonal naive forecasts are exact there, so they are the fit's choice) turns
 * into a slow ramp without any daily shape after training. Three days into the ramp, the
 * one-day seasonal naive forecast is off by a day's rise (2.88 per step) while the last
 * value is off by at most a few steps' rise: auto's online choice, redone over the newest
 * completed forecasts, has moved to the candidates that forecast the ramp, while the name
 * still says what the fit chose. The same forecast twice (the memo changes nothing). */
TEST(fc_auto_online_choice_follows_a_change_after_training) {
    enum { DAY = 288, N = 16 * DAY, M = N + 3 * DAY };
    double *y = malloc(M * sizeof *y);
    T_ASSERT(y != NULL);
    uint32_t r = 777;
    for (int i = 0; i < DAY; i++) {
        r = r * 1103515245u + 12345u;
        y[i] = 300 + 80 * sin(i * 6.283185 / DAY) + (double)((r >> 16) % 40);
    }
    for (int i = DAY; i < N; i++)
        y[i] = y[i - DAY];
    for (int i = N; i < M; i++)
        y[i] = 300 + 0.01 * (i - N);
    fc_series s = {.y = y, .n = N, .t0 = 1700006400, .step = 300};
    forecaster *f = fit_auto(&s, 12);
    if (!f) return;
    char err[256] = "";
    T_ASSERT(strstr(fc_name(f), "snaive") != NULL);
    fc_series ctx = s;
    ctx.n = M - 12;
    double out[12], again[12];
    T_EQ_INT(fc_predict(f, &ctx, 12, 0.5, out, err, sizeof err), 0);
    for (int i = 0; i < 12; i++)
        T_ASSERT(fabs(out[i] - y[ctx.n + (size_t)i]) < 0.5);
    T_EQ_INT(fc_predict(f, &ctx, 12, 0.5, again, err, sizeof err), 0);
    for (int i = 0; i < 12; i++)
        T_NEAR(again[i], out[i], 1e-12);
    /* before the change the same model still forecasts the daily shape exactly */
    ctx.n = N - DAY / 2;
    T_EQ_INT(fc_predict(f, &ctx, 12, 0.5, out, err, sizeof err), 0);
    for (int i = 0; i < 12; i++)
        T_NEAR(out[i], y[ctx.n + (size_t)i], 1e-6 * y[ctx.n + (size_t)i]);
    fc_free(f);
    free(y);
}

/* The online choice follows only a change that the newest forecasts still show: a series that
 * repeats a daily shape exactly for 16 days (the seasonal naive forecasts are exact: the fit's
 * choice) goes flat for two days after training (a misconfiguration), then the shape returns.
 * Two and a half days later the window of the online choice still holds the flat days, on
 * which the flat forecasts (last value, recent median) were the better ones, but on the newest
 * day the seasonal naive forecast is exact again and the flat ones miss the shape: auto keeps
 * the fit's choice, and forecasts the shape exactly. */
TEST(fc_auto_online_choice_ignores_an_episode_that_ended) {
    enum { DAY = 288, N = 16 * DAY, M = N + 5 * DAY };
    double *y = malloc(M * sizeof *y);
    T_ASSERT(y != NULL);
    uint32_t r = 4242;
    for (int i = 0; i < DAY; i++) {
        r = r * 1103515245u + 12345u;
        y[i] = 300 + 120 * sin(i * 6.283185 / DAY) + (double)((r >> 16) % 30);
    }
    for (int i = DAY; i < M; i++)
        y[i] = y[i - DAY];
    for (int i = N; i < N + 2 * DAY; i++)
        y[i] = 300;
    fc_series s = {.y = y, .n = N, .t0 = 1700006400, .step = 300};
    forecaster *f = fit_auto(&s, 12);
    if (!f) return;
    char err[256] = "";
    T_ASSERT(strstr(fc_name(f), "snaive") != NULL);
    fc_series ctx = s;
    ctx.n = N + 4 * DAY + DAY / 2;
    double out[12];
    T_EQ_INT(fc_predict(f, &ctx, 12, 0.5, out, err, sizeof err), 0);
    for (int i = 0; i < 12; i++)
        T_NEAR(out[i], y[ctx.n + (size_t)i], 1e-6 * y[ctx.n + (size_t)i]);
    fc_free(f);
    free(y);
}

/* The upward factor insures only against an under-forecast the newest validation day still
 * shows: a daily shape (10-minute steps) whose level rises 1.5x a day for five days and then
 * holds for the last two. Day-ahead, every candidate under-forecasts the rising days (the
 * share under 0.9 x actual is far over 25% in most validation windows), but on the newest
 * one the level has stopped and the share is 0: no factor (without the rule: x1.01). */
TEST(fc_auto_no_upward_factor_when_the_newest_day_is_not_under) {
    enum { DAY = 144, N = 16 * DAY };
    double *y = malloc(N * sizeof *y);
    T_ASSERT(y != NULL);
    uint32_t r = 99;
    for (int i = 0; i < N; i++) {
        int d = i / DAY;
        double lvl = d < 9 ? 1.0 : d < 14 ? pow(1.5, d - 8) : pow(1.5, 5);
        r = r * 1103515245u + 12345u;
        y[i] = lvl * (300 + 120 * sin((i % DAY) * 6.283185 / DAY)) + (double)((r >> 16) % 20);
    }
    fc_series s = {.y = y, .n = N, .t0 = 1700006400, .step = 600};
    forecaster *f = fit_auto(&s, DAY);
    if (!f) return;
    T_ASSERT(strncmp(fc_name(f), "auto:", 5) == 0);
    T_ASSERT(strchr(fc_name(f), '*') == NULL);
    fc_free(f);
    free(y);
}

/* The upward factor insures a forecast that must hold through the daily cycle: a daily shape
 * (10-minute steps, 16 days) times a level that jumps by up to +-30% every hour for the first
 * nine days and by up to +-10% over the last seven, times +-30% noise per value. The validation
 * week is calmer than the history, its residuals are widened, and day-ahead the widened share
 * under 0.9 x actual buys a factor. An hour ahead (6 steps) the next forecast re-levels
 * from the newest values within the hour, and the blend is used as it is: no factor (x1.07
 * without the rule, bought by the widening alone). Whether day-ahead needs a factor depends on
 * the draw (the pooled blend of fc12 needs none on some): the seed is one where it does. */
TEST(fc_auto_upward_factor_only_through_the_day) {
    enum { DAY = 144, N = 16 * DAY };
    double *y = malloc(N * sizeof *y);
    T_ASSERT(y != NULL);
    unsigned r = 2;
    double lvl = 1;
    for (int i = 0; i < N; i++) {
        if (i % (DAY / 24) == 0) lvl = 1 + (i < N - 7 * DAY ? 0.3 : 0.1) * noise(&r);
        y[i] = lvl * (300 + 120 * sin((i % DAY) * 6.283185 / DAY)) * (1 + 0.3 * noise(&r));
    }
    fc_series s = {.y = y, .n = N, .t0 = 1700006400, .step = 600};
    forecaster *f = fit_auto(&s, DAY);
    if (!f) return;
    if (strchr(fc_name(f), '*') == NULL) T_FAIL("day-ahead, no factor: %s", fc_name(f));
    fc_free(f);
    f = fit_auto(&s, 6);
    if (!f) return;
    if (strchr(fc_name(f), '*') != NULL) T_FAIL("an hour ahead, a factor: %s", fc_name(f));
    fc_free(f);
    free(y);
}

/* The upward factor insures against level errors, not against the noise of single values that
 * no level foresees: a daily shape (10-minute steps, 16 days) times independent noise of
 * +-45% per value. Day-ahead, auto's forecast has the right level and shape, yet about 38% of
 * the values lie above it by more than 1/0.9 (pure noise): a forecast that knew each quarter
 * day's true level would have the same share. The factor's target is that share, not 25%: no
 * factor (without the rule: x1.02 and more, bought only with error). */
static void noisy_daily_shape(double *y, int n, int day) {
    uint32_t r = 2024;
    for (int i = 0; i < n; i++) {
        r = r * 1103515245u + 12345u;
        double u = (double)((r >> 8) % 10001) / 10000.0 - 0.5; /* [-0.5, 0.5] */
        y[i] = (300 + 120 * sin((i % day) * 6.283185 / day)) * (1 + 0.9 * u);
    }
}

TEST(fc_auto_no_upward_factor_against_noise_no_level_foresees) {
    enum { DAY = 144, N = 16 * DAY };
    double *y = malloc(N * sizeof *y);
    T_ASSERT(y != NULL);
    noisy_daily_shape(y, N, DAY);
    fc_series s = {.y = y, .n = N, .t0 = 1700006400, .step = 600};
    forecaster *f = fit_auto(&s, DAY);
    if (!f) return;
    T_ASSERT(strncmp(fc_name(f), "auto:", 5) == 0);
    if (strchr(fc_name(f), '*') != NULL) T_FAIL("upward factor against noise: %s", fc_name(f));
    fc_free(f);
    free(y);
}

/* The upward factor's cost budget is judged on the typical validation day, not on the pooled
 * error: a daily shape (10-minute steps, 16 days) with small noise, and over the last day and
 * a half of the training data a burst to 3x the level that no candidate forecasts a day
 * ahead. Its windows' errors dwarf the others', so 2.5% of the pooled error is a large
 * absolute budget, and the share of forecasts under 0.9 x actual there (far over 25%, out of
 * reach of any factor up to 1.2) drove the factor to x1.05, raising every ordinary day by 5%
 * for nothing. Judged on the median window too, where the factor costs its full 1% a step in
 * error and the blend has no lead over the naive forecasts to spend, it stays at most x1.02
 * (either of the two limits on the typical day alone holds it there). */
TEST(fc_auto_upward_factor_budget_is_the_typical_days) {
    enum { DAY = 144, N = 16 * DAY };
    double *y = malloc(N * sizeof *y);
    T_ASSERT(y != NULL);
    uint32_t r = 77;
    for (int i = 0; i < N; i++) {
        r = r * 1103515245u + 12345u;
        double lvl = i >= N - 3 * DAY / 2 ? 3.0 : 1.0;
        y[i] = lvl * (300 + 120 * sin((i % DAY) * 6.283185 / DAY)) + (double)((r >> 16) % 20);
    }
    fc_series s = {.y = y, .n = N, .t0 = 1700006400, .step = 600};
    forecaster *f = fit_auto(&s, DAY);
    if (!f) return;
    const char *star = strchr(fc_name(f), '*');
    if (star && atof(star + 1) > 1.02) T_FAIL("factor from the burst's windows: %s", fc_name(f));
    fc_free(f);
    free(y);
}

/* The noise floor at 5-minute steps with a one-hour horizon: a horizon quarter holds 3 values,
 * and the floor judges each against the level of the other two (the level that could have been
 * known): near the noise's true share, 0.3765. Against the mean of all three, which follows
 * each value's own noise, it came out at 0.312, and the factor ran to its budget (x1.06).
 * Measured directly (fc__noise_floor; auto applies no factor an hour ahead any more, see
 * fc_auto_upward_factor_only_through_the_day), on a week of hourly origins whose forecasts are
 * the true daily shape, and with the residuals widened 2x (the floor undoes the widening). */
TEST(fc_auto_noise_floor_leaves_each_value_out_of_its_level) {
    enum { DAY = 288, N = 16 * DAY, H = 12, NORIG = 7 * 24 };
    double *y = malloc(N * sizeof *y), *blend = malloc(NORIG * H * sizeof *blend);
    double *A = malloc(NORIG * H * sizeof *A);
    T_ASSERT(y != NULL && blend != NULL && A != NULL);
    noisy_daily_shape(y, N, DAY);
    for (int k = 0; k < NORIG; k++)
        for (int i = 0; i < H; i++) {
            int t = N - 7 * DAY + k * H + i;
            blend[k * H + i] = 300 + 120 * sin((t % DAY) * 6.283185 / DAY);
            A[k * H + i] = y[t];
        }
    double floor1 = fc__noise_floor(blend, A, NORIG, H, 1);
    if (!(floor1 > 0.35 && floor1 < 0.40)) T_FAIL("noise floor %.3f, want 0.35-0.40", floor1);
    for (int j = 0; j < NORIG * H; j++)
        A[j] = blend[j] + 2 * (A[j] - blend[j]);
    T_NEAR(fc__noise_floor(blend, A, NORIG, H, 2), floor1, 1e-9);
    free(A);
    free(blend);
    free(y);
}

/* auto on a flat level with noise and one-step spikes (one step in 20 at 20x the level), no
 * daily shape: the last value carries a spike through the whole horizon whenever an origin
 * follows one, and the seasonal naive forecasts echo a day's or a week's spikes, while a flat
 * forecast at the median of the last horizon's values stays at the level. auto must use that
 * `median` candidate, and a forecast from right after a spike must stay near the level. */
TEST(fc_auto_median_candidate_ignores_spikes) {
    enum { DAY = 288, N = 16 * DAY };
    double *y = malloc((N + 12) * sizeof *y);
    T_ASSERT(y != NULL);
    uint32_t r = 4242;
    for (int i = 0; i < N + 12; i++) {
        r = r * 1103515245u + 12345u;
        y[i] = 100 + (double)((r >> 16) % 11) - 5;
        if ((r >> 8) % 20 == 0) y[i] = 2000;
    }
    int end = N - 12; /* the last spike before N - 12 ends a context */
    while (end > N - DAY && y[end - 1] != 2000)
        end--;
    T_ASSERT(y[end - 1] == 2000);
    fc_series s = {.y = y, .n = N, .t0 = 1700006400, .step = 300};
    forecaster *f = fit_auto(&s, 12);
    if (!f) return;
    char err[256] = "";
    T_ASSERT(strstr(fc_name(f), "median") != NULL);
    fc_series ctx = s;
    ctx.n = (size_t)end;
    double out[12];
    T_EQ_INT(fc_predict(f, &ctx, 12, 0.5, out, err, sizeof err), 0);
    for (int i = 0; i < 12; i++)
        T_ASSERT(out[i] > 80 && out[i] < 160);
    fc_free(f);
    free(y);
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* auto fit on y[0..n) (10-minute steps) for a day ahead; 1 when it chose `name` and forecast
 * the next day into out[0..144), else 0 with the test failed. */
static int day_ahead_auto(const double *y, int n, const char *name, double *out) {
    fc_series s = {.y = y, .n = (size_t)n, .t0 = 1700006400, .step = 600};
    fc_options o = {.horizon = 144, .seed = 1};
    char err[256] = "";
    forecaster *f = NULL;
    int ok = fc_new(&f, "auto", &o, err, sizeof err) == 0 && fc_fit(f, &s, err, sizeof err) == 0;
    if (ok && strcmp(fc_name(f), name) != 0) {
        snprintf(err, sizeof err, "auto chose %s, not %s", fc_name(f), name);
        ok = 0;
    }
    if (ok && fc_predict(f, &s, 144, 0.5, out, err, sizeof err) != 0) ok = 0;
    if (!ok) test_fail(__FILE__, __LINE__, "%s", err);
    fc_free(f);
    return ok;
}

/* naive3's forecast of h <= day steps after y[0..n), computed independently: at every step
 * the median of the last value, the median of the last day (day <= 256 values) and yesterday's
 * value, i.e. yesterday's value clamped between the other two. */
static void naive3_of(const double *y, int n, int day, int h, double *out) {
    double v[256];
    memcpy(v, y + n - day, (size_t)day * sizeof *v);
    qsort(v, (size_t)day, sizeof *v, cmp_dbl);
    double med = 0.5 * (v[day / 2 - 1] + v[day / 2]), last = y[n - 1];
    double lo = last < med ? last : med, hi = last < med ? med : last;
    for (int i = 0; i < h; i++) {
        double sd = y[n - day + i];
        out[i] = sd < lo ? lo : sd > hi ? hi : sd;
    }
}

/* auto's evidence rules: a daily shape repeated exactly at 10-minute steps, forecast a day
 * ahead (H = 144). With 4 days of data the validation window (30%) holds one origin: a
 * ranking from one day's forecasts is no evidence, so auto forecasts its prior. The training
 * history shows the daily season on every day (yesterday's values are exact, naive3, which
 * holds them between the last value and the last day's median, is not): the prior is the
 * one-day seasonal naive forecast, exact (it was naive3 whatever the season). With 6 days the
 * window holds 4 origins in one window (weak evidence): the prior again, or half of it and
 * half of Holt-Winters if that ranks first (exact too). With 11 days the window holds 10
 * origins in 3 windows, enough to rank on: a forecast that is exact (a seasonal naive one,
 * Holt-Winters, the profile, or the equal-weight mean of those tied at zero error). */
TEST(fc_auto_weak_evidence_prior_follows_a_significant_daily_season) {
    enum { DAY = 144, H = 144 };
    double *y = malloc(12 * DAY * sizeof *y);
    T_ASSERT(y != NULL);
    uint32_t r = 99;
    for (int i = 0; i < DAY; i++) {
        r = r * 1103515245u + 12345u;
        y[i] = 200 + 90 * sin(i * 6.283185 / DAY) + (double)((r >> 16) % 30);
    }
    for (int i = DAY; i < 12 * DAY; i++)
        y[i] = y[i - DAY];
    fc_options o = {.horizon = H, .seed = 1};
    char err[256] = "";
    double out[H];
    static const int days[] = {4, 6, 11};
    for (int d = 0; d < 3; d++) {
        fc_series s = {.y = y, .n = (size_t)days[d] * DAY, .t0 = 1700006400, .step = 600};
        forecaster *f = NULL;
        T_EQ_INT(fc_new(&f, "auto", &o, err, sizeof err), 0);
        T_EQ_INT(fc_fit(f, &s, err, sizeof err), 0);
        T_EQ_INT(fc_predict(f, &s, H, 0.5, out, err, sizeof err), 0);
        if (days[d] == 4) T_EQ_STR(fc_name(f), "auto:snaive-day");
        /* exact candidates only (with full evidence, those tied at zero error are pooled:
         * fc__pool_untied): the seasonal naive forecasts, Holt-Winters, the profile */
        char nm[96];
        snprintf(nm, sizeof nm, "%s", fc_name(f));
        T_ASSERT(strncmp(nm, "auto:", 5) == 0);
        for (char *save = NULL, *tok = strtok_r(nm + 5, "+", &save); tok;
             tok = strtok_r(NULL, "+", &save))
            T_ASSERT(strcmp(tok, "snaive-day") == 0 || strcmp(tok, "holt-winters") == 0 ||
                     (days[d] == 11 &&
                      (strcmp(tok, "snaive-week") == 0 || strcmp(tok, "profile") == 0)));
        for (int i = 0; i < H; i++)
            T_NEAR(out[i], y[s.n + (size_t)i], 1e-6 * y[s.n + (size_t)i]);
        fc_free(f);
    }
    free(y);
}

/* Four days of values with no daily season (independent noise around a level), day-ahead at
 * 10-minute steps: one validation origin, no evidence, and the history gives no significant
 * advantage to yesterday's values (on noise they err more than naive3 does): the prior stays
 * naive3, yesterday's value held between the last value and the last day's median. */
TEST(fc_auto_weak_evidence_keeps_naive3_without_a_daily_season) {
    enum { DAY = 144, H = 144, N = 4 * DAY };
    double *y = malloc(N * sizeof *y);
    T_ASSERT(y != NULL);
    uint32_t r = 31337;
    for (int i = 0; i < N; i++) {
        r = r * 1103515245u + 12345u;
        y[i] = 500 + (double)((r >> 16) % 200);
    }
    double out[H], want[H];
    if (!day_ahead_auto(y, N, "auto:naive3", out)) return;
    naive3_of(y, N, DAY, H, want);
    for (int i = 0; i < H; i++)
        T_NEAR(out[i], want[i], 1e-9);
    free(y);
}

/* Four days at 10-minute steps, day-ahead: a daily shape on three weekdays, then a quiet
 * "weekend" day at a lower, flat level. One validation origin: no evidence, so the prior. Over
 * the history's three days yesterday's values beat naive3 on average (exact on two days, far
 * off on the quiet one) but not significantly at 5%: weak evidence against naive3, so the
 * prior is half of each (it was naive3 alone, which flattens every daily peak; noise with no
 * season keeps naive3: fc_auto_weak_evidence_keeps_naive3_without_a_daily_season). */
TEST(fc_auto_weak_evidence_inconclusive_season_blends_naive3_and_yesterday) {
    enum { DAY = 144, H = 144, N = 4 * DAY };
    double *y = malloc(N * sizeof *y);
    T_ASSERT(y != NULL);
    uint32_t r = 4242;
    for (int i = 0; i < N; i++) {
        r = r * 1103515245u + 12345u;
        double noise = (double)((r >> 16) % 20);
        y[i] = i < 3 * DAY ? 300 + 150 * sin((i % DAY) * 6.283185 / DAY) + noise : 200 + noise;
    }
    double out[H], want[H];
    if (!day_ahead_auto(y, N, "auto:naive3+snaive-day", out)) return;
    naive3_of(y, N, DAY, H, want);
    for (int i = 0; i < H; i++)
        T_NEAR(out[i], 0.5 * want[i] + 0.5 * y[N - DAY + i], 1e-9);
    free(y);
}

/* The p90 band widens when the forecast made one horizon before the origin missed what
 * happened since (a level shift), and is back to its calibrated width on steady data. */
TEST(fc_quantile_band_widens_after_a_level_shift) {
    enum { DAY = 288, N = 10 * DAY, H = 12 };
    double *y = malloc(N * sizeof *y), *z = malloc(N * sizeof *z);
    T_ASSERT(y != NULL && z != NULL);
    uint32_t r = 7;
    for (int i = 0; i < N; i++) {
        r = r * 1103515245u + 12345u;
        y[i] = 100 + 30 * sin(i * 6.283185 / DAY) + (double)((r >> 16) % 11) - 5;
    }
    memcpy(z, y, N * sizeof *z);
    for (int i = N - H; i < N; i++)
        z[i] *= 1.6; /* the last hour jumps */
    fc_series s = {.y = y, .n = N, .t0 = 1700006400, .step = 300};
    fc_options o = {.horizon = H, .seed = 1};
    forecaster *f = NULL;
    char err[256] = "";
    T_EQ_INT(fc_new(&f, "snaive-day", &o, err, sizeof err), 0);
    T_EQ_INT(fc_fit(f, &s, err, sizeof err), 0);
    double p50[H], p90[H], q50[H], q90[H];
    fc_series shifted = {.y = z, .n = N, .t0 = s.t0, .step = s.step};
    T_EQ_INT(fc_predict(f, &s, H, 0.5, p50, err, sizeof err), 0);
    T_EQ_INT(fc_predict(f, &s, H, 0.9, p90, err, sizeof err), 0);
    T_EQ_INT(fc_predict(f, &shifted, H, 0.5, q50, err, sizeof err), 0);
    T_EQ_INT(fc_predict(f, &shifted, H, 0.9, q90, err, sizeof err), 0);
    double steady = 0, wide = 0;
    for (int i = 0; i < H; i++) {
        steady += p90[i] - p50[i];
        wide += q90[i] - q50[i];
    }
    T_ASSERT(steady > 0);
    T_ASSERT(wide > 2 * steady);
    fc_free(f);
    free(z);
    free(y);
}

/* auto's level widening: 28 days at 10-minute steps of a daily shape times a level per day.
 * When the first two weeks' levels jump from day to day and the last two weeks are steady,
 * the validation week under-samples the level variation and its residuals are widened (about
 * 2x or more); when every day has the same level, or every day jumps alike, they are not. */
TEST(fc_auto_level_widening_follows_the_history) {
    enum { DAY = 144, N = 28 * DAY };
    double *y = malloc(N * sizeof *y);
    unsigned char *mask = malloc(N);
    T_ASSERT(y != NULL && mask != NULL);
    fc_series s = {.y = y, .n = N, .t0 = 1700006400, .step = 600};
    for (int kind = 0; kind < 3; kind++) {
        unsigned r = 99;
        for (int d = 0; d < 28; d++) {
            double lvl = 1;
            if (kind == 1 && d < 14) lvl = 1 + 0.3 * noise(&r);
            if (kind == 2) lvl = 1 + 0.3 * noise(&r);
            for (int i = 0; i < DAY; i++)
                y[d * DAY + i] = lvl * (100 + 30 * sin(i * 6.283185 / DAY)) + 2 * noise(&r);
        }
        fc__mask_outages(y, N, 600, mask);
        double k = fc__level_widening(&s, mask, DAY, 7 * DAY, DAY);
        if (kind == 1 && !(k > 1.9 && k <= 3.0))
            T_FAIL("steady last weeks after jumpy ones: widening %.3f, want 1.9-3", k);
        if (kind != 1 && !(k >= 1.0 && k < 1.5))
            T_FAIL("same variation throughout (%d): widening %.3f, want < 1.5", kind, k);
    }
    /* too short a window for one block: no widening */
    T_NEAR(fc__level_widening(&s, mask, DAY, DAY, DAY), 1.0, 0);
    free(mask);
    free(y);
}

/* auto's test of the strength of its evidence (fc__gain_consistent: the mean per-window gain
 * over the best naive forecast must exceed one standard error of the mean). A choice that
 * wins every window by about the same margin is consistent; one whose mean gain comes from a
 * single window while it loses the other six is not (it is then hedged half toward the naive
 * forecast); a gain of exactly one standard error is not more than one; a choice that ties
 * the naive forecast in every window gains nothing; one window is no evidence. */
TEST(fc_auto_gain_consistent_by_one_standard_error) {
    const double steady[] = {0.10, 0.12, 0.09, 0.11, 0.10, 0.13, 0.08};
    const double one_window[] = {10, -1, -1, -1, -1, -1, -1};
    const double one_se[] = {0.05, 0, 0}; /* one window's gain, ties: t = 1 exactly */
    const double ties[] = {0, 0, 0, 0};
    const double same[] = {2, 2, 2};
    const double losing[] = {-1, -2, -1};
    T_EQ_INT(fc__gain_consistent(steady, 7), 1);
    T_EQ_INT(fc__gain_consistent(one_window, 7), 0);
    T_EQ_INT(fc__gain_consistent(one_se, 3), 0);
    for (int n = 2; n <= 7; n++) { /* t = 1 whatever the number of tied windows */
        double d[7] = {0};
        d[n - 1] = 0.1 * n;
        T_EQ_INT(fc__gain_consistent(d, n), 0);
    }
    T_EQ_INT(fc__gain_consistent(ties, 4), 0);
    T_EQ_INT(fc__gain_consistent(same, 3), 1);
    T_EQ_INT(fc__gain_consistent(losing, 3), 0);
    T_EQ_INT(fc__gain_consistent(steady, 1), 0);
    T_EQ_INT(fc__gain_consistent(steady, 0), 0);
    /* two windows: 1 and 3 have mean 2, standard error 1: consistent; -1 and 5 have mean 2,
     * standard error 3: not */
    const double two[] = {1, 3}, two_wide[] = {-1, 5};
    T_EQ_INT(fc__gain_consistent(two, 2), 1);
    T_EQ_INT(fc__gain_consistent(two_wide, 2), 0);
}

/* auto's pool of the untied (fc__pool_untied): the candidates ranked second and third that
 * the first does not beat by more than one standard error of the paired per-window MAE
 * differences share equal weights with it. A second that is worse in every window by about
 * the same margin stays out; a second that trades windows with the first (better on some days,
 * worse on others) comes in; a third worse by a steady margin stays out while a tied second
 * comes in; all three tied share thirds; a single window is no evidence of a tie. */
TEST(fc_auto_pool_untied_by_one_standard_error) {
    const double best[] = {1.0, 1.2, 0.9, 1.1, 1.0, 1.3, 0.8};
    const double steady[] = {1.1, 1.32, 0.99, 1.21, 1.1, 1.43, 0.88}; /* 10% worse every day */
    const double trades[] = {0.8, 1.5, 0.7, 1.4, 1.2, 1.1, 1.0};      /* wins 3 days of 7 */
    const double *a[] = {best, steady};
    double w[3] = {-1, -1, -1};
    T_EQ_INT(fc__pool_untied(a, 2, 7, w), 1);
    T_NEAR(w[0], -1, 0); /* untouched */
    const double *b[] = {best, trades};
    T_EQ_INT(fc__pool_untied(b, 2, 7, w), 2);
    T_NEAR(w[0], 0.5, 1e-12);
    T_NEAR(w[1], 0.5, 1e-12);
    const double *c[] = {best, trades, steady};
    T_EQ_INT(fc__pool_untied(c, 3, 7, w), 2);
    T_NEAR(w[0], 0.5, 1e-12);
    T_NEAR(w[1], 0.5, 1e-12);
    T_NEAR(w[2], 0, 0);
    const double *d[] = {best, trades, trades};
    T_EQ_INT(fc__pool_untied(d, 3, 7, w), 3);
    for (int t = 0; t < 3; t++)
        T_NEAR(w[t], 1.0 / 3, 1e-12);
    T_EQ_INT(fc__pool_untied(b, 2, 1, w), 1); /* one window: no evidence of a tie */
    T_EQ_INT(fc__pool_untied(b, 1, 7, w), 1); /* nothing to pool with */
}

/* auto's online choice gathers the evidence a short fit lacked: fit on 4 days of noise with no
 * daily season (10-minute steps, day-ahead), the validation window holds one origin, so the
 * fit's choice is the prior, naive3 (no daily season in the history:
 * fc_auto_weak_evidence_keeps_naive3_without_a_daily_season). After training the fourth day
 * repeats exactly. Forecast from 10 days, the online choice reads a full validation window's
 * origins (7 days' worth, those after the fit's first one, out of sample), on which the
 * seasonal naive forecast is exact but for the oldest, so the forecast is exact. Before, the
 * online choice read only the fit's few origins and kept naive3. From 8 days (fewer origins
 * than a full window) the fit's naive3 stays. */
TEST(fc_auto_online_choice_gathers_evidence_after_a_short_fit) {
    enum { DAY = 144, H = 144 };
    double *y = malloc(11 * DAY * sizeof *y);
    T_ASSERT(y != NULL);
    uint32_t r = 31337;
    for (int i = 0; i < 4 * DAY; i++) {
        r = r * 1103515245u + 12345u;
        y[i] = 500 + (double)((r >> 16) % 200);
    }
    for (int i = 4 * DAY; i < 11 * DAY; i++)
        y[i] = y[i - DAY];
    fc_options o = {.horizon = H, .seed = 1};
    char err[256] = "";
    double out[H];
    fc_series train = {.y = y, .n = 4 * DAY, .t0 = 1700006400, .step = 600};
    fc_series ctx = train;
    forecaster *f = NULL;
    T_EQ_INT(fc_new(&f, "auto", &o, err, sizeof err), 0);
    T_EQ_INT(fc_fit(f, &train, err, sizeof err), 0);
    T_EQ_STR(fc_name(f), "auto:naive3");
    /* 8 days: fewer origins than a full window after the fit's first, so naive3 */
    ctx.n = 8 * DAY;
    T_EQ_INT(fc_predict(f, &ctx, H, 0.5, out, err, sizeof err), 0);
    double v[DAY], last = y[ctx.n - 1];
    memcpy(v, y + ctx.n - DAY, sizeof v);
    qsort(v, DAY, sizeof *v, cmp_dbl);
    double med = 0.5 * (v[DAY / 2 - 1] + v[DAY / 2]);
    double lo = last < med ? last : med, hi = last < med ? med : last;
    for (int i = 0; i < H; i++) {
        double sd = y[ctx.n - DAY + (size_t)i];
        T_NEAR(out[i], sd < lo ? lo : sd > hi ? hi : sd, 1e-9);
    }
    /* 10 days: a full window of origins, on which the seasonal naive forecast is exact */
    ctx.n = 10 * DAY;
    T_EQ_INT(fc_predict(f, &ctx, H, 0.5, out, err, sizeof err), 0);
    for (int i = 0; i < H; i++)
        T_NEAR(out[i], y[ctx.n + (size_t)i], 1e-6 * y[ctx.n + (size_t)i]);
    fc_free(f);
    free(y);
}
