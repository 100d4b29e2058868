/* k8s_workload.c: the executor (exec/executor.h) of Deployment and StatefulSet targets, one
 * instance per kind. exec/k8s_fleet.h does the Kubernetes side, exec/transport.h the agent's.
 *
 * Usable when a Kubernetes API is configured (k8s_kubeconfig, a k8s_api_url other than the
 * default, or the service account of a pod: k8s_configured()); without one such workloads stay
 * in Preview as before.
 *
 * inventory: another scaler on the target (an autoscaling/v2 HPA or a KEDA ScaledObject) refuses
 *   Auto: the inventory fails with who owns the target and what to do, and is asked again at
 *   the next sync (the owner is checked again every minute, also after the inventory: a scaler
 *   that appears later refuses the actions). Else the fleet is rebuilt from the API server alone
 *   (pods of the Scale's selector; their tide.io/state and tide.io/replica; pods without them
 *   are adopted as they are), so a restarted control plane continues where the cluster is.
 * apply: START raises .spec.replicas by one and claims the next new pod for the replica (Online
 *   once its containers are ready and its readiness gate is set True); CUTOFF sets the gate
 *   False and has the node's agent drain the pod's endpoint (podIP:containerPort; without a
 *   container port the gate alone drains it); STANDBY freezes the pod's cgroup on its node's
 *   agent (the path from the agent's kubepods discovery); ACTIVATE thaws it, sends the spec's
 *   warm-up (spec.warmup) to podIP:containerPort while the gate is still False, then
 *   sets the gate True; RESTORE sets the gate True; DELETE makes exactly that pod go
 * (k8s_fleet_delete). For a StatefulSet the pod acted on is the highest ordinal in the replica's
 * state (the lowest for ACTIVATE) that no other action holds: the replica id moves to that pod
 * (tide.io/replica is swapped; one such resolve at a time per workload), so the pods a scale-in
 * removes are always the ones cut off and frozen.
 *
 * Everything here runs on the loop; Kubernetes calls go to worker threads as jobs (k8s_offloop)
 * that own copies of what they need. An action is tracked from its start to its outcome by
 * exec/tracker.c under (workload, generation, seq): an answer for a workload re-applied or
 * deleted meanwhile is dropped. */
#include "cp.h"
#include "exec/executor.h"
#include "exec/hb_args.h"
#include "exec/k8s.h"
#include "exec/k8s_fleet.h"
#include "exec/tracker.h"
#include "exec/transport.h"
#include "log.h"
#include "store/tsdb.h"

#include <errno.h>
#include <ev.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KX_OWNER_UNKNOWN 2
#define KX_OWNER_RECHECK_MS 60000
#define KX_POLL_S 0.5              /* reads while a START waits for its pod */
#define KX_START_TIMEOUT_MS 300000 /* a new pod scheduled, started and ready */
#define KX_ACTION_TIMEOUT_MS 120000
#define KX_MAX_PENDING 4096
#define KX_MAX_CLAIMS 256

typedef struct kx kx;
typedef struct kx_act kx_act;

typedef struct kx_wl {
    struct kx_wl *next;
    kx *x;
    int refs;   /* 1 while listed, + jobs and actions under way */
    int linked; /* still the executor of a live workload generation */
    char name[WL_NAME_MAX];
    uint64_t generation;
    k8s_scalable kind;
    char ns[K8S_NS_MAX], target[K8S_NAME_MAX];
    int inventoried;
    int want_inventory; /* asked: reported once the owner is known and the fleet read */
    int reading;        /* a read job is under way */
    int64_t read_ms;    /* monotonic: when the last read finished */
    k8s_fleet fleet;    /* as last read */
    char read_err[700];
    int owner; /* KX_OWNER_UNKNOWN, 0 none, 1 owned, < 0 cannot tell */
    int owner_busy;
    int64_t owner_at; /* monotonic ms of the last answer */
    char owner_reason[1600];
    /* StatefulSet: one resolve at a time (it may move replica ids between pods), the others
     * wait in order */
    int resolving;
    kx_act *queue, *queue_tail;
    wl_warmup warmup; /* the generation's spec.warmup: sent with each activate */
} kx_wl;

struct kx {
    struct controlplane *cp;
    const exec_sink *sink;
    wl_target_kind kind;
    exec_tracker *tr;
    kx_wl *head;
    int nkw;      /* kx_wl not freed yet (listed or held by a job) */
    int stopping; /* 1 stopping, 2 stopped: freed with the last kx_wl */
    ev_timer poll;
    char gate[256];
};

static void kx_free(kx *x) {
    exec_tracker_free(x->tr);
    free(x);
}

static void kw_unref(kx_wl *kw) {
    if (--kw->refs > 0) return;
    kx *x = kw->x;
    k8s_fleet_free(&kw->fleet);
    free(kw);
    if (--x->nkw == 0 && x->stopping == 2) kx_free(x); /* the last one after the stop */
}

/* ---- actions ----------------------------------------------------------------------------- */

typedef enum kx_phase { PH_JOB = 0, PH_TRANSPORT, PH_WAIT, PH_QUEUED } kx_phase;

struct kx_act {
    kx_act *qnext; /* PH_QUEUED */
    kx_wl *kw;     /* holds a ref */
    exec_request rq;
    int64_t t0;   /* monotonic ms of the apply */
    uint64_t seq; /* the tracker's */
    exec_op kind;
    char replica[K8S_REPLICA_MAX];
    kx_phase phase;
    int cancelled;   /* in a job: drop its answer */
    exec_action *ta; /* PH_TRANSPORT */
    k8s_pod pod;     /* the pod acted on (resolved) */
    int thawed;      /* DELETE of a standby pod: thawed first (it shuts down on SIGTERM) */
    cJSON *warm;     /* ACTIVATE: the warm-up's figures (hb_warmup_summary), for the event */
    char err[700];
};

static void act_free(kx_act *a) {
    cJSON_Delete(a->warm);
    kw_unref(a->kw);
    free(a);
}

/* The tracker lets an action go (forget/expire): what it is waiting for is dropped. */
static void act_drop(kx_act *a) {
    if (a->phase == PH_JOB) {
        a->cancelled = 1; /* the job's after() frees it */
        return;
    }
    if (a->phase == PH_TRANSPORT) exec_node_action_cancel(a->ta);
    if (a->phase == PH_QUEUED) { /* out of its workload's queue */
        kx_wl *kw = a->kw;
        kx_act *prev = NULL;
        for (kx_act *q = kw->queue; q; prev = q, q = q->qnext)
            if (q == a) {
                if (prev)
                    prev->qnext = a->qnext;
                else
                    kw->queue = a->qnext;
                if (kw->queue_tail == a) kw->queue_tail = prev;
                break;
            }
    }
    act_free(a);
}

