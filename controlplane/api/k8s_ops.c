/* k8s_ops.c: the "k8s" ops command: the control plane's Kubernetes client used by hand, through
 * the very code path the executor uses (credentials, rate limit, off-loop calls with deadlines):
 *   {op: "info"}                                   server, credential source, counters
 *   {op: "get",   kind, namespace, name}          the Scale (replicas, selector, version)
 *   {op: "scale", kind, namespace, name, replicas} GET + PUT with the version, 409s re-applied
 *   {op: "pods",  kind, namespace, name}          the pods of the Scale's selector
 *   {op: "owner", kind, namespace, name}          another scaler (HPA v2, KEDA) on it?
 * kind is Deployment or StatefulSet (any case). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/ops.h"
#include "cp.h"
#include "exec/k8s.h"
#include "exec/k8s_client.h"

typedef struct k8s_op {
    ops_request *req;
    char op[8];
    k8s_scalable kind;
    char ns[K8S_NS_MAX], name[K8S_NAME_MAX];
    int replicas;
    char gate[256];
    /* results */
    k8s_scale scale;
    k8s_scale_result res;
    k8s_pod *pods;
    size_t npods;
    char owner[320];
    char err[1024];
} k8s_op;

static int op_run(k8s_client *c, void *arg) {
    k8s_op *o = arg;
    if (!strcmp(o->op, "get"))
        return k8s_scale_get(c, o->kind, o->ns, o->name, 0, &o->scale, o->err, sizeof o->err);
    if (!strcmp(o->op, "scale"))
        return k8s_scale_set(c, o->kind, o->ns, o->name, o->replicas, 0, &o->res, o->err,
                             sizeof o->err);
    if (!strcmp(o->op, "owner"))
        return k8s_scaler_owner(c, o->kind, o->ns, o->name, 0, o->owner, sizeof o->owner, o->err,
                                sizeof o->err);
    /* pods: the inventory as the executor takes it, by the Scale's own selector */
    int rc = k8s_scale_get(c, o->kind, o->ns, o->name, 0, &o->scale, o->err, sizeof o->err);
    if (rc < 0) return rc;
    if (!o->scale.selector[0]) {
        snprintf(o->err, sizeof o->err, "%s %s/%s: its Scale has no selector",
                 k8s_scalable_kind(o->kind), o->ns, o->name);
        return -EINVAL;
    }
    char rv[K8S_RV_MAX];
    return k8s_pods_list(c, o->ns, o->scale.selector, o->gate, 0, &o->pods, &o->npods, rv, o->err,
                         sizeof o->err);
}

static const char *phase_name(k8s_phase p) {
    static const char *const n[] = {"Unknown", "Pending", "Running", "Succeeded", "Failed"};
    return (unsigned)p < 5 ? n[p] : "Unknown";
}

static void op_after(void *arg, int rc) {
    k8s_op *o = arg;
    if (rc < 0) {
        ops_reply_error(o->req, 1, "%s",
                        rc == -ECANCELED && !o->err[0] ? "control plane shutting down" : o->err);
        goto out;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "kind", k8s_scalable_kind(o->kind));
    cJSON_AddStringToObject(d, "namespace", o->ns);
    cJSON_AddStringToObject(d, "name", o->name);
    if (!strcmp(o->op, "get")) {
        cJSON_AddNumberToObject(d, "replicas", o->scale.spec_replicas);
        cJSON_AddNumberToObject(d, "status_replicas", o->scale.status_replicas);
        cJSON_AddStringToObject(d, "selector", o->scale.selector);
        cJSON_AddStringToObject(d, "resource_version", o->scale.resource_version);
    } else if (!strcmp(o->op, "scale")) {
        cJSON_AddNumberToObject(d, "before", o->res.before);
        cJSON_AddNumberToObject(d, "after", o->res.after);
        cJSON_AddNumberToObject(d, "conflicts", o->res.conflicts);
        cJSON_AddStringToObject(d, "resource_version", o->res.resource_version);
    } else if (!strcmp(o->op, "owner")) {
        if (rc == 1)
            cJSON_AddStringToObject(d, "owner", o->owner);
        else
            cJSON_AddNullToObject(d, "owner");
    } else {
        cJSON_AddStringToObject(d, "selector", o->scale.selector);
        cJSON *arr = cJSON_AddArrayToObject(d, "pods");
        for (size_t i = 0; i < o->npods; i++) {
            const k8s_pod *p = &o->pods[i];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", p->name);
            cJSON_AddStringToObject(e, "uid", p->uid);
            cJSON_AddStringToObject(e, "node", p->node);
            cJSON_AddStringToObject(e, "phase", phase_name(p->phase));
            cJSON_AddBoolToObject(e, "ready", p->ready);
            if (p->gate >= 0)
                cJSON_AddBoolToObject(e, "gate", p->gate);
            else
                cJSON_AddNullToObject(e, "gate");
            cJSON_AddStringToObject(e, "state", p->state);
            cJSON_AddNumberToObject(e, "deletion_cost", (double)p->deletion_cost);
            if (p->ordinal >= 0) cJSON_AddNumberToObject(e, "ordinal", p->ordinal);
            cJSON_AddBoolToObject(e, "terminating", p->terminating);
            cJSON_AddItemToArray(arr, e);
        }
    }
    ops_reply(o->req, d);
out:
    free(o->pods);
    free(o);
}

