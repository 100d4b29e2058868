/* workloads.c: the workloads module: applied specs and their entries, the executors, start
 * and stop (see workloads.h). */
#include "workloads/workloads.h"

#include "cp.h"
#include "cluster/cluster.h"
#include "exec/executor.h"
#include "log.h"
#include "query/prom_module.h"
#include "workloads/crd.h"
#include "workloads/persist.h"
#include "work.h"
#include "workloads/sync.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void workload_entry_free(workload_entry *e) {
    if (!e) return;
    controller_free(e->ctl);
    cap_free(e->cap);
    observe_free(e->last);
    free(e->view);
    free(e->kept);
    free(e->yaml);
    free(e);
}

workload_entry *workload_find(struct cp_workloads *w, const char *name) {
    for (workload_entry *e = w->head; e; e = e->next)
        if (strcmp(e->spec.name, name) == 0) return e;
    return NULL;
}

const char *workload_preview_reason(const workload_spec *spec) {
    return exec_unusable(NULL, spec);
}

int workload_has_executor(struct cp_workloads *w, const workload_entry *e) {
    return exec_have(w->cp, e->spec.target.kind) && !exec_unusable(w->cp, &e->spec);
}

void workload_record_action(workload_entry *e, int64_t now, const planner_action *a,
                            const char *note) {
    workload_action_rec *r = &e->acts[e->nacts++ % WORKLOAD_ACTIONS_KEPT];
    r->t = now;
    r->a = *a;
    snprintf(r->note, sizeof r->note, "%s", note);
}

workload_entry *workload_entry_new(const workload_spec *spec, const char *yaml, size_t len,
                                   int built) {
    workload_entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->spec = *spec;
    e->eff_mode = workload_preview_reason(spec) ? WL_MODE_PREVIEW : spec->mode;
    e->yaml = malloc(len + 1);
    if (!e->yaml || (built && workload_build(e) < 0)) {
        workload_entry_free(e);
        return NULL;
    }
    memcpy(e->yaml, yaml, len);
    e->yaml[len] = 0;
    e->applied_ms = tide_now_wall_ms();
    e->fetch_ms = -1;
    return e;
}

int workload_build(workload_entry *e) {
    if (e->ctl) return 0;
    workload_spec *run = malloc(sizeof *run); /* ~200 KB: not on the stack */
    if (!run) return -ENOMEM;
    *run = e->spec;
    run->mode = e->eff_mode;
    controller *ctl = NULL;
    int rc = controller_new(&ctl, run, 0);
    free(run);
    if (rc < 0) return -ENOMEM;
    /* the decision history carries over from the dormant time */
    uint64_t n = e->nkept;
    for (uint64_t i = n > WORKLOAD_DORMANT_EVENTS ? n - WORKLOAD_DORMANT_EVENTS : 0;
         e->kept && i < n; i++) {
        const planner_event *ev = &e->kept[i % WORKLOAD_DORMANT_EVENTS];
        planner_note(controller_planner(ctl), ev->t, ev->kind, ev->text);
    }
    free(e->kept);
    e->kept = NULL;
    e->nkept = 0;
    e->ctl = ctl;
    e->run = controller_spec(ctl);
    return 0;
}

void workload_release(workload_entry *e) {
    if (!e->ctl) return;
    /* the newest events stay (describe and events answer from them) */
    const planner *pl = controller_planner(e->ctl);
    uint64_t n = planner_event_count(pl);
    free(e->kept);
    e->kept = malloc(WORKLOAD_DORMANT_EVENTS * sizeof *e->kept);
    e->nkept = 0;
    for (uint64_t i = n > WORKLOAD_DORMANT_EVENTS ? n - WORKLOAD_DORMANT_EVENTS : 0;
         e->kept && i < n; i++)
        if (planner_event_at(pl, i, &e->kept[e->nkept % WORKLOAD_DORMANT_EVENTS]) == 0) e->nkept++;
    controller_free(e->ctl);
    e->ctl = NULL;
    e->run = NULL;
    cap_free(e->cap);
    e->cap = NULL;
    observe_free(e->last);
    e->last = NULL;
    free(e->view);
    e->view = NULL;
    e->inventory = 0;
    e->inventory_err[0] = 0;
    e->next_sync = 0;
}