static void on_forget(void *arg, const exec_pending *p) {
    (void)arg;
    act_drop(p->handle);
}

static exec_rstate rstate(k8s_tstate s) {
    switch (s) {
    case K8S_TS_ONLINE:
        return EXEC_RS_ONLINE;
    case K8S_TS_CUTOFF:
        return EXEC_RS_CUTOFF;
    case K8S_TS_STANDBY:
        return EXEC_RS_STANDBY;
    case K8S_TS_DELETING:
        return EXEC_RS_GONE;
    default:
        return EXEC_RS_STARTING;
    }
}

/* Is kw still the executor of a workload generation the module has applied? */
static int kw_live(const kx_wl *kw) {
    return kw->linked && !kw->x->stopping;
}

/* The outcome of a tracked action: reported to the workloads module when still pending. */
static void act_report(kx_act *a, int ok) {
    kx_wl *kw = a->kw;
    kx *x = kw->x;
    if (!ok)
        log_warn("k8s-exec", "%s: %s %s failed: %s", kw->name, exec_op_name(a->kind), a->replica,
                 a->err[0] ? a->err : "no details");
    else
        log_info("k8s-exec", "%s: %s %s done (pod %s)", kw->name, exec_op_name(a->kind), a->replica,
                 a->pod.name[0] ? a->pod.name : "-");
    int64_t took = k8s_now_ms() - a->t0;
    cJSON *d = cJSON_CreateObject();
    if (d && a->pod.name[0]) {
        cJSON_AddStringToObject(d, "pod", a->pod.name);
        cJSON_AddStringToObject(d, "node", a->pod.node);
    }
    if (d && a->warm) {
        cJSON_AddItemToObject(d, "warmup", a->warm);
        a->warm = NULL;
    }
    exec_result res = {.rq = a->rq,
                       .ok = ok,
                       .duration_ms = took,
                       .startup_ms = ok && a->kind == EXEC_START ? took : -1,
                       .error = ok          ? NULL
                                : a->err[0] ? a->err
                                            : "failed",
                       .details = d};
    x->sink->done(x->cp, &res);
    cJSON_Delete(d);
}

static void act_finish(kx_act *a, int ok) {
    kx_wl *kw = a->kw;
    kx *x = kw->x;
    if (kw_live(kw) && exec_tracker_complete(x->tr, kw->name, kw->generation, a->seq, NULL) == 1)
        act_report(a, ok);
    act_free(a);
}

/* ---- jobs on worker threads ------------------------------------------------------------- */

typedef enum kx_op { OP_READ = 0, OP_RESOLVE, OP_GROW, OP_MARK, OP_DELETE } kx_op;

typedef struct kx_job {
    kx_op op;
    kx_wl *kw;   /* holds a ref */
    kx_act *act; /* NULL for reads */
    /* inputs (copies: the job never touches loop data) */
    k8s_scalable kind;
    char ns[K8S_NS_MAX], target[K8S_NAME_MAX], gate[256];
    int64_t wall_ms;
    k8s_fence fence; /* the workload's token when the job was made; seen: a refusal's */
    exec_op akind;
    char replica[K8S_REPLICA_MAX];
    k8s_tstate mark;
    int gate_on; /* OP_MARK: -1 leave the gate, 0/1 set it first */
    int inventory;
    int adopt; /* pods without Tide's labels are adopted as they are (no START under way that
                  might own them) */
    char (*claims)[K8S_REPLICA_MAX];
    int nclaims;
    char (*busy)[K8S_REPLICA_MAX]; /* OP_RESOLVE: replicas with another action under way */
    int nbusy;
    /* outputs */
    k8s_fleet fleet;
    k8s_pod pod;
    char (*online)[K8S_REPLICA_MAX]; /* START replicas whose pod became Online */
    int nonline;
    int rc;
    char err[700];
} kx_job;

static void job_free(kx_job *j) {
    k8s_fleet_free(&j->fleet);
    free(j->claims);
    free(j->busy);
    free(j->online);
    free(j);
}

static int64_t dl(void) {
    return k8s_now_ms() + 15000;
}

static int set_gate(k8s_client *c, kx_job *j, k8s_pod *p, int on) {
    if (!j->gate[0] || p->gate == on) return 0;
    return k8s_pod_set_gate_fenced(
        c, j->ns, p->name, j->gate, on, on ? "TideActive" : "TideDrained",
        on ? "Tide serves traffic with this pod" : "Tide cut this pod off", j->wall_ms, &j->fence,
        dl(), p, j->err, sizeof j->err);
}

static int mark(k8s_client *c, kx_job *j, k8s_pod *p, k8s_tstate st, const char *replica) {
    return k8s_fleet_mark(c, j->ns, p->name, st, replica, j->wall_ms, j->gate, &j->fence, dl(), p,
                          j->err, sizeof j->err);
}

/* Inventory and polls: reads the fleet, claims new pods for STARTs waiting for one, adopts
 * pods nobody claimed, brings pods whose containers are ready Online, and (level-triggered)
 * lowers the replicas again for pods marked deleting that are still there. */
