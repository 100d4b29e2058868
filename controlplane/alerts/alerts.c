/* alerts.c: the alerts module: rules, evaluation on worker threads, alert states, delivery and
 * the snapshots the HTTP listener serves (see alerts.h). */
#include "alerts/alerts.h"
#include "alerts/amclient.h"

#include "api/metrics.h"
#include "cluster/cluster.h"
#include "cp.h"
#include "log.h"
#include "models/alerting.h"
#include "models/anomaly.h"
#include "models/forecast.h"
#include "query/prom.h"
#include "query/prom_module.h"
#include "query/query.h"
#include "spec/alertrule.h"
#include "strbuf.h"
#include "work.h"
#include "workloads/observe.h"
#include "workloads/persist.h"
#include "workloads/workloads.h"

#include <errno.h>
#include <ev.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* One alert: a series of a rule's metric, with what the worker found and the loop's state. */
typedef struct ar_series {
    char *key; /* the label set as text: identity across evaluations */
    char **names, **values;
    size_t nlabels;
    /* worker-owned during an evaluation */
    alert_predict_model pm;
    anom_detector *det;
    int64_t last_t; /* newest point scored by the detector */
    int seen;       /* in the last evaluation's result */
    int active;     /* the condition held */
    double value;   /* predict: the forecast at the crossing (or its extreme); anomaly: the value */
    int64_t crossing;
    double score, expected;
    double band[ALERT_NBANDS];
    int64_t band_t; /* the time the bands forecast (0: none) */
    char error[200];
    char note[300]; /* type workload: what the condition found (the default summary) */
    /* loop-owned */
    alert_state st;
    int64_t last_sent;
    char *annot_json; /* the annotations of the last notification (for the resolved one) */
} ar_series;

typedef struct ar_entry {
    struct ar_entry *next;
    alertrule_spec spec;
    char *yaml;
    unsigned long long generation;
    ar_series **series;
    size_t nseries, cap;
    int busy;    /* an evaluation runs on a worker */
    int deleted; /* unlinked while busy: freed when it finishes */
    int64_t next_eval;
    int64_t last_eval;     /* wall s, 0 never */
    double last_eval_took; /* s */
    uint64_t evals, failures;
    char last_error[300];
    char warning[200];
    uint64_t ev_seen; /* type workload: planner events already looked at (+1; 0 = none yet) */
    cJSON *snap;      /* the rule as JSON, rendered on the loop after each evaluation */
    char *metrics;    /* its series for /metrics */
} ar_entry;

typedef struct eval_job {
    work w;
    struct cp_alerts *a;
    ar_entry *e;
    int64_t now;
    int rc;
    int nothing_new;
    char err[300];
    char warning[200];
    double took;
} eval_job;

struct cp_alerts {
    struct controlplane *cp;
    ar_entry *head;
    work_pool *pool;
    ev_timer tick;
    am_client *am;
    char dir[1024];
    char gen_base[512];
    int64_t resend_s;
    pthread_mutex_t mu; /* guards the three texts below (read by HTTP threads) */
    char *rules_body, *alerts_body, *metrics_text;
    /* the built-in alert of high availability: this control plane stopped acting because it
     * cannot prove its etcd lease (cluster_lease_alert); loop-owned */
    struct {
        int firing;
        int64_t since, last_sent; /* wall s */
        char summary[600];
    } lease;
};

#define LEASE_ALERT_NAME "TideLeaseNotProven"

static log_ratelimit eval_rl = LOG_RATELIMIT_INIT(60000, 10);

static void rfc3339(int64_t t, char *buf, size_t len) {
    time_t tt = (time_t)t;
    struct tm tmv;
    gmtime_r(&tt, &tmv);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tmv);
}

/* ---- series ---------------------------------------------------------------------------- */

static void series_free(ar_series *s) {
    if (!s) return;
    for (size_t i = 0; i < s->nlabels; i++) {
        free(s->names[i]);
        free(s->values[i]);
    }
    free(s->names);
    free(s->values);
    free(s->key);
    alert_predict_model_fini(&s->pm);
    anom_free(s->det);
    free(s->annot_json);
    free(s);
}

/* A series for the labels of a query result (without __name__). NULL on ENOMEM. */
static ar_series *series_new(char **names, char **values, size_t n) {
    ar_series *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    strbuf k = {0};
    s->names = calloc(n ? n : 1, sizeof *s->names);
    s->values = calloc(n ? n : 1, sizeof *s->values);
    if (!s->names || !s->values) goto fail;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(names[i], "__name__")) continue;
        if (!(s->names[s->nlabels] = strdup(names[i]))) goto fail;
        if (!(s->values[s->nlabels] = strdup(values[i]))) {
            free(s->names[s->nlabels]);
            goto fail;
        }
        strbuf_printf(&k, "%s%s=\"%s\"", s->nlabels ? "," : "", names[i], values[i]);
        s->nlabels++;
    }
    s->key = strbuf_take(&k, 1);
    if (!s->key) goto fail;
    return s;
fail:
    strbuf_fini(&k);
    series_free(s);
    return NULL;
}

static char *labels_key(const query_series *q) {
    strbuf k = {0};
    int first = 1;
    for (size_t i = 0; i < q->nlabels; i++)
        if (strcmp(q->names[i], "__name__") != 0) {
            strbuf_printf(&k, "%s%s=\"%s\"", first ? "" : ",", q->names[i], q->values[i]);
            first = 0;
        }
    return strbuf_take(&k, 1);
}

static void entry_free(ar_entry *e) {
    if (!e) return;
    for (size_t i = 0; i < e->nseries; i++)
        series_free(e->series[i]);
    free(e->series);
    free(e->yaml);
    cJSON_Delete(e->snap);
    free(e->metrics);
    free(e);
}

/* ---- evaluation (worker thread) -------------------------------------------------------- */

static void eval_predict(const alertrule_spec *s, ar_series *sr, const double *y, size_t n,
                         int64_t t0, int64_t now) {
    alert_predict_cfg cfg = {s->model,     s->step_s,   s->horizon_s, s->retrain_s,
                             s->threshold, s->quantile, s->below,     /* bands = */ 1};
    alert_predict_out o;
    if (alert_predict(&sr->pm, &cfg, y, n, t0, now, &o) < 0) {
        snprintf(sr->error, sizeof sr->error, "out of memory");
        return;
    }
    snprintf(sr->error, sizeof sr->error, "%s", o.error);
    if (!o.ok) return;
    sr->active = o.active;
    sr->value = o.value;
    sr->crossing = o.crossing;
    sr->band_t = o.band_t;
    memcpy(sr->band, o.band, sizeof sr->band);
}

