/* metrics.c: per-node and per-workload series, process_* and build info (metrics.h). */
#include "api/metrics.h"

#include "procstat.h"
#include "utf8.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void metrics_label(strbuf *b, const char *v) {
    char *clean = utf8_sanitize(v ? v : "");
    if (!clean) {
        b->oom = 1;
        return;
    }
    for (const char *p = clean; *p; p++) {
        if (*p == '\\')
            strbuf_printf(b, "\\\\");
        else if (*p == '"')
            strbuf_printf(b, "\\\"");
        else if (*p == '\n')
            strbuf_printf(b, "\\n");
        else
            strbuf_printf(b, "%c", *p);
    }
    free(clean);
}

static void head(strbuf *b, const char *name, const char *type, const char *help) {
    strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static double num(const cJSON *o, const char *k, double missing) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : missing;
}

static const char *str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* One sample "NAME{node="N"} V" per agent row for key k (rows without it are skipped). */
static void per_node(strbuf *b, const cJSON *agents, const char *name, const char *type,
                     const char *help, const char *k, double scale) {
    head(b, name, type, help);
    const cJSON *r;
    cJSON_ArrayForEach(r, agents) {
        double v = num(r, k, NAN);
        if (isnan(v)) continue;
        strbuf_printf(b, "%s{node=\"", name);
        metrics_label(b, str(r, "node"));
        strbuf_printf(b, "\"} %.17g\n", v * scale);
    }
}

void metrics_nodes(strbuf *b, const cJSON *agents, int64_t now_ms) {
    head(b, "tide_node_connected", "gauge",
         "1 while the node's agent is connected, 0 after it went away (nodes seen since start).");
    const cJSON *r;
    cJSON_ArrayForEach(r, agents) {
        strbuf_printf(b, "tide_node_connected{node=\"");
        metrics_label(b, str(r, "node"));
        strbuf_printf(b, "\"} %d\n",
                      cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "connected")) ? 1 : 0);
    }
    head(b, "tide_node_heartbeat_age_seconds", "gauge",
         "Seconds since the node's agent last sent a heartbeat (nodes that sent one).");
    cJSON_ArrayForEach(r, agents) {
        double hb = num(r, "last_heartbeat", 0);
        if (hb <= 0) continue;
        double age = ((double)now_ms - hb) / 1000;
        strbuf_printf(b, "tide_node_heartbeat_age_seconds{node=\"");
        metrics_label(b, str(r, "node"));
        strbuf_printf(b, "\"} %.3f\n", age > 0 ? age : 0);
    }
    per_node(b, agents, "tide_node_samples_total", "counter",
             "Samples received from the node's agent since the control plane started.", "samples",
             1);
    per_node(b, agents, "tide_node_received_bytes_total", "counter",
             "Bytes received from the node's agent since the control plane started.", "bytes", 1);
    per_node(b, agents, "tide_node_protocol_errors_total", "counter",
             "Protocol errors on the node's agent connections.", "protocol_errors", 1);
    per_node(b, agents, "tide_node_spool_drops_total", "counter",
             "Batches the node's agent dropped unsent from its spool (from its heartbeat).",
             "spool_drops", 1);
    per_node(b, agents, "tide_node_spool_bytes", "gauge",
             "Bytes the node's agent holds unacknowledged, spool included (from its heartbeat).",
             "queued_bytes", 1);
}

static void wl_labels(strbuf *b, const cJSON *w) {
    strbuf_printf(b, "workload=\"");
    metrics_label(b, str(w, "name"));
    strbuf_printf(b, "\",namespace=\"");
    metrics_label(b, str(w, "namespace"));
    strbuf_printf(b, "\"");
}

/* One sample per workload of key k (skipped where it is null or missing). */
static void per_wl(strbuf *b, const cJSON *wls, const char *name, const char *type,
                   const char *help, const char *k) {
    head(b, name, type, help);
    const cJSON *w;
    cJSON_ArrayForEach(w, wls) {
        double v = num(w, k, NAN);
        if (isnan(v)) continue;
        strbuf_printf(b, "%s{", name);
        wl_labels(b, w);
        strbuf_printf(b, "} %.17g\n", v);
    }
}

/* The forecast of a predictive provider at the step `ahead` seconds after now (the last one
 * when the forecast is shorter), or NaN. */
