/* workloads.h: the live side of workloads in the control plane (the "workloads" module): the
 * applied specs (kept by persist.c in <data_dir>/workloads/NAME.yaml, reloaded at start), one
 * controller each that sync.c runs every syncPeriodSeconds on what observe.c reads, the ops
 * commands of workload_ops.c, and the executors that carry the actions out.
 *
 * Executors (exec/executor.h: HAProxyBackend replica processes through agents, Kubernetes)
 * register per target kind. A workload whose target kind has no executor is planned in
 * Preview (it records what it would do); describe says so. A workload with an executor plans
 * nothing until the executor's inventory of its replicas is in (nothing is started twice after
 * a restart or a re-apply). */
#ifndef TIDE_WORKLOADS_H
#define TIDE_WORKLOADS_H

#include "scaling/controller.h"
#include "spec/workload.h"
#include "workloads/observe.h"

#include <stdint.h>

struct controlplane;

/* The executors (exec/executor.h) are started with the module; an executor reports through
 * the sink the module gives it (workloads.c): outcomes go to the planner of the generation
 * they were decided under, found replicas to the planner of the generation applied now. */

/* ---- inside workloads/ ---------------------------------------------------------------- */

#define WORKLOAD_ACTIONS_KEPT 64

typedef struct workload_action_rec {
    int64_t t;
    planner_action a;
    char note[64];
} workload_action_rec;

/* The history the last successful fit used. */
typedef struct workload_fit {
    int64_t at;         /* controller time of the fit */
    int64_t start, end; /* first and last minute, metrics' own clock */
    size_t points;
    int ok, failed;
    char source[12];
} workload_fit;

/* Decision events kept while an entry is dormant (its planner released). */
#define WORKLOAD_DORMANT_EVENTS 32

typedef struct workload_entry {
    struct workload_entry *next;
    workload_spec spec; /* as applied */
    /* The heavy state (controller: portrait engine, models, planner, each with its spec copy;
     * capacity model; last observation; view) exists only while this control plane may own
     * the workload: always without etcd; with etcd from the moment it owns the workload until
     * another member does (workload_owned_here builds and releases it). Without it the entry
     * is "dormant": spec, YAML, fencing state and the kept events answer list and describe. */
    const workload_spec *run; /* the spec as the controller runs it (Preview while no executor
                               * exists): the controller's own copy; NULL when dormant */
    wl_mode eff_mode;         /* run's mode, also when dormant */
    char *yaml;
    uint64_t generation;
    int64_t applied_ms;
    controller *ctl;     /* portrait engine, planner and the last portrait; NULL when dormant */
    cap_model *cap;      /* the capacity model the engine uses (owned here) */
    planner_event *kept; /* dormant: the newest events of the released planner (a ring of
                          * WORKLOAD_DORMANT_EVENTS), replayed into the next one */
    uint64_t nkept;      /* events noted into kept (count; the ring holds the newest) */
    int64_t next_sync;
    int training; /* a fit of its predictive models is running on a worker thread */
    char observe[512];
    observe_result *last; /* the last observation (failed reads filled from the one before) */
    observe_metric reads[OBSERVE_N];
    char prom_err[256]; /* Prometheus trouble of the last sync, "" none */
    int fetching;       /* a fetch from Prometheus is under way on a worker thread */
    int stalled;        /* ... and overran a sync period */
    int64_t fetch_started;
    int64_t fetch_ms; /* how long the last finished fetch took, -1 none */
    workload_fit fit;
    workload_action_rec acts[WORKLOAD_ACTIONS_KEPT];
    uint64_t nacts;
    struct workload_view *view; /* counters and replica history for /metrics and /ui
                                 * (workload_view.c), NULL until the first sync */
    int inventory;              /* executor inventory: 0 not asked, 1 under way, 2 done */
    int from_cluster;           /* applied from a Workload custom resource (crd.c), not saved */
    char inventory_err[200];    /* why the last inventory failed, "" none */
    int64_t inventory_at;       /* wall ms it was last asked */
    /* Fencing (README "Fencing"): the token every action for this workload carries, 0 = no
     * high availability (unfenced). High availability sets it to the revision of the
     * workload's ownership key (workloads_set_fence). */
    uint64_t fence;
    uint64_t fenced_by;       /* the newer token a refusal showed (0 none): acting stops until
                                 fence is raised above it */
    uint64_t fenced_refusals; /* actions the fleet refused by fencing, since applied */
    /* High availability (cluster/cluster.h) sets fence to the etcd ownership key's revision
     * (0 = no HA, or not owned here). */
    int acting;           /* cluster: it acted at the last sync (for the step-down event) */
    char not_acting[300]; /* cluster: why not, "" when acting */
} workload_entry;

struct sync_loop;
/* The hook of workloads_set_fenced_hook (below). */
typedef void (*workloads_fenced_fn)(void *arg, struct controlplane *cp, const char *name,
                                    uint64_t seen);