static void eval_anomaly(const alertrule_spec *s, ar_series *sr, const double *y, size_t n,
                         int64_t t0, int64_t now) {
    int64_t step = s->step_s;
    if (!sr->det) {
        anom_opts o = {.step = step, .threshold = s->score_threshold};
        char err[160];
        if (anom_new(&sr->det, &o, err, sizeof err) < 0) {
            snprintf(sr->error, sizeof sr->error, "anomaly detector: %.150s", err);
            return;
        }
    }
    /* the points new since the last evaluation decide; at the first one, the history read is
     * being learned and only the points of the last interval (at least the newest) decide */
    int64_t end = t0 + (int64_t)(n ? n - 1 : 0) * step;
    int64_t span = s->interval_s > step ? s->interval_s : step;
    int64_t recent = sr->last_t ? INT64_MIN : end - span;
    (void)now;
    for (size_t k = 0; k < n; k++) {
        int64_t t = t0 + (int64_t)k * step;
        if (t <= sr->last_t) continue;
        double x = query_is_absent(y[k]) ? NAN : y[k];
        anom_result res = anom_step(sr->det, x);
        sr->last_t = t;
        if (t <= recent || isnan(x)) continue;
        if (res.score >= s->score_threshold && (!sr->active || res.score > sr->score)) {
            sr->active = 1;
            sr->value = x;
            sr->score = res.score;
            sr->expected = res.expected;
        } else if (!sr->active) {
            sr->value = x;
            sr->score = res.score;
            sr->expected = res.expected;
        }
    }
}

static void eval_run(work *w) {
    eval_job *j = (eval_job *)((char *)w - offsetof(eval_job, w));
    ar_entry *e = j->e;
    const alertrule_spec *s = &e->spec;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t step = s->step_s, now = j->now;
    int64_t end = now - now % step - step; /* the last complete step */
    int64_t start = end - s->history_s + step;
    if (s->type == AR_ANOMALY && e->nseries) { /* from where the detectors stopped */
        int64_t from = INT64_MAX;
        for (size_t i = 0; i < e->nseries; i++)
            if (e->series[i]->last_t < from) from = e->series[i]->last_t;
        if (from != INT64_MAX && from + step > start) start = from + step;
    }
    if (start > end) {
        j->nothing_new = 1;
        goto out;
    }
    query_result r;
    observe_metric mr;
    memset(&mr, 0, sizeof mr);
    j->rc =
        observe_source_range(j->a->cp->db, j->a->cp->prom, &s->metric, start, end, step, &r, &mr);
    if (j->rc < 0) {
        snprintf(j->err, sizeof j->err, "%s", mr.error[0] ? mr.error : strerror(-j->rc));
        goto out;
    }
    if (mr.error[0]) snprintf(j->warning, sizeof j->warning, "%.190s", mr.error);
    for (size_t i = 0; i < e->nseries; i++)
        e->series[i]->seen = 0;
    size_t used = 0;
    for (size_t i = 0; i < r.n; i++) {
        const query_series *q = &r.s[i];
        char *key = labels_key(q);
        if (!key) continue;
        ar_series *sr = NULL;
        for (size_t k = 0; k < e->nseries && !sr; k++)
            if (!strcmp(e->series[k]->key, key)) sr = e->series[k];
        free(key);
        if (!sr) {
            if (e->nseries >= ALERTS_MAX_SERIES) {
                snprintf(j->warning, sizeof j->warning,
                         "the metric returns %zu series; only %d are evaluated", r.n,
                         ALERTS_MAX_SERIES);
                continue;
            }
            if (e->nseries == e->cap) {
                size_t cap = e->cap ? e->cap * 2 : 4;
                ar_series **ns = realloc(e->series, cap * sizeof *ns);
                if (!ns) continue;
                e->series = ns;
                e->cap = cap;
            }
            if (!(sr = series_new(q->names, q->values, q->nlabels))) continue;
            e->series[e->nseries++] = sr;
        }
        used++;
        sr->seen = 1;
        sr->active = 0;
        sr->error[0] = 0;
        sr->score = 0;
        if (s->type == AR_PREDICT)
            eval_predict(s, sr, q->v, r.nsteps, start, now);
        else
            eval_anomaly(s, sr, q->v, r.nsteps, start, now);
    }
    (void)used;
    query_result_fini(&r);
out:
    clock_gettime(CLOCK_MONOTONIC, &t1);
    j->took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}

/* ---- notifications and snapshots (loop) ------------------------------------------------ */

static void add_labels(cJSON *o, const ar_entry *e, const ar_series *s) {
    for (size_t i = 0; i < s->nlabels; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, s->names[i]);
        cJSON_AddStringToObject(o, s->names[i], s->values[i]);
    }
    for (int i = 0; i < e->spec.n_labels; i++) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, e->spec.labels[i].name);
        cJSON_AddStringToObject(o, e->spec.labels[i].name, e->spec.labels[i].value);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(o, "alertname");
    cJSON_AddStringToObject(o, "alertname", e->spec.name);
    cJSON_DeleteItemFromObjectCaseSensitive(o, "severity");
    cJSON_AddStringToObject(o, "severity", e->spec.severity);
}

static cJSON *annotations(const ar_entry *e, const ar_series *s, int64_t now) {
    const alertrule_spec *sp = &e->spec;
    cJSON *o = cJSON_CreateObject();
    ar_vars v = {.value = s->value,
                 .threshold = sp->type == AR_PREDICT ? sp->threshold : NAN,
                 .score = sp->type == AR_ANOMALY ? s->score : NAN,
                 .expected = sp->type == AR_ANOMALY ? s->expected : NAN,
                 .crossing_time = s->crossing,
                 .now = now,
                 .rule = sp->name,
                 .label_names = (const char *const *)s->names,
                 .label_values = (const char *const *)s->values,
                 .n_labels = s->nlabels};
    int has_summary = 0;
    for (int i = 0; i < sp->n_annotations; i++) {
        char buf[AR_ANNOT_MAX * 2], why[200];
        ar_template_expand(sp->annotations[i].value, &v, buf, sizeof buf, why, sizeof why);
        cJSON_AddStringToObject(o, sp->annotations[i].name, buf);
        has_summary |= !strcmp(sp->annotations[i].name, "summary");
    }
    if (!has_summary && sp->type == AR_WORKLOAD) {
        cJSON_AddStringToObject(o, "summary", s->note[0] ? s->note : sp->name);
    } else if (!has_summary) {
        char buf[600], ct[32], in[32], val[32];
        snprintf(val, sizeof val, "%.6g", s->value);
        if (sp->type == AR_PREDICT && s->crossing > 0) {
            rfc3339(s->crossing, ct, sizeof ct);
            ar_format_duration(s->crossing - now, in, sizeof in);
            snprintf(buf, sizeof buf, "%s: forecast (p%g) %s %.6g at %s (in %s), forecast %s",
                     sp->name, sp->quantile * 100, sp->below ? "below" : "above", sp->threshold, ct,
                     in, val);
        } else if (sp->type == AR_PREDICT) {
            ar_format_duration(sp->horizon_s, in, sizeof in);
            snprintf(buf, sizeof buf, "%s: forecast (p%g) stays %s %.6g within %s", sp->name,
                     sp->quantile * 100, sp->below ? "above" : "below", sp->threshold, in);
        } else {
            snprintf(buf, sizeof buf, "%s: anomalous value %s (expected %.6g, score %.2f)",
                     sp->name, val, s->expected, s->score);
        }
        cJSON_AddStringToObject(o, "summary", buf);
    }
    if (sp->type != AR_ANOMALY && s->crossing > 0) {
        char ct[32];
        rfc3339(s->crossing, ct, sizeof ct);
        cJSON_AddStringToObject(o, "crossing_time", ct);
    }
    return o;
}

