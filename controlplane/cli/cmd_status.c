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
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(d, "cluster");
    if (cJSON_IsObject(cl)) {
        const cJSON *age = cJSON_GetObjectItemCaseSensitive(cl, "lease_age_s");
        printf("cluster        member %s of %s%s, lease %s (TTL %.0f s, last keep-alive %.1f s "
               "ago, %s)\n",
               str(cl, "member"), str(cl, "endpoints"), str(cl, "prefix"), str(cl, "lease"),
               cli_num(cl, "lease_ttl_s"), cJSON_IsNumber(age) ? age->valuedouble : -1.0,
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cl, "lease_proven"))
                   ? "proven: acting"
                   : "NOT PROVEN: not acting");
        printf("workloads      %.0f in etcd, %.0f owned here, %.0f without an owner\n",
               cli_num(cl, "workloads"), cli_num(cl, "owned_here"), cli_num(cl, "unowned"));
        const cJSON *m;
        cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(cl, "members")) {
            const cJSON *left = cJSON_GetObjectItemCaseSensitive(m, "lease_ttl_left_s");
            printf("  member %-28s owns %5.0f  lease %s, %.1f s left%s\n", str(m, "name"),
                   cli_num(m, "owns"), str(m, "lease"),
                   cJSON_IsNumber(left) ? left->valuedouble : -1.0,
                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "self")) ? "  (this one)" : "");
        }
        const cJSON *rb = cJSON_GetObjectItemCaseSensitive(cl, "last_rebalance");
        if (cJSON_IsObject(rb))
            printf("rebalance      members %.0f -> %.0f: %.0f of %.0f workloads changed owner\n",
                   cli_num(rb, "members_before"), cli_num(rb, "members_after"),
                   cli_num(rb, "moved"), cli_num(rb, "workloads"));
        const cJSON *ee = cJSON_GetObjectItemCaseSensitive(cl, "etcd_error");
        if (cJSON_IsString(ee)) printf("etcd error     %s\n", ee->valuestring);
    }
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