static int run_read(k8s_client *c, kx_job *j) {
    int rc =
        k8s_fleet_read(c, j->kind, j->ns, j->target, j->gate, 0, &j->fleet, j->err, sizeof j->err);
    if (rc < 0) return rc;
    k8s_fleet *f = &j->fleet;
    for (int k = 0; k < j->nclaims; k++) {
        int taken = 0; /* a pod carries the id already (its own name does not count) */
        for (size_t i = 0; i < f->n && !taken; i++)
            taken = !f->pods[i].terminating && !strcmp(f->pods[i].replica, j->claims[k]);
        if (taken) continue;
        for (size_t i = 0; i < f->n; i++) {
            k8s_pod *p = &f->pods[i];
            if (p->terminating || p->state[0] || p->replica[0]) continue;
            if ((rc = mark(c, j, p, K8S_TS_STARTING, j->claims[k])) < 0 && rc != -ENOENT) return rc;
            break;
        }
    }
    if (j->inventory) /* one pod per replica id (a swap cut short leaves two) */
        for (size_t i = 0; i < f->n; i++) {
            k8s_pod *p = &f->pods[i];
            if (p->terminating || !p->replica[0]) continue;
            int dup = 0;
            for (size_t k = 0; k < i && !dup; k++)
                dup = !f->pods[k].terminating && !strcmp(k8s_pod_replica(&f->pods[k]), p->replica);
            if (!dup) continue;
            char id[K8S_REPLICA_MAX];
            snprintf(id, sizeof id, "%s", p->name); /* its own name, unless another has it */
            for (size_t k = 0; k < f->n; k++)
                if (k != i && !strcmp(k8s_pod_replica(&f->pods[k]), id)) {
                    snprintf(id, sizeof id, "%.200s-%.8s", p->name, p->uid);
                    break;
                }
            log_warn("k8s-exec",
                     "%s %s/%s: pods %s and another both stand for replica %s: %s "
                     "becomes %s",
                     k8s_scalable_kind(j->kind), j->ns, j->target, p->name, p->replica, p->name,
                     id);
            if ((rc = mark(c, j, p, k8s_pod_tstate(p), id)) < 0 && rc != -ENOENT) return rc;
        }
    j->online = calloc(f->n ? f->n : 1, sizeof *j->online);
    if (!j->online) return -ENOMEM;
    int deleting = 0;
    for (size_t i = 0; i < f->n; i++) {
        k8s_pod *p = &f->pods[i];
        if (p->terminating) continue;
        k8s_tstate st = k8s_pod_tstate(p);
        if (!p->state[0] && !p->replica[0] && !j->adopt) continue; /* maybe a START's */
        if (!p->state[0] || !p->replica[0]) {                      /* adopt it as it is */
            if ((rc = mark(c, j, p, st, k8s_pod_replica(p))) < 0 && rc != -ENOENT) return rc;
        }
        if (st == K8S_TS_STARTING && p->containers_ready) {
            if ((rc = set_gate(c, j, p, 1)) < 0 && rc != -ENOENT) return rc;
            if ((rc = mark(c, j, p, K8S_TS_ONLINE, NULL)) < 0 && rc != -ENOENT) return rc;
            snprintf(j->online[j->nonline++], K8S_REPLICA_MAX, "%s", k8s_pod_replica(p));
        } else if (j->inventory) { /* the gate as the state says (an action cut short) */
            if (st == K8S_TS_ONLINE && p->gate == 0 && (rc = set_gate(c, j, p, 1)) < 0) return rc;
            if ((st == K8S_TS_CUTOFF || st == K8S_TS_STANDBY || st == K8S_TS_DELETING) &&
                p->gate == 1 && (rc = set_gate(c, j, p, 0)) < 0)
                return rc;
        }
        deleting += st == K8S_TS_DELETING;
    }
    if (deleting &&
        k8s_fleet_delete_target(f, f->scale.spec_replicas, NULL) < f->scale.spec_replicas) {
        k8s_scale_result res;
        rc = k8s_fleet_delete(c, f, NULL, 0, j->gate, j->wall_ms, &j->fence, 0, &res, j->err,
                              sizeof j->err);
        if (rc < 0 && rc != -EAGAIN) return rc;
        if (res.after != res.before)
            log_info("k8s-exec", "%s %s/%s: replicas %d -> %d for the pods marked deleting",
                     k8s_scalable_kind(j->kind), j->ns, j->target, res.before, res.after);
    }
    return 0;
}

/* The pod an action acts on: the replica's; for a StatefulSet the highest ordinal in the same
 * state (the lowest for ACTIVATE), the replica ids of the two pods swapped. */
static int run_resolve(k8s_client *c, kx_job *j) {
    int rc =
        k8s_fleet_read(c, j->kind, j->ns, j->target, j->gate, 0, &j->fleet, j->err, sizeof j->err);
    if (rc < 0) return rc;
    const k8s_pod *p = k8s_fleet_find(&j->fleet, j->replica);
    if (!p) {
        snprintf(j->err, sizeof j->err, "no pod of %s %s/%s stands for replica %s",
                 k8s_scalable_kind(j->kind), j->ns, j->target, j->replica);
        return -ENOENT;
    }
    j->pod = *p;
    if (j->kind != K8S_STATEFULSET || p->ordinal < 0) return 0;
    const k8s_pod *q = k8s_fleet_ordinal_pick(&j->fleet, k8s_pod_tstate(p),
                                              j->akind != EXEC_ACTIVATE, j->busy, (size_t)j->nbusy);
    if (!q || q == p) return 0;
    k8s_pod a = *p, b = *q;
    char ida[K8S_REPLICA_MAX], idb[K8S_REPLICA_MAX];
    snprintf(ida, sizeof ida, "%s", k8s_pod_replica(p));
    snprintf(idb, sizeof idb, "%s", k8s_pod_replica(q));
    k8s_tstate st = k8s_pod_tstate(p);
    if ((rc = mark(c, j, &b, st, ida)) < 0) return rc;
    if ((rc = mark(c, j, &a, st, idb)) < 0) return rc;
    log_info("k8s-exec", "%s %s/%s: replica %s moves to pod %s (ordinal %d) and %s to pod %s",
             k8s_scalable_kind(j->kind), j->ns, j->target, ida, b.name, b.ordinal, idb, a.name);
    j->pod = b;
    return 0;
}

