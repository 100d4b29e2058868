/* workload_ops.c: the workload ops commands (see workload_ops.h). */
#include "workloads/workload_ops.h"

#include "api/ops.h"
#include "cp.h"
#include "cluster/cluster.h"
#include "exec/executor.h"
#include "log.h"
#include "query/prom.h"
#include "workloads/persist.h"
#include "work.h"
#include "workloads/workloads.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *arg_str(const cJSON *args, const char *k) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(args, k);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

/* A workload-apply on the apply pool's one thread: the spec is parsed (libyaml: up to 1 MiB,
 * nesting capped, but never on the loop) and stored (fsync); the loop then installs it. One thread,
 * in submission order, so the file of a workload ends as the last apply left it. */
typedef struct apply_job {
    work w;
    struct cp_workloads *wl;
    ops_request *req;
    char *yaml;
    size_t len;
    /* with etcd (cluster/): */
    int from_etcd; /* a spec the watch brought (no request): rev is its mod_revision */
    int remove;    /* a workload-delete: the spec goes from etcd */
    char name[WL_NAME_MAX];
    int64_t rev;
    int changed; /* stored: etcd did not hold this text already (remove: there was one) */
    /* results */
    int parsed; /* 0 ok, < 0 invalid (err holds the reply) */
    int saved;  /* 0 stored (or unchanged), -errno */
    workload_spec spec;
    char err[1100];
} apply_job;

static void apply_problems(apply_job *j, const wl_problems *probs) {
    /* the reply carries at most ~1 KiB: list what fits and say how many more there are
     * (tidectl apply validates locally first and prints them all) */
    char list[880] = "";
    size_t off = 0, shown = 0;
    for (; shown < probs->n; shown++) {
        const wl_problem *pb = &probs->v[shown];
        char line[400];
        if (pb->line > 0)
            snprintf(line, sizeof line, "%s (line %d): %s\n", pb->path, pb->line, pb->msg);
        else
            snprintf(line, sizeof line, "%s: %s\n", pb->path, pb->msg);
        if (off + strlen(line) >= sizeof list) break;
        memcpy(list + off, line, strlen(line) + 1);
        off += strlen(line);
    }
    if (shown < probs->n)
        snprintf(j->err, sizeof j->err,
                 "invalid workload spec, %zu problems (nothing changed):\n%s... and %zu more",
                 probs->n, list, probs->n - shown);
    else
        snprintf(j->err, sizeof j->err,
                 "invalid workload spec, %zu problem%s (nothing changed):\n%s", probs->n,
                 probs->n == 1 ? "" : "s", list);
}

static void apply_run(work *w) {
    apply_job *j = (apply_job *)((char *)w - offsetof(apply_job, w));
    struct controlplane *cp = j->wl->cp;
    if (j->remove) {
        j->saved = cluster_spec_remove(cp, j->name, &j->changed, j->err, sizeof j->err);
        return;
    }
    wl_problems probs;
    wl_problems_init(&probs);
    j->parsed = wl_parse(j->yaml, j->len, &j->spec, &probs);
    if (j->parsed < 0) apply_problems(j, &probs);
    wl_problems_fini(&probs);
    /* stored even when unchanged (the same bytes again): which spec is applied is only known
     * on the loop */
    if (j->parsed < 0 || j->from_etcd) return;
    if (cluster_enabled(cp)) /* etcd is the store: every control plane applies it from there */
        j->saved = cluster_spec_store(cp, j->spec.name, j->yaml, j->len, &j->changed, &j->rev,
                                      j->err, sizeof j->err);
    else
        j->saved = persist_save(j->wl->dir, j->spec.name, j->yaml);
}

static void apply_free(apply_job *j) {
    free(j->yaml);
    free(j);
}

/* With etcd: installs spec as generation gen unless the entry already has that generation or
 * a newer one. Returns "created", "configured", or NULL when nothing changed. */
