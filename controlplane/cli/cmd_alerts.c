/* cmd_alerts.c: `tidectl alerts` and the alert-rule halves of apply, get, describe and delete
 * (see cmd_alerts.h), through the ops socket. */
#include "cmd_alerts.h"

#include "cli_table.h"
#include "spec/alertrule.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *str(const cJSON *o, const char *k) {
    return cli_str(o, k, "");
}

static const char *stamp(double unix_s, char *buf, size_t len) {
    time_t t = (time_t)unix_s;
    struct tm tmv;
    gmtime_r(&t, &tmv);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    return buf;
}

/* {a="b", c="d"} of a labels object */
static void labels_text(const cJSON *l, char *out, size_t outlen) {
    size_t off = 0;
    out[0] = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, l) {
        if (!cJSON_IsString(x) || off + 1 >= outlen) continue;
        int w = snprintf(out + off, outlen - off, "%s%s=\"%s\"", off ? ", " : "", x->string,
                         x->valuestring);
        if (w < 0) break;
        off += (size_t)w;
    }
}

int cli_alertrule_apply(tidectl_ctx *ctx, const char *path, const char *buf, size_t len) {
    alertrule_spec *spec = malloc(sizeof *spec);
    if (!spec) return 1;
    wl_problems probs;
    wl_problems_init(&probs);
    if (ar_parse(buf, len, spec, &probs) < 0) {
        char *txt = wl_problems_format(&probs);
        fprintf(stderr,
                "tidectl apply: %s: invalid alert rule, %zu problem%s (nothing applied):\n%s", path,
                probs.n, probs.n == 1 ? "" : "s", txt ? txt : "");
        free(txt);
        wl_problems_fini(&probs);
        free(spec);
        return 2;
    }
    wl_problems_fini(&probs);
    free(spec);
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "yaml", buf);
    cJSON *data = NULL;
    int rc = cli_call(ctx, "alertrule-apply", args, ctx->json, &data);
    if (rc != 0 || !data) return rc;
    printf("alertrule/%s %s (generation %.0f)\n", str(data, "name"), str(data, "result"),
           cli_num(data, "generation"));
    cJSON_Delete(data);
    return 0;
}

int cli_alertrule_list(tidectl_ctx *ctx) {
    cJSON *data = NULL;
    int rc = cli_call(ctx, "alertrule-list", NULL, ctx->json, &data);
    if (rc != 0 || !data) return rc;
    cli_tab *tab = cli_tab_new("lllrrll");
    const char *hdr[] = {"NAME", "TYPE", "STATE", "FIRING", "PENDING", "HEALTH", "METRIC"};
    for (size_t i = 0; i < sizeof hdr / sizeof *hdr; i++)
        cli_tab_add(tab, "%s", hdr[i]);
    const cJSON *r;
    cJSON_ArrayForEach(r, data) {
        int firing = 0, pending = 0;
        const cJSON *a;
        cJSON_ArrayForEach(a, cJSON_GetObjectItem(r, "alerts")) {
            firing += !strcmp(str(a, "state"), "firing");
            pending += !strcmp(str(a, "state"), "pending");
        }
        cli_tab_add(tab, "%s", str(r, "name"));
        cli_tab_add(tab, "%s", str(cJSON_GetObjectItem(r, "tide"), "type"));
        cli_tab_add(tab, "%s", str(r, "state"));
        cli_tab_add(tab, "%d", firing);
        cli_tab_add(tab, "%d", pending);
        cli_tab_add(tab, "%s", str(r, "health"));
        cli_tab_add(tab, "%s", str(r, "query"));
    }
    cli_tab_print(tab, stdout);
    cJSON_Delete(data);
    return 0;
}