/* The module's state (cp->workloads). */
struct cp_workloads {
    struct controlplane *cp;
    workload_entry *head;
    struct sync_loop *sync; /* sync.c: the tick and the worker jobs */
    struct crd *crd;        /* crd.c: Workload custom resources, NULL without Kubernetes */
    char dir[1024];
    struct work_pool *apply_pool; /* workload-apply: parse and store off the loop */
    int applies_pending;          /* submitted, not yet answered */
    workloads_fenced_fn fenced_hook;
    void *fenced_arg;
    /* specs from etcd waiting for the apply thread (a resync brings them all at once) */
    struct spec_pending *pend_head, **pend_tail;
    int pend_inflight;  /* of them on the apply pool */
    uint64_t decisions; /* controller steps run (syncs decided), since start */
};

/* ---- fencing (for high availability; README "Fencing") --------------------------------- */

/* Sets the fencing token of workload `name` (the revision of its ownership key; 0 = unfenced).
 * A token above the one a refusal showed lets the workload act again. 0, or -ENOENT. */
int workloads_set_fence(struct controlplane *cp, const char *name, uint64_t token);
/* The token of workload name's actions now (0: unknown workload or unfenced). */
uint64_t workloads_fence(struct controlplane *cp, const char *name);
/* An action of workload `name` was refused by fencing: the fleet holds token `seen`, newer
 * than ours, so another control plane owns the workload. Records a decision event and the
 * counter (tide_workload_fenced_total), stops acting for the workload until its token is
 * raised above seen, and calls the hook below. what: the refused step, for the event. */
void workloads_fenced(struct controlplane *cp, const char *name, uint64_t seen, const char *what);
/* Called by workloads_fenced after the workload stopped acting ("I am no longer the owner"):
 * high availability installs it to give the workload up. One hook; NULL removes it. */
void workloads_set_fenced_hook(struct controlplane *cp, workloads_fenced_fn fn, void *arg);
/* A re-applied spec's new entry keeps the fencing state of the one it replaces (ownership
 * does not change with the spec). */
void workload_fence_inherit(workload_entry *e, const workload_entry *old);
/* Whether e may act now: 1, or 0 with why filled (fenced by a newer owner). */
int workload_may_act(const workload_entry *e, char *why, size_t len);

/* With etcd (cluster/): may this control plane train, decide and act for e now? Notes the
 * step-downs and take-overs as decision events; a new ownership (a new fencing token) starts
 * the workload over from the executor's inventory. Without etcd: always 1. */
int workload_owned_here(struct cp_workloads *w, workload_entry *e, int64_t now);

/* With etcd: registers the spec sink of cluster/ (specs applied from etcd, replayed now). */
void workloads_cluster_attach(struct cp_workloads *w);
/* Frees the specs from etcd still waiting to be parsed (at stop). */
void workloads_pending_free(struct cp_workloads *w);
/* Drops workload name (deleted): its executor forgets it, its replicas stay as they are. */
void workloads_remove(struct cp_workloads *w, const char *name);

/* Spec applies parsed or stored off the loop right now, or waiting to be (tidectl status). */
int workloads_applies_pending(struct controlplane *cp);
/* Controller steps run since start (every sync of a workload this control plane acts for). */
uint64_t workloads_decisions(struct controlplane *cp);

/* Why a spec in Auto mode is run as Preview (no executor for its kind, an HAProxyBackend
 * without a replica template), or NULL when it can be acted on. */
const char *workload_preview_reason(const workload_spec *spec);
/* Does the entry's target have a running executor (inventory and actions)? */
int workload_has_executor(struct cp_workloads *w, const workload_entry *e);
/* A decision record (the recent-actions list of describe). */
void workload_record_action(workload_entry *e, int64_t now, const planner_action *a,
                            const char *note);
workload_entry *workload_find(struct cp_workloads *w, const char *name);
/* Builds the entry for a validated spec (Preview while its kind has no executor): with its
 * heavy state when built is 1, dormant when 0 (with etcd: built once owned here). NULL on
 * ENOMEM. */
workload_entry *workload_entry_new(const workload_spec *spec, const char *yaml, size_t len,
                                   int built);
void workload_entry_free(workload_entry *e);
/* Builds the heavy state of a dormant entry (a new controller on the run spec; the kept events
 * replayed into its planner). 0 or -ENOMEM. */
int workload_build(workload_entry *e);
/* Releases it (the events kept): the entry goes dormant. */
void workload_release(workload_entry *e);
/* The decision events of e, built or dormant: their count (all ever noted, as
 * planner_event_count) and the i-th (0, or -ENOENT when no longer kept). */
uint64_t workload_event_count(const workload_entry *e);
int workload_event_at(const workload_entry *e, uint64_t i, planner_event *ev);
/* Notes an event (into the planner, or the kept events when dormant). */
void workload_note(workload_entry *e, int64_t now, const char *kind, const char *text);

#endif
