/* cmd_series.c: `tidectl series`: what the control plane's store holds, per series: points per
 * resolution, time span and memory. */
#include "tidectl.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SERIES_USAGE                                                                           \
    "series [--match SELECTOR] [--json]\n"                                                     \
    "  Lists the stored series (labels, samples, points at raw/1m/10m resolution, first and\n" \
    "  last timestamp, memory in bytes), optionally only those SELECTOR matches."

static int usage_error(const char *msg) {
    fprintf(stderr, "tidectl series: %s\nusage: tidectl " SERIES_USAGE "\n", msg);
    return 2;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

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
    int json = ctx->json;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': match = optarg; break;
        case 'j': json = 1; break;
        case 'h': printf("usage: tidectl " SERIES_USAGE "\n"); return 0;
        default: {
            char msg[128];
            snprintf(msg, sizeof msg, "unknown or incomplete option '%s'", argv[optind - 1]);
            return usage_error(msg);
        }
        }
    }
    if (optind < argc) return usage_error("unexpected argument (use --match SELECTOR)");
    cJSON *args = cJSON_CreateObject();
    if (match) cJSON_AddStringToObject(args, "match", match);
    cJSON *data = NULL;
    int rc = tidectl_call(ctx, "series", args, &data);
    if (rc) return rc;
    if (json) {
        tidectl_print_json(data);
        cJSON_Delete(data);
        return 0;
    }
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(data, "series"), *s;
    printf("%-48s %10s %8s %8s %6s %-20s %-20s %9s\n", "SERIES", "SAMPLES", "RAW", "1M", "10M",
           "FIRST", "LAST", "BYTES");
    int n = 0;
    cJSON_ArrayForEach(s, arr) {
        char name[512] = "", first[32], last[32];
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(s, "labels"), *l;
        const cJSON *mn = cJSON_GetObjectItemCaseSensitive(labels, "__name__");
        size_t off = (size_t)snprintf(name, sizeof name, "%s{", cJSON_IsString(mn) ? mn->valuestring : "");
        int f = 1;
        cJSON_ArrayForEach(l, labels) {
            if (!strcmp(l->string, "__name__") || !cJSON_IsString(l) || off >= sizeof name) continue;
            off += (size_t)snprintf(name + off, sizeof name - off, "%s%s=\"%s\"", f ? "" : ",",
                                    l->string, l->valuestring);
            f = 0;
        }
        if (off < sizeof name) snprintf(name + off, sizeof name - off, "}");
        const cJSON *pts = cJSON_GetObjectItemCaseSensitive(s, "points");
        const cJSON *by = cJSON_GetObjectItemCaseSensitive(s, "bytes");
        when(num(s, "first_ms"), first, sizeof first);
        when(num(s, "last_ms"), last, sizeof last);
        printf("%-48s %10.0f %8.0f %8.0f %6.0f %-20s %-20s %9.0f\n", name, num(s, "samples"),
               num(pts, "raw"), num(pts, "1m"), num(pts, "10m"), first, last,
               num(by, "raw") + num(by, "1m") + num(by, "10m"));
        n++;
    }
    const cJSON *store = cJSON_GetObjectItemCaseSensitive(data, "store");
    const cJSON *prom = cJSON_GetObjectItemCaseSensitive(data, "prometheus");
    printf("%d series; store: %s; prometheus: %s\n", n,
           cJSON_IsString(store) ? store->valuestring : "?",
           cJSON_IsString(prom) ? prom->valuestring : "?");
    cJSON_Delete(data);
    return 0;
}

TIDECTL_COMMAND(series, "series", SERIES_USAGE, cmd_series)