static const char *install(struct cp_workloads *wl, const workload_spec *spec, const char *yaml,
                           size_t len, uint64_t gen) {
    workload_entry *old = workload_find(wl, spec->name);
    if (old && (old->generation >= gen || strcmp(old->yaml, yaml) == 0)) {
        if (old->generation < gen) old->generation = gen;
        return NULL;
    }
    workload_entry *e = workload_entry_new(spec, yaml, len, /* built = */ 0); /* once owned */
    if (!e) {
        log_error("workloads", "%s: out of memory applying generation %llu", spec->name,
                  (unsigned long long)gen);
        return NULL;
    }
    e->generation = gen;
    if (old) {
        workload_entry **pp = &wl->head;
        while (*pp != old)
            pp = &(*pp)->next;
        e->next = old->next;
        *pp = e;
        if (old->spec.target.kind != e->spec.target.kind)
            exec_forget(wl->cp, old->spec.target.kind, spec->name, 0);
        exec_forget(wl->cp, e->spec.target.kind, spec->name, e->generation);
        workload_entry_free(old);
    } else {
        e->next = wl->head;
        wl->head = e;
    }
    log_debug("workloads", "%s %s from etcd (generation %llu)", old ? "configured" : "created",
              spec->name, (unsigned long long)gen);
    return old ? "configured" : "created";
}

void workloads_remove(struct cp_workloads *w, const char *name) {
    workload_entry **pp = &w->head;
    while (*pp && strcmp((*pp)->spec.name, name) != 0)
        pp = &(*pp)->next;
    if (!*pp) return;
    workload_entry *e = *pp;
    *pp = e->next;
    exec_forget(w->cp, e->spec.target.kind, name, 0); /* its replicas stay as they are */
    workload_entry_free(e);
    log_info("workloads", "deleted %s", name);
}

static void apply_done(work *w, int status);

/* The cluster's spec sink: a spec in etcd is parsed on the apply thread (in order with the
 * applies) and installed as the generation of its revision. A resync brings every spec at
 * once: they wait here in order, at most PEND_INFLIGHT of them on the apply pool (the rest of
 * its queue stays free for tidectl). */
#define PEND_INFLIGHT 8

typedef struct spec_pending {
    struct spec_pending *next;
    char name[WL_NAME_MAX];
    char *yaml;
    size_t len;
    int64_t rev;
} spec_pending;

static void pend_pump(struct cp_workloads *wl) {
    while (wl->pend_head && wl->pend_inflight < PEND_INFLIGHT) {
        spec_pending *p = wl->pend_head;
        apply_job *j = calloc(1, sizeof *j);
        if (!j) return;
        j->wl = wl;
        j->yaml = p->yaml;
        j->len = p->len;
        j->from_etcd = 1;
        j->rev = p->rev;
        snprintf(j->name, sizeof j->name, "%s", p->name);
        if (work_submit(wl->apply_pool, &j->w, apply_run, apply_done) < 0) {
            free(j); /* the pool is full of applies: the next done pumps again */
            return;
        }
        wl->pend_inflight++;
        wl->pend_head = p->next;
        if (!wl->pend_head) wl->pend_tail = &wl->pend_head;
        free(p);
    }
}

void workloads_pending_free(struct cp_workloads *wl) {
    while (wl->pend_head) {
        spec_pending *p = wl->pend_head;
        wl->pend_head = p->next;
        free(p->yaml);
        free(p);
    }
    wl->pend_tail = &wl->pend_head;
}

static void sink_put(void *ctx, const char *name, const char *yaml, size_t len, int64_t rev) {
    struct cp_workloads *wl = ctx;
    workload_entry *e = workload_find(wl, name);
    if (e && (e->generation >= (uint64_t)rev || strcmp(e->yaml, yaml) == 0)) return;
    spec_pending *p = calloc(1, sizeof *p);
    if (!p || len > PERSIST_MAX_YAML || strlen(name) >= sizeof p->name ||
        !(p->yaml = strndup(yaml, len))) {
        log_error("workloads", "%s in etcd: not applied: %s", name,
                  len > PERSIST_MAX_YAML || (p && strlen(name) >= sizeof p->name)
                      ? "larger than 1 MiB or a name too long"
                      : "out of memory");
        free(p);
        return;
    }
    snprintf(p->name, sizeof p->name, "%s", name);
    p->len = len;
    p->rev = rev;
    if (!wl->pend_tail) wl->pend_tail = &wl->pend_head;
    *wl->pend_tail = p;
    wl->pend_tail = &p->next;
    pend_pump(wl);
}

static void sink_del(void *ctx, const char *name) {
    workloads_remove(ctx, name);
}

static cluster_spec_sink spec_sink;

void workloads_cluster_attach(struct cp_workloads *w) {
    spec_sink = (cluster_spec_sink){w, sink_put, sink_del};
    cluster_set_spec_sink(w->cp, &spec_sink);
}

