/* crd.c: Workload custom resources listed, watched and their status written (crd.h). The watch
 * runs on a thread of its own (k8s_watch blocks); its events are queued under a lock and handled
 * on the loop. Status writes go to the k8s module's worker pool. */
#include "workloads/crd.h"

#include "cluster/cluster.h"
#include "cp.h"
#include "exec/executor.h"
#include "exec/k8s.h"
#include "exec/k8s_client.h"
#include "log.h"
#include "workloads/persist.h"
#include "workloads/workloads.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <ev.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CRD_PATH "/apis/tide.io/v1alpha1/workloads"
#define CRD_QUEUE_MAX 10000 /* events waiting for the loop; past it the watch waits */
#define CRD_STATUS_S 2.0    /* status written at most this often per object (when it changed) */
#define CRD_NCOND 4

static const char *const COND_TYPES[CRD_NCOND] = {"Ready", "Scaling", "PredictiveActive",
                                                  "FallbackReactive"};

typedef struct crd_ev {
    struct crd_ev *next;
    k8s_watch_what what;
    char *obj; /* NULL for RESET/SYNCED */
} crd_ev;

typedef struct crd_cond {
    int status; /* 1 True, 0 False, -1 not set yet */
    char reason[64];
    char message[400];
    char since[32]; /* lastTransitionTime */
} crd_cond;

typedef struct crd_obj {
    struct crd_obj *next;
    char ns[64], name[WL_NAME_MAX];
    int64_t generation; /* metadata.generation */
    int seen;           /* in the current (re)list */
    int applied;        /* the workload of this name is this object's */
    char problem[600];  /* why it is not applied ("" none) */
    char problem_reason[32];
    crd_cond cond[CRD_NCOND];
    int last_desired; /* -1 none */
    char last_time[32];
    int last_from, last_to;
    char last_reason[200];
    char *written; /* the status last written (JSON), NULL none */
    int writing;
    int64_t written_ms;
} crd_obj;

typedef struct crd {
    struct cp_workloads *w;
    struct controlplane *cp;
    k8s_client *client;
    pthread_t th;
    int thread_running;
    pthread_mutex_t mu;
    pthread_cond_t room; /* the queue has room again */
    crd_ev *q, *q_tail;
    size_t nq;
    int stopping;
    ev_async wake;
    ev_timer status_tick;
    crd_obj *objs;
    int pending; /* status writes under way (each holds the crd) */
    int freed_on_last;
} crd;

