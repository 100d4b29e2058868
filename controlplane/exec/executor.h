/* executor.h: the one interface between the workloads module (the planner's decisions) and the
 * executors that carry them out on a real fleet, one per target kind (HAProxyBackend replica
 * processes through agents: exec/haproxy_backend.c; Kubernetes Deployment/StatefulSet through
 * the API server). Each executor is a module with its own state; the registry below starts
 * them, routes requests by target kind and carries their reports back.
 *
 * The contract, for every executor:
 *   start      once, when the workloads module starts: the executor sets up its state (it may
 *              read what it persisted under cp->cfg.data_dir) and keeps the sink for reports.
 *   inventory  a workload was applied (created, re-applied: a new generation) or loaded at
 *              start: the executor finds the replicas that exist (what the fleet reports plus
 *              its own persisted record), reports each with sink->replica and then calls
 *              sink->inventory_done. Until then the workloads module plans nothing for that
 *              generation, so nothing is started twice. Level-triggered: the same call after a
 *              restart converges on what really runs.
 *   apply      one planner action (exec_request). Never blocks the loop: returns 0 when
 *              accepted and reports the outcome later, exactly once, with sink->done, or
 *              returns -errno with err (nothing was done, done is not called).
 *   forget     the workload was re-applied (keep_generation = the new generation: actions of
 *              older generations are no longer reported) or deleted (keep_generation = 0:
 *              everything about it goes; the replicas stay as they are). What is under way on
 *              the fleet runs to its end so that nothing is orphaned; the executor's own view
 *              of the replica follows the real outcome and is reported to the generation now
 *              applied with sink->replica, never as a done of an older generation.
 *   stop       once, at shutdown: cancel what is under way, free the state. Replicas keep
 *              running.
 *
 * Completions are matched by (workload, generation, seq) (exec/tracker.h), never by replica
 * name: a late answer of an older generation never lands on a replica of the same name in a
 * newer one. Replica ids are real names (TIDE_REPLICA_ID_MAX: a pod name fits).
 *
 * Everything here runs on the control plane's loop thread. */
#ifndef TIDE_EXECUTOR_H
#define TIDE_EXECUTOR_H

#include "exec/tracker.h"
#include "spec/workload.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

struct controlplane;

/* What a request asks (the planner's action kinds, same order: planner_action_kind). */
typedef enum exec_op {
    EXEC_START = 0, /* create a new replica: cold start, ready, then traffic on */
    EXEC_ACTIVATE,  /* standby -> online: thaw, warm up, traffic on */
    EXEC_RESTORE,   /* cutoff -> online: traffic on again */
    EXEC_CUTOFF,    /* online -> cutoff: traffic off, in-flight to zero */
    EXEC_STANDBY,   /* cutoff -> standby: freeze, reclaim memory */
    EXEC_DELETE,    /* cutoff/standby -> gone: stop, grace, kill, clean up */
    EXEC_OP_COUNT
} exec_op;

/* A replica's state as the executor finds it (the planner's states, same order:
 * planner_state; EXEC_RS_GONE = deleted or lost). */
typedef enum exec_rstate {
    EXEC_RS_STARTING = 0,
    EXEC_RS_ONLINE,
    EXEC_RS_CUTOFF,
    EXEC_RS_STANDBY,
    EXEC_RS_ACTIVATING,
    EXEC_RS_GONE,
} exec_rstate;

const char *exec_op_name(exec_op op);         /* "start", "activate", ... */
const char *exec_rstate_name(exec_rstate st); /* "Starting", "Online", ... */

/* One action to carry out, decided under (workload, generation). */
typedef struct exec_request {
    char workload[EXEC_WORKLOAD_MAX];
    uint64_t generation; /* > 0 */
    uint64_t seq;        /* the caller's id of the action, echoed in done */
    exec_op op;
    char replica[TIDE_REPLICA_ID_MAX + 1]; /* tide_replica_id_valid */
    char reason[160];
} exec_request;

/* The outcome of an accepted request. */
typedef struct exec_result {
    exec_request rq;
    int ok;
    int64_t duration_ms;  /* apply -> outcome */
    int64_t startup_ms;   /* EXEC_START ok: the replica's own measured start-up (-1 unknown) */
    const char *error;    /* ok = 0: why, naming the step ("replica-start on app1: ...") */
    const cJSON *details; /* what the fleet answered (borrowed; may be NULL) */
} exec_result;

