/* k8s_fleet.c: a workload's pods as Tide keeps them in the cluster, and the Kubernetes-side
 * steps of the executor's actions (k8s_fleet.h). */
#include "exec/k8s_fleet.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 3, 4))) static void errf(char *err, size_t errlen, const char *fmt,
                                                       ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const char *const TS_NAMES[] = {"", "starting", "online", "cutoff", "standby", "deleting"};

const char *k8s_tstate_name(k8s_tstate s) {
    return (unsigned)s < sizeof TS_NAMES / sizeof TS_NAMES[0] ? TS_NAMES[s] : "";
}

k8s_tstate k8s_tstate_parse(const char *label) {
    if (!label || !label[0]) return K8S_TS_NONE;
    for (size_t i = 1; i < sizeof TS_NAMES / sizeof TS_NAMES[0]; i++)
        if (!strcmp(label, TS_NAMES[i])) return (k8s_tstate)i;
    return K8S_TS_NONE;
}

k8s_tstate k8s_pod_tstate(const k8s_pod *p) {
    k8s_tstate s = k8s_tstate_parse(p->state);
    if (s != K8S_TS_NONE) return s;
    return p->ready ? K8S_TS_ONLINE : K8S_TS_STARTING;
}

const char *k8s_pod_replica(const k8s_pod *p) {
    return p->replica[0] ? p->replica : p->name;
}

const k8s_pod *k8s_fleet_find(const k8s_fleet *f, const char *replica) {
    for (size_t i = 0; i < f->n; i++)
        if (!f->pods[i].terminating && !strcmp(k8s_pod_replica(&f->pods[i]), replica))
            return &f->pods[i];
    return NULL;
}

static const k8s_pod *by_name(const k8s_pod *pods, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(pods[i].name, name)) return &pods[i];
    return NULL;
}

static const k8s_pod *by_ordinal(const k8s_pod *pods, size_t n, int ord) {
    for (size_t i = 0; i < n; i++)
        if (!pods[i].terminating && pods[i].ordinal == ord) return &pods[i];
    return NULL;
}

static int marked(const k8s_pod *p) {
    return k8s_tstate_parse(p->state) == K8S_TS_DELETING;
}

static int target_of(k8s_scalable kind, const k8s_pod *pods, size_t n, int spec,
                     const k8s_pod **blocker) {
    if (blocker) *blocker = NULL;
    if (spec < 0) spec = 0;
    if (kind == K8S_STATEFULSET) {
        /* from the top ordinal down: marked or absent pods go, the first unmarked one stops */
        int r = spec;
        while (r > 0) {
            const k8s_pod *p = by_ordinal(pods, n, r - 1);
            if (p && !marked(p)) break;
            r--;
        }
        if (blocker)
            for (int o = r - 1; o >= 0; o--) {
                const k8s_pod *p = by_ordinal(pods, n, o);
                if (p && marked(p)) { /* a marked pod below r: the pod at r-1 is in its way */
                    *blocker = by_ordinal(pods, n, r - 1);
                    break;
                }
            }
        return r;
    }
    int live = 0, mk = 0;
    for (size_t i = 0; i < n; i++) {
        if (pods[i].terminating) continue;
        live++;
        mk += marked(&pods[i]);
    }
    int more = mk - (live - spec);
    if (more < 0) more = 0;
    return spec - more < 0 ? 0 : spec - more;
}

int k8s_fleet_delete_target(const k8s_fleet *f, int spec_replicas, const k8s_pod **blocker) {
    return target_of(f->kind, f->pods, f->n, spec_replicas, blocker);
}

const k8s_pod *k8s_fleet_ordinal_pick(const k8s_fleet *f, k8s_tstate st, int highest,
                                      const char (*skip)[K8S_REPLICA_MAX], size_t nskip) {
    const k8s_pod *best = NULL;
    for (size_t i = 0; i < f->n; i++) {
        const k8s_pod *p = &f->pods[i];
        if (p->terminating || p->ordinal < 0 || k8s_pod_tstate(p) != st) continue;
        int busy = 0;
        for (size_t k = 0; k < nskip && !busy; k++)
            busy = !strcmp(skip[k], k8s_pod_replica(p));
        if (busy) continue;
        if (!best || (highest ? p->ordinal > best->ordinal : p->ordinal < best->ordinal)) best = p;
    }
    return best;
}