static void apply_done(work *w, int status) {
    apply_job *j = (apply_job *)((char *)w - offsetof(apply_job, w));
    struct cp_workloads *wl = j->wl;
    ops_request *req = j->req;
    if (req) wl->applies_pending--;
    if (status < 0 && j->from_etcd) wl->pend_inflight--;
    if (status < 0) {
        if (req) ops_reply_error(req, 1, "workload-apply: the control plane is shutting down");
        apply_free(j);
        return;
    }
    if (j->remove) {
        if (j->saved < 0) {
            ops_reply_error(req, 1, "cannot delete %s from etcd: %s (nothing changed)", j->name,
                            j->err);
        } else if (!j->changed && !workload_find(wl, j->name)) {
            ops_reply_error(req, 2, "no workload named \"%s\"", j->name);
        } else {
            workloads_remove(wl, j->name);
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "name", j->name);
            cJSON_AddStringToObject(d, "result", "deleted");
            ops_reply(req, d);
        }
        apply_free(j);
        return;
    }
    if (j->from_etcd) {
        wl->pend_inflight--;
        if (status == 0) pend_pump(wl);
        if (j->parsed < 0)
            log_error("workloads", "%s in etcd: not applied, invalid: %s", j->name, j->err);
        else if (strcmp(j->spec.name, j->name) != 0)
            log_error("workloads", "%s in etcd: not applied: the spec names workload %s", j->name,
                      j->spec.name);
        else
            install(wl, &j->spec, j->yaml, j->len, (uint64_t)j->rev);
        apply_free(j);
        return;
    }
    if (j->parsed < 0) {
        ops_reply_error(req, 2, "%s", j->err);
        apply_free(j);
        return;
    }
    workload_spec *spec = &j->spec;
    const char *yaml = j->yaml;
    workload_entry *old = workload_find(wl, spec->name);
    if (old && strcmp(old->yaml, yaml) == 0) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "name", spec->name);
        cJSON_AddStringToObject(d, "result", "unchanged");
        cJSON_AddNumberToObject(d, "generation", (double)old->generation);
        ops_reply(req, d);
        apply_free(j);
        return;
    }
    if (j->saved < 0 && cluster_enabled(wl->cp)) {
        ops_reply_error(req, 1, "cannot store %s in etcd: %s (nothing changed)", spec->name,
                        j->err);
        apply_free(j);
        return;
    }
    if (j->saved < 0) {
        ops_reply_error(req, 1, "cannot store %s/%s.yaml: %s (nothing changed)", wl->dir,
                        spec->name, strerror(-j->saved));
        apply_free(j);
        return;
    }
    if (cluster_enabled(wl->cp)) { /* generation = the spec key's revision in etcd */
        const char *res = install(wl, spec, yaml, j->len, (uint64_t)j->rev);
        workload_entry *e = workload_find(wl, spec->name);
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "name", spec->name);
        cJSON_AddStringToObject(d, "result", !j->changed ? "unchanged" : res ? res : "configured");
        cJSON_AddNumberToObject(d, "generation", e ? (double)e->generation : (double)j->rev);
        if (e && e->eff_mode != e->spec.mode && workload_preview_reason(&e->spec))
            cJSON_AddStringToObject(d, "note", workload_preview_reason(&e->spec));
        ops_reply(req, d);
        apply_free(j);
        return;
    }
    workload_entry *e = workload_entry_new(spec, yaml, j->len, /* built = */ 1);
    if (!e) {
        ops_reply_error(req, 1, "out of memory");
        apply_free(j);
        return;
    }
    if (old) { /* the new spec takes over; replicas are re-adopted from observations */
        e->generation = old->generation + 1;
        workload_fence_inherit(e, old);
        workload_entry **pp = &wl->head;
        while (*pp != old)
            pp = &(*pp)->next;
        e->next = old->next;
        *pp = e;
        /* actions decided under the old spec are no longer reported; what they do on the
         * fleet runs to its end and reaches the new generation through the inventory */
        if (old->spec.target.kind != e->spec.target.kind)
            exec_forget(wl->cp, old->spec.target.kind, spec->name, 0);
        exec_forget(wl->cp, e->spec.target.kind, spec->name, e->generation);
        workload_entry_free(old);
    } else {
        e->generation = 1;
        e->next = wl->head;
        wl->head = e;
    }
    log_info("workloads", "%s %s (generation %llu)", old ? "configured" : "created", spec->name,
             (unsigned long long)e->generation);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "name", spec->name);
    cJSON_AddStringToObject(d, "result", old ? "configured" : "created");
    cJSON_AddNumberToObject(d, "generation", (double)e->generation);
    if (e->eff_mode != e->spec.mode && workload_preview_reason(&e->spec))
        cJSON_AddStringToObject(d, "note", workload_preview_reason(&e->spec));
    ops_reply(req, d);
    apply_free(j);
}