static int job_run(k8s_client *c, void *arg) {
    kx_job *j = arg;
    int rc = 0;
    switch (j->op) {
    case OP_READ:
        rc = run_read(c, j);
        break;
    case OP_RESOLVE:
        rc = run_resolve(c, j);
        break;
    case OP_GROW: {
        k8s_scale_result res;
        rc = k8s_fleet_grow(c, j->kind, j->ns, j->target, 1, &j->fence, 0, &res, j->err,
                            sizeof j->err);
        if (rc == 0)
            log_info("k8s-exec", "%s %s/%s: replicas %d -> %d for replica %s%s",
                     k8s_scalable_kind(j->kind), j->ns, j->target, res.before, res.after,
                     j->replica, res.conflicts ? " (conflicts re-applied)" : "");
        break;
    }
    case OP_MARK:
        if (j->gate_on >= 0) rc = set_gate(c, j, &j->pod, j->gate_on);
        if (rc == 0) rc = mark(c, j, &j->pod, j->mark, NULL);
        break;
    case OP_DELETE: {
        k8s_fleet f;
        rc = k8s_fleet_read(c, j->kind, j->ns, j->target, j->gate, 0, &f, j->err, sizeof j->err);
        if (rc < 0) break;
        const char *names[1] = {j->pod.name};
        k8s_scale_result res;
        rc = k8s_fleet_delete(c, &f, names, 1, j->gate, j->wall_ms, &j->fence, 0, &res, j->err,
                              sizeof j->err);
        if (rc == 0)
            log_info("k8s-exec", "%s %s/%s: pod %s goes, replicas %d -> %d%s",
                     k8s_scalable_kind(j->kind), j->ns, j->target, j->pod.name, res.before,
                     res.after, res.conflicts ? " (conflicts re-applied)" : "");
        k8s_fleet_free(&f);
        break;
    }
    }
    j->rc = rc;
    if (rc < 0 && !j->err[0]) snprintf(j->err, sizeof j->err, "%s", strerror(-rc));
    return rc;
}

static void job_after(void *arg, int rc);

static kx_job *job_new(kx_wl *kw, kx_op op, kx_act *a) {
    kx_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->op = op;
    j->kw = kw;
    j->act = a;
    j->kind = kw->kind;
    snprintf(j->ns, sizeof j->ns, "%s", kw->ns);
    snprintf(j->target, sizeof j->target, "%s", kw->target);
    snprintf(j->gate, sizeof j->gate, "%s", kw->x->gate);
    j->wall_ms = tide_now_wall_ms();
    j->fence.token = kw->x->sink->fence ? kw->x->sink->fence(kw->x->cp, kw->name) : 0;
    j->gate_on = -1;
    if (a) {
        j->akind = a->kind;
        snprintf(j->replica, sizeof j->replica, "%s", a->replica);
        j->pod = a->pod;
    }
    return j;
}

/* Submits j; on failure its action fails with why. */
static int job_submit(kx_job *j) {
    char err[256];
    j->kw->refs++;
    if (j->act) j->act->phase = PH_JOB;
    int rc = k8s_offloop(j->kw->x->cp, job_run, job_after, j, err, sizeof err);
    if (rc < 0) {
        j->kw->refs--;
        if (j->act) {
            snprintf(j->act->err, sizeof j->act->err, "%s", err);
            act_finish(j->act, 0);
        }
        job_free(j);
    }
    return rc;
}

static void transport_done(void *arg, int ok, int status, cJSON *data, const char *error);

/* The agent's part of an action, with the pod's readiness gate around it (with_gate) or alone. */
static void act_transport(kx_act *a, const char *action, cJSON *args, int with_gate) {
    kx_wl *kw = a->kw;
    char err[512], pod[K8S_NS_MAX + K8S_NAME_MAX + 2];
    snprintf(pod, sizeof pod, "%s/%s", kw->ns, a->pod.name);
    a->phase = PH_TRANSPORT;
    uint64_t token = kw->x->sink->fence ? kw->x->sink->fence(kw->x->cp, kw->name) : 0;
    int rc = exec_node_action_fenced(kw->x->cp, a->pod.node, action, args, with_gate ? pod : NULL,
                                     kw->name, token, transport_done, a, &a->ta, err, sizeof err);
    cJSON_Delete(args);
    if (rc < 0) {
        a->phase = PH_WAIT;
        snprintf(a->err, sizeof a->err, "%s on node %.120s: %.400s", action, a->pod.node, err);
        act_finish(a, 0);
    }
}

/* The pod's cgroup as its node's agent reports it (kubepods discovery), else the cgroupfs
 * driver's layout for its QoS class. */
static void pod_cgroup(kx *x, const k8s_pod *p, char *out, size_t cap) {
    out[0] = 0;
    tsdb *db = x->cp->db;
    uint32_t n = db ? tsdb_series_count(db) : 0;
    for (uint32_t id = 1; id <= n && !out[0]; id++) {
        const tsdb_label *l;
        size_t nl;
        if (tsdb_series_labels(db, id, &l, &nl) < 0) continue;
        const char *uid = NULL, *kind = NULL, *cg = NULL, *node = NULL;
        for (size_t i = 0; i < nl; i++) {
            if (!strcmp(l[i].name, "pod_uid")) uid = l[i].value;
            if (!strcmp(l[i].name, "kind")) kind = l[i].value;
            if (!strcmp(l[i].name, "cgroup")) cg = l[i].value;
            if (!strcmp(l[i].name, "node")) node = l[i].value;
        }
        if (uid && kind && cg && node && !strcmp(uid, p->uid) && !strcmp(kind, "pod") &&
            !strcmp(node, p->node))
            snprintf(out, cap, "%s", cg);
    }
    if (out[0]) return;
    if (!strcmp(p->qos, "Guaranteed"))
        snprintf(out, cap, "/kubepods/pod%s", p->uid);
    else
        snprintf(out, cap, "/kubepods/%s/pod%s",
                 !strcmp(p->qos, "Burstable") ? "burstable" : "besteffort", p->uid);
}

