/* k8s_json.c: decoders and encoders of the Kubernetes objects the executor uses (k8s_json.h).
 * cJSON bounds nesting (1000); sizes are bounded here before parsing. */
#include "exec/k8s_json.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static cJSON *parse(const char *buf, size_t len) {
    if (!buf || len == 0 || len > K8S_MAX_JSON) return NULL;
    return cJSON_ParseWithLength(buf, len);
}

static const cJSON *get(const cJSON *o, const char *k) {
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

/* Copies string field k of o into out (cap). 0 ok, -ENOENT absent, -EINVAL wrong type or too
 * long. */
static int get_str(const cJSON *o, const char *k, char *out, size_t cap) {
    const cJSON *v = get(o, k);
    out[0] = 0;
    if (!v || cJSON_IsNull(v)) return -ENOENT;
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap) return -EINVAL;
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return 0;
}

static int get_int(const cJSON *o, const char *k, int *out) {
    const cJSON *v = get(o, k);
    if (!v) return -ENOENT;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > INT_MAX ||
        v->valuedouble != (double)(int)v->valuedouble)
        return -EINVAL;
    *out = (int)v->valuedouble;
    return 0;
}

int k8s_scale_parse(const char *buf, size_t len, k8s_scale *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    out->spec_replicas = -1;
    cJSON *root = parse(buf, len);
    int rc = 0;
    const cJSON *kind = get(root, "kind");
    if (!cJSON_IsObject(root))
        rc = fail(err, errlen, "Scale: not a JSON object");
    else if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "Scale") != 0)
        rc = fail(err, errlen, "Scale: kind is not \"Scale\"");
    if (rc) goto out;
    const cJSON *md = get(root, "metadata"), *spec = get(root, "spec"), *st = get(root, "status");
    if (get_str(md, "name", out->name, sizeof out->name) < 0)
        rc = fail(err, errlen, "Scale: metadata.name missing or too long");
    else if (get_str(md, "namespace", out->namespace_, sizeof out->namespace_) == -EINVAL)
        rc = fail(err, errlen, "Scale: metadata.namespace is not a short string");
    else if (get_str(md, "resourceVersion", out->resource_version, sizeof out->resource_version) <
             0)
        rc = fail(err, errlen, "Scale: metadata.resourceVersion missing or too long");
    else if (get_int(spec, "replicas", &out->spec_replicas) == -EINVAL)
        rc = fail(err, errlen, "Scale: spec.replicas is not a count");
    else if (get_int(st, "replicas", &out->status_replicas) == -EINVAL)
        rc = fail(err, errlen, "Scale: status.replicas is not a count");
    else if (get_str(st, "selector", out->selector, sizeof out->selector) == -EINVAL)
        rc = fail(err, errlen, "Scale: status.selector is not a string of at most 1023 bytes");
out:
    cJSON_Delete(root);
    return rc;
}

char *k8s_scale_body(const char *ns, const char *name, const char *rv, int replicas) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "kind", "Scale");
    cJSON_AddStringToObject(root, "apiVersion", "autoscaling/v1");
    cJSON *md = cJSON_AddObjectToObject(root, "metadata");
    cJSON_AddStringToObject(md, "name", name);
    cJSON_AddStringToObject(md, "namespace", ns);
    if (rv && *rv) cJSON_AddStringToObject(md, "resourceVersion", rv);
    cJSON *spec = cJSON_AddObjectToObject(root, "spec");
    cJSON_AddNumberToObject(spec, "replicas", replicas);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