/* A replica as found (inventory) or as it changed outside a reported request (lost with its
 * node, an action of an older generation that finished, adopted). */
typedef struct exec_replica {
    char id[TIDE_REPLICA_ID_MAX + 1];
    exec_rstate state;
    int64_t since_ms; /* wall clock of its last state change (0 unknown) */
    char why[160];    /* for the event ("adopted: process 812 on app1, slot r3 UP") */
} exec_replica;

/* What the workloads module gives the executors; every call comes from the loop. A report
 * for a workload or generation that is no longer applied is ignored by the receiver. */
typedef struct exec_sink {
    void (*done)(struct controlplane *cp, const exec_result *r);
    void (*replica)(struct controlplane *cp, const char *workload, uint64_t generation,
                    const exec_replica *r);
    void (*inventory_done)(struct controlplane *cp, const char *workload, uint64_t generation,
                           int ok, const char *why);
    /* Fencing (README "Fencing"): the token every action for workload carries now (0: no high
     * availability, unfenced); the executor asks at each send. */
    uint64_t (*fence)(struct controlplane *cp, const char *workload);
    /* An action for workload was refused by fencing: the fleet has seen token `seen`, newer
     * than ours (another control plane owns the workload now). what: the step refused. */
    void (*fenced)(struct controlplane *cp, const char *workload, uint64_t seen, const char *what);
} exec_sink;

typedef struct executor {
    const char *name;    /* "haproxy-backend" */
    wl_target_kind kind; /* the target kind it serves */
    /* 0 with *state set, or -errno with err */
    int (*start)(struct controlplane *cp, const exec_sink *sink, void **state, char *err,
                 size_t errlen);
    void (*stop)(void *state);
    /* Why spec cannot be acted on by this executor (static text), or NULL. Optional. */
    const char *(*unusable)(void *state, const workload_spec *spec);
    /* 0 (the reports follow, possibly before it returns) or -errno with err. */
    int (*inventory)(void *state, const workload_spec *spec, uint64_t generation, char *err,
                     size_t errlen);
    int (*apply)(void *state, const workload_spec *spec, const exec_request *rq, char *err,
                 size_t errlen);
    void (*forget)(void *state, const char *workload, uint64_t keep_generation);
    /* Called every sync of a workload with its spec (now: wall ms): the executor's periodic
     * checks (deadlines, lost nodes, retries). Optional. */
    void (*tick)(void *state, const workload_spec *spec, uint64_t generation, int64_t now_ms);
    /* The replicas of workload with their real identity, a JSON array of objects with at least
     * {id, state, since} (HAProxyBackend adds node, cgroup, pid, server, port). Optional. */
    cJSON *(*replicas)(void *state, const char *workload);
} executor;

/* Registers an executor (from a constructor: EXECUTOR_REGISTER). One per target kind. */
void exec_register(const executor *ex);
#define EXECUTOR_REGISTER(ident, ex)                                                               \
    __attribute__((constructor)) static void exec_reg_##ident(void) {                              \
        exec_register(ex);                                                                         \
    }

/* ---- the registry, used by the workloads module --------------------------------------- */

/* Starts every registered executor with sink (borrowed: must outlive the registry). 0, or
 * -errno with err naming the executor (those started are stopped again). */
int exec_registry_start(struct controlplane *cp, const exec_sink *sink, char *err, size_t errlen);
void exec_registry_stop(struct controlplane *cp);

/* Is there a running executor for kind? */
int exec_have(struct controlplane *cp, wl_target_kind kind);
/* Why spec cannot be acted on (no executor for its kind, or the executor's reason), or NULL.
 * cp NULL: judged on the registrations alone. */
const char *exec_unusable(struct controlplane *cp, const workload_spec *spec);
/* Routed to the executor of spec's kind: -ENOSYS with err when there is none. */
int exec_inventory(struct controlplane *cp, const workload_spec *spec, uint64_t generation,
                   char *err, size_t errlen);
int exec_apply(struct controlplane *cp, const workload_spec *spec, const exec_request *rq,
               char *err, size_t errlen);
void exec_forget(struct controlplane *cp, wl_target_kind kind, const char *workload,
                 uint64_t keep_generation);
void exec_tick(struct controlplane *cp, const workload_spec *spec, uint64_t generation,
               int64_t now_ms);
/* NULL when the kind's executor lists no replicas. */
cJSON *exec_replicas(struct controlplane *cp, wl_target_kind kind, const char *workload);

#endif
