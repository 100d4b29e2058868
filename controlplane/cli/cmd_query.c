/* cmd_query.c: `tidectl query SELECTOR`: query_range over the control plane's store merged with
 * Prometheus history; a table, or with --json exactly what GET /api/v1/query_range returns. */
#include "query/query.h"
#include "cli_table.h"
#include "utf8.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUERY_USAGE                                                                                \
    "query SELECTOR [--start T] [--end T] [--step S] [--json]\n"                                   \
    "  SELECTOR: metric{label=\"v\",label!=\"v\",label=~\"re\",label!~\"re\"}, optionally "        \
    "inside\n"                                                                                     \
    "  sum by (label,...) (...) or avg by (label,...) (...). T: unix seconds, RFC 3339, now,\n"    \
    "  now-1h or -1h (default: --end now, --start one hour before --end). S: seconds or\n"         \
    "  1m/1h... (default 60).\n"                                                                   \
    "  The store's samples win over Prometheus's where both have a point. --json prints the\n"     \
    "  HTTP endpoint's JSON. Exit status 2 for a bad selector or time."

static const cli_cmd query_cmd = {"query", QUERY_USAGE};

static void print_table(const cJSON *body) {
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(body, "data");
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(data, "result");
    const cJSON *s;
    int n = 0;
    cJSON_ArrayForEach(s, result) {
        const cJSON *metric = cJSON_GetObjectItemCaseSensitive(s, "metric");
        const cJSON *values = cJSON_GetObjectItemCaseSensitive(s, "values");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(metric, "__name__");
        printf("%s%s{", n++ ? "\n" : "", cJSON_IsString(name) ? name->valuestring : "");
        const cJSON *l;
        int first = 1;
        cJSON_ArrayForEach(l, metric) {
            if (!strcmp(l->string, "__name__") || !cJSON_IsString(l)) continue;
            printf("%s%s=\"%s\"", first ? "" : ",", l->string, l->valuestring);
            first = 0;
        }
        printf("}\n");
        const cJSON *pt;
        cJSON_ArrayForEach(pt, values) {
            const cJSON *t = cJSON_GetArrayItem(pt, 0), *v = cJSON_GetArrayItem(pt, 1);
            if (!cJSON_IsNumber(t) || !cJSON_IsString(v)) continue;
            time_t secs = (time_t)t->valuedouble;
            struct tm tm;
            char when[40];
            gmtime_r(&secs, &tm);
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
            printf("  %s  %s\n", when, v->valuestring);
        }
    }
    if (!n) printf("no series matched\n");
}

static int cmd_query(tidectl_ctx *ctx, int argc, char **argv) {
    static const struct option longopts[] = {
        {"start", required_argument, NULL, 's'}, {"end", required_argument, NULL, 'e'},
        {"step", required_argument, NULL, 'S'},  {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    const char *start = NULL, *end = NULL, *step = "60", *selector = NULL;
    int json = ctx->json, exit_now, c;
    optind = 1;
    while ((c = cli_getopt(&query_cmd, argc, argv, longopts, &json, &exit_now)) != -1) {
        switch (c) {
        case CLI_OPT_EXIT:
            return exit_now;
        case 's':
            start = optarg;
            break;
        case 'e':
            end = optarg;
            break;
        case 'S':
            step = optarg;
            break;
        }
    }
    for (int i = optind; i < argc; i++) {
        if (selector)
            return cli_usage_error(&query_cmd, "give one SELECTOR (quote it if it has spaces)");
        selector = argv[i];
    }
    if (!selector) return cli_usage_error(&query_cmd, "missing SELECTOR");
    char end_s[32], start_s[32];
    int64_t now_ms = (int64_t)time(NULL) * 1000, end_ms, start_ms;
    if (cli_parse_time(end ? end : "now", now_ms, &end_ms))
        return cli_usage_error(&query_cmd,
                               "--end '%s': not unix seconds, RFC 3339, now, now-DURATION or "
                               "-DURATION",
                               end);
    if (!start)
        start_ms = end_ms - 3600000;
    else if (cli_parse_time(start, now_ms, &start_ms))
        return cli_usage_error(&query_cmd,
                               "--start '%s': not unix seconds, RFC 3339, now, now-DURATION or "
                               "-DURATION",
                               start);
    /* relative times are resolved here, so the control plane sees plain unix seconds */
    snprintf(end_s, sizeof end_s, "%.3f", (double)end_ms / 1000);
    snprintf(start_s, sizeof start_s, "%.3f", (double)start_ms / 1000);
    end = end_s;
    start = start_s;
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "query", selector);
    cJSON_AddStringToObject(args, "start", start);
    cJSON_AddStringToObject(args, "end", end);
    cJSON_AddStringToObject(args, "step", step);
    cJSON *data = NULL;
    int rc = tidectl_call(ctx, "query", args, &data);
    if (rc) return rc;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(data, "http_status");
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(data, "body");
    int status = cJSON_IsNumber(st) ? (int)st->valuedouble : 500;
    const char *text = cJSON_IsString(bs) ? bs->valuestring : "";
    cJSON *body = cJSON_Parse(text);
    int exit_status = status == 200                    ? 0
                      : status == 400 || status == 422 ? 2
                                                       : 1; /* the query's fault */
    if (json) {
        char *clean = utf8_sanitize(text); /* the body is JSON already; keep it valid UTF-8 */
        printf("%s\n", clean ? clean : text);
        free(clean);
    } else if (status == 200 && body) {
        print_table(body);
    }
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(body, "error");
    if (status != 200)
        fprintf(stderr, "tidectl query: %s\n",
                cJSON_IsString(error) ? error->valuestring : "the control plane failed the query");
    const cJSON *warnings = cJSON_GetObjectItemCaseSensitive(body, "warnings"), *w;
    cJSON_ArrayForEach(w, warnings) {
        if (cJSON_IsString(w)) fprintf(stderr, "tidectl query: warning: %s\n", w->valuestring);
    }
    cJSON_Delete(body);
    cJSON_Delete(data);
    return exit_status;
}

TIDECTL_COMMAND(query, "query", QUERY_USAGE, cmd_query)