/* After the pod is resolved: the action's next step. */
static void act_step(kx_act *a) {
    kx *x = a->kw->x;
    switch (a->kind) {
    case EXEC_CUTOFF:
        if (a->pod.ip[0] && a->pod.port > 0) {
            cJSON *args = cJSON_CreateObject();
            char ep[80];
            snprintf(ep, sizeof ep, "%s:%d", a->pod.ip, a->pod.port);
            cJSON_AddStringToObject(args, "endpoint", ep);
            act_transport(a, "drain", args, 1);
            return;
        }
        break; /* no port to watch: the gate alone drains it */
    case EXEC_STANDBY:
    case EXEC_ACTIVATE: {
        char cg[1024];
        pod_cgroup(x, &a->pod, cg, sizeof cg);
        cJSON *args;
        if (a->kind == EXEC_ACTIVATE) {
            /* thaw, the warm-up to podIP:containerPort (the gate is still False: only the
             * warm-up reaches it), then the gate True */
            const wl_warmup *w = &a->kw->warmup;
            if (w->enabled && !(a->pod.ip[0] && a->pod.port > 0))
                log_warn("k8s-exec",
                         "%s: pod %s has no IP or container port: activated without warm-up",
                         a->kw->name, a->pod.name);
            args = hb_activate_args(w, cg, a->pod.ip, a->pod.port);
        } else {
            args = cJSON_CreateObject();
            if (args && !cJSON_AddStringToObject(args, "cgroup", cg)) {
                cJSON_Delete(args);
                args = NULL;
            }
        }
        if (!args) {
            snprintf(a->err, sizeof a->err, "out of memory");
            act_finish(a, 0);
            return;
        }
        act_transport(a, a->kind == EXEC_STANDBY ? "standby" : "activate", args, 1);
        return;
    }
    case EXEC_DELETE: {
        if (!a->thawed && k8s_pod_tstate(&a->pod) == K8S_TS_STANDBY) {
            /* a frozen process cannot act on SIGTERM: thaw it (the gate stays False) so that
             * it shuts down within its grace period */
            a->thawed = 1;
            char cg[1024];
            pod_cgroup(x, &a->pod, cg, sizeof cg);
            cJSON *args = cJSON_CreateObject();
            cJSON_AddStringToObject(args, "cgroup", cg);
            act_transport(a, "activate", args, 0);
            return;
        }
        kx_job *j = job_new(a->kw, OP_DELETE, a);
        if (!j) {
            snprintf(a->err, sizeof a->err, "out of memory");
            act_finish(a, 0);
            return;
        }
        job_submit(j);
        return;
    }
    default:
        break;
    }
    /* CUTOFF without a port, RESTORE: the gate and the label */
    kx_job *j = job_new(a->kw, OP_MARK, a);
    if (!j) {
        snprintf(a->err, sizeof a->err, "out of memory");
        act_finish(a, 0);
        return;
    }
    j->gate_on = a->kind == EXEC_RESTORE;
    j->mark = a->kind == EXEC_RESTORE ? K8S_TS_ONLINE : K8S_TS_CUTOFF;
    job_submit(j);
}

static void transport_done(void *arg, int ok, int status, cJSON *data, const char *error) {
    kx_act *a = arg;
    if (status == EXEC_STATUS_FENCED && a->kw->x->sink->fenced) {
        char wl[WL_NAME_MAX], what[200];
        snprintf(wl, sizeof wl, "%s", a->kw->name);
        snprintf(what, sizeof what, "%s %.120s", exec_op_name(a->kind), a->replica);
        a->kw->x->sink->fenced(a->kw->x->cp, wl, exec_fenced_seen(data), what);
    }
    if (a->kind == EXEC_ACTIVATE) {
        cJSON_Delete(a->warm);
        a->warm = hb_warmup_summary(data);
    }
    cJSON_Delete(data);
    a->ta = NULL;
    a->phase = PH_WAIT;
    if (a->kind == EXEC_DELETE) { /* thawed (or not: the deletion goes on, SIGKILL ends it) */
        if (!ok)
            log_warn("k8s-exec", "%s: pod %s on node %s not thawed before its deletion: %s",
                     a->kw->name, a->pod.name, a->pod.node, error ? error : "failed");
        if (!kw_live(a->kw)) {
            snprintf(a->err, sizeof a->err, "workload gone");
            act_finish(a, 0);
            return;
        }
        act_step(a);
        return;
    }
    if (!ok) {
        snprintf(a->err, sizeof a->err, "pod %s on node %s: %s", a->pod.name, a->pod.node,
                 error ? error : "failed");
        act_finish(a, 0);
        return;
    }
    kx_job *j = kw_live(a->kw) ? job_new(a->kw, OP_MARK, a) : NULL;
    if (!j) {
        snprintf(a->err, sizeof a->err, "workload gone or out of memory");
        act_finish(a, 0);
        return;
    }
    j->mark = a->kind == EXEC_CUTOFF    ? K8S_TS_CUTOFF
              : a->kind == EXEC_STANDBY ? K8S_TS_STANDBY
                                        : K8S_TS_ONLINE;
    job_submit(j);
}

static void read_done(kx_wl *kw, kx_job *j, int rc);

static void add_busy(void *arg, const exec_pending *p) {
    kx_job *j = arg;
    if (strcmp(p->replica, j->replica) != 0 && j->nbusy < KX_MAX_CLAIMS)
        snprintf(j->busy[j->nbusy++], K8S_REPLICA_MAX, "%s", p->replica);
}

/* Resolves a's pod (a StatefulSet's wait their turn: one at a time per workload). */
static void resolve_start(kx_act *a) {
    kx_wl *kw = a->kw;
    int sts = kw->kind == K8S_STATEFULSET;
    if (sts && kw->resolving) {
        a->phase = PH_QUEUED;
        a->qnext = NULL;
        if (kw->queue_tail)
            kw->queue_tail->qnext = a;
        else
            kw->queue = a;
        kw->queue_tail = a;
        return;
    }
    kx_job *j = job_new(kw, OP_RESOLVE, a);
    if (j) j->busy = calloc(KX_MAX_CLAIMS, sizeof *j->busy);
    if (!j || !j->busy) {
        if (j) job_free(j);
        snprintf(a->err, sizeof a->err, "out of memory");
        act_finish(a, 0);
        return;
    }
    exec_tracker_each(kw->x->tr, kw->name, add_busy, j);
    kw->resolving = sts;
    if (job_submit(j) < 0) kw->resolving = 0;
}

/* A StatefulSet's resolve is over: the next one waiting goes. */
static void resolve_next(kx_wl *kw) {
    kw->resolving = 0;
    while (kw->queue && !kw->resolving && !kw->x->stopping) {
        kx_act *a = kw->queue;
        kw->queue = a->qnext;
        if (!kw->queue) kw->queue_tail = NULL;
        a->phase = PH_WAIT;
        resolve_start(a);
    }
}