static void op_apply(ops_request *req, const cJSON *args) {
    struct cp_workloads *w = ops_cp(req)->workloads;
    const char *yaml = arg_str(args, "yaml");
    if (!yaml) {
        ops_reply_error(req, 2, "workload-apply needs args.yaml (the spec text)");
        return;
    }
    size_t len = strlen(yaml);
    if (len > PERSIST_MAX_YAML) {
        ops_reply_error(req, 2, "spec is %zu bytes, more than the %u allowed", len,
                        PERSIST_MAX_YAML);
        return;
    }
    apply_job *j = calloc(1, sizeof *j);
    if (!j || !(j->yaml = strdup(yaml))) {
        free(j);
        ops_reply_error(req, 1, "out of memory");
        return;
    }
    j->wl = w;
    j->req = req;
    j->len = len;
    int rc = work_submit(w->apply_pool, &j->w, apply_run, apply_done);
    if (rc < 0) {
        apply_free(j);
        ops_reply_error(req, 1, "workload-apply: %s",
                        rc == -EAGAIN ? "too many specs are being applied; try again"
                                      : strerror(-rc));
        return;
    }
    w->applies_pending++;
}

uint64_t workloads_decisions(struct controlplane *cp) {
    return cp->workloads ? cp->workloads->decisions : 0;
}

int workloads_applies_pending(struct controlplane *cp) {
    return cp->workloads ? cp->workloads->applies_pending : 0;
}

static const char *mode_name(wl_mode m) {
    return m == WL_MODE_PREVIEW ? "Preview" : "Auto";
}

static cJSON *target_json(const wl_target *t) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", wl_target_kind_name(t->kind));
    if (t->namespace_[0]) cJSON_AddStringToObject(o, "namespace", t->namespace_);
    if (t->name[0]) cJSON_AddStringToObject(o, "name", t->name);
    if (t->unit[0]) cJSON_AddStringToObject(o, "unit", t->unit);
    if (t->n_nodes) {
        cJSON *n = cJSON_AddArrayToObject(o, "nodes");
        for (int i = 0; i < t->n_nodes; i++)
            cJSON_AddItemToArray(n, cJSON_CreateString(t->nodes[i]));
        int any = 0;
        for (int i = 0; i < t->n_nodes; i++)
            any |= t->node_addr[i][0] != 0;
        if (any) {
            cJSON *a = cJSON_AddObjectToObject(o, "addresses");
            for (int i = 0; i < t->n_nodes; i++)
                if (t->node_addr[i][0]) cJSON_AddStringToObject(a, t->nodes[i], t->node_addr[i]);
        }
    }
    if (t->has_executor) {
        cJSON *h = cJSON_AddObjectToObject(o, "haproxy");
        cJSON_AddStringToObject(h, "node", t->haproxy_node);
        cJSON_AddStringToObject(h, "socket", t->haproxy_socket);
        cJSON_AddStringToObject(h, "server_prefix", t->haproxy_prefix);
        const wl_replica_template *r = &t->replica;
        cJSON *rj = cJSON_AddObjectToObject(o, "replica");
        cJSON *cmd = cJSON_AddArrayToObject(rj, "command");
        for (int i = 0; i < r->n_command; i++)
            cJSON_AddItemToArray(cmd, cJSON_CreateString(r->command[i]));
        cJSON_AddNumberToObject(rj, "port_first", r->port_first);
        cJSON_AddNumberToObject(rj, "port_last", r->port_last);
        if (r->cpu_cores > 0) cJSON_AddNumberToObject(rj, "cpu_cores", r->cpu_cores);
        if (r->memory_bytes > 0)
            cJSON_AddNumberToObject(rj, "memory_bytes", (double)r->memory_bytes);
        if (r->readiness_path[0]) cJSON_AddStringToObject(rj, "readiness_path", r->readiness_path);
    }
    return o;
}

