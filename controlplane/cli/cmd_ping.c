/* cmd_ping.c: `tidectl ping NODE`: sends the built-in ping action through the control plane to
 * that node's agent and prints the round trip (checks the whole command path). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tidectl.h"

static int cmd_ping(tidectl_ctx *ctx, int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: tidectl ping NODE [--json]\n");
        return 2;
    }
    cJSON *args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "node", argv[1]);
    cJSON *d = NULL;
    int rc = tidectl_call(ctx, "ping", args, &d);
    if (rc != 0) return rc;
    if (ctx->json) {
        tidectl_print_json(d);
    } else {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, "agent_version");
        const cJSON *rtt = cJSON_GetObjectItemCaseSensitive(d, "rtt_ms");
        printf("%s: answered by %s in %.0f ms\n", argv[1], cJSON_IsString(v) ? v->valuestring : "?",
               cJSON_IsNumber(rtt) ? rtt->valuedouble : 0);
    }
    cJSON_Delete(d);
    return 0;
}

TIDECTL_COMMAND(ping, "ping",
                "ping NODE [--json]       round trip of a command to that node's agent", cmd_ping)