/* Queues the alert of s to the Alertmanagers: firing (endsAt ahead) or resolved (endsAt at
 * the resolution). */
static void notify(struct cp_alerts *a, const ar_entry *e, ar_series *s, int64_t now,
                   int resolved) {
    cJSON *o = cJSON_CreateObject();
    cJSON *l = cJSON_AddObjectToObject(o, "labels");
    add_labels(l, e, s);
    if (resolved && s->annot_json) {
        cJSON *an = cJSON_Parse(s->annot_json);
        if (an) cJSON_AddItemToObject(o, "annotations", an);
    } else {
        cJSON *an = annotations(e, s, now);
        free(s->annot_json);
        s->annot_json = cJSON_PrintUnformatted(an);
        cJSON_AddItemToObject(o, "annotations", an);
    }
    char ts[32];
    rfc3339(s->st.active_at, ts, sizeof ts);
    cJSON_AddStringToObject(o, "startsAt", ts);
    int64_t ahead = 4 * (a->resend_s > e->spec.interval_s ? a->resend_s : e->spec.interval_s);
    rfc3339(resolved ? now : now + ahead, ts, sizeof ts);
    cJSON_AddStringToObject(o, "endsAt", ts);
    if (a->gen_base[0]) {
        char url[700];
        snprintf(url, sizeof url, "%s/api/v1/rules?rule=%s", a->gen_base, e->spec.name);
        cJSON_AddStringToObject(o, "generatorURL", url);
    }
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (txt && a->am) am_enqueue(a->am, txt);
    free(txt);
    s->last_sent = now;
}

static cJSON *alert_json(const ar_entry *e, const ar_series *s, int64_t now) {
    cJSON *o = cJSON_CreateObject();
    add_labels(cJSON_AddObjectToObject(o, "labels"), e, s);
    cJSON_AddItemToObject(o, "annotations", annotations(e, s, now));
    cJSON_AddStringToObject(o, "state", alert_phase_name(s->st.phase));
    char ts[32], val[40];
    rfc3339(s->st.active_at, ts, sizeof ts);
    cJSON_AddStringToObject(o, "activeAt", ts);
    snprintf(val, sizeof val, "%.17g", s->value);
    cJSON_AddStringToObject(o, "value", val);
    return o;
}

static void metric_labels(strbuf *b, const ar_entry *e, const ar_series *s) {
    strbuf_printf(b, "rule=\"");
    metrics_label(b, e->spec.name);
    strbuf_printf(b, "\"");
    for (size_t i = 0; s && i < s->nlabels; i++) {
        if (!strcmp(s->names[i], "rule") || !strcmp(s->names[i], "quantile")) continue;
        strbuf_printf(b, ",%s=\"", s->names[i]);
        metrics_label(b, s->values[i]);
        strbuf_printf(b, "\"");
    }
}