uint64_t workload_event_count(const workload_entry *e) {
    return e->ctl ? planner_event_count(controller_planner(e->ctl)) : e->nkept;
}

int workload_event_at(const workload_entry *e, uint64_t i, planner_event *ev) {
    if (e->ctl) return planner_event_at(controller_planner(e->ctl), i, ev);
    if (!e->kept || i >= e->nkept ||
        (e->nkept > WORKLOAD_DORMANT_EVENTS && i < e->nkept - WORKLOAD_DORMANT_EVENTS))
        return -ENOENT;
    *ev = e->kept[i % WORKLOAD_DORMANT_EVENTS];
    return 0;
}

void workload_note(workload_entry *e, int64_t now, const char *kind, const char *text) {
    if (e->ctl) {
        planner_note(controller_planner(e->ctl), now, kind, text);
        return;
    }
    if (!e->kept && !(e->kept = malloc(WORKLOAD_DORMANT_EVENTS * sizeof *e->kept))) return;
    planner_event *ev = &e->kept[e->nkept++ % WORKLOAD_DORMANT_EVENTS];
    ev->t = now;
    snprintf(ev->kind, sizeof ev->kind, "%s", kind);
    snprintf(ev->text, sizeof ev->text, "%s", text);
}

int workload_owned_here(struct cp_workloads *w, workload_entry *e, int64_t now) {
    struct controlplane *cp = w->cp;
    if (!cluster_enabled(cp)) return 1;
    uint64_t fence = 0;
    char why[sizeof e->not_acting];
    int may = cluster_may_act(cp, e->spec.name, &fence, why, sizeof why);
    char text[PLANNER_EVENT_TEXT];
    if (!may) {
        if (e->acting) {
            snprintf(text, sizeof text, "ownership: not acting from now on: %.200s", why);
            workload_note(e, now, "ownership", text);
            /* the cluster module logs the step-down once for all; this is per workload */
            log_debug("workloads", "%s: not acting: %s", e->spec.name, why);
            e->acting = 0;
        }
        /* another member owns it (or none, or our lease is gone): its heavy state goes, built
         * again if it comes back; a lease merely not proven keeps it (the same term may go on) */
        if (e->ctl && !cluster_owns(cp, e->spec.name)) workload_release(e);
        snprintf(e->not_acting, sizeof e->not_acting, "%s", why);
        snprintf(e->observe, sizeof e->observe, "not acting here: %.200s", why);
        return 0;
    }
    if (fence != e->fence || !e->ctl) {
        /* a new term of ownership (taken over, or taken again after the lease was lost), or
         * a dormant entry taken: what the planner knew may be stale; the fleet is rebuilt from
         * the executor's inventory and the models trained again, as after a restart. The
         * decision history stays: the events carry over to the new term's planner */
        controller *old = e->ctl;
        e->ctl = NULL;
        if (workload_build(e) < 0) {
            e->ctl = old;
            return 0;
        }
        if (old) { /* all of the old term's events, not only the ones a release keeps */
            const planner *opl = controller_planner(old);
            uint64_t nev = planner_event_count(opl);
            for (uint64_t i = nev > PLANNER_MAX_EVENTS ? nev - PLANNER_MAX_EVENTS : 0; i < nev;
                 i++) {
                planner_event ev;
                if (planner_event_at(opl, i, &ev) == 0)
                    planner_note(controller_planner(e->ctl), ev.t, ev.kind, ev.text);
            }
            controller_free(old);
            cap_free(e->cap);
            e->cap = NULL;
        }
        /* the executor's view of the fleet dates from an earlier term of this control plane
         * (kept across a re-apply): another owner may have acted since, and only the fleet
         * knows. Forgotten, so that the inventory below reads it again (what is under way
         * still runs to its end) */
        if (workload_has_executor(w, e)) exec_forget(cp, e->run->target.kind, e->spec.name, 0);
        e->inventory = 0;
        e->inventory_err[0] = 0;
        e->next_sync = 0;
        snprintf(text, sizeof text, "ownership: owned here with fencing token %llu%s",
                 (unsigned long long)fence, e->fence ? " (a new term)" : "");
        workload_note(e, now, "ownership", text);
        log_debug("workloads", "%s: owned here (fencing token %llu)", e->spec.name,
                  (unsigned long long)fence);
        workloads_set_fence(cp, e->spec.name, fence); /* clears a refusal's older fenced_by */
        e->acting = 1;
    } else if (!e->acting) {
        snprintf(text, sizeof text, "ownership: acting again (fencing token %llu)",
                 (unsigned long long)fence);
        workload_note(e, now, "ownership", text);
        log_debug("workloads", "%s: acting again (fencing token %llu)", e->spec.name,
                  (unsigned long long)fence);
        e->acting = 1;
    }
    e->not_acting[0] = 0;
    return 1;
}