static void job_after(void *arg, int rc) {
    kx_job *j = arg;
    kx_wl *kw = j->kw;
    kx_act *a = j->act;
    int resolved = j->op == OP_RESOLVE;
    const exec_sink *fsink = kw->x->sink;
    struct controlplane *fcp = kw->x->cp;
    char fwl[WL_NAME_MAX], fwhat[200];
    uint64_t fseen = rc == -ESTALE ? j->fence.seen : 0;
    if (fseen) { /* kept for the sink, called last: the job and its action are gone by then */
        snprintf(fwl, sizeof fwl, "%s", kw->name);
        snprintf(fwhat, sizeof fwhat, "%s %.120s", a ? exec_op_name(a->kind) : "read",
                 a ? a->replica : kw->target);
    }
    if (j->op == OP_READ) {
        read_done(kw, j, rc);
    } else if (a && a->cancelled) {
        act_free(a);
    } else if (a) {
        if (rc < 0) {
            snprintf(a->err, sizeof a->err, "%s", j->err);
            act_finish(a, 0);
        } else if (j->op == OP_RESOLVE) {
            a->pod = j->pod;
            a->phase = PH_WAIT;
            act_step(a);
        } else if (j->op == OP_GROW) {
            a->phase = PH_WAIT; /* the reads claim its pod and bring it Online */
        } else {
            act_finish(a, 1);
        }
    }
    job_free(j);
    if (resolved) resolve_next(kw);
    kw_unref(kw);
    if (fseen && fsink->fenced) fsink->fenced(fcp, fwl, fseen, fwhat);
}

/* ---- reads: the inventory and the polls ------------------------------------------------- */

static void add_claim(void *arg, const exec_pending *p) {
    kx_job *j = arg;
    if (strcmp(p->action, "start") != 0) return;
    j->adopt = 0;
    if (j->nclaims >= KX_MAX_CLAIMS) return;
    kx_act *a = p->handle;
    if (a->phase != PH_WAIT) return; /* its replicas are not raised yet */
    snprintf(j->claims[j->nclaims++], K8S_REPLICA_MAX, "%s", p->replica);
}

static void read_start(kx_wl *kw, int inventory) {
    if (kw->reading || kw->x->stopping) return;
    kx_job *j = job_new(kw, OP_READ, NULL);
    if (!j) return;
    j->inventory = inventory;
    j->adopt = 1;
    j->claims = calloc(KX_MAX_CLAIMS, sizeof *j->claims);
    if (!j->claims) {
        job_free(j);
        return;
    }
    exec_tracker_each(kw->x->tr, kw->name, add_claim, j);
    kw->reading = 1;
    if (job_submit(j) < 0) kw->reading = 0;
}

typedef struct start_find {
    const char *replica;
    exec_pending found;
    int n;
} start_find;

static void find_start(void *arg, const exec_pending *p) {
    start_find *s = arg;
    if (!strcmp(p->action, "start") && !strcmp(p->replica, s->replica)) {
        s->found = *p;
        s->n++;
    }
}

__attribute__((format(printf, 5, 6))) static void report(kx_wl *kw, const char *id, exec_rstate st,
                                                         int64_t since_ms, const char *fmt, ...) {
    exec_replica r = {.state = st, .since_ms = since_ms > 0 ? since_ms : tide_now_wall_ms()};
    snprintf(r.id, sizeof r.id, "%s", id);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.why, sizeof r.why, fmt, ap);
    va_end(ap);
    kw->x->sink->replica(kw->x->cp, kw->name, kw->generation, &r);
}

static int busy(kx_wl *kw, const char *id) {
    return exec_tracker_busy(kw->x->tr, kw->name, id);
}

static void read_done(kx_wl *kw, kx_job *j, int rc) {
    kx *x = kw->x;
    kw->reading = 0;
    kw->read_ms = k8s_now_ms();
    if (!kw_live(kw)) return;
    if (rc < 0) {
        snprintf(kw->read_err, sizeof kw->read_err, "%s", j->err);
        log_warn("k8s-exec", "%s: reading %s %s/%s: %s", kw->name, k8s_scalable_kind(kw->kind),
                 kw->ns, kw->target, j->err);
        if (j->inventory && kw->want_inventory) {
            kw->want_inventory = 0;
            x->sink->inventory_done(x->cp, kw->name, kw->generation, 0, kw->read_err);
        }
        return;
    }
    kw->read_err[0] = 0;
    k8s_fleet old = kw->fleet;
    kw->fleet = j->fleet;
    memset(&j->fleet, 0, sizeof j->fleet);
    if (j->inventory && kw->want_inventory) {
        int counts[6] = {0};
        for (size_t i = 0; i < kw->fleet.n; i++) {
            const k8s_pod *p = &kw->fleet.pods[i];
            k8s_tstate st = k8s_pod_tstate(p);
            if (p->terminating || st == K8S_TS_DELETING) continue;
            report(kw, k8s_pod_replica(p), rstate(st), p->since_ms, "pod %.120s", p->name);
            counts[st]++;
        }
        kw->inventoried = 1;
        kw->want_inventory = 0;
        char text[300];
        snprintf(text, sizeof text,
                 "%s %.63s/%.80s read from the API server: replicas %d, %d online, %d cutoff, "
                 "%d standby, %d starting",
                 k8s_scalable_kind(kw->kind), kw->ns, kw->target, kw->fleet.scale.spec_replicas,
                 counts[K8S_TS_ONLINE], counts[K8S_TS_CUTOFF], counts[K8S_TS_STANDBY],
                 counts[K8S_TS_STARTING]);
        log_info("k8s-exec", "%s: inventory: %s", kw->name, text);
        x->sink->inventory_done(x->cp, kw->name, kw->generation, 1, text);
    } else if (kw->inventoried) {
        /* changes made outside Tide: pods someone else added, pods deleted by someone else */
        for (size_t i = 0; i < kw->fleet.n; i++) {
            const k8s_pod *p = &kw->fleet.pods[i];
            k8s_tstate st = k8s_pod_tstate(p);
            if (p->terminating || st == K8S_TS_DELETING || st == K8S_TS_STARTING ||
                busy(kw, k8s_pod_replica(p)) || k8s_fleet_find(&old, k8s_pod_replica(p)))
                continue;
            report(kw, k8s_pod_replica(p), rstate(st), p->since_ms, "adopted: pod %.120s", p->name);
        }
        for (size_t i = 0; i < old.n; i++) {
            const k8s_pod *p = &old.pods[i];
            k8s_tstate st = k8s_pod_tstate(p);
            if (p->terminating || st == K8S_TS_DELETING || busy(kw, k8s_pod_replica(p)) ||
                k8s_fleet_find(&kw->fleet, k8s_pod_replica(p)))
                continue;
            report(kw, k8s_pod_replica(p), EXEC_RS_GONE, 0, "pod %.120s deleted outside Tide",
                   p->name);
        }
    }
    k8s_fleet_free(&old);
    for (int i = 0; i < j->nonline; i++) {
        start_find sf = {.replica = j->online[i]};
        exec_tracker_each(x->tr, kw->name, find_start, &sf);
        if (sf.n) {
            kx_act *a = sf.found.handle;
            const k8s_pod *p = k8s_fleet_find(&kw->fleet, a->replica);
            if (p) a->pod = *p;
            act_finish(a, 1);
        } else if (kw->inventoried && !j->inventory) { /* adopted while starting */
            report(kw, j->online[i], EXEC_RS_ONLINE, 0, "%s", "its pod is ready");
        }
    }
}

