/* node_action_ops.c: the "node-action" ops command: forwards a node action (drain, standby,
 * activate, warmup) to the named node's agent as a COMMAND and replies when the agent's
 * COMMAND_RESULT arrives (or with the reason it cannot: unknown node, not connected, timed
 * out). Request args: {"node": NAME, "action": ACTION, "args": {...}, "pod": "NS/NAME"} where
 * args is what the agent's action takes (agent/actions/replica_action.h) and pod, optional, names
 * the Kubernetes pod whose readiness gate carries the replica's traffic (k8s.h). A failure keeps
 * the details the agent reported ("data" of the error reply). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "agents/agents.h"
#include "cp.h"
#include "exec/k8s.h"
#include "log.h"
#include "api/ops.h"

/* Time the control plane waits for the agent beyond the action's own deadline: the agent's
 * deadline fires first and its error (with details) is what the operator should see. */
#define NA_MARGIN_MS 5000

/* How long to wait for the agent: its deadline (given, or the default it applies) plus a
 * margin. */
static int na_timeout_ms(int action, const cJSON *args) {
    return tide_action_timeout_ms(action, args) + NA_MARGIN_MS;
}

/* One node-action request under way. With a pod, drain and standby first patch its
 * readiness gate to False (Services stop sending it new connections), then run on the agent;
 * activate runs on the agent first (thaw, warm-up) and patches the gate to True last. */
typedef struct na_req {
    ops_request *req;
    struct controlplane *cp;
    char node[128], action[32];
    char ns[K8S_NS_MAX], name[K8S_NAME_MAX];
    int has_pod;
    cJSON *agent_args; /* owned until handed to cp_agent_command */
    cJSON *result;     /* with a pod: drain/standby {"readiness"} of the patch done before the
                          agent's part; activate: the agent's result until the patch is done */
    int timeout_ms;
    int64_t start_ms;
} na_req;

static void na_free(na_req *r) {
    cJSON_Delete(r->agent_args);
    cJSON_Delete(r->result);
    free(r);
}

/* {pod, condition, status, patch_ms, http_status[, error]}; after a failure status is what the
 * API's answer showed, "unchanged" when it refused the patch (4xx), else "unknown". */
static cJSON *na_readiness(na_req *r, int ready, const k8s_patch_result *res, const char *err) {
    cJSON *o = cJSON_CreateObject();
    char pod[K8S_NS_MAX + K8S_NAME_MAX + 2];
    snprintf(pod, sizeof pod, "%s/%s", r->ns, r->name);
    cJSON_AddStringToObject(o, "pod", pod);
    cJSON_AddStringToObject(o, "condition", r->cp->cfg.k8s_readiness_condition);
    const char *st = ready ? "True" : "False";
    if (err)
        st = res && res->condition_status[0]                            ? res->condition_status
             : res && res->http_status >= 400 && res->http_status < 500 ? "unchanged"
                                                                        : "unknown";
    cJSON_AddStringToObject(o, "status", st);
    cJSON_AddNumberToObject(o, "patch_ms", res ? round(res->ms * 1000) / 1000 : 0);
    cJSON_AddNumberToObject(o, "http_status", res ? (double)res->http_status : 0);
    if (err) cJSON_AddStringToObject(o, "error", err);
    return o;
}

static void na_agent_done(void *arg, int ok, const cJSON *result, const char *error);

/* Sends the agent its part; replies and frees r when that cannot even start. */
static void na_send_agent(na_req *r) {
    cJSON *a = r->agent_args;
    r->agent_args = NULL;
    log_info("node-action", "%s on node %s (waiting up to %d ms)", r->action, r->node,
             r->timeout_ms);
    int rc = cp_agent_command(r->cp, r->node, r->action, a, r->timeout_ms, na_agent_done, r);
    /* every other failure is reported through na_agent_done; ENOMEM is the one that is not */
    if (rc == -ENOMEM) {
        cJSON *detail = r->result;
        r->result = NULL;
        ops_reply_error_data(r->req, 1, detail, "node-action: out of memory");
        na_free(r);
    }
}

static void na_ready_patched(void *arg, int rc, const k8s_patch_result *res, const char *err) {
    na_req *r = arg;
    cJSON *data = r->result ? r->result : cJSON_CreateObject();
    r->result = NULL;
    cJSON_AddItemToObject(data, "readiness", na_readiness(r, 1, res, rc ? err : NULL));
    if (rc) {
        ops_reply_error_data(r->req, 1, data,
                             "activate: replica thawed but readiness gate not set: %s", err);
    } else {
        /* online means the gate is True: command to that moment */
        cJSON_DeleteItemFromObjectCaseSensitive(data, "ready_ms");
        cJSON_AddNumberToObject(data, "ready_ms", (double)(tide_now_mono_ms() - r->start_ms));
        ops_reply(r->req, data);
    }
    na_free(r);
}