static void summary(cJSON *o, const workload_entry *e) {
    planner_counts c = {0};
    if (e->ctl) planner_counts_get(controller_planner(e->ctl), &c);
    cJSON_AddStringToObject(o, "name", e->spec.name);
    cJSON_AddStringToObject(o, "namespace", e->spec.namespace_);
    cJSON_AddItemToObject(o, "target", target_json(&e->spec.target));
    cJSON_AddStringToObject(o, "mode", mode_name(e->spec.mode));
    cJSON_AddStringToObject(o, "effective_mode", mode_name(e->eff_mode));
    cJSON_AddBoolToObject(o, "paused", e->spec.paused);
    cJSON_AddNumberToObject(o, "min", e->spec.min_replicas);
    cJSON_AddNumberToObject(o, "max", e->spec.max_replicas);
    cJSON_AddNumberToObject(o, "generation", (double)e->generation);
    cJSON_AddNumberToObject(o, "applied_ms", (double)e->applied_ms);
    cJSON_AddNumberToObject(o, "fence", (double)e->fence);
    cJSON_AddNumberToObject(o, "fenced_by", (double)e->fenced_by);
    cJSON_AddNumberToObject(o, "fenced_refusals", (double)e->fenced_refusals);
    /* with etcd: owned elsewhere, so no controller, models or planner here (workloads.h) */
    cJSON_AddBoolToObject(o, "dormant", e->ctl == NULL);
    const portrait *pt = controller_portrait(e->ctl);
    if (pt) {
        cJSON_AddNumberToObject(o, "need", pt->needed[0]);
        cJSON_AddNumberToObject(o, "provisioned", pt->replicas[0]);
    } else {
        cJSON_AddNullToObject(o, "need");
        cJSON_AddNullToObject(o, "provisioned");
    }
    cJSON_AddNumberToObject(o, "online", c.online);
    cJSON_AddNumberToObject(o, "starting", c.starting);
    cJSON_AddNumberToObject(o, "activating", c.activating);
    cJSON_AddNumberToObject(o, "cutoff", c.cutoff);
    cJSON_AddNumberToObject(o, "standby", c.standby);
}

/* With etcd: which control plane owns the workload (its decisions, replicas and events are
 * there: tidectl points to it), whether this one acts for it and with which fencing token. */
static void owner_json(cJSON *o, struct cp_workloads *w, const workload_entry *e) {
    if (!cluster_enabled(w->cp)) return;
    char name[CLUSTER_NAME_MAX], http[128];
    int self = 0;
    if (cluster_owner(w->cp, e->spec.name, name, sizeof name, http, sizeof http, &self) == 0) {
        cJSON *ow = cJSON_AddObjectToObject(o, "owner");
        cJSON_AddStringToObject(ow, "member", name);
        cJSON_AddStringToObject(ow, "http", http);
        cJSON_AddBoolToObject(ow, "self", self);
    } else {
        cJSON_AddNullToObject(o, "owner");
    }
    uint64_t fence;
    char why[300];
    int may = cluster_may_act(w->cp, e->spec.name, &fence, why, sizeof why); /* now, not at the
                                                                                last sync */
    cJSON_AddBoolToObject(o, "acting_here", may);
    cJSON_AddNumberToObject(o, "fence", (double)(may ? fence : 0));
    if (!may) cJSON_AddStringToObject(o, "not_acting", why);
}

static void op_list(ops_request *req, const cJSON *args) {
    (void)args;
    struct cp_workloads *w = ops_cp(req)->workloads;
    cJSON *arr = cJSON_CreateArray();
    for (workload_entry *e = w->head; e; e = e->next) {
        cJSON *o = cJSON_CreateObject();
        summary(o, e);
        owner_json(o, w, e);
        cJSON_AddItemToArray(arr, o);
    }
    ops_reply(req, arr);
}

static cJSON *event_json(const planner_event *ev, const char *workload) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "time", (double)ev->t);
    if (workload) cJSON_AddStringToObject(o, "workload", workload);
    cJSON_AddStringToObject(o, "kind", ev->kind);
    cJSON_AddStringToObject(o, "text", ev->text);
    return o;
}