/* ---- the executors' sink --------------------------------------------------------------- */

_Static_assert((int)EXEC_START == (int)ACT_START && (int)EXEC_DELETE == (int)ACT_DELETE,
               "exec_op follows planner_action_kind");
_Static_assert((int)EXEC_RS_STARTING == (int)REPLICA_STARTING &&
                   (int)EXEC_RS_GONE == (int)REPLICA_DELETED,
               "exec_rstate follows planner_state");

/* The entry of (workload, generation) when it is the one applied now, else NULL. */
static workload_entry *entry_of(struct controlplane *cp, const char *workload,
                                uint64_t generation) {
    if (!cp->workloads) return NULL;
    workload_entry *e = workload_find(cp->workloads, workload);
    /* a dormant entry (not owned here) takes no reports: the next owner inventories */
    return e && e->generation == generation && e->ctl ? e : NULL;
}

static void sink_done(struct controlplane *cp, const exec_result *r) {
    workload_entry *e = entry_of(cp, r->rq.workload, r->rq.generation);
    if (!e) return;
    int64_t now = tide_now_wall_ms() / 1000;
    planner *pl = controller_planner(e->ctl);
    planner_action_done(pl, r->rq.replica, (planner_action_kind)r->rq.op, r->ok, now);
    char text[PLANNER_EVENT_TEXT], note[64];
    if (r->ok && r->rq.op == EXEC_START && r->startup_ms >= 0)
        snprintf(text, sizeof text, "%s %.80s: done in %lld ms (replica start-up %lld ms)",
                 exec_op_name(r->rq.op), r->rq.replica, (long long)r->duration_ms,
                 (long long)r->startup_ms);
    else if (r->ok)
        snprintf(text, sizeof text, "%s %.80s: done in %lld ms", exec_op_name(r->rq.op),
                 r->rq.replica, (long long)r->duration_ms);
    else
        snprintf(text, sizeof text, "%s %.80s: failed after %lld ms: %.200s",
                 exec_op_name(r->rq.op), r->rq.replica, (long long)r->duration_ms,
                 r->error ? r->error : "?");
    /* an activate's warm-up (details "warmup": {requests, errors}, exec/hb_args.h) */
    const cJSON *wu = cJSON_GetObjectItemCaseSensitive(r->details, "warmup");
    const cJSON *wreq = cJSON_GetObjectItemCaseSensitive(wu, "requests");
    const cJSON *werr = cJSON_GetObjectItemCaseSensitive(wu, "errors");
    char warm[64] = "";
    if (cJSON_IsNumber(wreq) && cJSON_IsNumber(werr))
        snprintf(warm, sizeof warm, "; warm-up %.0f requests, %.0f errors", wreq->valuedouble,
                 werr->valuedouble);
    size_t tl = strlen(text);
    if (warm[0] && tl + strlen(warm) < sizeof text)
        snprintf(text + tl, sizeof text - tl, "%s", warm);
    planner_note(pl, now, r->ok ? "action" : "action-failed", text);
    snprintf(note, sizeof note, r->ok ? "done in %lld ms" : "failed after %lld ms",
             (long long)r->duration_ms);
    size_t nl = strlen(note);
    if (warm[0] && nl + strlen(warm) < sizeof note)
        snprintf(note + nl, sizeof note - nl, "%s", warm);
    for (uint64_t i = e->nacts > WORKLOAD_ACTIONS_KEPT ? e->nacts - WORKLOAD_ACTIONS_KEPT : 0;
         i < e->nacts; i++) {
        workload_action_rec *rec = &e->acts[i % WORKLOAD_ACTIONS_KEPT];
        if (rec->a.seq == r->rq.seq) snprintf(rec->note, sizeof rec->note, "%s", note);
    }
}

