/* cmd_token.c: `tidectl token node NAME | revoke NAME | list`: per-node agent keys. A node's
 * key replaces the cluster token in that node's agent token file; from then on only that key
 * authenticates the node (README "Per-node keys"). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli_table.h"
#include "wire.h"

static const cli_cmd token_cmd = {"token",
                                  "token node NAME | token revoke NAME | token list [--json]"};

static int cmd_token(tidectl_ctx *ctx, int argc, char **argv) {
    if (argc < 2) return cli_usage_error(&token_cmd, "missing sub-command");
    const char *sub = argv[1];
    int with_node = !strcmp(sub, "node") || !strcmp(sub, "revoke");
    if (!with_node && strcmp(sub, "list") != 0)
        return cli_usage_error(&token_cmd, "unknown sub-command '%s'", sub);
    if (with_node && argc != 3) return cli_usage_error(&token_cmd, "%s needs one NODE", sub);
    if (!with_node && argc != 2) return cli_usage_error(&token_cmd, "list takes no argument");
    if (with_node && !wire_node_valid(argv[2], strlen(argv[2])))
        return cli_usage_error(&token_cmd, "'%s' is not a node name (1-63 of [A-Za-z0-9._-])",
                               argv[2]);
    cJSON *args = NULL;
    if (with_node) {
        args = cJSON_CreateObject();
        cJSON_AddStringToObject(args, "node", argv[2]);
    }
    const char *cmd = !strcmp(sub, "node")     ? "token-node"
                      : !strcmp(sub, "revoke") ? "token-revoke"
                                               : "token-list";
    cJSON *d = NULL;
    int rc = tidectl_call(ctx, cmd, args, &d);
    if (rc != 0) return rc;
    if (ctx->json) {
        tidectl_print_json(d);
    } else if (!strcmp(sub, "node")) {
        /* the key alone on stdout, so that `tidectl token node N > file` is the token file */
        printf("%s\n", cli_str(d, "key", ""));
        if (!ctx->quiet)
            fprintf(stderr,
                    "tidectl: key %s issued for node %s; put it in that node's agent token file "
                    "(mode 0600); other credentials no longer authenticate %s\n",
                    cli_str(d, "key_id", "?"), argv[2], argv[2]);
    } else if (!strcmp(sub, "revoke")) {
        printf("%s: revoked (the node is refused until it gets a new key)\n", argv[2]);
    } else {
        const cJSON *keys = cJSON_GetObjectItemCaseSensitive(d, "keys"), *k;
        cli_tab *t = cli_tab_new("lllll");
        const char *hdr[] = {"NODE", "STATE", "KEY ID", "SINCE", "CONNECTED"};
        for (size_t i = 0; i < 5; i++)
            cli_tab_add(t, "%s", hdr[i]);
        int n = 0;
        cJSON_ArrayForEach(k, keys) {
            char when[32];
            time_t tt = (time_t)(cli_num(k, "created") / 1000);
            struct tm tm;
            gmtime_r(&tt, &tm);
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
            cli_tab_add(t, "%s", cli_str(k, "node", ""));
            cli_tab_add(t, "%s", cli_str(k, "state", ""));
            cli_tab_add(t, "%s", cli_str(k, "key_id", "")[0] ? cli_str(k, "key_id", "") : "-");
            cli_tab_add(t, "%s", when);
            cli_tab_add(t, "%s",
                        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(k, "connected")) ? "yes"
                                                                                       : "no");
            n++;
        }
        cli_tab_print(t, stdout);
        if (n == 0) printf("(no node keys: every agent authenticates with the cluster token)\n");
        printf("require_node_keys: %s\n",
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "require_node_keys")) ? "on"
                                                                                      : "off");
    }
    cJSON_Delete(d);
    return 0;
}

TIDECTL_COMMAND(token, "token", "token node NAME|revoke NAME|list [--json]  per-node agent keys",
                cmd_token)