static double forecast_at(const cJSON *fo, const char *which, int64_t at) {
    double t0 = num(fo, "t0", NAN), step = num(fo, "step", NAN);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(fo, which);
    int n = cJSON_GetArraySize(arr);
    if (isnan(t0) || !(step > 0) || n <= 0) return NAN;
    double k = floor(((double)at - t0) / step);
    if (k < 0) k = 0;
    if (k > n - 1) k = n - 1;
    const cJSON *v = cJSON_GetArrayItem(arr, (int)k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

void metrics_workloads(strbuf *b, const cJSON *wls, int64_t now_s) {
    per_wl(b, wls, "tide_workload_needed_replicas", "gauge",
           "Replicas the portrait says are needed now (absent before the first portrait).", "need");
    per_wl(b, wls, "tide_workload_provisioned_replicas", "gauge",
           "Replicas the portrait provisions now, scale-up-ahead included.", "provisioned");
    per_wl(b, wls, "tide_workload_min_replicas", "gauge", "The spec's minReplicas.", "min");
    per_wl(b, wls, "tide_workload_max_replicas", "gauge", "The spec's maxReplicas.", "max");
    head(b, "tide_workload_replicas", "gauge", "Replicas by state as the planner sees them.");
    static const char *const states[] = {"online", "starting", "activating", "cutoff", "standby"};
    const cJSON *w;
    cJSON_ArrayForEach(w, wls) {
        for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
            strbuf_printf(b, "tide_workload_replicas{");
            wl_labels(b, w);
            strbuf_printf(b, ",state=\"%s\"} %.17g\n", states[i], num(w, states[i], 0));
        }
    }
    head(b, "tide_workload_provider_in_control", "gauge",
         "1 for the provider whose recommendation drives the portrait now, 0 for the others.");
    cJSON_ArrayForEach(w, wls) {
        const cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(w, "providers")) {
            strbuf_printf(b, "tide_workload_provider_in_control{");
            wl_labels(b, w);
            strbuf_printf(b, ",provider=\"");
            metrics_label(b, str(p, "name"));
            strbuf_printf(b, "\",type=\"%s\"} %d\n", str(p, "type"),
                          cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "in_control")) ? 1 : 0);
        }
    }
    head(b, "tide_workload_provider_fallback", "gauge",
         "1 while a predictive provider runs on the reactive fallback (no usable forecast).");
    cJSON_ArrayForEach(w, wls) {
        const cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(w, "providers")) {
            const cJSON *fb = cJSON_GetObjectItemCaseSensitive(p, "fallback");
            if (!cJSON_IsBool(fb)) continue;
            strbuf_printf(b, "tide_workload_provider_fallback{");
            wl_labels(b, w);
            strbuf_printf(b, ",provider=\"");
            metrics_label(b, str(p, "name"));
            strbuf_printf(b, "\"} %d\n", cJSON_IsTrue(fb) ? 1 : 0);
        }
    }
    head(b, "tide_workload_forecast", "gauge",
         "A predictive provider's traffic forecast for the step scale-up-ahead from now: "
         "quantile=\"0.5\" the point forecast, the provider's quantile the band's upper edge.");
    cJSON_ArrayForEach(w, wls) {
        int64_t at = now_s + (int64_t)num(w, "scale_up_ahead_seconds", 0);
        const cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(w, "providers")) {
            const cJSON *fo = cJSON_GetObjectItemCaseSensitive(p, "forecast");
            if (!fo) continue;
            double med = forecast_at(fo, "median", at), up = forecast_at(fo, "upper", at);
            if (isnan(med) || isnan(up)) continue;
            strbuf_printf(b, "tide_workload_forecast{");
            wl_labels(b, w);
            strbuf_printf(b, ",provider=\"");
            metrics_label(b, str(p, "name"));
            strbuf_printf(b, "\",quantile=\"0.5\"} %.17g\ntide_workload_forecast{", med);
            wl_labels(b, w);
            strbuf_printf(b, ",provider=\"");
            metrics_label(b, str(p, "name"));
            strbuf_printf(b, "\",quantile=\"%g\"} %.17g\n", num(fo, "quantile", 0.9), up);
        }
    }
    head(b, "tide_workload_forecast_live_wape", "gauge",
         "Weighted absolute error of a predictive provider's past point forecasts against the "
         "traffic that came (decayed; the quality gate's figure).");
    cJSON_ArrayForEach(w, wls) {
        const cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(w, "providers")) {
            const cJSON *fo = cJSON_GetObjectItemCaseSensitive(p, "forecast");
            double v = num(fo, "live_wape", NAN);
            if (isnan(v)) continue;
            strbuf_printf(b, "tide_workload_forecast_live_wape{");
            wl_labels(b, w);
            strbuf_printf(b, ",provider=\"");
            metrics_label(b, str(p, "name"));
            strbuf_printf(b, "\"} %.17g\n", v);
        }
    }
    head(b, "tide_workload_decisions_total", "counter",
         "Decision events by kind (scale-up, scale-down, hold, rollback = a stability checker "
         "fired, fallback, ...) since the workload was applied.");
    cJSON_ArrayForEach(w, wls) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(w, "events_by_kind")) {
            strbuf_printf(b, "tide_workload_decisions_total{");
            wl_labels(b, w);
            strbuf_printf(b, ",kind=\"");
            metrics_label(b, e->string);
            strbuf_printf(b, "\"} %.17g\n", e->valuedouble);
        }
    }
    head(b, "tide_workload_actions_total", "counter",
         "Replica actions the planner issued, by action and by whether an executor took them "
         "(sent) or failed (no executor for the kind, or it refused).");
    cJSON_ArrayForEach(w, wls) {
        const cJSON *a;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(w, "actions_by_kind")) {
            strbuf_printf(b, "tide_workload_actions_total{");
            wl_labels(b, w);
            strbuf_printf(b, ",action=\"%s\",result=\"%s\"} %.17g\n", str(a, "action"),
                          str(a, "result"), num(a, "count", 0));
        }
    }
    per_wl(b, wls, "tide_workload_fenced_total", "counter",
           "Actions the fleet refused by fencing (a newer control plane owns the workload).",
           "fenced_refusals");
    per_wl(b, wls, "tide_workload_fence_token", "gauge",
           "The fencing token the workload's actions carry (0: no high availability).", "fence");
    per_wl(b, wls, "tide_workload_last_fit_timestamp_seconds", "gauge",
           "When the workload's predictive models were last fitted (unix s).", "last_fit");
}

void metrics_process(strbuf *b) {
    procstat ps;
    procstat_read(&ps);
    char buf[2048];
    int n = procstat_format(&ps, buf, sizeof buf);
    if (n > 0 && (size_t)n < sizeof buf) strbuf_printf(b, "%s", buf);
}

void metrics_build_info(strbuf *b, const char *version) {
    head(b, "tide_build_info", "gauge", "Always 1; the labels say which build runs.");
    strbuf_printf(b, "tide_build_info{version=\"");
    metrics_label(b, version);
    strbuf_printf(b, "\",compiler=\"");
#ifdef __VERSION__
    metrics_label(b, __VERSION__);
#endif
    strbuf_printf(b, "\"} 1\n");
}