/* Drops pods that have terminated (Succeeded/Failed: no longer counted by the controllers). */
static void drop_terminated(k8s_pod *pods, size_t *n) {
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (pods[i].phase != K8S_PHASE_SUCCEEDED && pods[i].phase != K8S_PHASE_FAILED)
            pods[k++] = pods[i];
    *n = k;
}

int k8s_fleet_read(k8s_client *c, k8s_scalable kind, const char *ns, const char *name,
                   const char *gate_type, int64_t deadline_ms, k8s_fleet *f, char *err,
                   size_t errlen) {
    memset(f, 0, sizeof *f);
    f->kind = kind;
    snprintf(f->ns, sizeof f->ns, "%s", ns);
    snprintf(f->name, sizeof f->name, "%s", name);
    int rc = k8s_scale_get(c, kind, ns, name, deadline_ms, &f->scale, err, errlen);
    if (rc < 0) return rc;
    if (!f->scale.selector[0]) {
        errf(err, errlen,
             "%s %s/%s: its Scale has no status.selector yet (the controller has not seen it)",
             k8s_scalable_kind(kind), ns, name);
        return -EAGAIN;
    }
    char rv[K8S_RV_MAX];
    rc = k8s_pods_list(c, ns, f->scale.selector, gate_type, deadline_ms, &f->pods, &f->n, rv, err,
                       errlen);
    if (rc < 0) return rc;
    drop_terminated(f->pods, &f->n);
    return 0;
}

void k8s_fleet_free(k8s_fleet *f) {
    free(f->pods);
    f->pods = NULL;
    f->n = 0;
}

static int patch_meta(k8s_client *c, const char *ns, const char *pod, const char *const *keys,
                      const char *const *vals, const int *is_label, int nk, const char *gate_type,
                      k8s_fence *fence, int64_t deadline_ms, k8s_pod *out, char *err,
                      size_t errlen) {
    char *body = k8s_meta_patch(keys, vals, is_label, nk);
    if (!body) {
        errf(err, errlen, "pod %s/%s: out of memory", ns, pod);
        return -ENOMEM;
    }
    int rc = k8s_pod_patch_meta_fenced(c, ns, pod, body, gate_type, fence, deadline_ms, out, err,
                                       errlen);
    free(body);
    return rc;
}

int k8s_fleet_mark(k8s_client *c, const char *ns, const char *pod, k8s_tstate st,
                   const char *replica, int64_t now_wall_ms, const char *gate_type,
                   k8s_fence *fence, int64_t deadline_ms, k8s_pod *out, char *err, size_t errlen) {
    char since[24];
    snprintf(since, sizeof since, "%" PRId64, now_wall_ms);
    const char *keys[3] = {K8S_LABEL_STATE, K8S_ANNOT_SINCE, K8S_ANNOT_REPLICA};
    const char *vals[3] = {k8s_tstate_name(st), since, replica};
    const int lab[3] = {1, 0, 0};
    if (st == K8S_TS_NONE) {
        errf(err, errlen, "pod %s/%s: no state to set", ns, pod);
        return -EINVAL;
    }
    return patch_meta(c, ns, pod, keys, vals, lab, replica ? 3 : 2, gate_type, fence, deadline_ms,
                      out, err, errlen);
}

static int want_more(void *arg, const k8s_scale *cur, char *err, size_t errlen) {
    (void)err;
    (void)errlen;
    int n = *(const int *)arg;
    int base = cur->spec_replicas < 0 ? 0 : cur->spec_replicas;
    return base + n;
}

int k8s_fleet_grow(k8s_client *c, k8s_scalable kind, const char *ns, const char *name, int n,
                   k8s_fence *fence, int64_t deadline_ms, k8s_scale_result *res, char *err,
                   size_t errlen) {
    if (n < 1 || n > 10000) {
        errf(err, errlen, "%s %s/%s: cannot add %d replicas", k8s_scalable_kind(kind), ns, name, n);
        return -EINVAL;
    }
    return k8s_scale_update_fenced(c, kind, ns, name, want_more, &n, fence, deadline_ms, res, err,
                                   errlen);
}

typedef struct del_ctx {
    k8s_client *c;
    const k8s_fleet *f;
    const char *gate;
    int64_t deadline_ms;
    char why[512];
} del_ctx;