/* Renders e's JSON (Prometheus rule object + "tide") and its /metrics lines. Loop, !busy. */
static void render_entry(ar_entry *e, int64_t now) {
    const alertrule_spec *sp = &e->spec;
    cJSON *r = cJSON_CreateObject();
    int firing = 0, pending = 0;
    for (size_t i = 0; i < e->nseries; i++) {
        firing += e->series[i]->st.phase == ALERT_FIRING;
        pending += e->series[i]->st.phase == ALERT_PENDING;
    }
    cJSON_AddStringToObject(r, "state", firing ? "firing" : pending ? "pending" : "inactive");
    cJSON_AddStringToObject(r, "name", sp->name);
    char wq[100];
    snprintf(wq, sizeof wq, "workload %s", sp->workload);
    const char *q = sp->type == AR_WORKLOAD  ? wq
                    : sp->metric.selector[0] ? sp->metric.selector
                                             : sp->metric.query;
    cJSON_AddStringToObject(r, "query", q);
    cJSON_AddNumberToObject(r, "duration", (double)sp->for_s);
    cJSON_AddNumberToObject(r, "keepFiringFor", (double)sp->keep_firing_s);
    cJSON *lab = cJSON_AddObjectToObject(r, "labels");
    for (int i = 0; i < sp->n_labels; i++)
        cJSON_AddStringToObject(lab, sp->labels[i].name, sp->labels[i].value);
    cJSON_AddStringToObject(lab, "severity", sp->severity);
    cJSON *an = cJSON_AddObjectToObject(r, "annotations");
    for (int i = 0; i < sp->n_annotations; i++)
        cJSON_AddStringToObject(an, sp->annotations[i].name, sp->annotations[i].value);
    cJSON *al = cJSON_AddArrayToObject(r, "alerts");
    for (size_t i = 0; i < e->nseries; i++)
        if (e->series[i]->st.phase != ALERT_INACTIVE)
            cJSON_AddItemToArray(al, alert_json(e, e->series[i], now));
    cJSON_AddStringToObject(r, "health", e->last_error[0] ? "err" : e->evals ? "ok" : "unknown");
    if (e->last_error[0]) cJSON_AddStringToObject(r, "lastError", e->last_error);
    cJSON_AddNumberToObject(r, "evaluationTime", e->last_eval_took);
    char ts[32] = "0001-01-01T00:00:00Z";
    if (e->last_eval) rfc3339(e->last_eval, ts, sizeof ts);
    cJSON_AddStringToObject(r, "lastEvaluation", ts);
    cJSON_AddStringToObject(r, "type", "alerting");
    cJSON *t = cJSON_AddObjectToObject(r, "tide");
    cJSON_AddStringToObject(t, "type", ar_type_name(sp->type));
    cJSON_AddNumberToObject(t, "generation", (double)e->generation);
    cJSON_AddNumberToObject(t, "interval", (double)sp->interval_s);
    cJSON_AddNumberToObject(t, "step", (double)sp->step_s);
    cJSON_AddNumberToObject(t, "history", (double)sp->history_s);
    if (sp->type == AR_PREDICT) {
        cJSON_AddStringToObject(t, "model", sp->model);
        cJSON_AddNumberToObject(t, "horizon", (double)sp->horizon_s);
        cJSON_AddNumberToObject(t, "threshold", sp->threshold);
        cJSON_AddStringToObject(t, "direction", sp->below ? "below" : "above");
        cJSON_AddNumberToObject(t, "quantile", sp->quantile);
    } else if (sp->type == AR_ANOMALY) {
        cJSON_AddStringToObject(t, "sensitivity", ar_sensitivity_name(sp->sensitivity));
        cJSON_AddNumberToObject(t, "score_threshold", sp->score_threshold);
    } else {
        cJSON_AddStringToObject(t, "workload", sp->workload);
        cJSON *cs = cJSON_AddArrayToObject(t, "conditions");
        for (unsigned b = 1; b <= AR_COND_STABILITY; b <<= 1)
            if (sp->conditions & b)
                cJSON_AddItemToArray(cs, cJSON_CreateString(ar_condition_name(b)));
    }
    cJSON_AddNumberToObject(t, "evaluations", (double)e->evals);
    cJSON_AddNumberToObject(t, "failures", (double)e->failures);
    if (e->warning[0]) cJSON_AddStringToObject(t, "warning", e->warning);
    cJSON *ss = cJSON_AddArrayToObject(t, "series");
    for (size_t i = 0; i < e->nseries; i++) {
        const ar_series *s = e->series[i];
        cJSON *o = cJSON_CreateObject();
        cJSON *sl = cJSON_AddObjectToObject(o, "labels");
        for (size_t k = 0; k < s->nlabels; k++)
            cJSON_AddStringToObject(sl, s->names[k], s->values[k]);
        cJSON_AddStringToObject(o, "state", alert_phase_name(s->st.phase));
        cJSON_AddBoolToObject(o, "active", s->active);
        if (!isnan(s->value)) cJSON_AddNumberToObject(o, "value", s->value);
        if (sp->type == AR_PREDICT) {
            if (s->crossing > 0)
                cJSON_AddNumberToObject(o, "crossing_time", (double)s->crossing);
            else
                cJSON_AddNullToObject(o, "crossing_time");
            if (s->pm.name[0]) cJSON_AddStringToObject(o, "model", s->pm.name);
            if (s->pm.fit_at) cJSON_AddNumberToObject(o, "fit_at", (double)s->pm.fit_at);
        } else if (sp->type == AR_ANOMALY) {
            cJSON_AddNumberToObject(o, "score", s->score);
            if (!isnan(s->expected)) cJSON_AddNumberToObject(o, "expected", s->expected);
            cJSON_AddNumberToObject(o, "scored_to", (double)s->last_t);
        } else {
            if (s->crossing > 0) cJSON_AddNumberToObject(o, "crossing_time", (double)s->crossing);
            if (s->note[0]) cJSON_AddStringToObject(o, "note", s->note);
        }
        if (s->st.active_at && s->st.phase != ALERT_INACTIVE)
            cJSON_AddNumberToObject(o, "active_at", (double)s->st.active_at);
        if (s->st.resolved_at) cJSON_AddNumberToObject(o, "resolved_at", (double)s->st.resolved_at);
        if (s->error[0]) cJSON_AddStringToObject(o, "error", s->error);
        cJSON_AddItemToArray(ss, o);
    }
    cJSON_Delete(e->snap);
    e->snap = r;

    strbuf b = {0};
    const struct {
        const char *name;
        double v;
    } lines[] = {
        {"tide_alerts_firing", firing},
        {"tide_alerts_pending", pending},
        {"tide_alert_rule_evaluations_total", (double)e->evals},
        {"tide_alert_rule_evaluation_failures_total", (double)e->failures},
        {"tide_alert_rule_last_evaluation_timestamp_seconds", (double)e->last_eval},
        {"tide_alert_rule_last_evaluation_seconds", e->last_eval_took},
    };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        strbuf_printf(&b, "%s{", lines[i].name);
        metric_labels(&b, e, NULL);
        strbuf_printf(&b, "} %.9g\n", lines[i].v);
    }
    for (size_t i = 0; i < e->nseries; i++) {
        const ar_series *s = e->series[i];
        if (sp->type == AR_PREDICT && s->band_t) {
            for (int k = 0; k < ALERT_NBANDS; k++) {
                if (isnan(s->band[k])) continue;
                strbuf_printf(&b, "tide_forecast{");
                metric_labels(&b, e, s);
                strbuf_printf(&b, ",quantile=\"%g\"} %.17g\n", alert_band_q[k], s->band[k]);
            }
        } else if (sp->type == AR_ANOMALY && s->det) {
            strbuf_printf(&b, "tide_anomaly_score{");
            metric_labels(&b, e, s);
            strbuf_printf(&b, "} %.6g\n", s->score);
        }
    }
    free(e->metrics);
    e->metrics = strbuf_take(&b, 1);
}

static void family(strbuf *b, const char *name, const char *type, const char *help) {
    strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* ---- the built-in alert of high availability -------------------------------------------- */

static void lease_labels(cJSON *l, struct cp_alerts *a) {
    const char *member = cluster_member(a->cp);
    cJSON_AddStringToObject(l, "alertname", LEASE_ALERT_NAME);
    cJSON_AddStringToObject(l, "severity", "critical");
    cJSON_AddStringToObject(l, "member", member ? member : "");
    if (a->cp->cfg.http && a->cp->cfg.http[0])
        cJSON_AddStringToObject(l, "instance", a->cp->cfg.http);
}

/* The alert in Prometheus's shape (/api/v1/alerts, tidectl alerts), NULL when not firing. */
static cJSON *lease_alert_json(struct cp_alerts *a) {
    if (!a->lease.firing) return NULL;
    cJSON *o = cJSON_CreateObject();
    lease_labels(cJSON_AddObjectToObject(o, "labels"), a);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "annotations"), "summary", a->lease.summary);
    cJSON_AddStringToObject(o, "state", "firing");
    char ts[32];
    rfc3339(a->lease.since, ts, sizeof ts);
    cJSON_AddStringToObject(o, "activeAt", ts);
    cJSON_AddStringToObject(o, "value", "1");
    return o;
}

/* Queues it to the Alertmanagers: firing (endsAt 4 resend intervals ahead, so that an
 * Alertmanager resolves it by itself if this control plane goes away) or resolved. */
static void lease_notify(struct cp_alerts *a, int64_t now, int resolved) {
    cJSON *o = cJSON_CreateObject();
    lease_labels(cJSON_AddObjectToObject(o, "labels"), a);
    cJSON *an = cJSON_AddObjectToObject(o, "annotations");
    cJSON_AddStringToObject(an, "summary", a->lease.summary);
    cJSON_AddStringToObject(an, "description",
                            "A control plane that cannot prove its etcd lease stops acting for "
                            "every workload it owns (scaling of them stops until the lease is "
                            "proven again or another control plane takes them over). Check "
                            "etcd's health and this control plane's path to it.");
    char ts[32];
    rfc3339(a->lease.since, ts, sizeof ts);
    cJSON_AddStringToObject(o, "startsAt", ts);
    rfc3339(resolved ? now : now + 4 * a->resend_s, ts, sizeof ts);
    cJSON_AddStringToObject(o, "endsAt", ts);
    if (a->gen_base[0]) {
        char url[600];
        snprintf(url, sizeof url, "%s/api/v1/alerts", a->gen_base);
        cJSON_AddStringToObject(o, "generatorURL", url);
    }
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (txt && a->am) am_enqueue(a->am, txt);
    free(txt);
    a->lease.last_sent = now;
}