static void na_agent_done(void *arg, int ok, const cJSON *result, const char *error) {
    na_req *r = arg;
    cJSON *data = result ? cJSON_Duplicate(result, 1) : cJSON_CreateObject();
    if (r->has_pod && r->result) {
        /* drain/standby: the readiness patch done before */
        cJSON_AddItemToObject(
            data, "readiness",
            cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(r->result, "readiness"), 1));
    }
    if (!ok) {
        ops_reply_error_data(r->req, 1, data, "%s", error ? error : "node action failed");
        na_free(r);
        return;
    }
    if (r->has_pod && !strcmp(r->action, "activate")) {
        char err[256];
        cJSON_Delete(r->result);
        r->result = data;
        char msg[200];
        snprintf(msg, sizeof msg, "activated by tide on node %s", r->node);
        int rc =
            k8s_set_condition(r->cp, r->ns, r->name, 1, msg, na_ready_patched, r, err, sizeof err);
        if (rc < 0) na_ready_patched(r, rc, NULL, err); /* the patch could not even start */
        return;
    }
    ops_reply(r->req, data);
    na_free(r);
}

static void na_unready_patched(void *arg, int rc, const k8s_patch_result *res, const char *err) {
    na_req *r = arg;
    cJSON *ro = na_readiness(r, 0, res, rc ? err : NULL);
    if (rc) {
        cJSON *data = cJSON_CreateObject();
        cJSON_AddItemToObject(data, "readiness", ro);
        ops_reply_error_data(r->req, rc == -ENOENT || rc == -EINVAL ? 2 : 1, data,
                             "%s: readiness gate not set, nothing done on the agent: %s", r->action,
                             err);
        na_free(r);
        return;
    }
    r->result = cJSON_CreateObject();
    cJSON_AddItemToObject(r->result, "readiness", ro);
    na_send_agent(r);
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
    int act = cJSON_IsString(action) ? tide_action_find(action->valuestring) : -1;
    if (act < 0) {
        ops_reply_error(req, 2, "node-action: unknown action '%s' (%s)",
                        cJSON_IsString(action) ? action->valuestring : "", tide_action_list());
        return;
    }
    if (aargs && !cJSON_IsObject(aargs)) {
        ops_reply_error(req, 2, "node-action: \"args\" must be an object");
        return;
    }
    char aerr[256];
    if (tide_action_args_check(act, aargs, aerr, sizeof aerr)) {
        ops_reply_error(req, 2, "node-action: %s: %s", action->valuestring, aerr);
        return;
    }
    if (pod && !cJSON_IsNull(pod) && !cJSON_IsString(pod)) {
        ops_reply_error(req, 2, "node-action: \"pod\" must be a string NAMESPACE/NAME");
        return;
    }
    na_req *r = calloc(1, sizeof *r);
    if (!r) {
        ops_reply_error(req, 1, "node-action: out of memory");
        return;
    }
    r->req = req;
    r->cp = ops_cp(req);
    r->start_ms = tide_now_mono_ms();
    snprintf(r->node, sizeof r->node, "%s", node->valuestring);
    snprintf(r->action, sizeof r->action, "%s", action->valuestring);
    if (cJSON_IsString(pod)) {
        char err[512];
        if (!strcmp(r->action, "warmup")) {
            ops_reply_error(req, 2,
                            "node-action: \"pod\" does not apply to warmup (it sends no traffic "
                            "through the Service)");
            na_free(r);
            return;
        }
        if (k8s_pod_ref_parse(pod->valuestring, r->ns, r->name, err, sizeof err) < 0) {
            ops_reply_error(req, 2, "node-action: %s", err);
            na_free(r);
            return;
        }
        r->has_pod = 1;
    }
    r->agent_args = aargs ? cJSON_Duplicate(aargs, 1) : cJSON_CreateObject();
    if (!r->agent_args) {
        ops_reply_error(req, 1, "node-action: out of memory");
        na_free(r);
        return;
    }
    r->timeout_ms = na_timeout_ms(act, r->agent_args);
    if (r->has_pod && strcmp(r->action, "activate")) {
        char err[256], msg[200];
        snprintf(msg, sizeof msg, "%s by tide on node %s", r->action, r->node);
        log_info("node-action", "%s: readiness gate of pod %s/%s to False", r->action, r->ns,
                 r->name);
        if (k8s_set_condition(r->cp, r->ns, r->name, 0, msg, na_unready_patched, r, err,
                              sizeof err) < 0) {
            ops_reply_error(req, 1, "node-action: %s", err);
            na_free(r);
        }
        return;
    }
    na_send_agent(r);
}

OPS_COMMAND(node_action, "node-action",
            "run a node action on an agent: {node, action: drain|standby|activate|warmup, args, "
            "pod: NAMESPACE/NAME (readiness gate, optional)}",
            na_handle)
