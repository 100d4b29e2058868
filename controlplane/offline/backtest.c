/* backtest.c: the forecast benchmark protocol (see backtest.h), its metrics and its plot. */
#include "offline/backtest.h"
#include "errmsg.h"
#include "svgplot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TEST_DAYS 7
#define DAY_AHEAD_BIN 600
#define DAY_AHEAD_H 144

int bt_task_parse(const char *s, bt_task *out) {
    if (s && strcmp(s, "scale-1h") == 0)
        *out = BT_SCALE_1H;
    else if (s && strcmp(s, "day-ahead") == 0)
        *out = BT_DAY_AHEAD;
    else
        return -EINVAL;
    return 0;
}

const char *bt_task_name(bt_task t) {
    return t == BT_DAY_AHEAD ? "day-ahead" : "scale-1h";
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Floor division for possibly negative timestamps. */
static int64_t floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

int bt_prepare(const fc_series *native, bt_task task, bt_data *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    out->task = task;
    int64_t step = native->step;
    if (step <= 0 || (int64_t)TEST_DAYS * 86400 % step != 0) {
        return errmsg(err, errlen, -EINVAL, "step %llds does not divide a week", (long long)step);
    }
    size_t week = (size_t)((int64_t)TEST_DAYS * 86400 / step);
    size_t day = (size_t)(86400 / step);
    if (native->n <= week + day) {
        return errmsg(err, errlen, -EINVAL,
                      "too short for the %s task: %zu samples at step %llds, need more than %zu "
                      "(the 7-day test window plus at least one day of training)",
                      bt_task_name(task), native->n, (long long)step, week + day);
    }
    size_t i0 = native->n - week;
    int64_t T0 = native->t0 + (int64_t)i0 * step;
    size_t d_season;
    if (task == BT_SCALE_1H) {
        if (step > 3600 || 3600 % step != 0) {
            return errmsg(err, errlen, -EINVAL, "scale-1h needs a step dividing 3600 s, not %llds",
                          (long long)step);
        }
        out->y = malloc(native->n * sizeof *out->y);
        if (!out->y) return -ENOMEM;
        memcpy(out->y, native->y, native->n * sizeof *out->y);
        out->n = native->n;
        out->t0 = native->t0;
        out->step = step;
        out->n_train = i0;
        out->horizon = (int)(3600 / step);
        size_t H = (size_t)out->horizon;
        out->n_origins = (native->n - i0) / H;
        while (out->n_origins > 0 && i0 + (out->n_origins - 1) * H + H > native->n)
            out->n_origins--;
        out->origins = malloc((out->n_origins + 1) * sizeof *out->origins);
        if (!out->origins) goto nomem;
        for (size_t k = 0; k < out->n_origins; k++)
            out->origins[k] = i0 + k * H;
        d_season = day;
    } else {
        if (step > DAY_AHEAD_BIN || DAY_AHEAD_BIN % step != 0) {
            return errmsg(err, errlen, -EINVAL, "day-ahead needs a step dividing 600 s, not %llds",
                          (long long)step);
        }
        /* A native sample belongs to the bin its own timestamp falls in: bin [b, b + 600)
         * holds the samples at b + phase, b + phase + step, ... (phase = the timestamps' offset
         * within a step, the same for every sample of a regular series; 120 s for a 5-minute
         * series stamped hh:02, hh:07, ...). A bin is complete when all 600/step of them are
         * in the data, so the first complete bin may start before t0 by up to the phase. */
        size_t per = (size_t)(DAY_AHEAD_BIN / step);
        int64_t phase = native->t0 - floordiv(native->t0, step) * step;
        int64_t first = native->t0 - phase; /* a multiple of step at or before t0 */
        int64_t b0 = floordiv(first + DAY_AHEAD_BIN - 1, DAY_AHEAD_BIN) * DAY_AHEAD_BIN;
        /* one step past the last sample, less the phase: the end of the last complete bin
         * is at or before it */
        int64_t tend = first + (int64_t)native->n * step;
        if (tend - b0 < DAY_AHEAD_BIN) {
            return errmsg(err, errlen, -EINVAL,
                          "too short for day-ahead: no complete 10-minute bin");
        }
        size_t nb = (size_t)((tend - b0) / DAY_AHEAD_BIN);
        out->y = malloc(nb * sizeof *out->y);
        if (!out->y) return -ENOMEM;
        size_t j0 = (size_t)((b0 - first) / step); /* the sample at b0 + phase */
        for (size_t b = 0; b < nb; b++) {
            double s = 0;
            for (size_t k = 0; k < per; k++)
                s += native->y[j0 + b * per + k];
            out->y[b] = s;
        }
        out->n = nb;
        out->t0 = b0;
        out->step = DAY_AHEAD_BIN;
        out->horizon = DAY_AHEAD_H;
        out->n_train = T0 >= b0 ? (size_t)((T0 - b0) / DAY_AHEAD_BIN) : 0;
        out->origins = malloc((nb / 144 + 2) * sizeof *out->origins);
        if (!out->origins) goto nomem;
        for (size_t b = 0; b < nb; b++) {
            int64_t ts = b0 + (int64_t)b * DAY_AHEAD_BIN;
            if (ts < T0 || floordiv(ts, 86400) * 86400 != ts) continue;
            if (b + DAY_AHEAD_H > nb) break;
            out->origins[out->n_origins++] = b;
        }
        d_season = 86400 / DAY_AHEAD_BIN;
    }
    if (out->n_train <= d_season || out->n_origins == 0) {
        errmsg(err, errlen, 0, "too short for the %s task: %zu training steps and %zu origins",
               bt_task_name(task), out->n_train, out->n_origins);
        bt_data_fini(out);
        return -EINVAL;
    }
    double s = 0;
    for (size_t t = d_season; t < out->n_train; t++)
        s += fabs(out->y[t] - out->y[t - d_season]);
    out->mase_scale = s / (double)(out->n_train - d_season);
    if (!(out->mase_scale > 0)) {
        size_t k = 1;
        while (k < out->n_train && out->y[k] == out->y[0])
            k++;
        if (k == out->n_train)
            errmsg(err, errlen, 0,
                   "the training data is constant (all %zu steps %.17g): MASE is undefined",
                   out->n_train, out->y[0]);
        else
            errmsg(err, errlen, 0,
                   "the training data repeats exactly every day: MASE is undefined");
        bt_data_fini(out);
        return -EINVAL;
    }
    return 0;
nomem:
    bt_data_fini(out);
    return errmsg(err, errlen, -ENOMEM, "out of memory");
}

void bt_data_fini(bt_data *d) {
    if (!d) return;
    free(d->y);
    free(d->origins);
    memset(d, 0, sizeof *d);
}

void bt_metrics(const double *f, const double *y, size_t n, double mase_scale, double *mae,
                double *rmse, double *wape, double *mase, double *under) {
    double sa = 0, ss = 0, sy = 0;
    size_t nu = 0;
    for (size_t i = 0; i < n; i++) {
        double e = f[i] - y[i];
        sa += fabs(e);
        ss += e * e;
        sy += fabs(y[i]);
        if (f[i] < 0.9 * y[i]) nu++;
    }
    double dn = n ? (double)n : 1;
    *mae = sa / dn;
    *rmse = sqrt(ss / dn);
    *wape = sy > 0 ? sa / sy : NAN;
    *mase = mase_scale > 0 ? *mae / mase_scale : NAN;
    *under = (double)nu / dn;
}

double bt_pinball(const double *f, const double *y, size_t n, double q, double mase_scale) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double u = y[i] - f[i];
        s += u >= 0 ? q * u : (q - 1) * u;
    }
    return n && mase_scale > 0 ? s / (double)n / mase_scale : NAN;
}

