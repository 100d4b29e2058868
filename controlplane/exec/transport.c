/* transport.c: a node action with its readiness-gate steps (transport.h). */
#include "exec/transport.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "agents/agents.h"
#include "cp.h"
#include "exec/k8s.h"
#include "exec/tracker.h"
#include "log.h"
#include "vclock.h"
#include "wire.h"

struct exec_action {
    struct controlplane *cp;
    char node[128], action[32];
    char ns[K8S_NS_MAX], name[K8S_NAME_MAX];
    int has_pod;
    char workload[EXEC_WORKLOAD_MAX]; /* "" = unfenced */
    uint64_t token;
    cJSON *agent_args; /* owned until handed to cp_agent_command */
    cJSON *result;     /* with a pod: drain/standby {"readiness"} of the patch done before the
                          agent's part; activate: the agent's result until the patch is done */
    int timeout_ms;
    int64_t start_ms;
    int cancelled; /* the caller left: finish quietly */
    exec_action_done_fn done;
    void *arg;
};

static void ea_free(exec_action *a) {
    cJSON_Delete(a->agent_args);
    cJSON_Delete(a->result);
    free(a);
}

/* Reports (unless cancelled) and frees. data is handed over. */
static void ea_finish(exec_action *a, int ok, int status, cJSON *data, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void ea_finish(exec_action *a, int ok, int status, cJSON *data, const char *fmt, ...) {
    char msg[1024] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    if (a->cancelled)
        cJSON_Delete(data);
    else
        a->done(a->arg, ok, status, data, ok ? NULL : msg);
    ea_free(a);
}

void exec_node_action_cancel(exec_action *a) {
    if (a) a->cancelled = 1;
}

/* {pod, condition, status, patch_ms, http_status[, error]}; after a failure status is what the
 * API's answer showed, "unchanged" when it refused the patch (4xx), else "unknown". */
static cJSON *ea_readiness(exec_action *a, int ready, const k8s_patch_result *res,
                           const char *err) {
    cJSON *o = cJSON_CreateObject();
    char pod[K8S_NS_MAX + K8S_NAME_MAX + 2];
    snprintf(pod, sizeof pod, "%s/%s", a->ns, a->name);
    cJSON_AddStringToObject(o, "pod", pod);
    cJSON_AddStringToObject(o, "condition", a->cp->cfg.k8s_readiness_condition);
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

static void ea_agent_done(void *arg, int ok, const cJSON *result, const char *error);

/* data gets "fenced": {workload, token, seen}, as an agent's refusal carries it. */
static void fence_json(cJSON *data, const exec_action *a, uint64_t seen) {
    cJSON *f = cJSON_AddObjectToObject(data, "fenced");
    cJSON_AddStringToObject(f, "workload", a->workload);
    cJSON_AddNumberToObject(f, "token", (double)a->token);
    cJSON_AddNumberToObject(f, "seen", (double)seen);
}

/* Sends the agent its part. Returns 0, or -ENOMEM (the one failure cp_agent_command does not
 * report through ea_agent_done). */
static int ea_send_agent(exec_action *a) {
    cJSON *args = a->agent_args;
    a->agent_args = NULL;
    log_info("exec", "%s on node %s (waiting up to %d ms)", a->action, a->node, a->timeout_ms);
    return cp_agent_command_fenced(a->cp, a->node, a->action, args, a->timeout_ms,
                                   a->workload[0] ? a->workload : NULL, a->token, ea_agent_done, a);
}

static void ea_ready_patched(void *arg, int rc, const k8s_patch_result *res, const char *err) {
    exec_action *a = arg;
    cJSON *data = a->result ? a->result : cJSON_CreateObject();
    a->result = NULL;
    cJSON_AddItemToObject(data, "readiness", ea_readiness(a, 1, res, rc ? err : NULL));
    if (rc == -ESTALE && res && res->fenced_seen) {
        fence_json(data, a, res->fenced_seen);
        ea_finish(a, 0, EXEC_STATUS_FENCED, data,
                  "activate: replica thawed but readiness gate not set: %s", err);
        return;
    }
    if (rc) {
        ea_finish(a, 0, 1, data, "activate: replica thawed but readiness gate not set: %s", err);
        return;
    }
    /* online means the gate is True: command to that moment */
    cJSON_DeleteItemFromObjectCaseSensitive(data, "ready_ms");
    cJSON_AddNumberToObject(data, "ready_ms", (double)(vclock_mono_ms() - a->start_ms));
    ea_finish(a, 1, 0, data, NULL);
}

static void ea_agent_done(void *arg, int ok, const cJSON *result, const char *error) {
    exec_action *a = arg;
    cJSON *data = result ? cJSON_Duplicate(result, 1) : cJSON_CreateObject();
    if (a->has_pod && a->result) {
        /* drain/standby: the readiness patch done before */
        cJSON_AddItemToObject(
            data, "readiness",
            cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(a->result, "readiness"), 1));
    }
    if (!ok) {
        int fenced = exec_fenced_seen(data) > 0;
        ea_finish(a, 0, fenced ? EXEC_STATUS_FENCED : 1, data, "%s",
                  error ? error : "node action failed");
        return;
    }
    if (a->has_pod && !strcmp(a->action, "activate") && !a->cancelled) {
        char err[256], msg[200];
        cJSON_Delete(a->result);
        a->result = data;
        snprintf(msg, sizeof msg, "activated by tide on node %s", a->node);
        int rc = k8s_set_condition_fenced(a->cp, a->ns, a->name, 1, msg, a->token, ea_ready_patched,
                                          a, err, sizeof err);
        if (rc < 0) ea_ready_patched(a, rc, NULL, err); /* the patch could not even start */
        return;
    }
    ea_finish(a, 1, 0, data, NULL);
}

static void ea_unready_patched(void *arg, int rc, const k8s_patch_result *res, const char *err) {
    exec_action *a = arg;
    cJSON *ro = ea_readiness(a, 0, res, rc ? err : NULL);
    if (rc) {
        cJSON *data = cJSON_CreateObject();
        cJSON_AddItemToObject(data, "readiness", ro);
        if (rc == -ESTALE && res && res->fenced_seen) {
            fence_json(data, a, res->fenced_seen);
            ea_finish(a, 0, EXEC_STATUS_FENCED, data, "%s: readiness gate not set: %s", a->action,
                      err);
            return;
        }
        ea_finish(a, 0, rc == -ENOENT || rc == -EINVAL ? 2 : 1, data,
                  "%s: readiness gate not set, nothing done on the agent: %s", a->action, err);
        return;
    }
    a->result = cJSON_CreateObject();
    cJSON_AddItemToObject(a->result, "readiness", ro);
    if (a->cancelled) {
        ea_finish(a, 0, 1, NULL, "cancelled");
        return;
    }
    if (ea_send_agent(a) == -ENOMEM) {
        cJSON *detail = a->result;
        a->result = NULL;
        ea_finish(a, 0, 1, detail, "node-action: out of memory");
    }
}

uint64_t exec_fenced_seen(const cJSON *data) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(data, "fenced");
    const cJSON *seen = cJSON_GetObjectItemCaseSensitive(f, "seen");
    return cJSON_IsNumber(seen) && seen->valuedouble >= 1 ? (uint64_t)seen->valuedouble : 0;
}