static void render_all(struct cp_alerts *a);

/* Every tick: fires when the cluster module says acting stopped for want of a provable lease,
 * resolves when it is proven again. */
static void lease_check(struct cp_alerts *a, int64_t now) {
    int64_t since_ms = 0;
    char summary[sizeof a->lease.summary];
    int active = cluster_lease_alert(a->cp, &since_ms, summary, sizeof summary);
    if (active && !a->lease.firing) {
        a->lease.firing = 1;
        a->lease.since = since_ms / 1000;
        memcpy(a->lease.summary, summary, sizeof summary);
        log_warn("alerts", "%s{member=\"%s\"}: firing: %s", LEASE_ALERT_NAME, cluster_member(a->cp),
                 summary);
        lease_notify(a, now, 0);
        render_all(a);
    } else if (active && now - a->lease.last_sent >= a->resend_s) {
        memcpy(a->lease.summary, summary, sizeof summary);
        lease_notify(a, now, 0);
        render_all(a);
    } else if (!active && a->lease.firing) {
        a->lease.firing = 0;
        log_info("alerts", "%s{member=\"%s\"}: resolved: the lease is proven again",
                 LEASE_ALERT_NAME, cluster_member(a->cp));
        lease_notify(a, now, 1);
        render_all(a);
    }
}

/* Rebuilds the texts the HTTP threads serve from every entry's snapshot. Loop. */
static void render_all(struct cp_alerts *a) {
    cJSON *groups = cJSON_CreateArray(), *alerts = cJSON_CreateArray();
    for (ar_entry *e = a->head; e; e = e->next) {
        if (!e->snap) continue;
        cJSON *g = cJSON_CreateObject();
        cJSON_AddStringToObject(g, "name", e->spec.name);
        char file[1200];
        snprintf(file, sizeof file, "%s/%s.yaml", a->dir, e->spec.name);
        cJSON_AddStringToObject(g, "file", file);
        cJSON *rules = cJSON_AddArrayToObject(g, "rules");
        cJSON_AddItemToArray(rules, cJSON_Duplicate(e->snap, 1));
        cJSON_AddNumberToObject(g, "interval", (double)e->spec.interval_s);
        cJSON_AddNumberToObject(g, "limit", 0);
        cJSON_AddNumberToObject(g, "evaluationTime", e->last_eval_took);
        cJSON_AddItemToObject(g, "lastEvaluation",
                              cJSON_Duplicate(cJSON_GetObjectItem(e->snap, "lastEvaluation"), 1));
        cJSON_AddItemToArray(groups, g);
        const cJSON *al;
        cJSON_ArrayForEach(al, cJSON_GetObjectItem(e->snap, "alerts"))
            cJSON_AddItemToArray(alerts, cJSON_Duplicate(al, 1));
    }
    cJSON *la = lease_alert_json(a);
    if (la) cJSON_AddItemToArray(alerts, la);
    cJSON *rb = cJSON_CreateObject(), *ab = cJSON_CreateObject();
    cJSON_AddStringToObject(rb, "status", "success");
    cJSON_AddItemToObject(cJSON_AddObjectToObject(rb, "data"), "groups", groups);
    cJSON_AddStringToObject(ab, "status", "success");
    cJSON_AddItemToObject(cJSON_AddObjectToObject(ab, "data"), "alerts", alerts);
    char *rt = cJSON_PrintUnformatted(rb), *at = cJSON_PrintUnformatted(ab);
    cJSON_Delete(rb);
    cJSON_Delete(ab);
    /* /metrics: one family header each, then every entry's lines of that family */
    static const char *const fam[][3] = {
        {"tide_alerts_firing", "gauge", "Alerts firing now, per rule."},
        {"tide_alerts_pending", "gauge", "Alerts active but not yet firing (for), per rule."},
        {"tide_alert_rule_evaluations_total", "counter", "Evaluations of the rule."},
        {"tide_alert_rule_evaluation_failures_total", "counter",
         "Evaluations that failed (the metric could not be read)."},
        {"tide_alert_rule_last_evaluation_timestamp_seconds", "gauge",
         "When the rule was last evaluated (unix s, 0 never)."},
        {"tide_alert_rule_last_evaluation_seconds", "gauge", "How long its last evaluation took."},
        {"tide_forecast", "gauge",
         "A predict rule's forecast of its metric for the next step, at the quantile."},
        {"tide_anomaly_score", "gauge",
         "An anomaly rule's score of its newest point (0..1, 0.4 = one in 10^4)."},
    };
    strbuf m = {0};
    for (size_t f = 0; f < sizeof fam / sizeof *fam; f++) {
        size_t nl = strlen(fam[f][0]);
        int head = 0;
        for (ar_entry *e = a->head; e; e = e->next) {
            const char *p = e->metrics;
            while (p && *p) {
                const char *eol = strchr(p, '\n');
                size_t len = eol ? (size_t)(eol - p + 1) : strlen(p);
                if (!strncmp(p, fam[f][0], nl) && p[nl] == '{') {
                    if (!head) family(&m, fam[f][0], fam[f][1], fam[f][2]);
                    head = 1;
                    strbuf_append(&m, p, len);
                }
                p += len;
            }
        }
    }
    if (a->am) {
        static const char *const amf[][3] = {
            {"tide_alertmanager_alerts_sent_total", "counter", "Alerts an Alertmanager accepted."},
            {"tide_alertmanager_requests_total", "counter", "Requests sent to an Alertmanager."},
            {"tide_alertmanager_errors_total", "counter", "Requests that failed."},
            {"tide_alertmanager_alerts_dropped_total", "counter",
             "Alerts dropped: queue full, or refused by the Alertmanager."},
            {"tide_alertmanager_queue_length", "gauge", "Alerts waiting to be sent."},
            {"tide_alertmanager_up", "gauge", "1 when the last request succeeded."},
        };
        for (size_t f = 0; f < sizeof amf / sizeof *amf; f++) {
            family(&m, amf[f][0], amf[f][1], amf[f][2]);
            for (int i = 0; i < am_count(a->am); i++) {
                am_stats st;
                am_get_stats(a->am, i, &st);
                double v = f == 0   ? (double)st.sent
                           : f == 1 ? (double)st.requests
                           : f == 2 ? (double)st.errors
                           : f == 3 ? (double)st.dropped
                           : f == 4 ? (double)st.queued
                                    : (double)st.up;
                strbuf_printf(&m, "%s{alertmanager=\"", amf[f][0]);
                metrics_label(&m, st.url);
                strbuf_printf(&m, "\"} %.0f\n", v);
            }
        }
    }
    char *mt = strbuf_take(&m, 1);
    pthread_mutex_lock(&a->mu);
    free(a->rules_body);
    free(a->alerts_body);
    free(a->metrics_text);
    a->rules_body = rt;
    a->alerts_body = at;
    a->metrics_text = mt;
    pthread_mutex_unlock(&a->mu);
}

