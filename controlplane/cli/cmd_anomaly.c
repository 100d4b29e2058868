/* cmd_anomaly.c: `tidectl anomaly`: runs the online anomaly detector over a CSV locally (no
 * control plane), as a live anomaly rule would with its default settings. */
#include "cli_table.h"
#include "models/anomaly.h"
#include "offline/anomaly_csv.h"
#include "tidectl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AN_USAGE                                                                                   \
    "anomaly --data FILE.csv [--json] [--format nab] [--threshold X]\n"                            \
    "        [--learn SECONDS] [--refractory SECONDS]\n"                                           \
    "  Scores every row of FILE.csv (timestamp,value) online: a point is judged only with the\n"   \
    "  rows before and at it. Prints the flagged points; --json a summary with them; --format\n"   \
    "  nab one row per input row: timestamp,value,anomaly_score,anomaly (score in [0,1],\n"        \
    "  anomaly 1 where the threshold flags the point). Defaults: threshold 0.4, learning\n"        \
    "  period 1 day (at least 200 points), one flag per 1 day (refractory period)."

static const cli_cmd an_cmd = {"anomaly", AN_USAGE};

/* Shortest text that reads back as v. */
static void fmt_value(double v, char *buf, size_t len) {
    for (int p = 6; p <= 17; p++) {
        snprintf(buf, len, "%.*g", p, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static int parse_seconds(const char *s, int64_t *out) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || !end || *end || v <= 0 || v > 366LL * 86400) return -1;
    *out = v;
    return 0;
}

static int cmd_anomaly(tidectl_ctx *ctx, int argc, char **argv) {
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},   {"json", no_argument, NULL, 'j'},
        {"format", required_argument, NULL, 'f'}, {"threshold", required_argument, NULL, 't'},
        {"learn", required_argument, NULL, 'l'},  {"refractory", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    const char *data = NULL;
    int json = ctx ? ctx->json : 0, nab = 0, status = 0, c;
    anom_opts o = {0};
    optind = 1;
    while ((c = cli_getopt(&an_cmd, argc, argv, longopts, &json, &status)) != -1) {
        char *end = NULL;
        switch (c) {
        case CLI_OPT_EXIT:
            return status;
        case 'd':
            data = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "nab") != 0) return cli_usage_error(&an_cmd, "--format takes nab");
            nab = 1;
            break;
        case 't':
            o.threshold = strtod(optarg, &end);
            if (!end || *end || !(o.threshold > 0 && o.threshold <= 1))
                return cli_usage_error(&an_cmd, "--threshold needs a number in (0,1]");
            break;
        case 'l':
            if (parse_seconds(optarg, &o.learn_s))
                return cli_usage_error(&an_cmd, "--learn needs seconds from 1 to 31622400");
            break;
        case 'r':
            if (parse_seconds(optarg, &o.refract_s))
                return cli_usage_error(&an_cmd, "--refractory needs seconds from 1 to 31622400");
            break;
        default:
            return cli_usage_error(&an_cmd, "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error(&an_cmd, "unexpected argument \"%s\"", argv[optind]);
    if (!data) return cli_usage_error(&an_cmd, "--data FILE.csv is required");
    if (nab && json) return cli_usage_error(&an_cmd, "--format nab and --json are exclusive");

    char err[512] = "";
    anom_rows rows;
    if (anom_rows_load(data, &rows, err, sizeof err) != 0) {
        fprintf(stderr, "tidectl anomaly: %s\n", err);
        return 2;
    }
    anom_result *res = calloc(rows.n, sizeof *res);
    if (!res) {
        fprintf(stderr, "tidectl anomaly: out of memory\n");
        anom_rows_fini(&rows);
        return 1;
    }
    if (anom_rows_run(&rows, &o, res, err, sizeof err) != 0) {
        fprintf(stderr, "tidectl anomaly: %s\n", err);
        free(res);
        anom_rows_fini(&rows);
        return 2;
    }
    double thr = o.threshold > 0 ? o.threshold : ANOM_DEFAULT_THRESHOLD;
    size_t flagged = 0;
    for (size_t i = 0; i < rows.n; i++)
        flagged += res[i].anomaly != 0;
    char ts[64], val[64];
    if (nab) {
        printf("timestamp,value,anomaly_score,anomaly\n");
        for (size_t i = 0; i < rows.n; i++) {
            anom_rows_format_ts(&rows, i, ts, sizeof ts);
            fmt_value(rows.v[i], val, sizeof val);
            printf("%s,%s,%.6f,%d\n", ts, val, res[i].score, res[i].anomaly);
        }
    } else if (json) {
        cJSON *j = cJSON_CreateObject(), *list = cJSON_CreateArray();
        cJSON_AddStringToObject(j, "data", data);
        cJSON_AddNumberToObject(j, "rows", (double)rows.n);
        cJSON_AddNumberToObject(j, "step", (double)rows.step);
        cJSON_AddNumberToObject(j, "threshold", thr);
        cJSON_AddNumberToObject(j, "learn_seconds", (double)(o.learn_s ? o.learn_s : 86400));
        cJSON_AddNumberToObject(j, "refractory_seconds",
                                (double)(o.refract_s ? o.refract_s : 86400));
        cJSON_AddNumberToObject(j, "flagged", (double)flagged);
        for (size_t i = 0; i < rows.n; i++) {
            if (!res[i].anomaly) continue;
            cJSON *a = cJSON_CreateObject();
            anom_rows_format_ts(&rows, i, ts, sizeof ts);
            cJSON_AddStringToObject(a, "timestamp", ts);
            cJSON_AddNumberToObject(a, "row", (double)i);
            cJSON_AddNumberToObject(a, "value", rows.v[i]);
            cJSON_AddNumberToObject(a, "score", res[i].score);
            if (isfinite(res[i].expected)) cJSON_AddNumberToObject(a, "expected", res[i].expected);
            cJSON_AddItemToArray(list, a);
        }
        cJSON_AddItemToObject(j, "anomalies", list);
        tidectl_print_json(j);
        cJSON_Delete(j);
    } else {
        printf("%s: %zu rows, step %llds, threshold %.2f: %zu anomal%s\n", data, rows.n,
               (long long)rows.step, thr, flagged, flagged == 1 ? "y" : "ies");
        if (flagged) printf("%-20s %14s %14s %6s\n", "TIMESTAMP", "VALUE", "EXPECTED", "SCORE");
        for (size_t i = 0; i < rows.n; i++) {
            if (!res[i].anomaly) continue;
            anom_rows_format_ts(&rows, i, ts, sizeof ts);
            printf("%-20s %14.6g %14.6g %6.3f\n", ts, rows.v[i], res[i].expected, res[i].score);
        }
    }
    free(res);
    anom_rows_fini(&rows);
    return 0;
}

TIDECTL_COMMAND(anomaly, "anomaly", AN_USAGE, cmd_anomaly)