/* One more origin whose forecast used `name` (bounded: BT_USED_MAX names, then used_other). */
static void count_used(bt_result *res, const char *name) {
    for (size_t i = 0; i < res->n_used; i++)
        if (strcmp(res->used[i].name, name) == 0) {
            res->used[i].origins++;
            return;
        }
    if (res->n_used == BT_USED_MAX) {
        res->used_other++;
        return;
    }
    snprintf(res->used[res->n_used].name, sizeof res->used[0].name, "%s", name);
    res->used[res->n_used++].origins = 1;
}

int bt_run(const bt_data *d, const char *model, const fc_options *opt, int keep, bt_result *res,
           char *err, size_t errlen) {
    memset(res, 0, sizeof *res);
    fc_options o = opt ? *opt : (fc_options){0};
    o.horizon = d->horizon;
    forecaster *f = NULL;
    int rc = fc_new(&f, model, &o, err, errlen);
    if (rc != 0) return rc;
    size_t H = (size_t)d->horizon, np = d->n_origins * H;
    double *pt = malloc(np * sizeof *pt), *p9 = malloc(np * sizeof *p9);
    double *act = malloc(np * sizeof *act);
    if (!pt || !p9 || !act) {
        rc = -ENOMEM;
        errmsg(err, errlen, 0, "out of memory");
        goto out;
    }
    fc_series train = {.y = d->y, .n = d->n_train, .t0 = d->t0, .step = d->step};
    double t = now_s();
    rc = fc_fit(f, &train, err, errlen);
    res->fit_seconds = now_s() - t;
    if (rc != 0) goto out;
    snprintf(res->model, sizeof res->model, "%s", fc_name(f));
    res->train_windows_per_s = fc_train_throughput(f);
    t = now_s();
    for (size_t k = 0; k < d->n_origins; k++) {
        fc_series ctx = {.y = d->y, .n = d->origins[k], .t0 = d->t0, .step = d->step};
        rc = fc_predict(f, &ctx, (int)H, 0.5, pt + k * H, err, errlen);
        if (rc == 0) count_used(res, fc_name_last(f));
        if (rc == 0) rc = fc_predict(f, &ctx, (int)H, 0.9, p9 + k * H, err, errlen);
        if (rc != 0) goto out;
        memcpy(act + k * H, d->y + d->origins[k], H * sizeof *act);
    }
    res->predict_seconds = now_s() - t;
    bt_metrics(pt, act, np, d->mase_scale, &res->mae, &res->rmse, &res->wape, &res->mase,
               &res->under);
    size_t cov = 0;
    for (size_t i = 0; i < np; i++)
        cov += act[i] <= p9[i];
    res->p90_coverage = np ? (double)cov / (double)np : 0;
    res->pinball_p90 = bt_pinball(p9, act, np, 0.9, d->mase_scale);
    res->points = np;
    if (keep) {
        res->point = pt;
        res->p90 = p9;
        pt = p9 = NULL;
    }
out:
    free(act);
    free(pt);
    free(p9);
    fc_free(f);
    return rc;
}