int exec_node_action(struct controlplane *cp, const char *node, const char *action,
                     const cJSON *args, const char *pod, exec_action_done_fn done, void *arg,
                     exec_action **handle, char *err, size_t errlen) {
    return exec_node_action_fenced(cp, node, action, args, pod, NULL, 0, done, arg, handle, err,
                                   errlen);
}

int exec_node_action_fenced(struct controlplane *cp, const char *node, const char *action,
                            const cJSON *args, const char *pod, const char *workload,
                            uint64_t token, exec_action_done_fn done, void *arg,
                            exec_action **handle, char *err, size_t errlen) {
    if (handle) *handle = NULL;
    if (workload && !wire_workload_valid(workload, strlen(workload))) {
        /* an agent would take it as a protocol error and drop the connection */
        snprintf(err, errlen, "fence: workload '%.80s' is not 1-%d characters of [A-Za-z0-9._-]",
                 workload, WIRE_WORKLOAD_MAX);
        return -EINVAL;
    }
    int act = tide_action_find(action);
    if (act < 0) {
        snprintf(err, errlen, "unknown action '%s' (%s)", action ? action : "", tide_action_list());
        return -EINVAL;
    }
    if (!node || !node[0] || strlen(node) >= 128) {
        snprintf(err, errlen, "\"node\" must be a non-empty string");
        return -EINVAL;
    }
    char aerr[256];
    if (tide_action_args_check(act, args, aerr, sizeof aerr)) {
        snprintf(err, errlen, "%s: %s", action, aerr);
        return -EINVAL;
    }
    exec_action *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    a->cp = cp;
    a->done = done;
    a->arg = arg;
    a->start_ms = vclock_mono_ms(); /* readiness times are trace time (cold starts) */
    if (workload) snprintf(a->workload, sizeof a->workload, "%s", workload);
    a->token = token;
    snprintf(a->node, sizeof a->node, "%s", node);
    snprintf(a->action, sizeof a->action, "%s", action);
    if (pod) {
        if (act != TIDE_ACT_DRAIN && act != TIDE_ACT_STANDBY && act != TIDE_ACT_ACTIVATE) {
            snprintf(err, errlen,
                     "\"pod\" does not apply to %s (it sends no traffic through the Service)",
                     action);
            ea_free(a);
            return -EINVAL;
        }
        if (k8s_pod_ref_parse(pod, a->ns, a->name, err, errlen) < 0) {
            ea_free(a);
            return -EINVAL;
        }
        a->has_pod = 1;
    }
    a->agent_args = args ? cJSON_Duplicate(args, 1) : cJSON_CreateObject();
    if (!a->agent_args) {
        snprintf(err, errlen, "out of memory");
        ea_free(a);
        return -ENOMEM;
    }
    a->timeout_ms = tide_action_timeout_ms(act, a->agent_args) + EXEC_MARGIN_MS;
    if (a->has_pod && act != TIDE_ACT_ACTIVATE) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s by tide on node %s", a->action, a->node);
        log_info("exec", "%s: readiness gate of pod %s/%s to False", a->action, a->ns, a->name);
        int rc = k8s_set_condition_fenced(cp, a->ns, a->name, 0, msg, a->token, ea_unready_patched,
                                          a, err, errlen);
        if (rc < 0) {
            ea_free(a);
            return rc;
        }
    } else if (ea_send_agent(a) == -ENOMEM) {
        snprintf(err, errlen, "out of memory");
        ea_free(a);
        return -ENOMEM;
    }
    if (handle) *handle = a;
    return 0;
}
