/* cmd_status.c: `tidectl status`: the control plane's health and totals (or --json). */
#include <stdio.h>

#include "cli_table.h"

/* The string at k, "-" when there is none. */
static const char *str(const cJSON *o, const char *k) {
    return cli_str(o, k, "-");
}

static int cmd_status(tidectl_ctx *ctx, int argc, char **argv) {
    if (argc > 1) {
        fprintf(stderr,
                "tidectl status: unexpected argument '%s'\nusage: tidectl status [--json]\n",
                argv[1]);
        return 2;
    }
    cJSON *d;
    int rc = cli_call(ctx, "status", NULL, ctx->json, &d);
    if (rc != 0 || !d) return rc;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(d, "agents");
    printf("control plane  %s, pid %.0f, up %.0f s\n", str(d, "version"), cli_num(d, "pid"),
           cli_num(d, "uptime_s"));
    printf("agents on      %s\n", str(d, "listen"));
    printf("ops socket     %s\n", str(d, "socket"));
    printf("store          %s (%s)\n", str(d, "data_dir"), str(d, "store"));
    printf("agents         %.0f connected, %.0f known, %.0f connections since start\n",
           cli_num(a, "agents_connected"), cli_num(a, "agents_known"),
           cli_num(a, "connections_total"));
    printf("ingest         %.0f samples, %.0f bytes\n", cli_num(a, "samples"), cli_num(a, "bytes"));
    printf("errors         %.0f protocol errors (%.0f wrong token, %.0f timeouts), %.0f refused "
           "(max_agents), %.0f refused (failed handshakes)\n",
           cli_num(a, "protocol_errors"), cli_num(a, "rejected_auth"), cli_num(a, "timeouts"),
           cli_num(a, "refused_full"), cli_num(a, "refused_rate"));
    const cJSON *mods = cJSON_GetObjectItemCaseSensitive(d, "modules");
    if (cJSON_GetArraySize(mods) > 0) {
        printf("modules       ");
        const cJSON *m;
        cJSON_ArrayForEach(m, mods) printf(" %s", cJSON_IsString(m) ? m->valuestring : "?");
        printf("\n");
    }
    cJSON_Delete(d);
    return 0;
}

TIDECTL_COMMAND(status, "status",
                "status [--json]          control plane health, store and agent "
                "totals",
                cmd_status)