/* ---- the executor ------------------------------------------------------------------------- */

static kx_wl *kw_find(kx *x, const char *name) {
    for (kx_wl *kw = x->head; kw; kw = kw->next)
        if (!strcmp(kw->name, name)) return kw;
    return NULL;
}

static void kw_unlink(kx *x, kx_wl *kw) {
    exec_tracker_forget(x->tr, kw->name, 0, on_forget, NULL);
    for (kx_wl **pp = &x->head; *pp; pp = &(*pp)->next)
        if (*pp == kw) {
            *pp = kw->next;
            break;
        }
    kw->linked = 0;
    kw_unref(kw);
}

/* kw for (spec, generation): a new one when the workload was re-applied. NULL on ENOMEM. */
static kx_wl *kw_for(kx *x, const workload_spec *spec, uint64_t generation) {
    kx_wl *kw = kw_find(x, spec->name);
    if (kw && kw->generation == generation) return kw;
    if (kw) kw_unlink(x, kw);
    kw = calloc(1, sizeof *kw);
    if (!kw) return NULL;
    kw->x = x;
    kw->refs = 1;
    kw->linked = 1;
    snprintf(kw->name, sizeof kw->name, "%s", spec->name);
    kw->generation = generation;
    kw->kind = spec->target.kind == WL_TARGET_STATEFULSET ? K8S_STATEFULSET : K8S_DEPLOYMENT;
    snprintf(kw->ns, sizeof kw->ns, "%s", spec->target.namespace_);
    snprintf(kw->target, sizeof kw->target, "%s", spec->target.name);
    kw->warmup = spec->target.warmup;
    kw->owner = KX_OWNER_UNKNOWN;
    kw->next = x->head;
    x->head = kw;
    x->nkw++;
    return kw;
}

/* The inventory asked for, once the owner is known: refused, or the fleet read. */
static void inventory_go(kx_wl *kw) {
    kx *x = kw->x;
    if (!kw->want_inventory || kw->owner == KX_OWNER_UNKNOWN) return;
    if (kw->owner != 0) {
        kw->want_inventory = 0;
        x->sink->inventory_done(x->cp, kw->name, kw->generation, 0, kw->owner_reason);
        return;
    }
    read_start(kw, 1);
}

static void owner_done(void *arg, int rc, const char *reason) {
    kx_wl *kw = arg;
    kw->owner_busy = 0;
    if (kw_live(kw)) {
        int was = kw->owner;
        kw->owner = rc == 0 ? 0 : rc == 1 ? 1 : -1;
        kw->owner_at = k8s_now_ms();
        snprintf(kw->owner_reason, sizeof kw->owner_reason, "%s", reason ? reason : "");
        if (was != kw->owner && kw->owner != 0)
            log_warn("k8s-exec", "%s: %s", kw->name, kw->owner_reason);
        else if (was != kw->owner && was != KX_OWNER_UNKNOWN)
            log_info("k8s-exec", "%s: no other scaler owns %s %s/%s any more: Auto acts again",
                     kw->name, k8s_scalable_kind(kw->kind), kw->ns, kw->target);
        inventory_go(kw);
    }
    kw_unref(kw);
}

static void owner_check(kx_wl *kw) {
    if (kw->owner_busy) return;
    char err[256];
    kw->refs++;
    kw->owner_busy = 1;
    if (k8s_check_owner(kw->x->cp, kw->kind == K8S_STATEFULSET, kw->ns, kw->target, owner_done, kw,
                        err, sizeof err) < 0) {
        kw->owner_busy = 0;
        kw->refs--;
        log_warn("k8s-exec", "%s: cannot check the target's scalers: %s", kw->name, err);
    }
}

static int kx_inventory(void *state, const workload_spec *spec, uint64_t generation, char *err,
                        size_t errlen) {
    kx *x = state;
    kx_wl *kw = kw_for(x, spec, generation);
    if (!kw) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    kw->want_inventory = 1;
    if (kw->owner == KX_OWNER_UNKNOWN || k8s_now_ms() - kw->owner_at >= KX_OWNER_RECHECK_MS)
        owner_check(kw);
    inventory_go(kw);
    return 0;
}

static void kx_tick(void *state, const workload_spec *spec, uint64_t generation, int64_t now_ms) {
    (void)now_ms;
    kx *x = state;
    kx_wl *kw = kw_find(x, spec->name);
    if (!kw || kw->generation != generation || !kw->inventoried) return;
    if (k8s_now_ms() - kw->owner_at >= KX_OWNER_RECHECK_MS) owner_check(kw);
    read_start(kw, 0); /* one read per sync: changes made outside Tide, marked pods still there */
}