void bt_result_fini(bt_result *r) {
    if (!r) return;
    free(r->point);
    free(r->p90);
    r->point = r->p90 = NULL;
}

/* ---- SVG plot ---------------------------------------------------------------------------- */

static const char *const colors[] = {"#d62728", "#1f77b4", "#2ca02c", "#9467bd",
                                     "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

/* The test span on a real UTC time axis (shared/svgplot.c): the actual series, then per model
 * its point forecasts (line) and the band from point to p90, legend beside the data. */
int bt_plot_svg(const char *path, const bt_data *d, const bt_result *res, size_t nres,
                const char *title, char *err, size_t errlen) {
    size_t H = (size_t)d->horizon;
    size_t a = d->origins[0], z = d->origins[d->n_origins - 1] + H; /* plotted index range */
    size_t n = z - a;
    double *t = malloc(n * sizeof *t), *buf = malloc(n * 2 * (nres ? nres : 1) * sizeof *buf);
    svg_series *ser = calloc(1 + 2 * nres, sizeof *ser);
    char(*labels)[2][96] = calloc(nres ? nres : 1, sizeof *labels);
    int rc = 0;
    if (!t || !buf || !ser || !labels) {
        rc = errmsg(err, errlen, -ENOMEM, "%s: out of memory", path);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        t[i] = (double)(d->t0 + (int64_t)(a + i) * d->step);
    size_t ns = 0;
    for (size_t r = 0; r < nres; r++) {
        double *pt = buf + 2 * r * n, *up = pt + n;
        for (size_t i = 0; i < n; i++)
            pt[i] = up[i] = NAN;
        for (size_t k = 0; k < d->n_origins; k++)
            for (size_t i = 0; i < H; i++) {
                size_t at = d->origins[k] + i - a;
                if (at < n) {
                    pt[at] = res[r].point[k * H + i];
                    up[at] = res[r].p90[k * H + i];
                }
            }
        const char *col = colors[r % (sizeof colors / sizeof *colors)];
        snprintf(labels[r][0], sizeof labels[r][0], "%.60s: point", res[r].model);
        snprintf(labels[r][1], sizeof labels[r][1], "%.60s: point..p90", res[r].model);
        ser[ns++] = (svg_series){labels[r][1], col, SVG_BAND, t, pt, up, n, 0};
        ser[ns++] = (svg_series){labels[r][0], col, SVG_LINE, t, pt, NULL, n, 0};
    }
    ser[ns++] = (svg_series){"actual", "#222222", SVG_LINE, t, d->y + a, NULL, n, 0};
    char ylabel[96];
    snprintf(ylabel, sizeof ylabel, "value per %llds step (as in the CSV)", (long long)d->step);
    svg_panel panel = {NULL, ylabel, ser, ns, 0, 0};
    char *svg = svg_chart(title, &panel, 1, t[0], t[n - 1], 1400, 520);
    if (!svg) {
        rc = errmsg(err, errlen, -ENOMEM, "%s: out of memory", path);
        goto out;
    }
    FILE *fp = fopen(path, "w");
    if (!fp) {
        int e = errno;
        rc = errmsg(err, errlen, -e, "%s: %s", path, strerror(e));
    } else {
        fputs(svg, fp);
        if (fclose(fp) != 0) {
            int e = errno;
            rc = errmsg(err, errlen, -e, "%s: %s", path, strerror(e));
        }
    }
    free(svg);
out:
    free(t);
    free(buf);
    free(ser);
    free(labels);
    return rc;
}
