/* executor.c: the registry of executors (executor.h). */
#include "exec/executor.h"

#include "cp.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXEC_KINDS 8

static const executor *registered[EXEC_KINDS];

struct exec_registry {
    void *state[EXEC_KINDS];
    int running[EXEC_KINDS];
};

static const char *const op_names[EXEC_OP_COUNT] = {"start",  "activate", "restore",
                                                    "cutoff", "standby",  "delete"};
static const char *const rs_names[] = {"Starting", "Online",     "Cutoff",
                                       "Standby",  "Activating", "Gone"};

const char *exec_op_name(exec_op op) {
    return (unsigned)op < EXEC_OP_COUNT ? op_names[op] : "?";
}

const char *exec_rstate_name(exec_rstate st) {
    return (unsigned)st <= EXEC_RS_GONE ? rs_names[st] : "?";
}

void exec_register(const executor *ex) {
    if (ex && (unsigned)ex->kind < EXEC_KINDS) registered[ex->kind] = ex;
}

int exec_registry_start(struct controlplane *cp, const exec_sink *sink, char *err, size_t errlen) {
    struct exec_registry *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "executors: out of memory");
        return -ENOMEM;
    }
    cp->exec = r;
    for (int k = 0; k < EXEC_KINDS; k++) {
        if (!registered[k]) continue;
        char e[256] = "";
        int rc = registered[k]->start(cp, sink, &r->state[k], e, sizeof e);
        if (rc < 0) {
            snprintf(err, errlen, "executor %s: %s", registered[k]->name, e);
            exec_registry_stop(cp);
            return rc;
        }
        r->running[k] = 1;
        log_info("exec", "executor %s started", registered[k]->name);
    }
    return 0;
}

void exec_registry_stop(struct controlplane *cp) {
    struct exec_registry *r = cp->exec;
    if (!r) return;
    for (int k = 0; k < EXEC_KINDS; k++)
        if (r->running[k]) registered[k]->stop(r->state[k]);
    free(r);
    cp->exec = NULL;
}

/* The running executor of kind and its state, or NULL. */
static const executor *running(struct controlplane *cp, wl_target_kind kind, void **state) {
    if ((unsigned)kind >= EXEC_KINDS || !cp || !cp->exec || !cp->exec->running[kind]) return NULL;
    *state = cp->exec->state[kind];
    return registered[kind];
}

int exec_have(struct controlplane *cp, wl_target_kind kind) {
    void *st;
    return running(cp, kind, &st) != NULL;
}

const char *exec_unusable(struct controlplane *cp, const workload_spec *spec) {
    wl_target_kind k = spec->target.kind;
    const executor *ex = (unsigned)k < EXEC_KINDS ? registered[k] : NULL;
    if (!ex) return "no executor for this target kind yet: planned as Preview";
    void *st = NULL;
    if (cp && cp->exec && !running(cp, k, &st))
        return "the executor for this target kind is not running: planned as Preview";
    return ex->unusable ? ex->unusable(st, spec) : NULL;
}

int exec_inventory(struct controlplane *cp, const workload_spec *spec, uint64_t generation,
                   char *err, size_t errlen) {
    void *st;
    const executor *ex = running(cp, spec->target.kind, &st);
    if (!ex) {
        snprintf(err, errlen, "no executor for target kind %s",
                 wl_target_kind_name(spec->target.kind));
        return -ENOSYS;
    }
    return ex->inventory(st, spec, generation, err, errlen);
}

int exec_apply(struct controlplane *cp, const workload_spec *spec, const exec_request *rq,
               char *err, size_t errlen) {
    void *st;
    const executor *ex = running(cp, spec->target.kind, &st);
    if (!ex) {
        snprintf(err, errlen, "no executor for target kind %s",
                 wl_target_kind_name(spec->target.kind));
        return -ENOSYS;
    }
    if (!tide_replica_id_valid(rq->replica) || rq->generation == 0 ||
        (unsigned)rq->op >= EXEC_OP_COUNT) {
        snprintf(err, errlen, "invalid request (replica id, generation or action)");
        return -EINVAL;
    }
    return ex->apply(st, spec, rq, err, errlen);
}

void exec_forget(struct controlplane *cp, wl_target_kind kind, const char *workload,
                 uint64_t keep_generation) {
    void *st;
    const executor *ex = running(cp, kind, &st);
    if (ex) ex->forget(st, workload, keep_generation);
}

void exec_tick(struct controlplane *cp, const workload_spec *spec, uint64_t generation,
               int64_t now_ms) {
    void *st;
    const executor *ex = running(cp, spec->target.kind, &st);
    if (ex && ex->tick) ex->tick(st, spec, generation, now_ms);
}

cJSON *exec_replicas(struct controlplane *cp, wl_target_kind kind, const char *workload) {
    void *st;
    const executor *ex = running(cp, kind, &st);
    return ex && ex->replicas ? ex->replicas(st, workload) : NULL;
}