static int ordinal_of(const char *name, const cJSON *labels) {
    char idx[16];
    if (get_str(labels, "apps.kubernetes.io/pod-index", idx, sizeof idx) == 0) {
        char *end;
        long v = strtol(idx, &end, 10);
        if (*idx && !*end && v >= 0 && v <= INT_MAX) return (int)v;
    }
    /* before 1.28 only statefulset.kubernetes.io/pod-name (NAME-ORDINAL) says it */
    char pn[254];
    if (get_str(labels, "statefulset.kubernetes.io/pod-name", pn, sizeof pn) == 0 &&
        !strcmp(pn, name)) {
        const char *dash = strrchr(pn, '-');
        char *end;
        long v = dash && dash[1] ? strtol(dash + 1, &end, 10) : -1;
        if (v >= 0 && v <= INT_MAX && !*end) return (int)v;
    }
    return -1;
}

static int pod_from(const cJSON *root, const char *gate_type, k8s_pod *out, char *err,
                    size_t errlen) {
    memset(out, 0, sizeof *out);
    out->gate = -1;
    out->ordinal = -1;
    const cJSON *kind = get(root, "kind");
    if (!cJSON_IsObject(root)) return fail(err, errlen, "Pod: not a JSON object");
    /* list items carry no kind; an object that says another kind is not a pod */
    if (kind && (!cJSON_IsString(kind) || strcmp(kind->valuestring, "Pod") != 0))
        return fail(err, errlen, "Pod: kind is not \"Pod\"");
    const cJSON *md = get(root, "metadata"), *spec = get(root, "spec"), *st = get(root, "status");
    if (get_str(md, "name", out->name, sizeof out->name) < 0)
        return fail(err, errlen, "Pod: metadata.name missing or too long");
    if (get_str(md, "namespace", out->namespace_, sizeof out->namespace_) == -EINVAL)
        return fail(err, errlen, "Pod %s: metadata.namespace too long", out->name);
    if (get_str(md, "uid", out->uid, sizeof out->uid) < 0)
        return fail(err, errlen, "Pod %s: metadata.uid missing or too long", out->name);
    if (get_str(md, "resourceVersion", out->resource_version, sizeof out->resource_version) ==
        -EINVAL)
        return fail(err, errlen, "Pod %s: metadata.resourceVersion too long", out->name);
    const cJSON *dt = get(md, "deletionTimestamp");
    out->terminating = dt && !cJSON_IsNull(dt);
    const cJSON *labels = get(md, "labels"), *ann = get(md, "annotations");
    if (get_str(labels, K8S_LABEL_STATE, out->state, sizeof out->state) == -EINVAL)
        return fail(err, errlen, "Pod %s: label " K8S_LABEL_STATE " is not a short string",
                    out->name);
    char cost[32];
    if (get_str(ann, K8S_ANNOT_DELETION_COST, cost, sizeof cost) == 0) {
        char *end;
        long long v = strtoll(cost, &end, 10);
        /* as the ReplicaSet controller reads it: an int32, anything else counts as 0 */
        if (*cost && !*end && v >= INT32_MIN && v <= INT32_MAX) out->deletion_cost = v;
    }
    if (get_str(ann, K8S_ANNOT_REPLICA, out->replica, sizeof out->replica) == -EINVAL)
        return fail(err, errlen, "Pod %s: annotation " K8S_ANNOT_REPLICA " is not a short string",
                    out->name);
    char since[24];
    if (get_str(ann, K8S_ANNOT_SINCE, since, sizeof since) == 0) {
        char *end;
        long long v = strtoll(since, &end, 10);
        if (*since && !*end && v > 0) out->since_ms = v;
    }
    if (get_str(st, "qosClass", out->qos, sizeof out->qos) == -EINVAL) out->qos[0] = 0;
    if (get_str(st, "podIP", out->ip, sizeof out->ip) == -EINVAL) out->ip[0] = 0;
    const cJSON *ctr = cJSON_GetArrayItem(get(spec, "containers"), 0);
    const cJSON *cport = cJSON_GetArrayItem(get(ctr, "ports"), 0);
    int pn = 0;
    if (get_int(cport, "containerPort", &pn) == 0 && pn > 0 && pn < 65536) out->port = pn;
    out->ordinal = ordinal_of(out->name, labels);
    if (get_str(spec, "nodeName", out->node, sizeof out->node) == -EINVAL)
        return fail(err, errlen, "Pod %s: spec.nodeName too long", out->name);
    char phase[16];
    static const char *const phases[] = {"Unknown", "Pending", "Running", "Succeeded", "Failed"};
    if (get_str(st, "phase", phase, sizeof phase) == 0)
        for (int i = 0; i < 5; i++)
            if (!strcmp(phase, phases[i])) out->phase = (k8s_phase)i;
    const cJSON *c;
    cJSON_ArrayForEach(c, get(st, "conditions")) {
        char type[256], status[16];
        if (get_str(c, "type", type, sizeof type) < 0 ||
            get_str(c, "status", status, sizeof status) < 0)
            continue;
        if (!strcmp(type, "Ready")) out->ready = !strcmp(status, "True");
        if (!strcmp(type, "ContainersReady")) out->containers_ready = !strcmp(status, "True");
        if (gate_type && !strcmp(type, gate_type)) out->gate = !strcmp(status, "True");
    }
    return 0;
}