static void op_describe(ops_request *req, const cJSON *args) {
    struct cp_workloads *w = ops_cp(req)->workloads;
    const char *name = arg_str(args, "name");
    workload_entry *e = name ? workload_find(w, name) : NULL;
    if (!e) {
        ops_reply_error(req, 2, "no workload named \"%s\"", name ? name : "");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    summary(o, e);
    owner_json(o, w, e);
    if (e->eff_mode != e->spec.mode && workload_preview_reason(&e->spec))
        cJSON_AddStringToObject(o, "note", workload_preview_reason(&e->spec));
    cJSON *fleet = exec_replicas(ops_cp(req), e->spec.target.kind, e->spec.name);
    if (fleet) cJSON_AddItemToObject(o, "fleet", fleet);
    if (e->inventory != 2 && exec_have(ops_cp(req), e->spec.target.kind))
        cJSON_AddStringToObject(o, "inventory",
                                e->inventory_err[0] ? e->inventory_err : "under way");
    cJSON_AddNumberToObject(o, "target_utilization", e->spec.target_utilization);
    if (e->ctl)
        cJSON_AddNumberToObject(o, "scale_up_ahead_seconds",
                                planner_scale_up_ahead(controller_planner(e->ctl)));
    else /* dormant: another control plane owns it and knows (owner.http) */
        cJSON_AddNullToObject(o, "scale_up_ahead_seconds");
    cJSON *prov = cJSON_AddArrayToObject(o, "providers");
    for (int i = 0; i < e->spec.n_providers; i++) {
        const wl_provider *p = &e->spec.providers[i];
        cJSON *po = cJSON_CreateObject();
        cJSON_AddStringToObject(po, "name", p->name);
        cJSON_AddStringToObject(po, "type", wl_provider_type_name(p->type));
        cJSON_AddNumberToObject(po, "priority", p->priority);
        if (p->type == WL_PROV_PREDICTIVE && e->ctl) { /* the live guard (portrait_live_mase) */
            double pts = 0, lm = portrait_live_mase(controller_engine(e->ctl), i, &pts);
            const char *model = portrait_model_name(controller_engine(e->ctl), i);
            const char *fb = portrait_fallback_reason(controller_engine(e->ctl), i);
            const char *now = portrait_model_last(controller_engine(e->ctl), i);
            if (model)
                cJSON_AddStringToObject(po, "model", model);
            else
                cJSON_AddNullToObject(po, "model");
            if (now)
                cJSON_AddStringToObject(po, "model_online", now);
            else
                cJSON_AddNullToObject(po, "model_online");
            if (!isnan(lm))
                cJSON_AddNumberToObject(po, "live_mase", lm);
            else
                cJSON_AddNullToObject(po, "live_mase");
            cJSON_AddNumberToObject(po, "live_points", pts);
            if (fb)
                cJSON_AddStringToObject(po, "fallback", fb);
            else
                cJSON_AddNullToObject(po, "fallback");
        }
        cJSON_AddItemToArray(prov, po);
    }
    cJSON_AddStringToObject(o, "observation", e->observe);
    prom *pc = ops_cp(req)->prom;
    cJSON_AddStringToObject(o, "prometheus", prom_status(pc));
    cJSON_AddNumberToObject(o, "metrics_offset_seconds", e->spec.metrics_offset_seconds);
    cJSON *mo = cJSON_AddObjectToObject(o, "metrics");
    const wl_source *msrc[OBSERVE_N] = {
        &e->spec.utilization, e->spec.has_replicas_metric ? &e->spec.replicas_metric : NULL,
        e->spec.n_traffic ? &e->spec.traffic[0] : NULL};
    for (int i = 0; i < OBSERVE_N; i++) {
        const char *text = msrc[i] ? observe_source_text(msrc[i]) : NULL;
        if (!text) continue;
        const observe_metric *mr = &e->reads[i];
        cJSON *m = cJSON_AddObjectToObject(mo, observe_metric_keys[i]);
        cJSON_AddStringToObject(m, "name", msrc[i]->name);
        cJSON_AddStringToObject(m, msrc[i]->selector[0] ? "selector" : "query", text);
        if (mr->at) {
            cJSON_AddStringToObject(m, "source", mr->source);
            cJSON_AddNumberToObject(m, "read_at", (double)mr->at);
            cJSON_AddBoolToObject(m, "stale", mr->stale);
        } else {
            cJSON_AddNullToObject(m, "source");
            cJSON_AddNullToObject(m, "read_at");
        }
        if (mr->error[0])
            cJSON_AddStringToObject(m, "error", mr->error);
        else
            cJSON_AddNullToObject(m, "error");
    }
    if (e->prom_err[0])
        cJSON_AddStringToObject(o, "prometheus_error", e->prom_err);
    else
        cJSON_AddNullToObject(o, "prometheus_error");
    if (e->fetch_ms >= 0)
        cJSON_AddNumberToObject(o, "last_fetch_ms", (double)e->fetch_ms);
    else
        cJSON_AddNullToObject(o, "last_fetch_ms");
    if (e->fit.at) {
        cJSON *f = cJSON_AddObjectToObject(o, "last_fit");
        cJSON_AddNumberToObject(f, "time", (double)e->fit.at);
        cJSON_AddStringToObject(f, "source", e->fit.source);
        cJSON_AddNumberToObject(f, "history_start", (double)e->fit.start);
        cJSON_AddNumberToObject(f, "history_end", (double)e->fit.end);
        cJSON_AddNumberToObject(f, "points", (double)e->fit.points);
        cJSON_AddNumberToObject(f, "models", e->fit.ok);
        cJSON_AddNumberToObject(f, "failed", e->fit.failed);
    } else {
        cJSON_AddNullToObject(o, "last_fit");
    }
    const portrait *pt = controller_portrait(e->ctl);
    if (pt) {
        cJSON_AddStringToObject(o, "status", pt->status);
        cJSON *pa = cJSON_AddArrayToObject(o, "portrait");
        for (int k = 0; k < pt->n; k++) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddNumberToObject(s, "time", (double)(pt->t0 + (int64_t)k * pt->step));
            cJSON_AddNumberToObject(s, "replicas", pt->replicas[k]);
            cJSON_AddNumberToObject(s, "needed", pt->needed[k]);
            int src = pt->source[k];
            if (src >= 0)
                cJSON_AddStringToObject(s, "source", e->spec.providers[src].name);
            else
                cJSON_AddNullToObject(s, "source");
            if (!isnan(pt->traffic[k])) cJSON_AddNumberToObject(s, "traffic", pt->traffic[k]);
            cJSON_AddItemToArray(pa, s);
        }
    }
    size_t nr = 0;
    const planner_replica *r = e->ctl ? planner_replicas(controller_planner(e->ctl), &nr) : NULL;
    cJSON *ra = cJSON_AddArrayToObject(o, "replicas");
    for (size_t i = 0; i < nr; i++) {
        if (r[i].state == REPLICA_DELETED) continue;
        cJSON *ro = cJSON_CreateObject();
        cJSON_AddStringToObject(ro, "id", r[i].id);
        cJSON_AddStringToObject(ro, "state", planner_state_name(r[i].state));
        cJSON_AddNumberToObject(ro, "since", (double)r[i].since);
        cJSON_AddItemToArray(ra, ro);
    }
    cJSON *ea = cJSON_AddArrayToObject(o, "events");
    uint64_t n = workload_event_count(e), from = n > 20 ? n - 20 : 0;
    for (uint64_t i = from; i < n; i++) {
        planner_event ev;
        if (workload_event_at(e, i, &ev) == 0) cJSON_AddItemToArray(ea, event_json(&ev, NULL));
    }
    cJSON *aa = cJSON_AddArrayToObject(o, "actions");
    uint64_t an = e->nacts, afrom = an > 20 ? an - 20 : 0;
    for (uint64_t i = afrom; i < an; i++) {
        const workload_action_rec *ar = &e->acts[i % WORKLOAD_ACTIONS_KEPT];
        cJSON *ao = cJSON_CreateObject();
        cJSON_AddNumberToObject(ao, "time", (double)ar->t);
        cJSON_AddStringToObject(ao, "action", planner_action_name(ar->a.kind));
        cJSON_AddStringToObject(ao, "replica", ar->a.replica);
        cJSON_AddStringToObject(ao, "reason", ar->a.reason);
        cJSON_AddStringToObject(ao, "result", ar->note);
        cJSON_AddItemToArray(aa, ao);
    }
    ops_reply(req, o);
}