static void sink_replica(struct controlplane *cp, const char *workload, uint64_t generation,
                         const exec_replica *r) {
    workload_entry *e = entry_of(cp, workload, generation);
    if (!e) return;
    int64_t now = tide_now_wall_ms() / 1000;
    planner *pl = controller_planner(e->ctl);
    planner_set_state(pl, r->id, (planner_state)r->state, now);
    if (r->why[0]) {
        char text[PLANNER_EVENT_TEXT];
        snprintf(text, sizeof text, "%.80s %s: %.150s", r->id, exec_rstate_name(r->state), r->why);
        planner_note(pl, now, "replica", text);
    }
}

static void sink_inventory_done(struct controlplane *cp, const char *workload, uint64_t generation,
                                int ok, const char *why) {
    workload_entry *e = entry_of(cp, workload, generation);
    if (!e) return;
    int64_t now = tide_now_wall_ms() / 1000;
    if (!ok) { /* asked again at the next sync */
        e->inventory = 0;
        snprintf(e->inventory_err, sizeof e->inventory_err, "%.190s", why ? why : "failed");
        return;
    }
    e->inventory = 2;
    e->inventory_err[0] = 0;
    controller_adopt(e->ctl, 0, now); /* the replicas are the executor's, not observed ones */
    planner_counts c;
    planner_counts_get(controller_planner(e->ctl), &c);
    char text[PLANNER_EVENT_TEXT];
    snprintf(text, sizeof text,
             "inventory: %d online, %d starting, %d activating, %d cutoff, %d standby%s%.200s",
             c.online, c.starting, c.activating, c.cutoff, c.standby, why && why[0] ? "; " : "",
             why ? why : "");
    planner_note(controller_planner(e->ctl), now, "inventory", text);
}

/* ---- fencing ---------------------------------------------------------------------------- */

int workloads_set_fence(struct controlplane *cp, const char *name, uint64_t token) {
    workload_entry *e = cp->workloads ? workload_find(cp->workloads, name) : NULL;
    if (!e) return -ENOENT;
    if (token != e->fence && e->fenced_by && token > e->fenced_by) {
        char text[PLANNER_EVENT_TEXT];
        snprintf(text, sizeof text, "fencing token %llu (above %llu): acting again",
                 (unsigned long long)token, (unsigned long long)e->fenced_by);
        workload_note(e, tide_now_wall_ms() / 1000, "fencing", text);
        e->fenced_by = 0;
    }
    e->fence = token;
    return 0;
}

uint64_t workloads_fence(struct controlplane *cp, const char *name) {
    workload_entry *e = cp->workloads ? workload_find(cp->workloads, name) : NULL;
    return e ? e->fence : 0;
}

void workload_fence_inherit(workload_entry *e, const workload_entry *old) {
    e->fence = old->fence;
    e->fenced_by = old->fenced_by;
    e->fenced_refusals = old->fenced_refusals;
}

int workload_may_act(const workload_entry *e, char *why, size_t len) {
    if (!e->fenced_by || e->fence > e->fenced_by) return 1;
    snprintf(why, len,
             "fenced: the fleet holds token %llu, ours is %llu (another control plane owns "
             "the workload)",
             (unsigned long long)e->fenced_by, (unsigned long long)e->fence);
    return 0;
}

void workloads_set_fenced_hook(struct controlplane *cp, workloads_fenced_fn fn, void *arg) {
    if (!cp->workloads) return;
    cp->workloads->fenced_hook = fn;
    cp->workloads->fenced_arg = arg;
}

void workloads_fenced(struct controlplane *cp, const char *name, uint64_t seen, const char *what) {
    struct cp_workloads *w = cp->workloads;
    workload_entry *e = w ? workload_find(w, name) : NULL;
    if (!e) return;
    e->fenced_refusals++;
    int first = e->fenced_by == 0;
    if (seen > e->fenced_by) e->fenced_by = seen;
    char text[PLANNER_EVENT_TEXT];
    snprintf(text, sizeof text,
             "%.80s refused by fencing: the fleet holds token %llu, ours is %llu; not acting "
             "for this workload (another control plane owns it)",
             what ? what : "an action", (unsigned long long)seen, (unsigned long long)e->fence);
    workload_note(e, tide_now_wall_ms() / 1000, "fenced", text);
    if (first) log_warn("workloads", "%s: %s", name, text);
    if (w->fenced_hook) w->fenced_hook(w->fenced_arg, cp, name, seen);
}

