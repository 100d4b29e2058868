/* cmd_series.c: `tidectl series`: what the control plane's store holds, per series: points per
 * resolution, time span and memory. */
#include "cli_table.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SERIES_USAGE                                                                               \
    "series [--match SELECTOR] [--json]\n"                                                         \
    "  Lists the stored series (labels, samples, points at raw/1m/10m resolution, first and\n"     \
    "  last timestamp, memory in bytes), optionally only those SELECTOR matches."

static const cli_cmd series_cmd = {"series", SERIES_USAGE};

static void when(double ms, char *buf, size_t len) {
    if (ms <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int cmd_series(tidectl_ctx *ctx, int argc, char **argv) {
    static const struct option longopts[] = {{"match", required_argument, NULL, 'm'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *match = NULL;
    int json = ctx->json, status, c;
    optind = 1;
    while ((c = cli_getopt(&series_cmd, argc, argv, longopts, &json, &status)) != -1) {
        if (c == CLI_OPT_EXIT) return status;
        if (c == 'm') match = optarg;
    }
    if (optind < argc)
        return cli_usage_error(&series_cmd, "unexpected argument (use --match SELECTOR)");
    cJSON *args = cJSON_CreateObject();
    if (match) cJSON_AddStringToObject(args, "match", match);
    cJSON *data;
    int rc = cli_call(ctx, "series", args, json, &data);
    if (rc != 0 || !data) return rc;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(data, "series"), *s;
    cli_tab *t = cli_tab_new("lrrrrllr");
    cli_tab_add(t, "SERIES");
    cli_tab_add(t, "SAMPLES");
    cli_tab_add(t, "RAW");
    cli_tab_add(t, "1M");
    cli_tab_add(t, "10M");
    cli_tab_add(t, "FIRST");
    cli_tab_add(t, "LAST");
    cli_tab_add(t, "BYTES");
    int n = 0;
    cJSON_ArrayForEach(s, arr) {
        char name[1024] = "", first[32], last[32];
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(s, "labels"), *l;
        size_t off = (size_t)snprintf(name, sizeof name, "%s{", cli_str(labels, "__name__", ""));
        int f = 1;
        cJSON_ArrayForEach(l, labels) {
            if (!strcmp(l->string, "__name__") || !cJSON_IsString(l) || off >= sizeof name)
                continue;
            off += (size_t)snprintf(name + off, sizeof name - off, "%s%s=\"%s\"", f ? "" : ",",
                                    l->string, l->valuestring);
            f = 0;
        }
        if (off < sizeof name) snprintf(name + off, sizeof name - off, "}");
        const cJSON *pts = cJSON_GetObjectItemCaseSensitive(s, "points");
        const cJSON *by = cJSON_GetObjectItemCaseSensitive(s, "bytes");
        when(cli_num(s, "first_ms"), first, sizeof first);
        when(cli_num(s, "last_ms"), last, sizeof last);
        cli_tab_add(t, "%s", name);
        cli_tab_add(t, "%.0f", cli_num(s, "samples"));
        cli_tab_add(t, "%.0f", cli_num(pts, "raw"));
        cli_tab_add(t, "%.0f", cli_num(pts, "1m"));
        cli_tab_add(t, "%.0f", cli_num(pts, "10m"));
        cli_tab_add(t, "%s", first);
        cli_tab_add(t, "%s", last);
        cli_tab_add(t, "%.0f", cli_num(by, "raw") + cli_num(by, "1m") + cli_num(by, "10m"));
        n++;
    }
    cli_tab_print(t, stdout);
    printf("%d series; store: %s; prometheus: %s\n", n, cli_str(data, "store", "?"),
           cli_str(data, "prometheus", "?"));
    cJSON_Delete(data);
    return 0;
}

TIDECTL_COMMAND(series, "series", SERIES_USAGE, cmd_series)