static void op_events(ops_request *req, const cJSON *args) {
    struct cp_workloads *w = ops_cp(req)->workloads;
    const char *name = arg_str(args, "name");
    const cJSON *lim = cJSON_GetObjectItemCaseSensitive(args, "limit");
    int limit = cJSON_IsNumber(lim) && lim->valuedouble >= 1 ? (int)lim->valuedouble : 100;
    if (name && !workload_find(w, name)) {
        ops_reply_error(req, 2, "no workload named \"%s\"", name);
        return;
    }
    /* gather, then keep the newest `limit` in time order */
    size_t cap = 0, n = 0;
    for (workload_entry *e = w->head; e; e = e->next)
        cap += PLANNER_MAX_EVENTS;
    planner_event *evs = malloc((cap ? cap : 1) * sizeof *evs);
    const char **who = malloc((cap ? cap : 1) * sizeof *who);
    if (!evs || !who) {
        free(evs);
        free(who);
        ops_reply_error(req, 1, "out of memory");
        return;
    }
    for (workload_entry *e = w->head; e; e = e->next) {
        if (name && strcmp(e->spec.name, name) != 0) continue;
        uint64_t total = workload_event_count(e);
        for (uint64_t i = total > PLANNER_MAX_EVENTS ? total - PLANNER_MAX_EVENTS : 0; i < total;
             i++)
            if (workload_event_at(e, i, &evs[n]) == 0) who[n++] = e->spec.name;
    }
    for (size_t i = 1; i < n; i++) { /* stable insertion sort by time */
        planner_event ev = evs[i];
        const char *wn = who[i];
        size_t j = i;
        while (j > 0 && evs[j - 1].t > ev.t) {
            evs[j] = evs[j - 1];
            who[j] = who[j - 1];
            j--;
        }
        evs[j] = ev;
        who[j] = wn;
    }
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = n > (size_t)limit ? n - (size_t)limit : 0; i < n; i++)
        cJSON_AddItemToArray(arr, event_json(&evs[i], who[i]));
    free(evs);
    free(who);
    ops_reply(req, arr);
}