static void iso_now(char *out, size_t cap) {
    time_t t = (time_t)(tide_now_wall_ms() / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void iso_of(int64_t unix_s, char *out, size_t cap) {
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- the watch thread ----------------------------------------------------------------------- */

static int on_watch(void *arg, k8s_watch_what what, const char *obj, size_t len) {
    crd *c = arg;
    crd_ev *ev = calloc(1, sizeof *ev);
    if (!ev) return -ENOMEM;
    ev->what = what;
    if (obj) {
        ev->obj = malloc(len + 1);
        if (!ev->obj) {
            free(ev);
            return -ENOMEM;
        }
        memcpy(ev->obj, obj, len);
        ev->obj[len] = 0;
    }
    pthread_mutex_lock(&c->mu);
    while (c->nq >= CRD_QUEUE_MAX && !c->stopping)
        pthread_cond_wait(&c->room, &c->mu);
    int stop = c->stopping;
    if (!stop) {
        if (c->q_tail)
            c->q_tail->next = ev;
        else
            c->q = ev;
        c->q_tail = ev;
        c->nq++;
    }
    pthread_mutex_unlock(&c->mu);
    if (stop) {
        free(ev->obj);
        free(ev);
        return -ECANCELED;
    }
    ev_async_send(c->cp->loop, &c->wake);
    return 0;
}

static void *watch_main(void *arg) {
    crd *c = arg;
    char err[600];
    int rc = k8s_watch(c->client, CRD_PATH, NULL, on_watch, c, 0, err, sizeof err);
    if (rc < 0 && rc != -ECANCELED) log_warn("crd", "watch of Workload objects ended: %s", err);
    return NULL;
}

/* ---- objects -> workloads ------------------------------------------------------------------- */

static crd_obj *obj_find(crd *c, const char *ns, const char *name) {
    for (crd_obj *o = c->objs; o; o = o->next)
        if (!strcmp(o->ns, ns) && !strcmp(o->name, name)) return o;
    return NULL;
}

static void obj_free(crd_obj *o) {
    free(o->written);
    free(o);
}

/* Installs spec as workload spec.name (a new generation when it differs from what runs). */
static void install(crd *c, const workload_spec *spec, const char *text) {
    struct cp_workloads *w = c->w;
    workload_entry *old = workload_find(w, spec->name);
    if (old && old->from_cluster && strcmp(old->yaml, text) == 0) return;
    workload_entry *e = workload_entry_new(spec, text, strlen(text), !cluster_enabled(w->cp));
    if (!e) {
        log_error("crd", "%s: out of memory", spec->name);
        return;
    }
    e->from_cluster = 1;
    if (old) {
        e->generation = old->generation + 1;
        workload_fence_inherit(e, old);
        workload_entry **pp = &w->head;
        while (*pp != old)
            pp = &(*pp)->next;
        e->next = old->next;
        *pp = e;
        if (old->spec.target.kind != e->spec.target.kind)
            exec_forget(w->cp, old->spec.target.kind, spec->name, 0);
        exec_forget(w->cp, e->spec.target.kind, spec->name, e->generation);
        workload_entry_free(old);
    } else {
        e->generation = 1;
        e->next = w->head;
        w->head = e;
    }
    log_info("crd", "Workload %s/%s applied (generation %llu)%s%s", spec->namespace_, spec->name,
             (unsigned long long)e->generation, e->eff_mode != e->spec.mode ? ": " : "",
             e->eff_mode != e->spec.mode ? workload_preview_reason(&e->spec) : "");
}

/* Removes the workload an object applied. */
static void uninstall(crd *c, crd_obj *o) {
    if (!o->applied) return;
    o->applied = 0;
    struct cp_workloads *w = c->w;
    for (workload_entry **pp = &w->head; *pp; pp = &(*pp)->next) {
        workload_entry *e = *pp;
        if (strcmp(e->spec.name, o->name) != 0 || !e->from_cluster) continue;
        *pp = e->next;
        exec_forget(w->cp, e->spec.target.kind, e->spec.name, 0); /* replicas stay */
        workload_entry_free(e);
        log_info("crd", "Workload %s/%s deleted", o->ns, o->name);
        return;
    }
}

static void obj_problem(crd_obj *o, const char *reason, const char *msg) {
    snprintf(o->problem_reason, sizeof o->problem_reason, "%s", reason);
    snprintf(o->problem, sizeof o->problem, "%s", msg);
}

static void on_object(crd *c, k8s_watch_what what, const char *json) {
    cJSON *root = cJSON_Parse(json);
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(md, "name");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(md, "namespace");
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(md, "generation");
    if (!cJSON_IsString(nm) || !cJSON_IsString(ns) || strlen(nm->valuestring) >= WL_NAME_MAX ||
        strlen(ns->valuestring) >= 64) {
        log_warn("crd", "a Workload object without a usable metadata.name/namespace: ignored");
        cJSON_Delete(root);
        return;
    }
    crd_obj *o = obj_find(c, ns->valuestring, nm->valuestring);
    if (what == K8S_W_DELETED) {
        if (o) {
            uninstall(c, o);
            for (crd_obj **pp = &c->objs; *pp; pp = &(*pp)->next)
                if (*pp == o) {
                    *pp = o->next;
                    break;
                }
            obj_free(o);
        }
        cJSON_Delete(root);
        return;
    }
    if (!o) {
        o = calloc(1, sizeof *o);
        if (!o) {
            cJSON_Delete(root);
            return;
        }
        snprintf(o->ns, sizeof o->ns, "%s", ns->valuestring);
        snprintf(o->name, sizeof o->name, "%s", nm->valuestring);
        o->last_desired = -1;
        for (int i = 0; i < CRD_NCOND; i++)
            o->cond[i].status = -1;
        o->next = c->objs;
        c->objs = o;
    }
    o->seen = 1;
    o->generation = cJSON_IsNumber(gen) ? (int64_t)gen->valuedouble : 0;
    o->problem[0] = 0;
    /* the spec as the parser reads it: the object without its status (Tide's own output) and
     * with metadata reduced to name and namespace, so that a status write (a new
     * resourceVersion, managedFields) is no change of the workload */
    cJSON_DeleteItemFromObjectCaseSensitive(root, "status");
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "name", o->name);
    cJSON_AddStringToObject(meta, "namespace", o->ns);
    cJSON_ReplaceItemInObjectCaseSensitive(root, "metadata", meta);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return;
    workload_spec *spec = malloc(sizeof *spec); /* ~200 KB: not on the loop's stack */
    if (!spec) {
        free(text);
        obj_problem(o, "InvalidSpec", "out of memory parsing the object");
        return;
    }
    wl_problems probs;
    wl_problems_init(&probs);
    if (strlen(text) >= PERSIST_MAX_YAML) {
        obj_problem(o, "InvalidSpec", "the object is larger than a spec may be (1 MiB)");
    } else if (wl_parse(text, strlen(text), spec, &probs) < 0) {
        char *list = wl_problems_format(&probs);
        char msg[600];
        snprintf(msg, sizeof msg, "%zu problem%s: %.500s", probs.n, probs.n == 1 ? "" : "s",
                 list ? list : "");
        for (char *p = msg; *p; p++)
            if (*p == '\n') *p = ' ';
        obj_problem(o, "InvalidSpec", msg);
        free(list);
    } else {
        workload_entry *e = workload_find(c->w, spec->name);
        if (e && !e->from_cluster) {
            obj_problem(o, "NameConflict",
                        "a workload of this name was applied with tidectl apply: delete it there "
                        "(tidectl delete) or rename this object");
        } else {
            crd_obj *other = NULL;
            for (crd_obj *q = c->objs; q; q = q->next)
                if (q != o && q->applied && !strcmp(q->name, o->name)) other = q;
            if (other) {
                char msg[300];
                snprintf(msg, sizeof msg,
                         "the Workload %.63s/%.64s has this name: workload names are unique "
                         "across namespaces in Tide",
                         other->ns, other->name);
                obj_problem(o, "NameConflict", msg);
            } else {
                install(c, spec, text);
                o->applied = 1;
            }
        }
    }
    if (o->problem[0]) {
        log_warn("crd", "Workload %s/%s not applied: %s", o->ns, o->name, o->problem);
        if (o->applied) uninstall(c, o);
    }
    wl_problems_fini(&probs);
    free(spec);
    free(text);
}

static void on_wake(struct ev_loop *loop, ev_async *a, int revents) {
    (void)loop;
    (void)revents;
    crd *c = (crd *)((char *)a - offsetof(crd, wake));
    for (;;) {
        pthread_mutex_lock(&c->mu);
        crd_ev *ev = c->q;
        if (ev) {
            c->q = ev->next;
            if (!c->q) c->q_tail = NULL;
            c->nq--;
            pthread_cond_signal(&c->room);
        }
        pthread_mutex_unlock(&c->mu);
        if (!ev) break;
        if (ev->what == K8S_W_RESET) {
            for (crd_obj *o = c->objs; o; o = o->next)
                o->seen = 0;
        } else if (ev->what == K8S_W_SYNCED) { /* gone while the watch was away */
            for (crd_obj **pp = &c->objs; *pp;) {
                crd_obj *o = *pp;
                if (o->seen) {
                    pp = &o->next;
                    continue;
                }
                uninstall(c, o);
                *pp = o->next;
                obj_free(o);
            }
        } else if (ev->obj) {
            on_object(c, ev->what, ev->obj);
        }
        free(ev->obj);
        free(ev);
    }
}

/* ---- status ------------------------------------------------------------------------------- */

static void cond_set(crd_obj *o, int i, int status, const char *reason, const char *message) {
    crd_cond *cd = &o->cond[i];
    if (cd->status != status) {
        cd->status = status;
        iso_now(cd->since, sizeof cd->since);
    }
    snprintf(cd->reason, sizeof cd->reason, "%s", reason);
    snprintf(cd->message, sizeof cd->message, "%s", message);
}

/* The portrait status line of the first predictive provider, and whether it fell back. */
static int predictive_state(const workload_entry *e, const portrait *pt, char *line, size_t cap) {
    int have = 0;
    for (int i = 0; i < e->spec.n_providers; i++)
        have |= e->spec.providers[i].type == WL_PROV_PREDICTIVE;
    line[0] = 0;
    if (!have) return -1;
    const char *st = pt ? pt->status : "";
    const char *fb = strstr(st, "fallback");
    if (!fb) return 0;
    const char *b = fb, *end = strchr(fb, '\n');
    while (b > st && b[-1] != '\n')
        b--;
    size_t n = end ? (size_t)(end - b) : strlen(b);
    snprintf(line, cap, "%.*s", (int)(n < cap ? n : cap - 1), b);
    return 1;
}

/* The status object of o now (caller frees). */
static cJSON *status_of(crd *c, crd_obj *o) {
    cJSON *st = cJSON_CreateObject();
    cJSON_AddNumberToObject(st, "observedGeneration", (double)o->generation);
    workload_entry *e = o->applied ? workload_find(c->w, o->name) : NULL;
    if (!e || !e->from_cluster) {
        cond_set(o, 0, 0, o->problem[0] ? o->problem_reason : "NotApplied",
                 o->problem[0] ? o->problem : "not applied");
        cond_set(o, 1, 0, "NotApplied", "");
        cond_set(o, 2, 0, "NotApplied", "");
        cond_set(o, 3, 0, "NotApplied", "");
    } else {
        planner *pl = controller_planner(e->ctl);
        planner_counts n = {0};
        if (pl) planner_counts_get(pl, &n);
        cJSON_AddNumberToObject(st, "online", n.online);
        cJSON_AddNumberToObject(st, "cutoff", n.cutoff);
        cJSON_AddNumberToObject(st, "standby", n.standby);
        const portrait *pt = controller_portrait(e->ctl);
        int desired = pt && pt->n > 0 ? pt->needed[0] : -1;
        if (desired >= 0) {
            cJSON_AddNumberToObject(st, "desired", desired);
            for (int i = 1; i < pt->n; i++)
                if (pt->needed[i] != desired) {
                    cJSON *nc = cJSON_AddObjectToObject(st, "nextChange");
                    char t[32];
                    iso_of(pt->t0 + (int64_t)i * pt->step, t, sizeof t);
                    cJSON_AddStringToObject(nc, "time", t);
                    cJSON_AddNumberToObject(nc, "replicas", pt->needed[i]);
                    break;
                }
            if (desired != o->last_desired) { /* a decision: the need changed */
                if (o->last_desired >= 0) {
                    o->last_from = o->last_desired;
                    o->last_to = desired;
                    iso_now(o->last_time, sizeof o->last_time);
                    planner_event ev;
                    uint64_t ne = pl ? planner_event_count(pl) : 0;
                    o->last_reason[0] = 0;
                    for (uint64_t k = ne; k > 0 && !o->last_reason[0]; k--)
                        if (planner_event_at(pl, k - 1, &ev) == 0 &&
                            (!strcmp(ev.kind, "target") || !strncmp(ev.kind, "scale", 5)))
                            snprintf(o->last_reason, sizeof o->last_reason, "%.190s", ev.text);
                }
                o->last_desired = desired;
            }
        }
        if (o->last_time[0]) {
            cJSON *ld = cJSON_AddObjectToObject(st, "lastDecision");
            cJSON_AddStringToObject(ld, "time", o->last_time);
            cJSON_AddNumberToObject(ld, "from", o->last_from);
            cJSON_AddNumberToObject(ld, "to", o->last_to);
            cJSON_AddStringToObject(ld, "reason", o->last_reason);
        }
        /* Ready */
        if (e->eff_mode != e->spec.mode)
            cond_set(o, 0, 0, "Preview", workload_preview_reason(&e->spec));
        else if (workload_has_executor(c->w, e) && e->inventory != 2)
            cond_set(o, 0, 0, "Inventory",
                     e->inventory_err[0] ? e->inventory_err
                                         : "the inventory of replicas is "
                                           "under way");
        else if (e->eff_mode == WL_MODE_PREVIEW)
            cond_set(o, 0, 1, "Preview", "planned only (mode Preview)");
        else
            cond_set(o, 0, 1, "Applied", "the control plane acts on this workload");
        /* Scaling */
        char msg[200];
        if (desired >= 0 && n.online != desired) {
            snprintf(msg, sizeof msg, "%d online, %d needed now", n.online, desired);
            cond_set(o, 1, 1, n.online < desired ? "ScalingUp" : "ScalingDown", msg);
        } else {
            snprintf(msg, sizeof msg, "%d online", n.online);
            cond_set(o, 1, 0, "Steady", msg);
        }
        /* PredictiveActive / FallbackReactive */
        char line[400];
        int ps = predictive_state(e, pt, line, sizeof line);
        if (ps < 0) {
            cond_set(o, 2, 0, "NoPredictiveProvider", "");
            cond_set(o, 3, 0, "NoPredictiveProvider", "");
        } else if (ps == 0 && pt) {
            cond_set(o, 2, 1, "Forecasting", "a predictive provider drives the portrait");
            cond_set(o, 3, 0, "Forecasting", "");
        } else if (ps == 0) {
            cond_set(o, 2, 0, "NoPortraitYet", "");
            cond_set(o, 3, 0, "NoPortraitYet", "");
        } else {
            cond_set(o, 2, 0, "FellBack", line);
            cond_set(o, 3, 1, "FellBack", line);
        }
    }
    cJSON *cs = cJSON_AddArrayToObject(st, "conditions");
    for (int i = 0; i < CRD_NCOND; i++) {
        const crd_cond *cd = &o->cond[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "type", COND_TYPES[i]);
        cJSON_AddStringToObject(x, "status", cd->status == 1 ? "True" : "False");
        if (cd->reason[0]) cJSON_AddStringToObject(x, "reason", cd->reason);
        if (cd->message[0]) cJSON_AddStringToObject(x, "message", cd->message);
        cJSON_AddStringToObject(x, "lastTransitionTime", cd->since);
        cJSON_AddNumberToObject(x, "observedGeneration", (double)o->generation);
        cJSON_AddItemToArray(cs, x);
    }
    return st;
}

typedef struct status_job {
    crd *c;
    char ns[64], name[WL_NAME_MAX];
    char *body;
    char err[600];
} status_job;

static int status_run(k8s_client *cl, void *arg) {
    status_job *j = arg;
    char path[256];
    snprintf(path, sizeof path, "/apis/tide.io/v1alpha1/namespaces/%s/workloads/%s/status", j->ns,
             j->name);
    k8s_resp r;
    int rc = k8s_request(cl, "PATCH", path, "application/merge-patch+json", j->body, 0, &r, j->err,
                         sizeof j->err);
    if (rc == 0 && r.status != 200) {
        char what[300];
        snprintf(what, sizeof what, "PATCH %s", path);
        rc = k8s_answer_error(what, &r, j->err, sizeof j->err);
    }
    free(r.body);
    return rc;
}

static void crd_free(crd *c);

static void status_after(void *arg, int rc) {
    status_job *j = arg;
    crd *c = j->c;
    c->pending--;
    if (!c->stopping) {
        crd_obj *o = obj_find(c, j->ns, j->name);
        if (o) {
            o->writing = 0;
            if (rc == 0) {
                free(o->written);
                o->written = j->body;
                j->body = NULL;
            } else if (rc != -ENOENT) {
                log_warn("crd", "status of Workload %s/%s: %s", j->ns, j->name, j->err);
            }
        }
    }
    free(j->body);
    free(j);
    if (c->stopping && c->pending == 0 && c->freed_on_last) crd_free(c);
}

static void on_status_tick(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)loop;
    (void)revents;
    crd *c = (crd *)((char *)t - offsetof(crd, status_tick));
    for (crd_obj *o = c->objs; o; o = o->next) {
        if (o->writing) continue;
        cJSON *st = status_of(c, o);
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddItemToObject(doc, "status", st);
        char *body = cJSON_PrintUnformatted(doc);
        cJSON_Delete(doc);
        if (!body) continue;
        if (o->written && !strcmp(o->written, body)) {
            free(body);
            continue;
        }
        status_job *j = calloc(1, sizeof *j);
        if (!j) {
            free(body);
            continue;
        }
        j->c = c;
        snprintf(j->ns, sizeof j->ns, "%s", o->ns);
        snprintf(j->name, sizeof j->name, "%s", o->name);
        j->body = body;
        char err[256];
        if (k8s_offloop(c->cp, status_run, status_after, j, err, sizeof err) < 0) {
            free(j->body);
            free(j);
            continue;
        }
        o->writing = 1;
        c->pending++;
    }
}

/* ---- start and stop ------------------------------------------------------------------------ */

static void crd_free(crd *c) {
    while (c->objs) {
        crd_obj *o = c->objs;
        c->objs = o->next;
        obj_free(o);
    }
    while (c->q) {
        crd_ev *ev = c->q;
        c->q = ev->next;
        free(ev->obj);
        free(ev);
    }
    pthread_cond_destroy(&c->room);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int crd_start(struct cp_workloads *w, char *err, size_t errlen) {
    struct controlplane *cp = w->cp;
    if (!k8s_configured() || !k8s_client_of(cp)) return 0;
    crd *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "workloads: out of memory");
        return -ENOMEM;
    }
    c->w = w;
    c->cp = cp;
    c->client = k8s_client_of(cp);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->room, NULL);
    ev_async_init(&c->wake, on_wake);
    ev_async_start(cp->loop, &c->wake);
    ev_timer_init(&c->status_tick, on_status_tick, CRD_STATUS_S, CRD_STATUS_S);
    ev_timer_start(cp->loop, &c->status_tick);
    int rc = pthread_create(&c->th, NULL, watch_main, c);
    if (rc != 0) {
        ev_async_stop(cp->loop, &c->wake);
        ev_timer_stop(cp->loop, &c->status_tick);
        crd_free(c);
        snprintf(err, errlen, "workloads: the Workload watch thread: %s", strerror(rc));
        return -rc;
    }
    c->thread_running = 1;
    w->crd = c;
    log_info("crd", "watching Workload objects (%s) of every namespace", CRD_PATH);
    return 0;
}

void crd_stop(struct cp_workloads *w) {
    crd *c = w->crd;
    if (!c) return;
    w->crd = NULL;
    ev_timer_stop(c->cp->loop, &c->status_tick);
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_broadcast(&c->room);
    pthread_mutex_unlock(&c->mu);
    /* the watch waits in a transfer: only stopping the client ends it (we are shutting down) */
    k8s_client_stop(c->client);
    if (c->thread_running) pthread_join(c->th, NULL);
    ev_async_stop(c->cp->loop, &c->wake);
    if (c->pending == 0)
        crd_free(c);
    else
        c->freed_on_last = 1; /* the k8s module's stop answers them (cancelled) */
}
