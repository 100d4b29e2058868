/* node_action_ops.c: the "node-action" ops command: runs a node action (shared/actions.h) on
 * the named node's agent through exec/transport.h, the same code the executors use, and replies
 * when it ends (or with the reason it cannot: unknown node, not connected, timed out). Request
 * args: {"node": NAME, "action": ACTION, "args": {...}, "pod": "NS/NAME"} where args is what the
 * agent's action takes and pod, optional, names the Kubernetes pod whose readiness gate carries
 * the replica's traffic (k8s.h). A failure keeps the details the agent reported ("data" of the
 * error reply). */
#include <errno.h>
#include <string.h>

#include "api/ops.h"
#include "exec/transport.h"

static void na_done(void *arg, int ok, int status, cJSON *data, const char *error) {
    ops_request *req = arg;
    if (ok)
        ops_reply(req, data ? data : cJSON_CreateObject());
    else
        ops_reply_error_data(req, status, data, "%s", error);
}

static void na_handle(ops_request *req, const cJSON *args) {
    const cJSON *node = cJSON_GetObjectItemCaseSensitive(args, "node");
    const cJSON *action = cJSON_GetObjectItemCaseSensitive(args, "action");
    const cJSON *aargs = cJSON_GetObjectItemCaseSensitive(args, "args");
    const cJSON *pod = cJSON_GetObjectItemCaseSensitive(args, "pod");
    if (!cJSON_IsString(node) || !node->valuestring[0] || strlen(node->valuestring) >= 128) {
        ops_reply_error(req, 2, "node-action: \"node\" must be a non-empty string");
        return;
    }
    if (aargs && !cJSON_IsObject(aargs)) {
        ops_reply_error(req, 2, "node-action: \"args\" must be an object");
        return;
    }
    if (pod && !cJSON_IsNull(pod) && !cJSON_IsString(pod)) {
        ops_reply_error(req, 2, "node-action: \"pod\" must be a string NAMESPACE/NAME");
        return;
    }
    char err[512];
    int rc = exec_node_action(
        ops_cp(req), node->valuestring, cJSON_IsString(action) ? action->valuestring : "", aargs,
        cJSON_IsString(pod) ? pod->valuestring : NULL, na_done, req, NULL, err, sizeof err);
    if (rc < 0) ops_reply_error(req, rc == -EINVAL ? 2 : 1, "node-action: %s", err);
}

OPS_COMMAND(node_action, "node-action",
            "run a node action on an agent: {node, action: drain|standby|activate|warmup|"
            "replica-start|replica-stop|replicas, args, pod: NAMESPACE/NAME (readiness gate, "
            "optional)}",
            na_handle)