/* The replicas to write, from the Scale as (re-)read and the pods as listed now. */
static int want_fewer(void *arg, const k8s_scale *cur, char *err, size_t errlen) {
    del_ctx *d = arg;
    k8s_pod *pods;
    size_t n;
    char rv[K8S_RV_MAX];
    int rc = k8s_pods_list(d->c, d->f->ns, cur->selector, d->gate, d->deadline_ms, &pods, &n, rv,
                           err, errlen);
    if (rc < 0) return -1;
    drop_terminated(pods, &n);
    const k8s_pod *blocker = NULL;
    int t = target_of(d->f->kind, pods, n, cur->spec_replicas, &blocker);
    if (blocker)
        snprintf(d->why, sizeof d->why, "pod %s (ordinal %d, state %s) is above a marked pod",
                 blocker->name, blocker->ordinal, k8s_tstate_name(k8s_pod_tstate(blocker)));
    free(pods);
    if (t > cur->spec_replicas) t = cur->spec_replicas; /* never raises */
    return t;
}

int k8s_fleet_delete(k8s_client *c, const k8s_fleet *f, const char *const *pods, size_t n,
                     const char *gate_type, int64_t now_wall_ms, k8s_fence *fence,
                     int64_t deadline_ms, k8s_scale_result *res, char *err, size_t errlen) {
    memset(res, 0, sizeof *res);
    const char *what = k8s_scalable_kind(f->kind);
    if (f->kind == K8S_STATEFULSET) { /* only the highest ordinals can go */
        for (size_t i = 0; i < n; i++) {
            const k8s_pod *p = by_name(f->pods, f->n, pods[i]);
            if (!p || p->terminating) continue;
            if (p->ordinal < 0) {
                errf(err, errlen, "%s %s/%s: pod %s has no ordinal", what, f->ns, f->name, p->name);
                return -EINVAL;
            }
            for (size_t j = 0; j < f->n; j++) {
                const k8s_pod *q = &f->pods[j];
                if (q->terminating || q->ordinal <= p->ordinal || marked(q)) continue;
                int named = 0;
                for (size_t k = 0; k < n && !named; k++)
                    named = !strcmp(pods[k], q->name);
                if (!named) {
                    errf(err, errlen,
                         "%s %s/%s: pod %s cannot be removed while %s (ordinal %d, %s) stays: a "
                         "StatefulSet removes its highest ordinals first",
                         what, f->ns, f->name, p->name, q->name, q->ordinal,
                         k8s_tstate_name(k8s_pod_tstate(q)));
                    return -EINVAL;
                }
            }
        }
    }
    char since[24];
    snprintf(since, sizeof since, "%" PRId64, now_wall_ms);
    for (size_t i = 0; i < n; i++) {
        const k8s_pod *p = by_name(f->pods, f->n, pods[i]);
        if (!p || p->terminating) continue; /* already going */
        const char *keys[3] = {K8S_LABEL_STATE, K8S_ANNOT_SINCE, K8S_ANNOT_DELETION_COST};
        const char *vals[3] = {k8s_tstate_name(K8S_TS_DELETING), since, "-2147483648"};
        const int lab[3] = {1, 0, 0};
        int rc = patch_meta(c, f->ns, p->name, keys, vals, lab, 3, gate_type, fence, deadline_ms,
                            NULL, err, errlen);
        if (rc == -ENOENT) continue; /* gone meanwhile */
        if (rc < 0) return rc;
        if (gate_type && gate_type[0] && p->gate != 0) {
            rc = k8s_pod_set_gate_fenced(c, f->ns, p->name, gate_type, 0, "TideDeleting",
                                         "Tide removes this pod", now_wall_ms, fence, deadline_ms,
                                         NULL, err, errlen);
            if (rc < 0 && rc != -ENOENT) return rc;
        }
    }
    del_ctx d = {.c = c, .f = f, .gate = gate_type, .deadline_ms = deadline_ms};
    int rc = k8s_scale_update_fenced(c, f->kind, f->ns, f->name, want_fewer, &d, fence, deadline_ms,
                                     res, err, errlen);
    if (rc == 0 && d.why[0] && f->kind == K8S_STATEFULSET) {
        errf(err, errlen, "%s %s/%s: replicas %d -> %d, but %s", what, f->ns, f->name, res->before,
             res->after, d.why);
        return -EAGAIN;
    }
    return rc;
}