static uint64_t sink_fence(struct controlplane *cp, const char *workload) {
    return workloads_fence(cp, workload);
}

static void sink_fenced(struct controlplane *cp, const char *workload, uint64_t seen,
                        const char *what) {
    workloads_fenced(cp, workload, seen, what);
}

static const exec_sink sink = {sink_done, sink_replica, sink_inventory_done, sink_fence,
                               sink_fenced};

/* A saved spec read back at start. */
static void load_one(void *ctx, const char *path, const char *yaml, size_t n) {
    struct cp_workloads *w = ctx;
    workload_spec *spec = malloc(sizeof *spec); /* ~200 KB: not on the stack */
    if (!spec) {
        log_error("workloads", "%s: not loaded: out of memory", path);
        return;
    }
    wl_problems probs;
    wl_problems_init(&probs);
    if (wl_parse(yaml, n, spec, &probs) < 0) {
        char *txt = wl_problems_format(&probs);
        log_error("workloads", "%s: not loaded, invalid: %s", path, txt ? txt : "");
        free(txt);
    } else if (workload_find(w, spec->name)) {
        log_error("workloads", "%s: not loaded, workload %s already loaded", path, spec->name);
    } else {
        workload_entry *e = workload_entry_new(spec, yaml, n, /* built = */ 1);
        if (e) {
            e->generation = 1;
            e->next = w->head;
            w->head = e;
            log_info("workloads", "loaded %s from %s", spec->name, path);
        }
    }
    wl_problems_fini(&probs);
    free(spec);
}

static int wl_start(struct controlplane *cp, char *err, size_t errlen) {
    struct cp_workloads *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "workloads: out of memory");
        return -ENOMEM;
    }
    w->cp = cp;
    w->pend_tail = &w->pend_head;
    snprintf(w->dir, sizeof w->dir, "%s/workloads", cp->cfg.data_dir);
    if (mkdir(w->dir, 0750) < 0 && errno != EEXIST) {
        int e = errno;
        snprintf(err, errlen, "workloads: %s: %s", w->dir, strerror(e));
        free(w);
        return -e;
    }
    if (!cluster_enabled(cp)) /* with etcd, the specs live there (and come by its watch) */
        persist_load(w->dir, load_one, w);
    /* one thread: applies are stored in the order they came; 16 waiting specs of at most
     * 1 MiB bound the memory a burst of applies can hold */
    int rc = work_pool_new(cp->loop, /* threads = */ 1, /* queued = */ 16, &w->apply_pool);
    if (rc < 0)
        snprintf(err, errlen, "workloads: cannot start the apply worker: %s", strerror(-rc));
    cp->workloads = w; /* the executors report through it */
    if (rc == 0) rc = exec_registry_start(cp, &sink, err, errlen);
    if (rc == 0) {
        rc = sync_start(w, err, errlen);
        if (rc < 0) exec_registry_stop(cp);
    }
    if (rc == 0 && (rc = crd_start(w, err, errlen)) < 0) { /* Workload custom resources */
        sync_stop(w);
        exec_registry_stop(cp);
    }
    if (rc < 0) {
        cp->workloads = NULL;
        while (w->head) {
            workload_entry *e = w->head;
            w->head = e->next;
            workload_entry_free(e);
        }
        work_pool_free(w->apply_pool);
        free(w);
        return rc;
    }
    cp->workloads = w;
    if (cluster_enabled(cp)) workloads_cluster_attach(w);
    return 0;
}

static void wl_stop(struct controlplane *cp) {
    struct cp_workloads *w = cp->workloads;
    if (!w) return;
    cluster_set_spec_sink(cp, NULL);
    workloads_pending_free(w);
    crd_stop(w);
    work_pool_free(w->apply_pool); /* applies under way finish (and reply) first */
    sync_stop(w);
    exec_registry_stop(cp);
    while (w->head) {
        workload_entry *e = w->head;
        w->head = e->next;
        workload_entry_free(e);
    }
    free(w);
    cp->workloads = NULL;
}

/* after the Kubernetes client: the Deployment/StatefulSet executor acts through it */
CP_MODULE_AFTER(workloads, "workloads", PROM_MODULE_NAME ", k8s, " CLUSTER_MODULE_NAME, wl_start,
                wl_stop)
