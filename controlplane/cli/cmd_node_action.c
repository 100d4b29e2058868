/* cmd_node_action.c: `tidectl node-action NODE ACTION CGROUP [...]`: runs a node action
 * (shared/actions.h: drain, standby, activate, warmup on one replica; replica-start,
 * replica-stop, replicas for the replica processes the agent runs) through the node's agent and
 * prints the result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "cli_table.h"
#include "tidectl.h"

#define NA_USAGE                                                                                   \
    "node-action NODE ACTION CGROUP [--endpoint ADDR:PORT]\n"                                      \
    "        [--haproxy-socket PATH --haproxy-server BACKEND/SERVER] [--timeout-ms MS]\n"          \
    "        [--warmup JSON] [--args JSON] [--pod NAMESPACE/NAME] [--json]\n"                      \
    "                          ACTION: drain|standby|activate|warmup|replica-start|replica-stop|"  \
    "replicas;\n"                                                                                  \
    "                          CGROUP as /proc/PID/cgroup shows it (e.g.\n"                        \
    "                          /system.slice/web@3.service), or - for none (replica actions)"

static const cli_cmd na_cmd = {"node-action", NA_USAGE};

/* Prints "  key: value" lines; nested values as compact JSON. */
static void print_human(const char *node, const char *action, const cJSON *data, int ok) {
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(data, "total_ms");
    printf("%s on %s: %s", action, node, ok ? "ok" : "failed");
    if (cJSON_IsNumber(total)) printf(" in %.1f ms", total->valuedouble);
    printf("\n");
    const cJSON *it;
    cJSON_ArrayForEach(it, data) {
        if (cJSON_IsString(it)) {
            printf("  %-22s %s\n", it->string, it->valuestring);
        } else if (cJSON_IsNumber(it)) {
            printf("  %-22s %.15g\n", it->string, it->valuedouble);
        } else {
            char *s = cJSON_PrintUnformatted(it);
            printf("  %-22s %s\n", it->string, s ? s : "?");
            free(s);
        }
    }
}

static int cmd_node_action(tidectl_ctx *ctx, int argc, char **argv) {
    const char *pos[3] = {NULL, NULL, NULL};
    const char *pod = NULL;
    int npos = 0;
    cJSON *args = cJSON_CreateObject();
    if (!args) return 1;
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *opts[] = {"--endpoint",
                              "--haproxy-socket",
                              "--haproxy-server",
                              "--timeout-ms",
                              "--warmup",
                              "--args",
                              "--pod",
                              NULL};
        int k = -1;
        for (int j = 0; opts[j]; j++)
            if (!strcmp(a, opts[j])) k = j;
        if (k < 0 && a[0] == '-' && a[1] == '-') {
            rc = cli_usage_error(&na_cmd, "unknown option '%s'", a);
            goto out;
        }
        if (k < 0) {
            if (npos == 3) {
                rc = cli_usage_error(&na_cmd, "unexpected argument '%s'", a);
                goto out;
            }
            pos[npos++] = a;
            continue;
        }
        if (i + 1 >= argc) {
            rc = cli_usage_error(&na_cmd, "%s needs a value", a);
            goto out;
        }
        const char *v = argv[++i];
        if (k == 0) {
            cJSON_AddStringToObject(args, "endpoint", v);
        } else if (k == 1) {
            cJSON_AddStringToObject(args, "haproxy_socket", v);
        } else if (k == 2) {
            cJSON_AddStringToObject(args, "haproxy_server", v);
        } else if (k == 3) {
            char *end;
            long ms = strtol(v, &end, 10);
            if (*end || ms < 1 || ms > 3600000) {
                rc = cli_usage_error(&na_cmd, "--timeout-ms '%s' is not 1-3600000", v);
                goto out;
            }
            cJSON_AddNumberToObject(args, "timeout_ms", (double)ms);
        } else if (k == 6) {
            const char *slash = strchr(v, '/');
            if (!slash || slash == v || !slash[1] || strchr(slash + 1, '/')) {
                rc = cli_usage_error(&na_cmd, "--pod '%s' is not NAMESPACE/NAME", v);
                goto out;
            }
            pod = v;
        } else {
            cJSON *j = cJSON_Parse(v);
            if (!j || !cJSON_IsObject(j)) {
                cJSON_Delete(j);
                rc = cli_usage_error(&na_cmd, "%s '%s' is not a JSON object", a, v);
                goto out;
            }
            if (k == 4) {
                cJSON_AddItemToObject(args, "warmup", j);
            } else {
                /* extra action arguments (e.g. a warmup action's rate, duration_ms, path) */
                while (j->child) {
                    cJSON *it = cJSON_DetachItemViaPointer(j, j->child);
                    cJSON_DeleteItemFromObjectCaseSensitive(args, it->string);
                    cJSON_AddItemToObject(args, it->string, it);
                }
                cJSON_Delete(j);
            }
        }
    }
    if (npos < 3) {
        rc = cli_usage_error(&na_cmd, "%s",
                             npos == 0   ? "missing NODE"
                             : npos == 1 ? "missing ACTION"
                                         : "missing CGROUP");
        goto out;
    }
    const char *node = pos[0], *action = pos[1], *cgroup = pos[2];
    if (tide_action_find(action) < 0) {
        rc = cli_usage_error(&na_cmd, "unknown ACTION '%s' (%s)", action, tide_action_list());
        goto out;
    }
    if (strcmp(cgroup, "-") != 0) {
        if (cgroup[0] != '/') {
            rc = cli_usage_error(
                &na_cmd, "CGROUP '%s' must start with '/' (as /proc/PID/cgroup shows it) or be -",
                cgroup);
            goto out;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(args, "cgroup");
        cJSON_AddStringToObject(args, "cgroup", cgroup);
    }
    int act = tide_action_find(action);
    int replica_traffic = act == TIDE_ACT_DRAIN || act == TIDE_ACT_STANDBY ||
                          act == TIDE_ACT_ACTIVATE || act == TIDE_ACT_WARMUP;
    if (replica_traffic && !cJSON_GetObjectItemCaseSensitive(args, "haproxy_socket") !=
                               !cJSON_GetObjectItemCaseSensitive(args, "haproxy_server")) {
        rc = cli_usage_error(&na_cmd, "%s", "--haproxy-socket and --haproxy-server go together");
        goto out;
    }
    cJSON *req = cJSON_CreateObject();
    if (!req) {
        rc = 1;
        goto out;
    }
    cJSON_AddStringToObject(req, "node", node);
    cJSON_AddStringToObject(req, "action", action);
    cJSON_AddItemToObject(req, "args", args);
    if (pod) cJSON_AddStringToObject(req, "pod", pod);
    args = NULL;
    cJSON *data = NULL, *detail = NULL;
    rc = tidectl_call_detail(ctx, "node-action", req, &data, &detail);
    /* a failure with details (what the agent got done before it failed) prints them too; the
     * reason is already on stderr and the exit status says it failed */
    const cJSON *shown = rc == 0 ? data : detail;
    if (shown && ctx->json)
        tidectl_print_json(shown);
    else if (shown)
        print_human(node, action, shown, rc == 0);
    cJSON_Delete(data);
    cJSON_Delete(detail);
out:
    cJSON_Delete(args);
    return rc;
}

TIDECTL_COMMAND(node_action, "node-action", NA_USAGE, cmd_node_action)