int cli_alertrule_describe(tidectl_ctx *ctx, const char *name) {
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "name", name);
    cJSON *d = NULL;
    int rc = cli_call(ctx, "alertrule-describe", args, ctx->json, &d);
    if (rc != 0 || !d) return rc;
    const cJSON *t = cJSON_GetObjectItem(d, "tide");
    char ts[32], lt[600];
    printf("Name:        %s\nType:        %s (generation %.0f)\nMetric:      %s\n", str(d, "name"),
           str(t, "type"), cli_num(t, "generation"), str(d, "query"));
    if (!strcmp(str(t, "type"), "predict"))
        printf("Predict:     %s %g at p%g within %.0fs (model %s)\n", str(t, "direction"),
               cli_num(t, "threshold"), cli_num(t, "quantile") * 100, cli_num(t, "horizon"),
               str(t, "model"));
    else
        printf("Anomaly:     sensitivity %s (score >= %g)\n", str(t, "sensitivity"),
               cli_num(t, "score_threshold"));
    printf("Timing:      every %.0fs at %.0fs steps over %.0fs of history; for %.0fs, keep "
           "firing %.0fs\n",
           cli_num(t, "interval"), cli_num(t, "step"), cli_num(t, "history"),
           cli_num(d, "duration"), cli_num(d, "keepFiringFor"));
    labels_text(cJSON_GetObjectItem(d, "labels"), lt, sizeof lt);
    printf("Labels:      %s\n", lt);
    printf("State:       %s, health %s, %.0f evaluations (%.0f failed), last %s took %.3fs\n",
           str(d, "state"), str(d, "health"), cli_num(t, "evaluations"), cli_num(t, "failures"),
           str(d, "lastEvaluation"), cli_num(d, "evaluationTime"));
    if (*str(d, "lastError")) printf("Error:       %s\n", str(d, "lastError"));
    if (*str(t, "warning")) printf("Warning:     %s\n", str(t, "warning"));
    printf("\nSeries:\n");
    const cJSON *s;
    if (cJSON_GetArraySize(cJSON_GetObjectItem(t, "series")) == 0) printf("  (none yet)\n");
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(t, "series")) {
        labels_text(cJSON_GetObjectItem(s, "labels"), lt, sizeof lt);
        printf("  {%s}  %s", lt, str(s, "state"));
        if (cli_has_num(s, "value")) printf("  value %g", cli_num(s, "value"));
        if (cli_has_num(s, "crossing_time"))
            printf("  crosses at %s", stamp(cli_num(s, "crossing_time"), ts, sizeof ts));
        if (cli_has_num(s, "score"))
            printf("  score %.2f (expected %g)", cli_num(s, "score"), cli_num(s, "expected"));
        if (*str(s, "model")) printf("  model %s", str(s, "model"));
        if (*str(s, "error")) printf("\n    error: %s", str(s, "error"));
        printf("\n");
    }
    const cJSON *a;
    printf("\nAlerts:\n");
    if (cJSON_GetArraySize(cJSON_GetObjectItem(d, "alerts")) == 0) printf("  (none)\n");
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(d, "alerts")) {
        printf("  %-8s since %s  %s\n", str(a, "state"), str(a, "activeAt"),
               str(cJSON_GetObjectItem(a, "annotations"), "summary"));
    }
    cJSON_Delete(d);
    return 0;
}

int cli_alertrule_delete(tidectl_ctx *ctx, const char *name) {
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "name", name);
    cJSON *data = NULL;
    int rc = cli_call(ctx, "alertrule-delete", args, ctx->json, &data);
    if (rc != 0 || !data) return rc;
    printf("alertrule/%s deleted\n", str(data, "name"));
    cJSON_Delete(data);
    return 0;
}

#define ALERTS_USAGE "alerts [--json]          pending and firing alerts of the alert rules"

static int cmd_alerts(tidectl_ctx *ctx, int argc, char **argv) {
    static const cli_cmd me = {"alerts", ALERTS_USAGE};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            ctx->json = 1;
        else
            return cli_usage_error(&me, "unexpected argument '%s'", argv[i]);
    }
    cJSON *data = NULL;
    int rc = cli_call(ctx, "alerts", NULL, ctx->json, &data);
    if (rc != 0 || !data) return rc;
    cli_tab *tab = cli_tab_new("lllll");
    const char *hdr[] = {"RULE", "STATE", "SINCE", "LABELS", "SUMMARY"};
    for (size_t i = 0; i < sizeof hdr / sizeof *hdr; i++)
        cli_tab_add(tab, "%s", hdr[i]);
    const cJSON *a;
    cJSON_ArrayForEach(a, data) {
        char lt[600];
        labels_text(cJSON_GetObjectItem(a, "labels"), lt, sizeof lt);
        cli_tab_add(tab, "%s", str(a, "rule"));
        cli_tab_add(tab, "%s", str(a, "state"));
        cli_tab_add(tab, "%s", str(a, "activeAt"));
        cli_tab_add(tab, "{%s}", lt);
        cli_tab_add(tab, "%s", str(cJSON_GetObjectItem(a, "annotations"), "summary"));
    }
    cli_tab_print(tab, stdout);
    cJSON_Delete(data);
    return 0;
}

TIDECTL_COMMAND(alerts, "alerts", ALERTS_USAGE, cmd_alerts)