/* Sends the firing alerts of e resolved (the rule goes away or changes). Loop, !busy. */
static void resolve_all(struct cp_alerts *a, ar_entry *e, int64_t now) {
    for (size_t i = 0; i < e->nseries; i++) {
        ar_series *s = e->series[i];
        if (s->st.phase != ALERT_FIRING) continue;
        s->st.phase = ALERT_INACTIVE;
        s->st.resolved_at = now;
        notify(a, e, s, now, 1);
        log_info("alerts", "%s{%s}: resolved (rule %s)", e->spec.name, s->key,
                 e->deleted ? "deleted" : "changed");
    }
}

/* After an evaluation (on the loop, e not busy): the states step, notifications go out, the
 * snapshots are rendered. rc < 0: the evaluation failed with err and the states stand. */
static void settle(struct cp_alerts *a, ar_entry *e, int64_t now, int rc, const char *err,
                   const char *warning, double took) {
    e->evals++;
    e->last_eval = now;
    e->last_eval_took = took;
    snprintf(e->warning, sizeof e->warning, "%s", warning);
    if (rc < 0) {
        e->failures++;
        snprintf(e->last_error, sizeof e->last_error, "%s", err);
        log_limited(&eval_rl, LOG_WARN, "alerts", "%s: evaluation failed: %s", e->spec.name, err);
    } else {
        e->last_error[0] = 0;
        /* a failed read says nothing about the alerts: states change on good reads only */
        for (size_t i = 0; i < e->nseries;) {
            ar_series *s = e->series[i];
            alert_change ch =
                alert_step(&s->st, s->seen && s->active, now, e->spec.for_s, e->spec.keep_firing_s);
            if (ch == ALERT_FIRED) {
                log_info("alerts", "%s{%s}: firing (value %.6g)", e->spec.name, s->key, s->value);
                notify(a, e, s, now, 0);
            } else if (ch == ALERT_RESOLVED) {
                log_info("alerts", "%s{%s}: resolved", e->spec.name, s->key);
                notify(a, e, s, now, 1);
            } else if (ch == ALERT_PENDED) {
                log_debug("alerts", "%s{%s}: pending", e->spec.name, s->key);
            }
            if (!s->seen && s->st.phase == ALERT_INACTIVE) { /* the series went away */
                series_free(s);
                e->series[i] = e->series[--e->nseries];
                continue;
            }
            i++;
        }
    }
    /* firing alerts are sent again every resend interval (Alertmanager expires them otherwise) */
    for (size_t i = 0; i < e->nseries; i++) {
        ar_series *s = e->series[i];
        if (s->st.phase == ALERT_FIRING && now - s->last_sent >= a->resend_s)
            notify(a, e, s, now, 0);
    }
    render_entry(e, now);
    render_all(a);
}

static void eval_done(work *w, int status) {
    eval_job *j = (eval_job *)((char *)w - offsetof(eval_job, w));
    struct cp_alerts *a = j->a;
    ar_entry *e = j->e;
    e->busy = 0;
    if (e->deleted) {
        resolve_all(a, e, tide_now_wall_ms() / 1000);
        entry_free(e);
    } else if (status == 0 && !j->nothing_new) {
        settle(a, e, j->now, j->rc, j->err, j->warning, j->took);
    }
    free(j);
}

/* The series of a workload condition (labels workload, namespace, condition[, provider]),
 * created when new; marked seen. NULL on ENOMEM. */
static ar_series *cond_series(ar_entry *e, const char *ns, unsigned cond, const char *provider) {
    char *names[4] = {"condition", "namespace", "provider", "workload"};
    char *values[4] = {(char *)ar_condition_name(cond), (char *)ns, (char *)provider,
                       e->spec.workload};
    char *n2[4], *v2[4];
    size_t n = 0;
    for (size_t i = 0; i < 4; i++)
        if (values[i] && values[i][0]) {
            n2[n] = names[i];
            v2[n++] = values[i];
        }
    query_series q = {.names = n2, .values = v2, .nlabels = n};
    char *key = labels_key(&q);
    if (!key) return NULL;
    ar_series *sr = NULL;
    for (size_t k = 0; k < e->nseries && !sr; k++)
        if (!strcmp(e->series[k]->key, key)) sr = e->series[k];
    free(key);
    if (!sr) {
        if (e->nseries == e->cap) {
            size_t cap = e->cap ? e->cap * 2 : 4;
            ar_series **nsr = realloc(e->series, cap * sizeof *nsr);
            if (!nsr) return NULL;
            e->series = nsr;
            e->cap = cap;
        }
        if (!(sr = series_new(n2, v2, n))) return NULL;
        e->series[e->nseries++] = sr;
    }
    sr->seen = 1;
    sr->active = 0;
    sr->value = NAN;
    sr->crossing = 0;
    sr->note[0] = 0;
    sr->error[0] = 0;
    return sr;
}

/* Evaluates a rule of type workload on the loop: it reads the workload's last portrait,
 * provider states and decision events (all in memory, nothing slow). */
