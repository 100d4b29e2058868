/* node_action_ops.c: the "node-action" ops command: forwards a node action (drain, standby,
 * activate, warmup) to the named node's agent as a COMMAND and replies when the agent's
 * COMMAND_RESULT arrives (or with the reason it cannot: unknown node, not connected, timed
 * out). Request args: {"node": NAME, "action": ACTION, "args": {...}} where args is what the
 * agent's action takes (agent/replica_action.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agents.h"
#include "log.h"
#include "ops.h"

/* Time the control plane waits for the agent beyond the action's own deadline: the agent's
 * deadline fires first and its error (with details) is what the operator should see. */
#define NA_MARGIN_MS 5000

static const char *const na_actions[] = {"drain", "standby", "activate", "warmup", NULL};

static double na_num(const cJSON *o, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* How long to wait for the agent: its deadline (given, or its default) plus a margin. */
static int na_timeout_ms(const char *action, const cJSON *args) {
    double given = na_num(args, "timeout_ms", 0);
    if (given > 0) return (int)given + NA_MARGIN_MS;
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(args, "warmup");
    const cJSON *spec = w ? w : !strcmp(action, "warmup") ? args : NULL;
    double warm = spec ? na_num(spec, "duration_ms", 2000) + na_num(spec, "request_timeout_ms", 2000) : 0;
    double agent_default = !strcmp(action, "drain") ? 30000 : !strcmp(action, "warmup") ? warm + 10000 : 10000 + warm;
    return (int)agent_default + NA_MARGIN_MS;
}

static void na_done(void *arg, int ok, const cJSON *result, const char *error) {
    ops_request *req = arg;
    if (!ok) {
        ops_reply_error(req, 1, "%s", error ? error : "node action failed");
        return;
    }
    cJSON *data = result ? cJSON_Duplicate(result, 1) : cJSON_CreateObject();
    ops_reply(req, data);
}

static void na_handle(ops_request *req, const cJSON *args) {
    const cJSON *node = cJSON_GetObjectItemCaseSensitive(args, "node");
    const cJSON *action = cJSON_GetObjectItemCaseSensitive(args, "action");
    const cJSON *aargs = cJSON_GetObjectItemCaseSensitive(args, "args");
    if (!cJSON_IsString(node) || !node->valuestring[0]) {
        ops_reply_error(req, 2, "node-action: \"node\" must be a non-empty string");
        return;
    }
    int known = 0;
    for (int i = 0; cJSON_IsString(action) && na_actions[i]; i++)
        known |= !strcmp(action->valuestring, na_actions[i]);
    if (!known) {
        ops_reply_error(req, 2, "node-action: unknown action '%s' (drain, standby, activate, warmup)",
                        cJSON_IsString(action) ? action->valuestring : "");
        return;
    }
    if (aargs && !cJSON_IsObject(aargs)) {
        ops_reply_error(req, 2, "node-action: \"args\" must be an object");
        return;
    }
    cJSON *copy = aargs ? cJSON_Duplicate(aargs, 1) : cJSON_CreateObject();
    if (!copy) {
        ops_reply_error(req, 1, "node-action: out of memory");
        return;
    }
    int timeout = na_timeout_ms(action->valuestring, copy);
    log_info("node-action", "%s on node %s (waiting up to %d ms)", action->valuestring,
             node->valuestring, timeout);
    int rc = cp_agent_command(ops_cp(req), node->valuestring, action->valuestring, copy, timeout,
                              na_done, req);
    /* every other failure is reported through na_done; ENOMEM is the one that is not */
    if (rc == -ENOMEM) ops_reply_error(req, 1, "node-action: out of memory");
}

OPS_COMMAND(node_action, "node-action",
            "run a node action on an agent: {node, action: drain|standby|activate|warmup, args}",
            na_handle)