static int kx_apply(void *state, const workload_spec *spec, const exec_request *rq, char *err,
                    size_t errlen) {
    kx *x = state;
    kx_wl *kw = kw_find(x, spec->name);
    if (!kw || kw->generation != rq->generation || !kw->inventoried) {
        snprintf(err, errlen, "%s generation %llu: no inventory taken yet", rq->workload,
                 (unsigned long long)rq->generation);
        return -EAGAIN;
    }
    if (kw->owner != 0) {
        snprintf(err, errlen, "%s", kw->owner_reason[0] ? kw->owner_reason : "owner unknown");
        return -EPERM;
    }
    if (rq->op < 0 || rq->op >= EXEC_OP_COUNT) {
        snprintf(err, errlen, "unknown action %d", (int)rq->op);
        return -EINVAL;
    }
    kx_act *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    a->kw = kw;
    kw->refs++;
    a->rq = *rq;
    a->kind = rq->op;
    a->t0 = k8s_now_ms();
    a->phase = PH_WAIT;
    snprintf(a->replica, sizeof a->replica, "%s", rq->replica);
    int rc = exec_tracker_begin(
        x->tr, kw->name, kw->generation, rq->replica, exec_op_name(rq->op), a->t0,
        rq->op == EXEC_START      ? KX_START_TIMEOUT_MS
        : rq->op == EXEC_ACTIVATE ? KX_ACTION_TIMEOUT_MS + hb_warmup_ms(&kw->warmup)
                                  : KX_ACTION_TIMEOUT_MS,
        a, &a->seq);
    if (rc < 0) {
        snprintf(err, errlen, "%s %s: %s", exec_op_name(rq->op), rq->replica,
                 rc == -EBUSY ? "the replica has an action under way" : strerror(-rc));
        act_free(a);
        return rc;
    }
    /* accepted: from here the outcome is reported exactly once through the sink */
    if (rq->op != EXEC_START) {
        resolve_start(a);
        return 0;
    }
    kx_job *j = job_new(kw, OP_GROW, a);
    if (!j) {
        exec_tracker_complete(x->tr, kw->name, kw->generation, a->seq, NULL);
        act_free(a);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    job_submit(j);
    return 0;
}

static void kx_forget(void *state, const char *workload, uint64_t keep_generation) {
    kx *x = state;
    kx_wl *kw = kw_find(x, workload);
    /* what runs (a job, an agent's action) runs to its end; its outcome is not reported */
    if (kw && kw->generation != keep_generation) kw_unlink(x, kw);
}

static cJSON *kx_replicas(void *state, const char *workload) {
    kx *x = state;
    kx_wl *kw = kw_find(x, workload);
    if (!kw) return NULL;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < kw->fleet.n; i++) {
        const k8s_pod *p = &kw->fleet.pods[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddStringToObject(o, "id", k8s_pod_replica(p));
        cJSON_AddStringToObject(o, "state",
                                p->terminating ? "Terminating"
                                               : exec_rstate_name(rstate(k8s_pod_tstate(p))));
        cJSON_AddNumberToObject(o, "since", (double)p->since_ms);
        cJSON_AddStringToObject(o, "pod", p->name);
        cJSON_AddStringToObject(o, "node", p->node);
        cJSON_AddStringToObject(o, "uid", p->uid);
        if (p->ip[0]) cJSON_AddStringToObject(o, "address", p->ip);
        if (p->port > 0) cJSON_AddNumberToObject(o, "port", p->port);
        cJSON_AddBoolToObject(o, "ready", p->ready);
        if (p->ordinal >= 0) cJSON_AddNumberToObject(o, "ordinal", p->ordinal);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static void on_expired(void *arg, const exec_pending *p) {
    (void)arg;
    kx_act *a = p->handle;
    kx_wl *kw = a->kw;
    snprintf(a->err, sizeof a->err, "no outcome within %lld ms",
             (long long)(p->deadline_ms - p->started_ms));
    if (kw_live(kw)) act_report(a, 0);
    act_drop(a);
}

static void on_poll(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)loop;
    (void)revents;
    kx *x = (kx *)((char *)t - offsetof(kx, poll));
    exec_tracker_expire(x->tr, k8s_now_ms(), on_expired, NULL);
    for (kx_wl *kw = x->head; kw; kw = kw->next) {
        if (!kw->inventoried || kw->reading) continue;
        int waiting = 0;
        for (size_t i = 0; i < kw->fleet.n && !waiting; i++)
            waiting = !kw->fleet.pods[i].terminating &&
                      k8s_pod_tstate(&kw->fleet.pods[i]) == K8S_TS_DELETING;
        if (!waiting) waiting = exec_tracker_count(x->tr, kw->name) > 0;
        if (waiting) read_start(kw, 0);
    }
}

static const char *kx_unusable(void *state, const workload_spec *spec) {
    (void)state;
    (void)spec;
    return k8s_configured() ? NULL
                            : "no Kubernetes API configured (k8s_kubeconfig, k8s_api_url, or a "
                              "pod's service account): planned as Preview";
}

static int kx_start(struct controlplane *cp, const exec_sink *sink, wl_target_kind kind,
                    void **state, char *err, size_t errlen) {
    kx *x = calloc(1, sizeof *x);
    if (x) x->tr = exec_tracker_new(KX_MAX_PENDING);
    if (!x || !x->tr) {
        free(x);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    x->cp = cp;
    x->sink = sink;
    x->kind = kind;
    snprintf(x->gate, sizeof x->gate, "%s",
             cp->cfg.k8s_readiness_condition ? cp->cfg.k8s_readiness_condition : "");
    ev_timer_init(&x->poll, on_poll, KX_POLL_S, KX_POLL_S);
    ev_timer_start(cp->loop, &x->poll);
    if (k8s_configured())
        log_info("k8s-exec", "%s workloads in Auto act through %s (%s)", wl_target_kind_name(kind),
                 k8s_client_server(k8s_client_of(cp)), k8s_client_source(cp));
    *state = x;
    return 0;
}

static int kx_start_deployment(struct controlplane *cp, const exec_sink *sink, void **state,
                               char *err, size_t errlen) {
    return kx_start(cp, sink, WL_TARGET_DEPLOYMENT, state, err, errlen);
}

static int kx_start_statefulset(struct controlplane *cp, const exec_sink *sink, void **state,
                                char *err, size_t errlen) {
    return kx_start(cp, sink, WL_TARGET_STATEFULSET, state, err, errlen);
}

static void kx_stop(void *state) {
    kx *x = state;
    ev_timer_stop(x->cp->loop, &x->poll);
    x->stopping = 1;
    while (x->head)
        kw_unlink(x, x->head);
    if (x->nkw == 0)
        kx_free(x);
    else
        x->stopping = 2; /* the last job's answer frees it */
}

static const executor kx_deployment = {
    .name = "kubernetes-deployment",
    .kind = WL_TARGET_DEPLOYMENT,
    .start = kx_start_deployment,
    .stop = kx_stop,
    .unusable = kx_unusable,
    .inventory = kx_inventory,
    .apply = kx_apply,
    .forget = kx_forget,
    .tick = kx_tick,
    .replicas = kx_replicas,
};

static const executor kx_statefulset = {
    .name = "kubernetes-statefulset",
    .kind = WL_TARGET_STATEFULSET,
    .start = kx_start_statefulset,
    .stop = kx_stop,
    .unusable = kx_unusable,
    .inventory = kx_inventory,
    .apply = kx_apply,
    .forget = kx_forget,
    .tick = kx_tick,
    .replicas = kx_replicas,
};

EXECUTOR_REGISTER(k8s_deployment, &kx_deployment)
EXECUTOR_REGISTER(k8s_statefulset, &kx_statefulset)