static void eval_workload(struct cp_alerts *a, ar_entry *e, int64_t now) {
    const alertrule_spec *sp = &e->spec;
    for (size_t i = 0; i < e->nseries; i++)
        e->series[i]->seen = 0;
    workload_entry *we = a->cp->workloads ? workload_find(a->cp->workloads, sp->workload) : NULL;
    if (!we) {
        char err[200];
        snprintf(err, sizeof err, "no workload named '%s'", sp->workload);
        settle(a, e, now, -ENOENT, err, "", 0);
        return;
    }
    if (!we->ctl) { /* dormant here: the control plane that owns it evaluates the conditions */
        settle(a, e, now, 0, "", "", 0);
        return;
    }
    const char *ns = we->spec.namespace_;
    const portrait *pt = controller_portrait(we->ctl);
    if (sp->conditions & AR_COND_OUT_OF_REPLICAS) {
        ar_series *s = cond_series(e, ns, AR_COND_OUT_OF_REPLICAS, NULL);
        for (int k = 0; s && pt && k < pt->n; k++)
            if (pt->demand[k] > we->spec.max_replicas) {
                char in[32], ct[32];
                s->active = 1;
                s->value = pt->demand[k];
                s->crossing = pt->t0 + (int64_t)k * pt->step;
                if (s->crossing < now) s->crossing = now;
                rfc3339(s->crossing, ct, sizeof ct);
                ar_format_duration(s->crossing - now, in, sizeof in);
                if (s->crossing > now)
                    snprintf(s->note, sizeof s->note,
                             "%s: out of replicas at %s (in %s): %d needed, maxReplicas %d",
                             sp->workload, ct, in, pt->demand[k], we->spec.max_replicas);
                else
                    snprintf(s->note, sizeof s->note,
                             "%s: out of replicas now: %d needed, maxReplicas %d", sp->workload,
                             pt->demand[k], we->spec.max_replicas);
                break;
            }
    }
    if (sp->conditions & AR_COND_FALLBACK) {
        const portrait_engine *eng = controller_engine(we->ctl);
        for (int i = 0; i < we->spec.n_providers; i++) {
            if (we->spec.providers[i].type != WL_PROV_PREDICTIVE) continue;
            ar_series *s = cond_series(e, ns, AR_COND_FALLBACK, we->spec.providers[i].name);
            const char *why = portrait_fallback_reason(eng, i);
            if (!s || !why) continue;
            s->active = 1;
            snprintf(s->note, sizeof s->note,
                     "%s: predictive provider %s fell back to reactive: %s", sp->workload,
                     we->spec.providers[i].name, why);
        }
    }
    if (sp->conditions & AR_COND_STABILITY) {
        ar_series *s = cond_series(e, ns, AR_COND_STABILITY, NULL);
        const planner *pl = controller_planner(we->ctl);
        uint64_t n = planner_event_count(pl);
        if (e->ev_seen == 0 || e->ev_seen - 1 > n) e->ev_seen = n + 1; /* only events from now */
        for (uint64_t i = e->ev_seen - 1; s && i < n; i++) {
            planner_event ev;
            if (planner_event_at(pl, i, &ev) < 0) continue;
            if (strcmp(ev.kind, "rollback") != 0 && strcmp(ev.kind, "pause") != 0) continue;
            s->active = 1;
            snprintf(s->note, sizeof s->note, "%s: stability checker: %.200s", sp->workload,
                     ev.text);
        }
        e->ev_seen = n + 1;
    }
    settle(a, e, now, 0, "", "", 0);
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)loop;
    (void)revents;
    struct cp_alerts *a = (struct cp_alerts *)((char *)t - offsetof(struct cp_alerts, tick));
    int64_t now = tide_now_wall_ms() / 1000;
    lease_check(a, now);
    for (ar_entry *e = a->head; e; e = e->next) {
        if (e->busy || now < e->next_eval) continue;
        if (e->spec.type == AR_WORKLOAD) { /* in memory: no worker needed */
            e->next_eval = now + e->spec.interval_s;
            eval_workload(a, e, now);
            continue;
        }
        eval_job *j = calloc(1, sizeof *j);
        if (!j) continue;
        j->a = a;
        j->e = e;
        j->now = now;
        if (work_submit(a->pool, &j->w, eval_run, eval_done) < 0) { /* full: next tick */
            free(j);
            continue;
        }
        e->busy = 1;
        e->next_eval = now + e->spec.interval_s;
    }
}

/* ---- rules ----------------------------------------------------------------------------- */

static ar_entry *find(struct cp_alerts *a, const char *name) {
    for (ar_entry *e = a->head; e; e = e->next)
        if (!strcmp(e->spec.name, name)) return e;
    return NULL;
}

static ar_entry *entry_new(const alertrule_spec *spec, const char *yaml) {
    ar_entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->spec = *spec;
    if (!(e->yaml = strdup(yaml))) {
        free(e);
        return NULL;
    }
    return e;
}

/* Takes e off the list; frees it now, or when its evaluation finishes. Loop. */
static void entry_remove(struct cp_alerts *a, ar_entry *e) {
    ar_entry **pp = &a->head;
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp) *pp = e->next;
    e->deleted = 1;
    if (!e->busy) {
        resolve_all(a, e, tide_now_wall_ms() / 1000);
        entry_free(e);
    }
}

static void problems_text(const wl_problems *p, char *out, size_t outlen) {
    size_t off = 0;
    out[0] = 0;
    for (size_t i = 0; i < p->n && off + 1 < outlen; i++) {
        int w = p->v[i].line > 0
                    ? snprintf(out + off, outlen - off, "%s (line %d): %s\n", p->v[i].path,
                               p->v[i].line, p->v[i].msg)
                    : snprintf(out + off, outlen - off, "%s: %s\n", p->v[i].path, p->v[i].msg);
        if (w < 0) break;
        off += (size_t)w;
    }
}

/* alerts_apply; save 0 when the text comes from the file itself (loading at start). */
static int apply_text(struct cp_alerts *a, const char *yaml, int save, const char **result,
                      unsigned long long *generation, char *name, size_t namelen, char *err,
                      size_t errlen) {
    alertrule_spec *spec = malloc(sizeof *spec);
    if (!spec) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    wl_problems probs;
    wl_problems_init(&probs);
    int rc = ar_parse(yaml, strlen(yaml), spec, &probs);
    if (rc < 0) {
        char list[900];
        problems_text(&probs, list, sizeof list);
        snprintf(err, errlen, "invalid alert rule, %zu problem%s (nothing changed):\n%s", probs.n,
                 probs.n == 1 ? "" : "s", list);
        wl_problems_fini(&probs);
        free(spec);
        return rc == -ENOMEM ? rc : -EINVAL;
    }
    wl_problems_fini(&probs);
    snprintf(name, namelen, "%s", spec->name);
    ar_entry *old = find(a, spec->name);
    size_t count = 0;
    for (ar_entry *x = a->head; x; x = x->next)
        count++;
    if (!old && count >= ALERTS_MAX_RULES) {
        snprintf(err, errlen, "there are already %d alert rules, the most allowed",
                 ALERTS_MAX_RULES);
        free(spec);
        return -ENOSPC;
    }
    if (old && !strcmp(old->yaml, yaml)) {
        *result = "unchanged";
        *generation = old->generation;
        free(spec);
        return 0;
    }
    ar_entry *e = entry_new(spec, yaml);
    free(spec);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    rc = save ? persist_save(a->dir, e->spec.name, yaml) : 0;
    if (rc < 0) {
        snprintf(err, errlen, "cannot store %s/%s.yaml: %s (nothing changed)", a->dir, e->spec.name,
                 strerror(-rc));
        entry_free(e);
        return rc;
    }
    e->generation = old ? old->generation + 1 : 1;
    if (old) entry_remove(a, old); /* its firing alerts resolve; the new rule judges afresh */
    e->next = a->head;
    a->head = e;
    *result = old ? "configured" : "created";
    *generation = e->generation;
    log_info("alerts", "rule %s %s (generation %llu)", e->spec.name, *result, e->generation);
    render_entry(e, tide_now_wall_ms() / 1000);
    render_all(a);
    return 0;
}