int k8s_pod_parse(const char *buf, size_t len, const char *gate_type, k8s_pod *out, char *err,
                  size_t errlen) {
    cJSON *root = parse(buf, len);
    int rc = pod_from(root, gate_type, out, err, errlen);
    cJSON_Delete(root);
    return rc;
}

int k8s_list_parse(const char *buf, size_t len, size_t max_items, k8s_item_fn item, void *arg,
                   char rv[K8S_RV_MAX], char *err, size_t errlen) {
    rv[0] = 0;
    cJSON *root = parse(buf, len);
    int rc = 0;
    const cJSON *items = get(root, "items");
    if (!cJSON_IsObject(root) || !(cJSON_IsArray(items) || cJSON_IsNull(items))) {
        rc = fail(err, errlen, "list: not an object with \"items\"");
        goto out;
    }
    if (get_str(get(root, "metadata"), "resourceVersion", rv, K8S_RV_MAX) < 0) {
        rc = fail(err, errlen, "list: metadata.resourceVersion missing or too long");
        goto out;
    }
    if ((size_t)cJSON_GetArraySize(items) > max_items) {
        if (err) snprintf(err, errlen, "list: more than %zu items", max_items);
        rc = -E2BIG;
        goto out;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, items) {
        char *s = cJSON_PrintUnformatted(it);
        if (!s) {
            rc = -ENOMEM;
            break;
        }
        rc = item(arg, s, strlen(s));
        free(s);
        if (rc) break;
    }
out:
    cJSON_Delete(root);
    return rc;
}

int k8s_event_parse(const char *line, size_t len, k8s_event *ev, char *err, size_t errlen) {
    memset(ev, 0, sizeof *ev);
    cJSON *root = parse(line, len);
    int rc = 0;
    char type[16];
    const cJSON *obj = get(root, "object");
    if (!cJSON_IsObject(root) || get_str(root, "type", type, sizeof type) < 0 ||
        !cJSON_IsObject(obj)) {
        rc = fail(err, errlen, "watch event: not {\"type\": ..., \"object\": {...}}");
        goto out;
    }
    static const char *const types[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(type, types[i])) ev->type = (k8s_event_type)(i + 1);
    if (!ev->type) {
        rc = fail(err, errlen, "watch event: unknown type \"%s\"", type);
        goto out;
    }
    if (ev->type == K8S_EV_ERROR) {
        const cJSON *code = get(obj, "code");
        ev->code = cJSON_IsNumber(code) ? (int)code->valuedouble : 0;
        if (get_str(obj, "message", ev->message, sizeof ev->message) == -EINVAL) {
            const cJSON *m = get(obj, "message");
            snprintf(ev->message, sizeof ev->message, "%.255s",
                     m->valuestring ? m->valuestring : "");
        }
        goto out;
    }
    if (get_str(get(obj, "metadata"), "resourceVersion", ev->resource_version,
                sizeof ev->resource_version) < 0) {
        rc = fail(err, errlen, "watch event %s: object without a short metadata.resourceVersion",
                  type);
        goto out;
    }
    if (ev->type != K8S_EV_BOOKMARK) {
        ev->object = cJSON_PrintUnformatted(obj);
        if (!ev->object) {
            rc = -ENOMEM;
            goto out;
        }
        ev->object_len = strlen(ev->object);
    }
out:
    cJSON_Delete(root);
    return rc;
}

