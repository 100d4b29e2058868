/* cmd_top.c: `tidectl top [--node N] [--json]`: the latest usage per cgroup (and node totals)
 * as the agents last reported it, from the control plane's store. */
#include "cli_table.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#define TOP_USAGE                                                                                  \
    "top [--node N] [--json]\n"                                                                    \
    "  Latest usage per cgroup: CPU cores, throttling, memory working set and RSS, pids, PSI;\n"   \
    "  node totals below. Only values reported in the last 5 minutes."

static const cli_cmd top_cmd = {"top", TOP_USAGE};

/* The value at k times scale with prec decimals ("%" appended for pct), or "-". */
static const char *fmt_num(const cJSON *o, const char *k, int prec, double scale, int pct,
                           char *buf, size_t len) {
    if (!cli_has_num(o, k)) return "-";
    snprintf(buf, len, "%.*f%s", prec, cli_num(o, k) * scale, pct ? "%" : "");
    return buf;
}

/* What to call a cgroup in the table: container/pod/service name where known. */
static const char *who(const cJSON *row, char *buf, size_t len) {
    const char *kind = cli_str(row, "kind", "");
    const char *container = cli_str(row, "container_id", NULL);
    const char *pod = cli_str(row, "pod_uid", NULL);
    if (strcmp(kind, "container") == 0 && container)
        snprintf(buf, len, "container %.12s (pod %.8s)", container, pod ? pod : "?");
    else if (strcmp(kind, "pod") == 0 && pod)
        snprintf(buf, len, "pod %s (%s)", pod, cli_str(row, "qos", "?"));
    else
        snprintf(buf, len, "%s", cli_str(row, "cgroup", "?"));
    return buf;
}

static int cmd_top(tidectl_ctx *ctx, int argc, char **argv) {
    static const struct option longopts[] = {{"node", required_argument, NULL, 'n'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *node = NULL;
    int json = ctx->json, status, c;
    optind = 1;
    while ((c = cli_getopt(&top_cmd, argc, argv, longopts, &json, &status)) != -1) {
        if (c == CLI_OPT_EXIT) return status;
        if (c == 'n') node = optarg;
    }
    if (optind < argc) return cli_usage_error(&top_cmd, "unexpected argument '%s'", argv[optind]);
    if (node && !*node) return cli_usage_error(&top_cmd, "--node needs a node name");
    cJSON *args = cJSON_CreateObject();
    if (node) cJSON_AddStringToObject(args, "node", node);
    cJSON *data;
    int rc = cli_call(ctx, "top", args, json, &data);
    if (rc != 0 || !data) return rc;
    const cJSON *cgs = cJSON_GetObjectItemCaseSensitive(data, "cgroups");
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(data, "nodes");
    cli_tab *t = cli_tab_new("lllrrrrrrr");
    const char *hdr[] = {"NODE",    "CGROUP",   "KIND", "CPU",     "THROTTLED",
                         "WS(MiB)", "RSS(MiB)", "PIDS", "CPU-PSI", "MEM-PSI"};
    for (size_t i = 0; i < sizeof hdr / sizeof hdr[0]; i++)
        cli_tab_add(t, "%s", hdr[i]);
    const cJSON *row;
    int n = 0;
    cJSON_ArrayForEach(row, cgs) {
        char b[7][32], w[600];
        cli_tab_add(t, "%s", cli_str(row, "node", "?"));
        cli_tab_add(t, "%s", who(row, w, sizeof w));
        cli_tab_add(t, "%s", cli_str(row, "kind", "-"));
        cli_tab_add(t, "%s", fmt_num(row, "cpu_usage_cores", 3, 1, 0, b[0], 32));
        cli_tab_add(t, "%s", fmt_num(row, "cpu_throttled_seconds_per_second", 1, 100, 1, b[1], 32));
        cli_tab_add(t, "%s",
                    fmt_num(row, "memory_working_set_bytes", 1, 1.0 / 1048576, 0, b[2], 32));
        cli_tab_add(t, "%s", fmt_num(row, "memory_rss_bytes", 1, 1.0 / 1048576, 0, b[3], 32));
        cli_tab_add(t, "%s", fmt_num(row, "pids", 0, 1, 0, b[4], 32));
        cli_tab_add(t, "%s", fmt_num(row, "cpu_pressure_some", 1, 100, 1, b[5], 32));
        cli_tab_add(t, "%s", fmt_num(row, "memory_pressure_some", 1, 100, 1, b[6], 32));
        n++;
    }
    cli_tab_print(t, stdout);
    if (n == 0)
        printf("(no cgroup values reported in the last 5 minutes%s%s)\n", node ? " for node " : "",
               node ? node : "");
    if (cJSON_GetArraySize(nodes) > 0) {
        printf("\n");
        t = cli_tab_new("lrrrrr");
        const char *nh[] = {"NODE", "CPU", "CORES", "MEM-USED(MiB)", "MEM-TOTAL(MiB)", "LOAD1"};
        for (size_t i = 0; i < sizeof nh / sizeof nh[0]; i++)
            cli_tab_add(t, "%s", nh[i]);
        cJSON_ArrayForEach(row, nodes) {
            char b[5][32];
            cli_tab_add(t, "%s", cli_str(row, "node", "?"));
            cli_tab_add(t, "%s", fmt_num(row, "cpu_usage_cores", 2, 1, 0, b[0], 32));
            cli_tab_add(t, "%s", fmt_num(row, "cpu_count", 0, 1, 0, b[1], 32));
            cli_tab_add(t, "%s", fmt_num(row, "memory_used_bytes", 0, 1.0 / 1048576, 0, b[2], 32));
            cli_tab_add(t, "%s", fmt_num(row, "memory_total_bytes", 0, 1.0 / 1048576, 0, b[3], 32));
            cli_tab_add(t, "%s", fmt_num(row, "load1", 2, 1, 0, b[4], 32));
        }
        cli_tab_print(t, stdout);
    }
    cJSON_Delete(data);
    return 0;
}

TIDECTL_COMMAND(top, "top", TOP_USAGE, cmd_top)