int alerts_apply(struct cp_alerts *a, const char *yaml, const char **result,
                 unsigned long long *generation, char *name, size_t namelen, char *err,
                 size_t errlen) {
    return apply_text(a, yaml, /* save = */ 1, result, generation, name, namelen, err, errlen);
}

int alerts_delete(struct cp_alerts *a, const char *name, char *err, size_t errlen) {
    ar_entry *e = find(a, name);
    if (!e) {
        snprintf(err, errlen, "no alert rule named '%.100s'", name);
        return -ENOENT;
    }
    int rc = persist_remove(a->dir, name);
    if (rc < 0) {
        snprintf(err, errlen, "cannot remove %s/%s.yaml: %s", a->dir, name, strerror(-rc));
        return rc;
    }
    log_info("alerts", "rule %s deleted", name);
    entry_remove(a, e);
    render_all(a);
    return 0;
}

cJSON *alerts_rules_json(struct cp_alerts *a, const char *name) {
    if (name) {
        ar_entry *e = find(a, name);
        return e && e->snap ? cJSON_Duplicate(e->snap, 1) : NULL;
    }
    cJSON *arr = cJSON_CreateArray();
    for (ar_entry *e = a->head; e; e = e->next)
        if (e->snap) cJSON_AddItemToArray(arr, cJSON_Duplicate(e->snap, 1));
    return arr;
}

cJSON *alerts_alerts_json(struct cp_alerts *a) {
    cJSON *arr = cJSON_CreateArray();
    for (ar_entry *e = a->head; e; e = e->next) {
        const cJSON *al;
        cJSON_ArrayForEach(al, cJSON_GetObjectItem(e->snap, "alerts")) {
            cJSON *c = cJSON_Duplicate(al, 1);
            cJSON_AddStringToObject(c, "rule", e->spec.name);
            cJSON_AddItemToArray(arr, c);
        }
    }
    cJSON *la = lease_alert_json(a);
    if (la) {
        cJSON_AddStringToObject(la, "rule", LEASE_ALERT_NAME);
        cJSON_AddItemToArray(arr, la);
    }
    return arr;
}

static char *copy_text(struct controlplane *cp, int which) {
    struct cp_alerts *a = cp ? cp->alerts : NULL;
    if (!a) return NULL;
    pthread_mutex_lock(&a->mu);
    const char *t = which == 0 ? a->alerts_body : which == 1 ? a->rules_body : a->metrics_text;
    char *c = t ? strdup(t) : NULL;
    pthread_mutex_unlock(&a->mu);
    return c;
}

char *alerts_api_alerts(struct controlplane *cp) {
    return copy_text(cp, 0);
}
char *alerts_api_rules(struct controlplane *cp) {
    return copy_text(cp, 1);
}
char *alerts_metrics_text(struct controlplane *cp) {
    return copy_text(cp, 2);
}

/* ---- module ---------------------------------------------------------------------------- */

static void load_one(void *ctx, const char *path, const char *yaml, size_t n) {
    struct cp_alerts *a = ctx;
    (void)n;
    const char *result;
    unsigned long long gen;
    char err[1200], name[64];
    if (apply_text(a, yaml, /* save = */ 0, &result, &gen, name, sizeof name, err, sizeof err) < 0)
        log_error("alerts", "%s: not loaded: %s", path, err);
    else
        log_info("alerts", "loaded rule from %s", path);
}

static void alerts_free(struct cp_alerts *a) {
    while (a->head) {
        ar_entry *e = a->head;
        a->head = e->next;
        entry_free(e);
    }
    free(a->rules_body);
    free(a->alerts_body);
    free(a->metrics_text);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

static int alerts_start(struct controlplane *cp, char *err, size_t errlen) {
    struct cp_alerts *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "alerts: out of memory");
        return -ENOMEM;
    }
    a->cp = cp;
    pthread_mutex_init(&a->mu, NULL);
    a->resend_s = cp->cfg.alert_resend_interval_ms / 1000;
    if (a->resend_s < 1) a->resend_s = 1;
    if (cp->cfg.alert_external_url && cp->cfg.alert_external_url[0])
        snprintf(a->gen_base, sizeof a->gen_base, "%s", cp->cfg.alert_external_url);
    else if (cp->cfg.http && cp->cfg.http[0])
        snprintf(a->gen_base, sizeof a->gen_base, "http://%s", cp->cfg.http);
    size_t gl = strlen(a->gen_base);
    while (gl && a->gen_base[gl - 1] == '/')
        a->gen_base[--gl] = 0;
    snprintf(a->dir, sizeof a->dir, "%s/alertrules", cp->cfg.data_dir);
    if (mkdir(a->dir, 0750) < 0 && errno != EEXIST) {
        int e = errno;
        snprintf(err, errlen, "alerts: %s: %s", a->dir, strerror(e));
        alerts_free(a);
        return -e;
    }
    /* two evaluations at once: fits can take a while, the other rules go on meanwhile */
    int rc = work_pool_new(cp->loop, 2, 1024, &a->pool);
    if (rc < 0) {
        snprintf(err, errlen, "alerts: cannot create the worker pool: %s", strerror(-rc));
        alerts_free(a);
        return rc;
    }
    if (cp->cfg.alertmanager_urls && cp->cfg.alertmanager_urls[0]) {
        am_options o = {cp->cfg.alertmanager_urls,
                        cp->cfg.alertmanager_timeout_ms,
                        cp->cfg.alertmanager_bearer_token_file,
                        cp->cfg.alertmanager_basic_auth_user,
                        cp->cfg.alertmanager_basic_auth_password_file,
                        cp->cfg.alertmanager_queue_max};
        char e2[300];
        rc = am_new(&a->am, &o, e2, sizeof e2);
        if (rc < 0) {
            snprintf(err, errlen, "alerts: %s", e2);
            work_pool_free(a->pool);
            alerts_free(a);
            return rc;
        }
        log_info("alerts", "sending alerts to %s", cp->cfg.alertmanager_urls);
    }
    persist_load(a->dir, load_one, a);
    render_all(a);
    ev_timer_init(&a->tick, on_tick, 0.2, 1.0);
    ev_timer_start(cp->loop, &a->tick);
    ev_unref(cp->loop); /* the tick alone does not keep the daemon running */
    cp->alerts = a;
    return 0;
}

static void alerts_stop(struct controlplane *cp) {
    struct cp_alerts *a = cp->alerts;
    if (!a) return;
    ev_ref(cp->loop);
    ev_timer_stop(cp->loop, &a->tick);
    if (cp->prom) prom_cancel(cp->prom); /* a read under way ends now, not at its timeout */
    work_pool_free(a->pool);             /* cancels queued evaluations, waits for running ones */
    am_free(a->am);                      /* a request under way is aborted */
    cp->alerts = NULL;
    alerts_free(a);
}

CP_MODULE_AFTER(alerts, ALERTS_MODULE_NAME, PROM_MODULE_NAME ",workloads," CLUSTER_MODULE_NAME,
                alerts_start, alerts_stop)