int k8s_status_parse(const char *buf, size_t len, int *code, char *reason, size_t rcap,
                     char *message, size_t mcap) {
    cJSON *root = parse(buf, len);
    const cJSON *kind = get(root, "kind"), *c = get(root, "code"), *r = get(root, "reason"),
                *m = get(root, "message");
    int rc = -ENOENT;
    if (cJSON_IsString(kind) && !strcmp(kind->valuestring, "Status")) {
        *code = cJSON_IsNumber(c) ? (int)c->valuedouble : 0;
        snprintf(reason, rcap, "%s", cJSON_IsString(r) ? r->valuestring : "");
        snprintf(message, mcap, "%s", cJSON_IsString(m) ? m->valuestring : "");
        rc = 0;
    }
    cJSON_Delete(root);
    return rc;
}

int k8s_scalers_find(const char *buf, size_t len, const char *kind, const char *name,
                     const char *item_kind, char *owner, size_t ocap, char *err, size_t errlen) {
    cJSON *root = parse(buf, len);
    const cJSON *items = get(root, "items");
    int rc = 0;
    if (!cJSON_IsObject(root) || !(cJSON_IsArray(items) || cJSON_IsNull(items))) {
        rc = fail(err, errlen, "scalers: not a list with \"items\"");
        goto out;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, items) {
        const cJSON *ref = get(get(it, "spec"), "scaleTargetRef");
        char k[64], n[254], av[64], on[254], ons[64], ok[64];
        if (get_str(ref, "name", n, sizeof n) < 0 || strcmp(n, name) != 0) continue;
        int has_kind = get_str(ref, "kind", k, sizeof k) == 0;
        int has_av = get_str(ref, "apiVersion", av, sizeof av) == 0;
        if (!has_kind) snprintf(k, sizeof k, "Deployment"); /* KEDA's default */
        if (strcmp(k, kind) != 0) continue;
        if (has_av && strcmp(av, "apps/v1") != 0 && strncmp(av, "apps/", 5) != 0) continue;
        if (get_str(it, "kind", ok, sizeof ok) < 0) snprintf(ok, sizeof ok, "%s", item_kind);
        get_str(get(it, "metadata"), "name", on, sizeof on);
        get_str(get(it, "metadata"), "namespace", ons, sizeof ons);
        snprintf(owner, ocap, "%s %s/%s", ok, ons, on);
        rc = 1;
        break;
    }
out:
    cJSON_Delete(root);
    return rc;
}

char *k8s_meta_patch(const char *const *keys, const char *const *vals, const int *is_label, int n) {
    cJSON *root = cJSON_CreateObject();
    cJSON *md = cJSON_AddObjectToObject(root, "metadata");
    cJSON *labels = NULL, *ann = NULL;
    for (int i = 0; i < n; i++) {
        cJSON **dst = is_label[i] ? &labels : &ann;
        if (!*dst) *dst = cJSON_AddObjectToObject(md, is_label[i] ? "labels" : "annotations");
        if (vals[i])
            cJSON_AddStringToObject(*dst, keys[i], vals[i]);
        else
            cJSON_AddNullToObject(*dst, keys[i]);
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

int k8s_url_escape(const char *in, char *out, size_t cap) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~';
        size_t need = plain ? 1 : 3;
        if (o + need >= cap) return -ENAMETOOLONG;
        if (plain)
            out[o++] = (char)*p;
        else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
    return 0;
}
