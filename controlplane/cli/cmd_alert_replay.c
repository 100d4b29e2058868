/* cmd_alert_replay.c: `tidectl alert-replay --rule FILE --data FILE.csv`: a predict alert
 * rule replayed over a recorded series as the live rule would run it (offline/alert_replay.h);
 * prints each firing episode with its predicted crossing. Runs locally. */
#include "cli_table.h"
#include "offline/alert_replay.h"
#include "offline/series_csv.h"
#include "tidectl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPLAY_USAGE                                                                               \
    "alert-replay --rule FILE.yaml --data FILE.csv [--from UNIX_S] [--json]\n"                     \
    "                         replay a predict alert rule over a timestamp,value CSV"

static const char *stamp(int64_t t, char *buf, size_t len) {
    if (t <= 0) return "-";
    time_t tt = (time_t)t;
    struct tm tmv;
    gmtime_r(&tt, &tmv);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    return buf;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        if (n + 1 >= cap) {
            if (cap >= (1u << 20)) {
                free(b);
                b = NULL;
                errno = EFBIG;
                break;
            }
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    fclose(f);
    if (b) b[n] = 0;
    *len = n;
    return b;
}

static int cmd_replay(tidectl_ctx *ctx, int argc, char **argv) {
    static const cli_cmd me = {"alert-replay", REPLAY_USAGE};
    const char *rule = NULL, *data = NULL;
    int64_t from = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            ctx->json = 1;
        else if (!strcmp(argv[i], "--rule") && i + 1 < argc)
            rule = argv[++i];
        else if (!strcmp(argv[i], "--data") && i + 1 < argc)
            data = argv[++i];
        else if (!strcmp(argv[i], "--from") && i + 1 < argc) {
            char *end;
            from = strtoll(argv[++i], &end, 10);
            if (*end || from < 0) return cli_usage_error(&me, "--from: unix seconds");
        } else
            return cli_usage_error(&me, "unexpected argument '%s'", argv[i]);
    }
    if (!rule || !data) return cli_usage_error(&me, "needs --rule and --data");
    size_t len = 0;
    char *yaml = slurp(rule, &len);
    if (!yaml) {
        fprintf(stderr, "tidectl alert-replay: %s: %s\n", rule, strerror(errno));
        return 2;
    }
    alertrule_spec *spec = malloc(sizeof *spec);
    wl_problems probs;
    wl_problems_init(&probs);
    if (!spec || ar_parse(yaml, len, spec, &probs) < 0) {
        char *txt = wl_problems_format(&probs);
        fprintf(stderr, "tidectl alert-replay: %s: invalid alert rule:\n%s", rule, txt ? txt : "");
        free(txt);
        wl_problems_fini(&probs);
        free(spec);
        free(yaml);
        return 2;
    }
    wl_problems_fini(&probs);
    free(yaml);
    series_csv s;
    char err[300];
    series_csv_opts o = {.dup = SERIES_DUP_MEAN};
    if (series_csv_load(data, &o, &s, err, sizeof err) < 0) {
        fprintf(stderr, "tidectl alert-replay: %s\n", err);
        free(spec);
        return 2;
    }
    spec->step_s = s.step; /* the rule reads the metric at the data's own resolution */
    if (!from)             /* NAB's probationary share: the part a rule's author had seen */
        from = s.t0 + (int64_t)(s.n * 15 / 100) * s.step;
    replay_result r;
    int rc = alert_replay(spec, s.y, s.n, s.t0, from, &r, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "tidectl alert-replay: %s\n", err);
        series_csv_fini(&s);
        free(spec);
        return rc == -EINVAL ? 2 : 1;
    }
    char a[32], b[32], c[32], d[32];
    if (ctx->json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "data", data);
        cJSON_AddStringToObject(j, "rule", spec->name);
        cJSON_AddNumberToObject(j, "step", (double)s.step);
        cJSON_AddNumberToObject(j, "threshold", spec->threshold);
        cJSON_AddStringToObject(j, "model", r.model);
        cJSON_AddNumberToObject(j, "evaluations", (double)r.evals);
        cJSON_AddNumberToObject(j, "no_verdict", (double)r.no_verdict);
        cJSON_AddNumberToObject(j, "fits", (double)r.fits);
        cJSON_AddNumberToObject(j, "first_eval", (double)r.first_eval);
        cJSON_AddNumberToObject(j, "last_eval", (double)r.last_eval);
        cJSON *ep = cJSON_AddArrayToObject(j, "episodes");
        for (size_t i = 0; i < r.n; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "active_at", (double)r.ep[i].active_at);
            cJSON_AddNumberToObject(e, "fired_at", (double)r.ep[i].fired_at);
            if (r.ep[i].resolved_at)
                cJSON_AddNumberToObject(e, "resolved_at", (double)r.ep[i].resolved_at);
            else
                cJSON_AddNullToObject(e, "resolved_at");
            cJSON_AddNumberToObject(e, "crossing_time", (double)r.ep[i].crossing);
            cJSON_AddNumberToObject(e, "value", r.ep[i].value);
            cJSON_AddItemToArray(ep, e);
        }
        tidectl_print_json(j);
        cJSON_Delete(j);
    } else {
        printf("%s over %s: %zu evaluations from %s to %s (%zu fits, model %s), %zu alert%s\n",
               spec->name, data, r.evals, stamp(r.first_eval, a, sizeof a),
               stamp(r.last_eval, b, sizeof b), r.fits, r.model[0] ? r.model : "none", r.n,
               r.n == 1 ? "" : "s");
        if (r.error[0]) printf("last problem: %s\n", r.error);
        cli_tab *t = cli_tab_new("llllr");
        const char *hdr[] = {"ACTIVE", "FIRED", "RESOLVED", "PREDICTED CROSSING", "VALUE"};
        for (size_t i = 0; i < 5; i++)
            cli_tab_add(t, "%s", hdr[i]);
        for (size_t i = 0; i < r.n; i++) {
            cli_tab_add(t, "%s", stamp(r.ep[i].active_at, a, sizeof a));
            cli_tab_add(t, "%s", stamp(r.ep[i].fired_at, b, sizeof b));
            cli_tab_add(t, "%s", stamp(r.ep[i].resolved_at, c, sizeof c));
            cli_tab_add(t, "%s", stamp(r.ep[i].crossing, d, sizeof d));
            cli_tab_add(t, "%.6g", r.ep[i].value);
        }
        cli_tab_print(t, stdout);
    }
    replay_result_fini(&r);
    series_csv_fini(&s);
    free(spec);
    return 0;
}

TIDECTL_COMMAND(alert_replay, "alert-replay", REPLAY_USAGE, cmd_replay)