static void k8s_cmd(ops_request *req, const cJSON *args) {
    struct controlplane *cp = ops_cp(req);
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(args, "op");
    if (!cJSON_IsString(op)) {
        ops_reply_error(req, 2, "k8s: \"op\" (info, get, scale, pods, owner) is required");
        return;
    }
    if (!strcmp(op->valuestring, "info")) {
        k8s_client *c = k8s_client_of(cp);
        if (!c) {
            ops_reply_error(req, 1, "k8s: client not started");
            return;
        }
        k8s_stats st;
        k8s_client_stats(c, &st);
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "server", k8s_client_server(c));
        cJSON_AddStringToObject(d, "credentials", k8s_client_source(cp));
        cJSON_AddNumberToObject(d, "qps", (double)cp->cfg.k8s_qps);
        cJSON_AddNumberToObject(d, "burst", (double)cp->cfg.k8s_burst);
        cJSON_AddNumberToObject(d, "requests", (double)st.requests);
        cJSON_AddNumberToObject(d, "conflicts", (double)st.conflicts);
        cJSON_AddNumberToObject(d, "throttled_ms", (double)st.throttled_ms);
        ops_reply(req, d);
        return;
    }
    static const char *const ops[] = {"get", "scale", "pods", "owner", NULL};
    int known = 0;
    for (int i = 0; ops[i]; i++)
        known |= !strcmp(op->valuestring, ops[i]);
    if (!known) {
        ops_reply_error(req, 2, "k8s: unknown op '%.40s' (info, get, scale, pods, owner)",
                        op->valuestring);
        return;
    }
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(args, "kind"),
                *ns = cJSON_GetObjectItemCaseSensitive(args, "namespace"),
                *name = cJSON_GetObjectItemCaseSensitive(args, "name"),
                *rep = cJSON_GetObjectItemCaseSensitive(args, "replicas");
    int sts = cJSON_IsString(kind) && !strcasecmp(kind->valuestring, "statefulset");
    if (!cJSON_IsString(kind) || (!sts && strcasecmp(kind->valuestring, "deployment") != 0)) {
        ops_reply_error(req, 2, "k8s: kind must be Deployment or StatefulSet");
        return;
    }
    char ref[K8S_NS_MAX + K8S_NAME_MAX + 2], n1[K8S_NS_MAX], n2[K8S_NAME_MAX], err[512];
    snprintf(ref, sizeof ref, "%s/%s", cJSON_IsString(ns) ? ns->valuestring : "",
             cJSON_IsString(name) ? name->valuestring : "");
    if (k8s_pod_ref_parse(ref, n1, n2, err, sizeof err) < 0) {
        /* the same DNS-1123 rules as a pod's namespace and name */
        ops_reply_error(req, 2, "k8s: %s", err + (strncmp(err, "pod ", 4) ? 0 : 4));
        return;
    }
    if (!strcmp(op->valuestring, "scale") &&
        (!cJSON_IsNumber(rep) || rep->valuedouble < 0 || rep->valuedouble > 100000 ||
         rep->valuedouble != (double)(int)rep->valuedouble)) {
        ops_reply_error(req, 2, "k8s: scale needs \"replicas\", a count in 0..100000");
        return;
    }
    k8s_op *o = calloc(1, sizeof *o);
    if (!o) {
        ops_reply_error(req, 1, "k8s: out of memory");
        return;
    }
    o->req = req;
    snprintf(o->op, sizeof o->op, "%s", op->valuestring);
    o->kind = sts ? K8S_STATEFULSET : K8S_DEPLOYMENT;
    snprintf(o->ns, sizeof o->ns, "%s", n1);
    snprintf(o->name, sizeof o->name, "%s", n2);
    o->replicas = cJSON_IsNumber(rep) ? (int)rep->valuedouble : 0;
    snprintf(o->gate, sizeof o->gate, "%s", cp->cfg.k8s_readiness_condition);
    if (k8s_offloop(cp, op_run, op_after, o, err, sizeof err) < 0) {
        free(o);
        ops_reply_error(req, 1, "k8s: %s", err);
    }
}

OPS_COMMAND(k8s, "k8s",
            "the Kubernetes client by hand: {op: info|get|scale|pods|owner, kind, namespace, "
            "name, replicas}",
            k8s_cmd)