static void op_delete(ops_request *req, const cJSON *args) {
    struct cp_workloads *w = ops_cp(req)->workloads;
    const char *name = arg_str(args, "name");
    if (cluster_enabled(w->cp)) { /* deleted in etcd, off the loop; every member follows */
        apply_job *j = calloc(1, sizeof *j);
        if (!name || strlen(name) >= sizeof j->name) {
            free(j);
            ops_reply_error(req, 2, "no workload named \"%s\"", name ? name : "");
            return;
        }
        if (!j) {
            ops_reply_error(req, 1, "out of memory");
            return;
        }
        j->wl = w;
        j->req = req;
        j->remove = 1;
        snprintf(j->name, sizeof j->name, "%s", name);
        int rc = work_submit(w->apply_pool, &j->w, apply_run, apply_done);
        if (rc < 0) {
            free(j);
            ops_reply_error(req, 1, "workload-delete: %s",
                            rc == -EAGAIN ? "too many specs are being applied; try again"
                                          : strerror(-rc));
            return;
        }
        w->applies_pending++;
        return;
    }
    workload_entry **pp = &w->head;
    while (*pp && (!name || strcmp((*pp)->spec.name, name) != 0))
        pp = &(*pp)->next;
    if (!*pp) {
        ops_reply_error(req, 2, "no workload named \"%s\"", name ? name : "");
        return;
    }
    int rc = persist_remove(w->dir, name);
    if (rc < 0) {
        ops_reply_error(req, 1, "cannot remove %s/%s.yaml: %s (nothing changed)", w->dir, name,
                        strerror(-rc));
        return;
    }
    workload_entry *e = *pp;
    *pp = e->next;
    exec_forget(w->cp, e->spec.target.kind, name, 0); /* its replicas stay as they are */
    workload_entry_free(e);
    log_info("workloads", "deleted %s", name);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "name", name);
    cJSON_AddStringToObject(d, "result", "deleted");
    ops_reply(req, d);
}

/* The executor's replicas of {name} with their real identity. */
static void op_replicas(ops_request *req, const cJSON *args) {
    struct cp_workloads *w = ops_cp(req)->workloads;
    const char *name = arg_str(args, "name");
    workload_entry *e = name ? workload_find(w, name) : NULL;
    if (!e) {
        ops_reply_error(req, 2, "no workload named \"%s\"", name ? name : "");
        return;
    }
    cJSON *fleet = exec_replicas(ops_cp(req), e->spec.target.kind, e->spec.name);
    if (!fleet) {
        ops_reply_error(req, 2, "workload %s: its target kind %s has no executor listing replicas",
                        name, wl_target_kind_name(e->spec.target.kind));
        return;
    }
    ops_reply(req, fleet);
}

OPS_COMMAND(wl_apply, "workload-apply", "apply a workload spec: {yaml}", op_apply)
OPS_COMMAND(wl_list, "workload-list", "list workloads", op_list)
OPS_COMMAND(wl_describe, "workload-describe", "portrait, replicas and decisions of {name}",
            op_describe)
OPS_COMMAND(wl_events, "workload-events", "decision events: {name?, limit?}", op_events)
OPS_COMMAND(wl_replicas, "workload-replicas",
            "the replicas of workload {name}: node, cgroup, pid, HAProxy server, state, since",
            op_replicas)
OPS_COMMAND(wl_delete, "workload-delete", "delete workload {name}", op_delete)
