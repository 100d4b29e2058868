/* cmd_agents.c: `tidectl agents`: the control plane's agents table (human table or --json). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "cli_table.h"

/* The string at k, empty when there is none. */
static const char *str(const cJSON *o, const char *k) {
    return cli_str(o, k, "");
}

/* "12s", "5m", "3h", "2d" since a unix-ms time; "-" for 0. */
static const char *ago(double ms, char *buf, size_t len) {
    if (ms <= 0) return "-";
    double s = (tide_now_wall_ms() - ms) / 1000.0;
    if (s < 0) s = 0;
    if (s < 120)
        snprintf(buf, len, "%.0fs", s);
    else if (s < 7200)
        snprintf(buf, len, "%.0fm", s / 60);
    else if (s < 172800)
        snprintf(buf, len, "%.0fh", s / 3600);
    else
        snprintf(buf, len, "%.0fd", s / 86400);
    return buf;
}

static const char *human_bytes(double b, char *buf, size_t len) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", b, u[i]);
    return buf;
}

static int cmd_agents(tidectl_ctx *ctx, int argc, char **argv) {
    if (argc > 1) {
        fprintf(stderr,
                "tidectl agents: unexpected argument '%s'\nusage: tidectl agents [--json]\n",
                argv[1]);
        return 2;
    }
    cJSON *data;
    int rc = cli_call(ctx, "agents", NULL, ctx->json, &data);
    if (rc != 0 || !data) return rc;
    cli_tab *t = cli_tab_new("lllllrrrrr");
    const char *hdr[] = {"NODE", "VERSION", "ADDRESS", "STATE",  "SINCE",
                         "BEAT", "SAMPLES", "BYTES",   "ERRORS", "DROPS"};
    for (size_t i = 0; i < sizeof hdr / sizeof hdr[0]; i++)
        cli_tab_add(t, "%s", hdr[i]);
    const cJSON *row;
    int n = 0;
    cJSON_ArrayForEach(row, data) {
        char b1[32], b2[32], b3[32];
        int up = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "connected"));
        cli_tab_add(t, "%s", str(row, "node"));
        cli_tab_add(t, "%s", str(row, "agent_version"));
        cli_tab_add(t, "%s", str(row, "address"));
        cli_tab_add(t, "%s", up ? "connected" : "gone");
        cli_tab_add(t, "%s",
                    ago(cli_num(row, up ? "connected_since" : "disconnected_at"), b1, sizeof b1));
        cli_tab_add(t, "%s", ago(cli_num(row, "last_heartbeat"), b2, sizeof b2));
        cli_tab_add(t, "%.0f", cli_num(row, "samples"));
        cli_tab_add(t, "%s", human_bytes(cli_num(row, "bytes"), b3, sizeof b3));
        cli_tab_add(t, "%.0f", cli_num(row, "protocol_errors"));
        cli_tab_add(t, "%.0f", cli_num(row, "spool_drops"));
        n++;
    }
    cli_tab_print(t, stdout);
    if (n == 0) printf("(no agent has connected yet)\n");
    cJSON_Delete(data);
    return 0;
}

TIDECTL_COMMAND(agents, "agents",
                "agents [--json]          agents table: node, version, address, "
                "connection, heartbeat, samples, bytes, errors, spool drops",
                cmd_agents)
