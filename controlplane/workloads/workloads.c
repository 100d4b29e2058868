/* workloads.c: the workloads module: applied specs and their entries, the executors, start
 * and stop (see workloads.h). */
#include "workloads/workloads.h"

#include "cp.h"
#include "log.h"
#include "query/prom_module.h"
#include "workloads/k8s_exec.h"
#include "workloads/persist.h"
#include "workloads/sync.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static workload_executor_fn executors[4];

void workload_executor_register(wl_target_kind kind, workload_executor_fn fn) {
    if ((unsigned)kind < 4) executors[kind] = fn;
}

workload_executor_fn workload_executor(wl_target_kind kind) {
    return (unsigned)kind < 4 ? executors[kind] : NULL;
}

void workload_entry_free(workload_entry *e) {
    if (!e) return;
    controller_free(e->ctl);
    cap_free(e->cap);
    observe_free(e->last);
    free(e->view);
    free(e->yaml);
    free(e);
}

workload_entry *workload_find(struct cp_workloads *w, const char *name) {
    for (workload_entry *e = w->head; e; e = e->next)
        if (strcmp(e->spec.name, name) == 0) return e;
    return NULL;
}

const char *workload_preview_reason(const workload_spec *spec) {
    if (!workload_executor(spec->target.kind))
        return "no executor for this target kind yet: planned as Preview";
    if (spec->target.kind == WL_TARGET_HAPROXY_BACKEND && !spec->target.has_executor)
        return "an HAProxyBackend target without \"haproxy\" and \"replica\" cannot be acted on: "
               "planned as Preview";
    return NULL;
}

workload_entry *workload_entry_new(const workload_spec *spec, const char *yaml, size_t len) {
    workload_entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->spec = *spec;
    e->run = *spec;
    if (workload_preview_reason(spec)) e->run.mode = WL_MODE_PREVIEW;
    e->yaml = malloc(len + 1);
    if (!e->yaml || controller_new(&e->ctl, &e->run, 0) < 0) {
        workload_entry_free(e);
        return NULL;
    }
    memcpy(e->yaml, yaml, len);
    e->yaml[len] = 0;
    e->applied_ms = tide_now_wall_ms();
    e->fetch_ms = -1;
    return e;
}

void workload_action_done(struct controlplane *cp, const char *workload, const char *replica,
                          planner_action_kind kind, int ok) {
    if (!cp || !cp->workloads) return;
    workload_entry *e = workload_find(cp->workloads, workload);
    if (e)
        planner_action_done(controller_planner(e->ctl), replica, kind, ok,
                            tide_now_wall_ms() / 1000);
}

/* A saved spec read back at start. */
static void load_one(void *ctx, const char *path, const char *yaml, size_t n) {
    struct cp_workloads *w = ctx;
    workload_spec spec;
    wl_problems probs;
    wl_problems_init(&probs);
    if (wl_parse(yaml, n, &spec, &probs) < 0) {
        char *txt = wl_problems_format(&probs);
        log_error("workloads", "%s: not loaded, invalid: %s", path, txt ? txt : "");
        free(txt);
    } else if (workload_find(w, spec.name)) {
        log_error("workloads", "%s: not loaded, workload %s already loaded", path, spec.name);
    } else {
        workload_entry *e = workload_entry_new(&spec, yaml, n);
        if (e) {
            e->generation = 1;
            e->next = w->head;
            w->head = e;
            log_info("workloads", "loaded %s from %s", spec.name, path);
        }
    }
    wl_problems_fini(&probs);
}

static int wl_start(struct controlplane *cp, char *err, size_t errlen) {
    struct cp_workloads *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "workloads: out of memory");
        return -ENOMEM;
    }
    w->cp = cp;
    snprintf(w->dir, sizeof w->dir, "%s/workloads", cp->cfg.data_dir);
    if (mkdir(w->dir, 0750) < 0 && errno != EEXIST) {
        int e = errno;
        snprintf(err, errlen, "workloads: %s: %s", w->dir, strerror(e));
        free(w);
        return -e;
    }
    int rc = k8s_exec_start(w); /* before the specs load: their kinds may now have an executor */
    if (rc < 0) {
        snprintf(err, errlen, "workloads: Kubernetes executor: %s", strerror(-rc));
        free(w);
        return rc;
    }
    persist_load(w->dir, load_one, w);
    rc = sync_start(w, err, errlen);
    if (rc < 0) {
        k8s_exec_stop(w);
        while (w->head) {
            workload_entry *e = w->head;
            w->head = e->next;
            workload_entry_free(e);
        }
        free(w);
        return rc;
    }
    cp->workloads = w;
    return 0;
}

static void wl_stop(struct controlplane *cp) {
    struct cp_workloads *w = cp->workloads;
    if (!w) return;
    sync_stop(w);
    k8s_exec_stop(w);
    while (w->head) {
        workload_entry *e = w->head;
        w->head = e->next;
        workload_entry_free(e);
    }
    free(w);
    cp->workloads = NULL;
}

/* after the Kubernetes client: its executor acts through it */
CP_MODULE_AFTER(workloads, "workloads", PROM_MODULE_NAME ", k8s", wl_start, wl_stop)
