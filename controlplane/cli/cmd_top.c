/* cmd_top.c: `tidectl top [--node N] [--json]`: the latest usage per cgroup (and node totals)
 * as the agents last reported it, from the control plane's store. */
#include "tidectl.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>


#define TOP_USAGE                                                                              \
    "top [--node N] [--json]\n"                                                                \
    "  Latest usage per cgroup: CPU cores, throttling, memory working set and RSS, pids, PSI;\n" \
    "  node totals below. Only values reported in the last 5 minutes."

static int usage_error(const char *msg) {
    fprintf(stderr, "tidectl top: %s\nusage: tidectl " TOP_USAGE "\n", msg);
    return 2;
}

/* The number at key k; *have says whether it is there. */
static double num(const cJSON *o, const char *k, int *have) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    *have = cJSON_IsNumber(v);
    return *have ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The value at k times scale with prec decimals ("%" appended for pct), or "-". */
static const char *fmt_num(const cJSON *o, const char *k, int prec, double scale, int pct,
                           char *buf, size_t len) {
    int have;
    double v = num(o, k, &have);
    if (!have) return "-";
    snprintf(buf, len, "%.*f%s", prec, v * scale, pct ? "%" : "");
    return buf;
}

/* What to call a cgroup in the table: container/pod/service name where known. */
static const char *who(const cJSON *row, char *buf, size_t len) {
    const char *kind = str(row, "kind");
    const char *cg = str(row, "cgroup");
    if (kind && strcmp(kind, "container") == 0 && str(row, "container_id"))
        snprintf(buf, len, "container %.12s (pod %.8s)", str(row, "container_id"),
                 str(row, "pod_uid") ? str(row, "pod_uid") : "?");
    else if (kind && strcmp(kind, "pod") == 0 && str(row, "pod_uid"))
        snprintf(buf, len, "pod %s (%s)", str(row, "pod_uid"), str(row, "qos") ? str(row, "qos") : "?");
    else
        snprintf(buf, len, "%s", cg ? cg : "?");
    return buf;
}

static int cmd_top(tidectl_ctx *ctx, int argc, char **argv) {
    static const struct option longopts[] = {{"node", required_argument, NULL, 'n'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *node = NULL;
    int json = ctx->json;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'n': node = optarg; break;
        case 'j': json = 1; break;
        case 'h': printf("usage: tidectl " TOP_USAGE "\n"); return 0;
        default: {
            char msg[160];
            snprintf(msg, sizeof msg, "unknown or incomplete option '%s'", argv[optind - 1]);
            return usage_error(msg);
        }
        }
    }
    if (optind < argc) {
        char msg[160];
        snprintf(msg, sizeof msg, "unexpected argument '%s'", argv[optind]);
        return usage_error(msg);
    }
    if (node && !*node) return usage_error("--node needs a node name");
    cJSON *args = cJSON_CreateObject();
    if (node) cJSON_AddStringToObject(args, "node", node);
    cJSON *data = NULL;
    int rc = tidectl_call(ctx, "top", args, &data);
    if (rc != 0) return rc;
    if (json) {
        tidectl_print_json(data);
        cJSON_Delete(data);
        return 0;
    }
    const cJSON *cgs = cJSON_GetObjectItemCaseSensitive(data, "cgroups");
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(data, "nodes");
    printf("%-16s %-44s %-9s %7s %9s %10s %10s %6s %8s %8s\n", "NODE", "CGROUP", "KIND", "CPU",
           "THROTTLED", "WS(MiB)", "RSS(MiB)", "PIDS", "CPU-PSI", "MEM-PSI");
    const cJSON *row;
    int n = 0;
    cJSON_ArrayForEach(row, cgs) {
        char b[7][32], w[128];
        printf("%-16s %-44s %-9s %7s %9s %10s %10s %6s %8s %8s\n", str(row, "node"),
               who(row, w, sizeof w), str(row, "kind") ? str(row, "kind") : "-",
               fmt_num(row, "cpu_usage_cores", 3, 1, 0, b[0], 32),
               fmt_num(row, "cpu_throttled_seconds_per_second", 1, 100, 1, b[1], 32),
               fmt_num(row, "memory_working_set_bytes", 1, 1.0 / 1048576, 0, b[2], 32),
               fmt_num(row, "memory_rss_bytes", 1, 1.0 / 1048576, 0, b[3], 32),
               fmt_num(row, "pids", 0, 1, 0, b[4], 32),
               fmt_num(row, "cpu_pressure_some", 1, 100, 1, b[5], 32),
               fmt_num(row, "memory_pressure_some", 1, 100, 1, b[6], 32));
        n++;
    }
    if (n == 0) printf("(no cgroup values reported in the last 5 minutes%s%s)\n",
                       node ? " for node " : "", node ? node : "");
    int nn = 0;
    cJSON_ArrayForEach(row, nodes) {
        if (nn++ == 0)
            printf("\n%-16s %9s %6s %12s %12s %7s\n", "NODE", "CPU", "CORES", "MEM-USED(MiB)",
                   "MEM-TOTAL(MiB)", "LOAD1");
        char b[5][32];
        printf("%-16s %9s %6s %12s %12s %7s\n", str(row, "node"),
               fmt_num(row, "cpu_usage_cores", 2, 1, 0, b[0], 32),
               fmt_num(row, "cpu_count", 0, 1, 0, b[1], 32),
               fmt_num(row, "memory_used_bytes", 0, 1.0 / 1048576, 0, b[2], 32),
               fmt_num(row, "memory_total_bytes", 0, 1.0 / 1048576, 0, b[3], 32),
               fmt_num(row, "load1", 2, 1, 0, b[4], 32));
    }
    cJSON_Delete(data);
    return 0;
}

TIDECTL_COMMAND(top, "top", TOP_USAGE, cmd_top)
