/* haproxy_backend.c: the executor of HAProxyBackend workloads (executor.h): replica processes
 * that the agents of the spec's nodes start and stop, behind `server-template` slots of an
 * HAProxy backend that the agent of HAProxy's node points at them.
 *
 *   START     placement (exec/hb_place.h: least loaded connected node, lowest free port)
 *             -> the record says Starting (in place on disk) -> replica-start (node: own
 *             cgroup and session, readiness); meanwhile haproxy-slots (lb) -> lowest free slot
 *             -> haproxy-slot addr/port (lb; the slot stays in maint); both done ->
 *             haproxy-slot ready (lb) -> Online. A failure after the process started stops it
 *             again (nothing left).
 *   CUTOFF    drain (lb: HAProxy drain, current sessions to zero) -> Cutoff
 *   STANDBY   haproxy-slot maint (lb) -> standby (node: freeze, reclaim) -> Standby
 *   ACTIVATE  activate (node: memory limit back, thaw) -> haproxy-slot ready (lb) -> Online
 *   RESTORE   haproxy-slot addr/port/ready (lb; a slot is found first when it has none)
 *   DELETE    haproxy-slot maint (lb) -> replica-stop (node: signal, grace, SIGKILL, cgroups
 *             removed) -> gone, slot free
 *
 * Each step's outcome moves the executor's view of the replica (the record, persisted at
 * every change by a thread of its own, exec/hb_writer.h: nothing on an action's path waits
 * for the disk but a START, for the record to name the replica before its process exists);
 * an action that fails reports why with the step, and the replica's real state
 * follows (a failed STANDBY whose freeze failed leaves it Cutoff, never frozen while counted
 * online). Safety here as well as in the planner: a CUTOFF that would leave fewer than
 * max(1, minReplicas) replicas online is refused, an online replica is never deleted, and
 * nothing is claimed done that HAProxy did not confirm.
 *
 * Inventory (level-triggered): the record, the agents' `replicas` (with label workload=NAME)
 * and `haproxy-slots` are reconciled: frozen -> Standby; slot ready (UP/DOWN/NOLB) -> Online;
 * DRAIN/MAINT or no slot -> Cutoff; an exited process or a recorded replica whose node shows
 * no process -> gone (cleaned up); a slot pointing at one of our nodes' ports with no replica
 * -> maint. Planning waits for it (workloads/), so nothing is started twice.
 *
 * Agents: an action on a disconnected node fails with the transport's reason; a node
 * disconnected for longer than the grace (max(30 s, 2 sync periods)) has its replicas
 * counted lost (their slots put in maint, so the planner replaces them elsewhere); when the
 * node comes back, its lost replicas are stopped. A START that fails puts the workload's
 * starts in backoff (one sync period, doubling, at most 5 minutes). */
#include "exec/executor.h"
#include "exec/hb_args.h"
#include "exec/hb_place.h"
#include "exec/hb_record.h"
#include "exec/hb_writer.h"
#include "exec/tracker.h"
#include "exec/transport.h"

#include "agents/agents.h"
#include "cp.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HB_PENDING_MAX 4096
#define HB_GRACE_MIN_MS 30000    /* a node gone this long: its replicas are lost */
#define HB_BACKOFF_MAX_MS 300000 /* START backoff cap */
#define HB_TRACK_EXTRA_MS 60000  /* tracker deadline beyond the steps' own deadlines */

typedef struct hb_rep {
    hb_rec_replica r; /* id, node, addr, port, slot, cgroup, pid, state, since */
    int64_t startup_ms;
    char hstatus[32]; /* HAProxy's status of its slot as last seen */
    char doing[16];   /* the action under way, "" none */
    int lost;         /* its node was gone past the grace: counted gone, stopped on return */
} hb_rep;

typedef struct hb hb;

typedef struct hb_wl {
    struct hb_wl *next;
    hb *x;
    char name[WL_NAME_MAX];
    uint64_t generation;
    workload_spec *spec;
    hb_rep *r;
    size_t n, cap;
    int inv;      /* 0 unknown, 1 gathering, 2 known */
    int inv_wait; /* answers outstanding */
    uint64_t inv_gen;
    cJSON *inv_slots;
    cJSON *inv_nodes[WL_MAX_NODES];
    char inv_err[256];
    int ops;     /* actions under way */
    int checks;  /* periodic checks under way */
    int deleted; /* forgotten with keep 0: freed when its last action ends */
    int start_fail;
    int64_t start_retry_ms;
    char *rec_text; /* the record as last handed to the writer */
} hb_wl;

typedef enum hb_kind {
    K_START,
    K_ACTIVATE,
    K_RESTORE,
    K_CUTOFF,
    K_STANDBY,
    K_DELETE,
    K_CLEAN,
    K_MAINT
} hb_kind;

typedef struct hb_op {
    struct hb_op *next, *prev;
    hb *x;
    hb_wl *wl;
    hb_kind kind;
    exec_request rq; /* tracked actions: the request; internal ones: generation 0 */
    uint64_t tseq;
    char id[TIDE_REPLICA_ID_MAX + 1];
    char slot[HB_SERVER_MAX]; /* K_MAINT: the slot */
    int step;
    int64_t t0;
    exec_action *h;
    cJSON *details;
    int64_t startup_ms;
    /* START: the slots are asked for while the replica starts (h2); the step that sets the
     * slot waits for both answers */
    exec_action *h2;
    int slots_st; /* 0 asked, 1 slot chosen, -1 failed (slots_err) */
    int started;  /* replica-start answered ok */
    int rec_wait; /* waiting for the record to be on disk before replica-start */
    char slots_err[512];
    int64_t t_rec, t_started, t_slots; /* stage ends (ms since t0), for the log */
} hb_op;

typedef struct inv_call {
    struct inv_call *next, *prev;
    hb_wl *wl;
    int node;  /* -1: the slots */
    int check; /* a periodic check of the node's processes, not the inventory */
    exec_action *h;
} inv_call;

struct hb {
    struct controlplane *cp;
    const exec_sink *sink;
    exec_tracker *tr;
    hb_wl *wls;
    hb_op *ops;
    inv_call *calls; /* inventory requests under way */
    hb_writer *wr;   /* the records, written off the loop */
    char dir[1024];
    int64_t started_ms;
};

/* ---- small helpers ----------------------------------------------------------------------- */

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *k, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static int64_t now_ms(void) {
    return tide_now_wall_ms();
}

static hb_rep *rep_find(hb_wl *wl, const char *id) {
    for (size_t i = 0; i < wl->n; i++)
        if (!strcmp(wl->r[i].r.id, id)) return &wl->r[i];
    return NULL;
}

static hb_rep *rep_add(hb_wl *wl, const char *id) {
    if (wl->n == wl->cap) {
        size_t cap = wl->cap ? wl->cap * 2 : 16;
        if (cap > HB_RECORD_MAX_REPLICAS) return NULL;
        hb_rep *nr = realloc(wl->r, cap * sizeof *nr);
        if (!nr) return NULL;
        wl->r = nr;
        wl->cap = cap;
    }
    hb_rep *p = &wl->r[wl->n++];
    memset(p, 0, sizeof *p);
    snprintf(p->r.id, sizeof p->r.id, "%s", id);
    p->startup_ms = -1;
    return p;
}

static void rep_remove(hb_wl *wl, const char *id) {
    for (size_t i = 0; i < wl->n; i++)
        if (!strcmp(wl->r[i].r.id, id)) {
            memmove(&wl->r[i], &wl->r[i + 1], (wl->n - i - 1) * sizeof *wl->r);
            wl->n--;
            return;
        }
}

static void rep_set(hb_rep *p, exec_rstate st) {
    if (p->r.state != st) {
        p->r.state = st;
        p->r.since_ms = now_ms();
    }
}

static int node_index(const wl_target *t, const char *node) {
    for (int i = 0; i < t->n_nodes; i++)
        if (!strcmp(t->nodes[i], node)) return i;
    return -1;
}

/* The address HAProxy reaches node's replicas at ("" unknown). */
static void node_addr(hb *x, const wl_target *t, const char *node, char *out, size_t cap) {
    int i = node_index(t, node);
    out[0] = 0;
    if (i >= 0 && t->node_addr[i][0]) {
        snprintf(out, cap, "%s", t->node_addr[i]);
        return;
    }
    cp_agent_node(x->cp, node, out, cap, NULL);
}

static int64_t grace_ms(const workload_spec *s) {
    int64_t g = 2LL * s->sync_seconds * 1000;
    return g > HB_GRACE_MIN_MS ? g : HB_GRACE_MIN_MS;
}

/* ---- the record ---------------------------------------------------------------------------- */

static void record_path(hb *x, const char *wl, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s.json", x->dir, wl);
}

/* Hands the record to the writer (exec/hb_writer.h: temporary file renamed over the record,
 * then fsync, on a thread of its own: the loop never waits for the disk). Unchanged since the
 * last one: nothing to write (a periodic check that found nothing new writes nothing). cb (may
 * be NULL) is called once the text is in place on disk (also when unchanged). Failures are
 * logged: the fleet itself is still reconciled at the next start, the record only adds what
 * it cannot show. */
static void record_put(hb_wl *wl, hb_writer_cb cb, void *arg) {
    size_t n = 0;
    hb_rec_replica *v = wl->n ? malloc(wl->n * sizeof *v) : NULL;
    for (size_t i = 0; v && i < wl->n; i++)
        if (!wl->r[i].lost) v[n++] = wl->r[i].r;
    char *txt = hb_record_format(wl->name, v, n);
    free(v);
    char path[1200];
    record_path(wl->x, wl->name, path, sizeof path);
    if (!txt) {
        log_error("exec", "%s: cannot write its record %s: out of memory", wl->name, path);
        if (cb) cb(arg, -ENOMEM);
        return;
    }
    if (wl->rec_text && !strcmp(wl->rec_text, txt) && !cb) {
        free(txt);
        return;
    }
    char *keep_txt = strdup(txt);
    int rc = hb_writer_put(wl->x->wr, path, txt, cb, arg);
    if (rc < 0) {
        free(keep_txt);
        log_error("exec", "%s: cannot write its record %s: %s", wl->name, path, strerror(-rc));
        if (cb) cb(arg, rc);
        return;
    }
    free(wl->rec_text);
    wl->rec_text = keep_txt; /* NULL (out of memory): the next one is written whatever it holds */
}

static void record_save(hb_wl *wl) {
    record_put(wl, NULL, NULL);
}

/* Loads the record into wl->r (replacing it). Missing: empty. */
static void record_load(hb_wl *wl) {
    char path[1200];
    record_path(wl->x, wl->name, path, sizeof path);
    wl->n = 0;
    char *buf = NULL;
    size_t len = 0;
    const char *pend = hb_writer_pending(wl->x->wr, path); /* newer than the file */
    if (pend) {
        len = strlen(pend);
        buf = strdup(pend);
    } else {
        FILE *f = fopen(path, "re");
        if (!f) return;
        buf = malloc(HB_RECORD_MAX_BYTES + 1);
        len = buf ? fread(buf, 1, HB_RECORD_MAX_BYTES + 1, f) : 0;
        fclose(f);
    }
    hb_rec_replica *v = NULL;
    size_t n = 0;
    char err[256];
    if (!buf || hb_record_parse(buf, len, wl->name, &v, &n, err, sizeof err) < 0) {
        log_error("exec", "%s: record %s ignored: %s", wl->name, path, buf ? err : "out of memory");
        free(buf);
        return;
    }
    free(buf);
    for (size_t i = 0; i < n; i++) {
        hb_rep *p = rep_add(wl, v[i].id);
        if (p) p->r = v[i];
    }
    free(v);
}

/* ---- reports --------------------------------------------------------------------------------- */

static void report_replica(hb_wl *wl, const hb_rep *p, exec_rstate st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report_replica(hb_wl *wl, const hb_rep *p, exec_rstate st, const char *fmt, ...) {
    if (wl->deleted || wl->inv != 2) return;
    exec_replica er = {.state = st, .since_ms = p ? p->r.since_ms : now_ms()};
    snprintf(er.id, sizeof er.id, "%s", p->r.id);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(er.why, sizeof er.why, fmt, ap);
        va_end(ap);
    }
    wl->x->sink->replica(wl->x->cp, wl->name, wl->generation, &er);
}

/* ---- actions: the step machine ----------------------------------------------------------- */

static void op_step(void *arg, int ok, int status, cJSON *data, const char *error);

static void op_free(hb_op *op) {
    hb *x = op->x;
    exec_node_action_cancel(op->h2); /* START's slots answer, when still awaited */
    if (op->rec_wait) hb_writer_forget(x->wr, op);
    if (op->prev)
        op->prev->next = op->next;
    else
        x->ops = op->next;
    if (op->next) op->next->prev = op->prev;
    cJSON_Delete(op->details);
    free(op);
}

static void wl_free(hb_wl *wl) {
    for (int i = 0; i < WL_MAX_NODES; i++)
        cJSON_Delete(wl->inv_nodes[i]);
    cJSON_Delete(wl->inv_slots);
    free(wl->rec_text);
    free(wl->spec);
    free(wl->r);
    free(wl);
}

static void wl_maybe_free(hb_wl *wl) {
    if (!wl->deleted || wl->ops || wl->checks || wl->inv == 1) return;
    hb *x = wl->x;
    for (hb_wl **pp = &x->wls; *pp; pp = &(*pp)->next)
        if (*pp == wl) {
            *pp = wl->next;
            break;
        }
    wl_free(wl);
}

/* Sends one node action of op; on a refusal the op finishes with the error. */
static int op_send(hb_op *op, const char *node, const char *action, cJSON *args);
static void op_finish(hb_op *op, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static const char *kind_name(hb_kind k) {
    static const char *const n[] = {"start",   "activate", "restore",  "cutoff",
                                    "standby", "delete",   "clean-up", "slot-maint"};
    return n[k];
}

static void op_finish(hb_op *op, int ok, const char *fmt, ...) {
    char msg[768] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    hb *x = op->x;
    hb_wl *wl = op->wl;
    hb_rep *p = rep_find(wl, op->id);
    if (p) p->doing[0] = 0;
    int64_t took = now_ms() - op->t0;
    if (!ok)
        log_warn("exec", "%s: %s %s failed after %lld ms: %s", wl->name, kind_name(op->kind),
                 op->id[0] ? op->id : op->slot, (long long)took, msg);
    else if (op->kind == K_START) {
        const cJSON *rs = cJSON_GetObjectItemCaseSensitive(op->details, "replica_start");
        log_info("exec",
                 "%s: start %s done in %lld ms (record in place at %lld ms, slots at %lld ms, "
                 "replica ready at %lld ms: agent set-up %.1f ms, spawn to exec %.1f ms, start-up "
                 "%lld ms; in HAProxy's rotation at %lld ms)",
                 wl->name, op->id, (long long)took, (long long)op->t_rec, (long long)op->t_slots,
                 (long long)op->t_started, jnum(rs, "setup_ms", -1), jnum(rs, "exec_ms", -1),
                 (long long)op->startup_ms, (long long)took);
    } else
        log_info("exec", "%s: %s %s done in %lld ms", wl->name, kind_name(op->kind),
                 op->id[0] ? op->id : op->slot, (long long)took);
    record_save(wl);
    if (op->kind == K_START) {
        if (ok) {
            wl->start_fail = 0;
            wl->start_retry_ms = 0;
        } else {
            int64_t b = (int64_t)wl->spec->sync_seconds * 1000;
            for (int i = 0; i < wl->start_fail && b < HB_BACKOFF_MAX_MS; i++)
                b *= 2;
            wl->start_fail++;
            wl->start_retry_ms = now_ms() + (b < HB_BACKOFF_MAX_MS ? b : HB_BACKOFF_MAX_MS);
        }
    }
    int reported = 0;
    if (op->tseq &&
        exec_tracker_complete(x->tr, op->rq.workload, op->rq.generation, op->tseq, NULL)) {
        exec_result res = {.rq = op->rq,
                           .ok = ok,
                           .duration_ms = took,
                           .startup_ms = op->startup_ms,
                           .error = ok ? NULL : msg,
                           .details = op->details};
        x->sink->done(x->cp, &res);
        reported = 1;
    }
    /* the real state, when the planner may think otherwise: after a failure, or when the
     * outcome belongs to an older generation (or arrived after the tracker's deadline) */
    if (op->tseq && (!ok || !reported) && !wl->deleted) {
        if (p)
            report_replica(wl, p, p->r.state, "%s %s", kind_name(op->kind),
                           ok ? "finished" : "failed");
        else if (op->id[0]) {
            hb_rep gone = {0};
            snprintf(gone.r.id, sizeof gone.r.id, "%s", op->id);
            gone.r.since_ms = now_ms();
            report_replica(wl, &gone, EXEC_RS_GONE, NULL);
        }
    }
    wl->ops--;
    op_free(op);
    wl_maybe_free(wl);
}

static int op_send(hb_op *op, const char *node, const char *action, cJSON *args) {
    char err[512];
    if (!args) {
        op_finish(op, 0, "%s: out of memory", action);
        return -ENOMEM;
    }
    /* every step of an action carries the workload's fencing token (README "Fencing") */
    hb *x = op->x;
    uint64_t token = x->sink->fence ? x->sink->fence(x->cp, op->wl->name) : 0;
    int rc = exec_node_action_fenced(x->cp, node, action, args, NULL, op->wl->name, token, op_step,
                                     op, &op->h, err, sizeof err);
    cJSON_Delete(args);
    if (rc < 0) {
        op_finish(op, 0, "%s on %s: %s", action, node, err);
        return rc;
    }
    return 0;
}

static hb_op *op_new(hb *x, hb_wl *wl, hb_kind kind, const char *id) {
    hb_op *op = calloc(1, sizeof *op);
    if (!op) return NULL;
    op->x = x;
    op->wl = wl;
    op->kind = kind;
    op->t0 = now_ms();
    op->startup_ms = -1;
    if (id) snprintf(op->id, sizeof op->id, "%s", id);
    op->next = x->ops;
    if (x->ops) x->ops->prev = op;
    x->ops = op;
    wl->ops++;
    return op;
}

/* Keeps the answer of a step in op->details under key. */
static void keep(hb_op *op, const char *key, const cJSON *data) {
    if (!data) return;
    if (!op->details) op->details = cJSON_CreateObject();
    if (op->details) cJSON_AddItemToObject(op->details, key, cJSON_Duplicate(data, 1));
}

/* HAProxy's status word says the server takes traffic (admin ready: UP, DOWN while checks
 * fail, NOLB). */
static int status_ready(const char *st) {
    return st && (!strncmp(st, "UP", 2) || !strncmp(st, "DOWN", 4) || !strncmp(st, "NOLB", 4));
}

/* The workload's replicas as placement sees them (malloc'd; NULL on ENOMEM). */
static hb_replica_view *rep_views(const hb_wl *wl) {
    hb_replica_view *rv = calloc(wl->n ? wl->n : 1, sizeof *rv);
    for (size_t i = 0; rv && i < wl->n; i++) {
        snprintf(rv[i].node, sizeof rv[i].node, "%s", wl->r[i].r.node);
        rv[i].port = wl->r[i].r.port;
        snprintf(rv[i].slot, sizeof rv[i].slot, "%s", wl->r[i].r.slot);
    }
    return rv;
}

/* A new replica's node and port (nodes on one host, one address, share its ports). */
static int place_node(hb_wl *wl, hb_placement *pl, char *why, size_t whylen) {
    hb *x = wl->x;
    const wl_target *t = &wl->spec->target;
    hb_replica_view *rv = rep_views(wl);
    if (!rv) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    unsigned char up[WL_MAX_NODES] = {0};
    for (int i = 0; i < t->n_nodes; i++)
        up[i] = cp_agent_node(x->cp, t->nodes[i], NULL, 0, NULL) == 1;
    int rc = hb_place_node(t, up, rv, wl->n, pl, why, whylen);
    free(rv);
    if (rc < 0) return rc;
    char na[WL_ADDR_MAX];
    node_addr(x, t, t->nodes[pl->node], na, sizeof na);
    int port = -1;
    for (int pt = t->replica.port_first; pt <= t->replica.port_last && port < 0; pt++) {
        int used = 0;
        for (size_t i = 0; i < wl->n && !used; i++)
            used = wl->r[i].r.port == pt &&
                   (!strcmp(wl->r[i].r.addr, na) || !strcmp(wl->r[i].r.node, t->nodes[pl->node]));
        if (!used) port = pt;
    }
    if (port < 0) {
        snprintf(why, whylen, "no free port in %d-%d at %s (node %s)", t->replica.port_first,
                 t->replica.port_last, na, t->nodes[pl->node]);
        return -ENOSPC;
    }
    pl->port = port;
    return 0;
}

/* A free slot from a haproxy-slots answer: neither held by one of the workload's replicas nor
 * in use (not MAINT) by something else. Its name in slot. */
static int place_slot(hb_wl *wl, const cJSON *slots_ans, char *slot, size_t cap, char *why,
                      size_t whylen) {
    const wl_target *t = &wl->spec->target;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(slots_ans, "slots");
    int ns = cJSON_GetArraySize(arr);
    hb_slot_view *sv = calloc(ns > 0 ? (size_t)ns : 1, sizeof *sv);
    hb_replica_view *rv = rep_views(wl);
    if (!sv || !rv) {
        free(sv);
        free(rv);
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    size_t k = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, arr) {
        const char *name = jstr(s, "server"), *st = jstr(s, "status");
        if (!name || strlen(name) >= HB_SERVER_MAX) continue;
        snprintf(sv[k].server, sizeof sv[k].server, "%s", name);
        int held = 0;
        for (size_t i = 0; i < wl->n && !held; i++)
            held = !strcmp(wl->r[i].r.slot, name);
        sv[k].busy = !held && st && strcmp(st, "MAINT") != 0;
        k++;
    }
    hb_placement pl;
    int rc = hb_place_slot(t, rv, wl->n, sv, k, &pl, why, whylen);
    if (rc == 0) snprintf(slot, cap, "%s", sv[pl.slot].server);
    free(sv);
    free(rv);
    return rc;
}

static void start_slots(void *arg, int ok, int status, cJSON *data, const char *error);
static void start_slot_addr(void *arg, int ok, int status, cJSON *data, const char *error);
static void start_recorded(void *arg, int rc);
/* The replica-stop (and slot maint) after a START that failed past its process start. */
static void start_undo(hb_op *op, const char *why);

/* START: node and port now; the record names the replica before its process exists; HAProxy's
 * slots are asked for meanwhile (the slot is only needed once the replica is ready, so its
 * round trip runs while the record is written and the replica starts). */
static void start_begin(hb_op *op) {
    hb_wl *wl = op->wl;
    const wl_target *t = &wl->spec->target;
    hb_placement pl;
    char why[300];
    int rc = place_node(wl, &pl, why, sizeof why);
    if (rc < 0) {
        op_finish(op, 0, "placement: %s", why);
        return;
    }
    hb_rep *p = rep_add(wl, op->id);
    if (!p) {
        op_finish(op, 0, "out of memory (or %d replicas)", HB_RECORD_MAX_REPLICAS);
        return;
    }
    snprintf(p->r.node, sizeof p->r.node, "%s", t->nodes[pl.node]);
    node_addr(wl->x, t, p->r.node, p->r.addr, sizeof p->r.addr);
    p->r.port = pl.port;
    p->r.state = EXEC_RS_STARTING;
    p->r.since_ms = now_ms();
    snprintf(p->doing, sizeof p->doing, "start");
    if (!p->r.addr[0]) {
        rep_remove(wl, op->id);
        op_finish(op, 0, "no address for node %s (give nodes[].address)", t->nodes[pl.node]);
        return;
    }
    log_info("exec", "%s: %s placed on %s (%s:%d)", wl->name, op->id, p->r.node, p->r.addr,
             p->r.port);
    op->step = 1;
    char err[512];
    cJSON *sa = hb_slots_args(t);
    rc = sa ? exec_node_action(wl->x->cp, t->haproxy_node, "haproxy-slots", sa, NULL, start_slots,
                               op, &op->h2, err, sizeof err)
            : -ENOMEM;
    cJSON_Delete(sa);
    if (rc < 0) { /* nothing started: HAProxy's node must answer first */
        rep_remove(wl, op->id);
        op_finish(op, 0, "haproxy-slots on %s: %s", t->haproxy_node,
                  rc == -ENOMEM ? "out of memory" : err);
        return;
    }
    op->rec_wait = 1;
    record_put(wl, start_recorded, op); /* then replica-start (start_recorded) */
}

/* The record holds the new replica (or could not be written: logged): start its process. */
static void start_recorded(void *arg, int rc) {
    (void)rc;
    hb_op *op = arg;
    hb_wl *wl = op->wl;
    op->rec_wait = 0;
    op->t_rec = now_ms() - op->t0;
    hb_rep *p = rep_find(wl, op->id);
    if (!p) {
        op_finish(op, 0, "replica %s vanished during its start", op->id);
        return;
    }
    op_send(op, p->r.node, "replica-start",
            hb_start_args(&wl->spec->target, op->id, p->r.port, wl->name, wl->generation));
}

static void start_online(hb_op *op);

/* HAProxy's slots for a START: the lowest free one is the replica's from now on. */
static void start_slots(void *arg, int ok, int status, cJSON *data, const char *error) {
    (void)status;
    hb_op *op = arg;
    op->h2 = NULL;
    op->t_slots = now_ms() - op->t0;
    hb_wl *wl = op->wl;
    const wl_target *t = &wl->spec->target;
    hb_rep *p = rep_find(wl, op->id);
    char why[300];
    if (!ok) {
        op->slots_st = -1;
        snprintf(op->slots_err, sizeof op->slots_err, "haproxy-slots on %.60s: %.200s",
                 t->haproxy_node, error ? error : "failed");
    } else if (!p) {
        op->slots_st = -1;
        snprintf(op->slots_err, sizeof op->slots_err, "replica %.100s vanished", op->id);
    } else if (place_slot(wl, data, p->r.slot, sizeof p->r.slot, why, sizeof why) < 0) {
        op->slots_st = -1;
        snprintf(op->slots_err, sizeof op->slots_err, "placement: %.280s", why);
    } else {
        log_info("exec", "%s: %s gets slot %s/%s", wl->name, op->id, t->name, p->r.slot);
        record_save(wl);
        /* the slot (in maint: no traffic) points at the replica now, so that putting it into
         * the rotation once the replica is ready is one HAProxy command */
        char err[512];
        cJSON *a = hb_slot_args(t, p->r.slot, p->r.addr, p->r.port, NULL);
        int rc = a ? exec_node_action(wl->x->cp, t->haproxy_node, "haproxy-slot", a, NULL,
                                      start_slot_addr, op, &op->h2, err, sizeof err)
                   : -ENOMEM;
        cJSON_Delete(a);
        cJSON_Delete(data);
        if (rc == 0) return;
        op->slots_st = -1;
        snprintf(op->slots_err, sizeof op->slots_err,
                 "haproxy-slot %.60s/%.60s addr on %.60s: %.100s", t->name, p->r.slot,
                 t->haproxy_node, rc == -ENOMEM ? "out of memory" : err);
        if (op->started) start_online(op);
        return;
    }
    cJSON_Delete(data);
    if (op->started) start_online(op);
}

/* The slot points at the replica (or could not be pointed there). */
static void start_slot_addr(void *arg, int ok, int status, cJSON *data, const char *error) {
    (void)status;
    hb_op *op = arg;
    op->h2 = NULL;
    op->t_slots = now_ms() - op->t0;
    hb_wl *wl = op->wl;
    const wl_target *t = &wl->spec->target;
    hb_rep *p = rep_find(wl, op->id);
    keep(op, "haproxy_slot_addr", data);
    cJSON_Delete(data);
    if (ok && p) {
        op->slots_st = 1;
    } else {
        op->slots_st = -1;
        snprintf(op->slots_err, sizeof op->slots_err,
                 "haproxy-slot %.60s/%.60s addr on %.60s: %.150s", t->name, p ? p->r.slot : "?",
                 t->haproxy_node, p ? (error ? error : "failed") : "replica vanished");
    }
    if (op->started) start_online(op);
}

/* Both answers are in (replica ready, slot chosen or not): into HAProxy's rotation, or undone. */
static void start_online(hb_op *op) {
    hb_wl *wl = op->wl;
    const wl_target *t = &wl->spec->target;
    hb_rep *p = rep_find(wl, op->id);
    if (!p) {
        op_finish(op, 0, "replica %s vanished during its start", op->id);
        return;
    }
    if (op->slots_st < 0) {
        char why[sizeof op->slots_err];
        snprintf(why, sizeof why, "%s", op->slots_err);
        start_undo(op, why);
        return;
    }
    op->step = 2;
    op_send(op, t->haproxy_node, "haproxy-slot", hb_slot_args(t, p->r.slot, NULL, 0, "ready"));
}

static void op_step_in(hb_op *op, int ok, const cJSON *data, const char *error);

/* The transport's callback: data is ours (kept parts are copied). */
static void op_step(void *arg, int ok, int status, cJSON *data, const char *error) {
    hb_op *op = arg;
    hb *x = op->x;
    char wl[WL_NAME_MAX], what[200];
    uint64_t seen = status == EXEC_STATUS_FENCED ? exec_fenced_seen(data) : 0;
    if (seen) { /* op and its workload may be gone after the step: keep what the sink needs */
        snprintf(wl, sizeof wl, "%s", op->wl->name);
        snprintf(what, sizeof what, "%s %.150s", kind_name(op->kind),
                 op->id[0] ? op->id : op->slot);
    }
    op_step_in(op, ok, data, error);
    cJSON_Delete(data);
    if (seen && x->sink->fenced) x->sink->fenced(x->cp, wl, seen, what);
}

static void op_step_in(hb_op *op, int ok, const cJSON *data, const char *error) {
    op->h = NULL;
    hb_wl *wl = op->wl;
    const wl_target *t = &wl->spec->target;
    hb_rep *p = rep_find(wl, op->id);
    char err[600];
    snprintf(err, sizeof err, "%s", error ? error : "failed");
    switch (op->kind) {
    case K_START:
        if (op->step == 1) { /* replica-start answered */
            keep(op, "replica_start", data);
            op->t_started = now_ms() - op->t0;
            if (!p) {
                op_finish(op, 0, "replica %s vanished during its start", op->id);
            } else if (!ok) {
                /* the agent removes what it started when it answers; without an answer
                 * (disconnected, timed out) the process may run on: a replica-stop (a no-op
                 * for an unknown id) when the node is there, then it goes */
                p->lost = 1;
                p->r.slot[0] = 0;
                rep_set(p, EXEC_RS_GONE);
                op_finish(op, 0, "replica-start on %s: %s", p->r.node, err);
            } else {
                const char *cg = jstr(data, "cgroup");
                if (cg) snprintf(p->r.cgroup, sizeof p->r.cgroup, "%s", cg);
                p->r.pid = (long)jnum(data, "pid", 0);
                p->startup_ms = (int64_t)jnum(data, "startup_ms", -1);
                op->startup_ms = p->startup_ms;
                record_save(wl);
                op->started = 1;
                if (op->slots_st != 0) start_online(op); /* else when the slots are in */
            }
        } else if (op->step == 2) { /* slot set */
            keep(op, "haproxy_slot", data);
            const char *st = jstr(data, "status");
            if (!p) {
                op_finish(op, 0, "replica %s vanished during its start", op->id);
            } else if (!ok || !status_ready(st)) {
                char why[700];
                snprintf(why, sizeof why, "haproxy-slot %s/%s ready on %s: %.300s", t->name,
                         p->r.slot, t->haproxy_node, ok ? (st ? st : "no status") : err);
                start_undo(op, why);
            } else {
                snprintf(p->hstatus, sizeof p->hstatus, "%s", st);
                rep_set(p, EXEC_RS_ONLINE);
                op_finish(op, 1, NULL);
            }
        } else if (op->step == 3) { /* undo: slot maint done (or not), now stop */
            op->step = 4;
            op_send(op, p ? p->r.node : "", "replica-stop", hb_stop_args(t, op->id));
        } else { /* undo finished */
            const char *why = jstr(op->details, "why");
            char msg[700];
            snprintf(msg, sizeof msg, "%s", why ? why : "start failed");
            if (ok) {
                rep_remove(wl, op->id);
                op_finish(op, 0, "%s; the replica was stopped again", msg);
            } else {
                if (p) rep_set(p, EXEC_RS_CUTOFF);
                op_finish(op, 0, "%s; stopping it failed too (%s): kept as Cutoff", msg, err);
            }
        }
        return;
    case K_CUTOFF:
        keep(op, "drain", data);
        if (p) {
            const char *st = jstr(data, "haproxy_status");
            if (st) snprintf(p->hstatus, sizeof p->hstatus, "%s", st);
            /* HAProxy sends it nothing new once drain was set, clean or not */
            if (ok || (st && (!strncmp(st, "DRAIN", 5) || !strcmp(st, "MAINT"))))
                rep_set(p, EXEC_RS_CUTOFF);
        }
        if (ok)
            op_finish(op, 1, NULL);
        else
            op_finish(op, 0, "drain of %s/%s on %s: %s", t->name, p ? p->r.slot : "?",
                      t->haproxy_node, err);
        return;
    case K_STANDBY:
        if (op->step == 0) {
            keep(op, "haproxy_slot", data);
            if (!ok || !p) {
                if (p) rep_set(p, EXEC_RS_CUTOFF);
                op_finish(op, 0, "haproxy-slot %s/%s maint on %s: %s (not frozen)", t->name,
                          p ? p->r.slot : "?", t->haproxy_node, p ? err : "replica gone");
                return;
            }
            snprintf(p->hstatus, sizeof p->hstatus, "MAINT");
            op->step = 1;
            cJSON *a = cJSON_CreateObject();
            if (a) cJSON_AddStringToObject(a, "cgroup", p->r.cgroup);
            op_send(op, p->r.node, "standby", a);
        } else {
            keep(op, "standby", data);
            if (p) rep_set(p, ok ? EXEC_RS_STANDBY : EXEC_RS_CUTOFF);
            if (ok)
                op_finish(op, 1, NULL);
            else
                op_finish(op, 0, "standby on %s: %s", p ? p->r.node : "?", err);
        }
        return;
    case K_ACTIVATE:
        if (op->step == 0) {
            keep(op, "activate", data);
            cJSON *ws = hb_warmup_summary(data); /* the warm-up's figures, at the top */
            if (ws) {
                keep(op, "warmup", ws);
                cJSON_Delete(ws);
            }
            if (!ok || !p) {
                if (p) rep_set(p, EXEC_RS_STANDBY);
                op_finish(op, 0, "activate on %s: %s", p ? p->r.node : "?",
                          p ? err : "replica gone");
                return;
            }
            rep_set(p, EXEC_RS_CUTOFF); /* thawed, no traffic yet */
            if (!p->r.slot[0]) {        /* adopted without a slot: find one, as a restore does */
                op->kind = K_RESTORE;
                op_send(op, t->haproxy_node, "haproxy-slots", hb_slots_args(t));
                return;
            }
            /* standby left the slot's address alone: one HAProxy command, not two */
            op->step = 1;
            op_send(op, t->haproxy_node, "haproxy-slot",
                    hb_slot_args(t, p->r.slot, NULL, 0, "ready"));
            return;
        }
        /* fall through: the slot answer, as RESTORE's */
        /* FALLTHROUGH */
    case K_RESTORE:
        if (op->kind == K_RESTORE && op->step == 0) { /* slots, to find one */
            if (!ok || !p) {
                op_finish(op, 0, "haproxy-slots on %s: %s", t->haproxy_node,
                          p ? err : "replica gone");
                return;
            }
            char why[300];
            if (place_slot(wl, data, p->r.slot, sizeof p->r.slot, why, sizeof why) < 0) {
                p->r.slot[0] = 0;
                op_finish(op, 0, "no slot for %s: %s", op->id, why);
                return;
            }
            record_save(wl);
            op->step = 1;
            op_send(op, t->haproxy_node, "haproxy-slot",
                    hb_slot_args(t, p->r.slot, p->r.addr, p->r.port, "ready"));
            return;
        }
        keep(op, "haproxy_slot", data);
        {
            const char *st = jstr(data, "status");
            if (!p) {
                op_finish(op, 0, "replica %s gone", op->id);
            } else if (!ok || !status_ready(st)) {
                op_finish(op, 0, "haproxy-slot %s/%s ready on %s: %s", t->name, p->r.slot,
                          t->haproxy_node, ok ? (st ? st : "no status") : err);
            } else {
                snprintf(p->hstatus, sizeof p->hstatus, "%s", st);
                rep_set(p, EXEC_RS_ONLINE);
                op_finish(op, 1, NULL);
            }
        }
        return;
    case K_DELETE:
    case K_CLEAN:
        if (op->step == 0) { /* slot maint (HAProxy first: never a slot at a dead process) */
            keep(op, "haproxy_slot", data);
            if (!ok) {
                op_finish(op, 0, "haproxy-slot %s/%s maint on %s: %s (not stopped)", t->name,
                          p ? p->r.slot : "?", t->haproxy_node, err);
                return;
            }
            if (p) {
                p->r.slot[0] = 0;
                snprintf(p->hstatus, sizeof p->hstatus, "MAINT");
            }
            op->step = 1;
            op_send(op, p ? p->r.node : "", "replica-stop", hb_stop_args(t, op->id));
        } else {
            keep(op, "replica_stop", data);
            if (!ok) {
                op_finish(op, 0, "replica-stop on %s: %s", p ? p->r.node : "?", err);
                return;
            }
            rep_remove(wl, op->id);
            op_finish(op, 1, NULL);
        }
        return;
    case K_MAINT:
        if (ok)
            op_finish(op, 1, NULL);
        else
            op_finish(op, 0, "haproxy-slot %s/%s maint on %s: %s", t->name, op->slot,
                      t->haproxy_node, err);
        return;
    }
}

static void start_undo(hb_op *op, const char *why) {
    hb_wl *wl = op->wl;
    const wl_target *t = &wl->spec->target;
    hb_rep *p = rep_find(wl, op->id);
    if (!op->details) op->details = cJSON_CreateObject();
    if (op->details) cJSON_AddStringToObject(op->details, "why", why);
    if (p && !p->r.slot[0]) { /* no slot was given to it: nothing to take out of HAProxy */
        op->step = 4;
        op_send(op, p->r.node, "replica-stop", hb_stop_args(t, op->id));
        return;
    }
    op->step = 3;
    op_send(op, t->haproxy_node, "haproxy-slot",
            hb_slot_args(t, p ? p->r.slot : "", NULL, 0, "maint"));
}

/* Starts the internal clean-up of replica p (slot maint when it has one, replica-stop). */
static void clean_start(hb_wl *wl, hb_rep *p) {
    const wl_target *t = &wl->spec->target;
    if (p->doing[0]) return;
    hb_op *op = op_new(wl->x, wl, K_CLEAN, p->r.id);
    if (!op) return;
    snprintf(p->doing, sizeof p->doing, "clean-up");
    if (p->r.slot[0]) {
        op_send(op, t->haproxy_node, "haproxy-slot", hb_slot_args(t, p->r.slot, NULL, 0, "maint"));
    } else {
        op->step = 1;
        op_send(op, p->r.node, "replica-stop", hb_stop_args(t, p->r.id));
    }
}

static void maint_start(hb_wl *wl, const char *slot) {
    const wl_target *t = &wl->spec->target;
    hb_op *op = op_new(wl->x, wl, K_MAINT, NULL);
    if (!op) return;
    snprintf(op->slot, sizeof op->slot, "%s", slot);
    op_send(op, t->haproxy_node, "haproxy-slot", hb_slot_args(t, slot, NULL, 0, "maint"));
}

/* ---- the workloads ----------------------------------------------------------------------------
 */

static hb_wl *wl_get(hb *x, const workload_spec *spec, int create) {
    for (hb_wl *wl = x->wls; wl; wl = wl->next)
        if (!strcmp(wl->name, spec->name)) {
            if (create) {
                *wl->spec = *spec;
                /* forgotten while an action was still under way: the view is from before
                 * (another control plane may have acted since): a new inventory is due */
                if (wl->deleted && wl->inv == 2) wl->inv = 0;
                wl->deleted = 0;
            }
            return wl;
        }
    if (!create) return NULL;
    hb_wl *wl = calloc(1, sizeof *wl);
    if (!wl || !(wl->spec = malloc(sizeof *wl->spec))) {
        free(wl);
        return NULL;
    }
    *wl->spec = *spec;
    wl->x = x;
    snprintf(wl->name, sizeof wl->name, "%s", spec->name);
    wl->next = x->wls;
    x->wls = wl;
    return wl;
}

static const char *hb_unusable(void *state, const workload_spec *spec) {
    (void)state;
    if (!spec->target.has_executor)
        return "an HAProxyBackend target without \"haproxy\" and \"replica\" cannot be acted on: "
               "planned as Preview";
    return NULL;
}

static int hb_apply(void *state, const workload_spec *spec, const exec_request *rq, char *err,
                    size_t errlen) {
    hb *x = state;
    hb_wl *wl = wl_get(x, spec, 0);
    if (!wl || wl->inv != 2 || wl->generation != rq->generation) {
        snprintf(err, errlen, "no inventory of %s generation %llu yet", spec->name,
                 (unsigned long long)rq->generation);
        return -EAGAIN;
    }
    *wl->spec = *spec;
    const wl_target *t = &spec->target;
    hb_rep *p = rep_find(wl, rq->replica);
    int64_t now = now_ms();
    if (rq->op != EXEC_START && (!p || p->lost)) {
        snprintf(err, errlen, "%s: no replica %s", exec_op_name(rq->op), rq->replica);
        return -ENOENT;
    }
    if (p && p->doing[0]) {
        snprintf(err, errlen, "%s: replica %s is busy (%s)", exec_op_name(rq->op), rq->replica,
                 p->doing);
        return -EBUSY;
    }
    switch (rq->op) {
    case EXEC_START:
        if (p) {
            snprintf(err, errlen, "start: replica %s exists already", rq->replica);
            return -EEXIST;
        }
        if (now < wl->start_retry_ms) {
            snprintf(err, errlen, "start backoff after %d failed start%s: next try in %lld s",
                     wl->start_fail, wl->start_fail == 1 ? "" : "s",
                     (long long)((wl->start_retry_ms - now + 999) / 1000));
            return -EAGAIN;
        }
        break;
    case EXEC_CUTOFF: {
        if (p->r.state != EXEC_RS_ONLINE) {
            snprintf(err, errlen, "cutoff: replica %s is %s, not Online", rq->replica,
                     exec_rstate_name(p->r.state));
            return -EINVAL;
        }
        int online = 0, floor = spec->min_replicas > 1 ? spec->min_replicas : 1;
        for (size_t i = 0; i < wl->n; i++)
            online += wl->r[i].r.state == EXEC_RS_ONLINE && !wl->r[i].lost &&
                      strcmp(wl->r[i].doing, "cutoff") != 0;
        if (online - 1 < floor) {
            snprintf(err, errlen,
                     "cutoff of %s refused: it would leave %d online (at least %d must stay)",
                     rq->replica, online - 1, floor);
            return -EPERM;
        }
        break;
    }
    case EXEC_DELETE:
        if (p->r.state == EXEC_RS_ONLINE || p->r.state == EXEC_RS_STARTING) {
            snprintf(err, errlen, "delete of %s refused: it is %s (cut it off first)", rq->replica,
                     exec_rstate_name(p->r.state));
            return -EPERM;
        }
        break;
    case EXEC_STANDBY:
        if (p->r.state != EXEC_RS_CUTOFF) {
            snprintf(err, errlen, "standby: replica %s is %s, not Cutoff", rq->replica,
                     exec_rstate_name(p->r.state));
            return -EINVAL;
        }
        break;
    case EXEC_ACTIVATE:
        if (p->r.state != EXEC_RS_STANDBY) {
            snprintf(err, errlen, "activate: replica %s is %s, not Standby", rq->replica,
                     exec_rstate_name(p->r.state));
            return -EINVAL;
        }
        break;
    case EXEC_RESTORE:
        if (p->r.state != EXEC_RS_CUTOFF && p->r.state != EXEC_RS_ONLINE) {
            snprintf(err, errlen, "restore: replica %s is %s, not Cutoff", rq->replica,
                     exec_rstate_name(p->r.state));
            return -EINVAL;
        }
        break;
    default:
        snprintf(err, errlen, "unknown action");
        return -EINVAL;
    }
    if (cp_agent_node(x->cp, t->haproxy_node, NULL, 0, NULL) != 1) {
        snprintf(err, errlen, "%s: HAProxy's node %s is not connected", exec_op_name(rq->op),
                 t->haproxy_node);
        return -EHOSTUNREACH;
    }
    int64_t track_ms =
        HB_TRACK_EXTRA_MS + (int64_t)spec->target.replica.readiness_timeout_seconds * 1000 +
        (int64_t)spec->target.replica.grace_seconds * 1000 +
        4LL * (TIDE_DRAIN_TIMEOUT_MS + EXEC_MARGIN_MS) + hb_warmup_ms(&spec->target.warmup);
    hb_op *op = op_new(x, wl, (hb_kind)rq->op, rq->replica);
    if (!op) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = exec_tracker_begin(x->tr, rq->workload, rq->generation, rq->replica,
                                exec_op_name(rq->op), now, (int)track_ms, op, &op->tseq);
    if (rc < 0) {
        snprintf(err, errlen, "%s",
                 rc == -EBUSY    ? "an action is under way on this replica"
                 : rc == -ENOSPC ? "too many actions under way"
                                 : "invalid request");
        wl->ops--;
        op_free(op);
        return rc;
    }
    op->rq = *rq;
    if (p) snprintf(p->doing, sizeof p->doing, "%s", exec_op_name(rq->op));
    switch (rq->op) {
    case EXEC_START:
        start_begin(op);
        break;
    case EXEC_CUTOFF: {
        cJSON *a = cJSON_CreateObject();
        char ref[WL_NAME_MAX + HB_SERVER_MAX + 2];
        snprintf(ref, sizeof ref, "%s/%s", t->name, p->r.slot);
        if (a && !(cJSON_AddStringToObject(a, "haproxy_socket", t->haproxy_socket) &&
                   cJSON_AddStringToObject(a, "haproxy_server", ref))) {
            cJSON_Delete(a);
            a = NULL;
        }
        op_send(op, t->haproxy_node, "drain", a);
        break;
    }
    case EXEC_STANDBY:
        op_send(op, t->haproxy_node, "haproxy-slot", hb_slot_args(t, p->r.slot, NULL, 0, "maint"));
        break;
    case EXEC_ACTIVATE: /* thaw, then the spec's warm-up to the replica's address */
        if (t->warmup.enabled && !(p->r.addr[0] && p->r.port > 0))
            log_warn("exec", "%s: replica %s has no address: activated without warm-up", wl->name,
                     p->r.id);
        op_send(op, p->r.node, "activate",
                hb_activate_args(&t->warmup, p->r.cgroup, p->r.addr, p->r.port));
        break;
    case EXEC_RESTORE:
        if (!p->r.slot[0]) {
            op_send(op, t->haproxy_node, "haproxy-slots", hb_slots_args(t));
        } else {
            op->step = 1;
            op_send(op, t->haproxy_node, "haproxy-slot",
                    hb_slot_args(t, p->r.slot, p->r.addr, p->r.port, "ready"));
        }
        break;
    case EXEC_DELETE:
        if (p->r.slot[0]) {
            op_send(op, t->haproxy_node, "haproxy-slot",
                    hb_slot_args(t, p->r.slot, NULL, 0, "maint"));
        } else {
            op->step = 1;
            op_send(op, p->r.node, "replica-stop", hb_stop_args(t, p->r.id));
        }
        break;
    default:
        break;
    }
    return 0; /* a send that failed was reported through done already */
}

/* ---- inventory ------------------------------------------------------------------------------ */

static void inv_fail(hb_wl *wl, const char *why) {
    hb *x = wl->x;
    wl->inv = 0;
    wl->n = 0;
    for (int i = 0; i < WL_MAX_NODES; i++) {
        cJSON_Delete(wl->inv_nodes[i]);
        wl->inv_nodes[i] = NULL;
    }
    cJSON_Delete(wl->inv_slots);
    wl->inv_slots = NULL;
    if (!wl->deleted) x->sink->inventory_done(x->cp, wl->name, wl->inv_gen, 0, why);
    wl_maybe_free(wl);
}

static const cJSON *slot_by_name(const cJSON *slots, const char *name) {
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(slots, "slots")) {
        const char *n = jstr(s, "server");
        if (n && !strcmp(n, name)) return s;
    }
    return NULL;
}

/* Every answer is in: the record meets the fleet. */
static void inv_reconcile(hb_wl *wl) {
    hb *x = wl->x;
    const wl_target *t = &wl->spec->target;
    if (!wl->inv_slots) {
        inv_fail(wl, wl->inv_err[0] ? wl->inv_err : "no answer from HAProxy's node");
        return;
    }
    char note[256] = "";
    /* processes of the workload on the nodes that answered */
    for (int ni = 0; ni < t->n_nodes; ni++) {
        const cJSON *ans = wl->inv_nodes[ni];
        if (!ans) continue;
        const cJSON *pr;
        cJSON_ArrayForEach(pr, cJSON_GetObjectItemCaseSensitive(ans, "replicas")) {
            const char *id = jstr(pr, "id");
            const char *lw = jstr(cJSON_GetObjectItemCaseSensitive(pr, "labels"), "workload");
            if (!id || !lw || strcmp(lw, wl->name) || !tide_replica_id_valid(id)) continue;
            const char *st = jstr(pr, "state");
            if (st && !strcmp(st, "starting")) {
                char why[300];
                snprintf(why, sizeof why, "replica %s is still starting on %s", id, t->nodes[ni]);
                inv_fail(wl, why);
                return;
            }
            hb_rep *p = rep_find(wl, id);
            if (p && strcmp(p->r.node, t->nodes[ni])) continue; /* the record's node wins */
            if (!p) {
                if (!(p = rep_add(wl, id))) continue;
                snprintf(p->r.node, sizeof p->r.node, "%s", t->nodes[ni]);
                node_addr(x, t, p->r.node, p->r.addr, sizeof p->r.addr);
                p->r.port = (int)jnum(pr, "port", 0);
                p->r.state = EXEC_RS_CUTOFF;
                p->r.since_ms = now_ms();
            }
            p->r.pid = (long)jnum(pr, "pid", (double)p->r.pid);
            const char *cg = jstr(pr, "cgroup");
            if (cg) snprintf(p->r.cgroup, sizeof p->r.cgroup, "%s", cg);
            p->startup_ms = (int64_t)jnum(pr, "startup_ms", -1);
            p->doing[0] = 0;
            if (st && (!strcmp(st, "exited") || !strcmp(st, "stopping"))) {
                p->lost = 1; /* cleaned up below */
                continue;
            }
            p->lost = 2; /* seen */
            cJSON *fz = cJSON_GetObjectItemCaseSensitive(pr, "frozen");
            /* the slot: the recorded one when it still points here, else one that does */
            const cJSON *sl = p->r.slot[0] ? slot_by_name(wl->inv_slots, p->r.slot) : NULL;
            if (sl && (jnum(sl, "port", 0) != p->r.port ||
                       (jstr(sl, "addr") && strcmp(jstr(sl, "addr"), p->r.addr))))
                sl = NULL;
            if (!sl) {
                p->r.slot[0] = 0;
                const cJSON *s;
                cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(wl->inv_slots, "slots")) {
                    const char *a = jstr(s, "addr"), *n = jstr(s, "server");
                    if (n && a && !strcmp(a, p->r.addr) && jnum(s, "port", 0) == p->r.port &&
                        strlen(n) < sizeof p->r.slot) {
                        snprintf(p->r.slot, sizeof p->r.slot, "%s", n);
                        sl = s;
                        break;
                    }
                }
            }
            const char *hs = sl ? jstr(sl, "status") : NULL;
            snprintf(p->hstatus, sizeof p->hstatus, "%s", hs ? hs : "");
            exec_rstate ns = cJSON_IsTrue(fz)   ? EXEC_RS_STANDBY
                             : status_ready(hs) ? EXEC_RS_ONLINE
                                                : EXEC_RS_CUTOFF;
            if (ns == EXEC_RS_STANDBY && hs && strcmp(hs, "MAINT"))
                maint_start(wl, p->r.slot); /* frozen: HAProxy must not send it anything */
            rep_set(p, ns);
        }
    }
    /* recorded replicas: on a node that answered and shows no process -> gone */
    for (size_t i = 0; i < wl->n;) {
        hb_rep *p = &wl->r[i];
        int ni = node_index(t, p->r.node);
        int answered = ni >= 0 && wl->inv_nodes[ni];
        if (p->lost == 2) {
            p->lost = 0;
            i++;
        } else if (p->lost == 1) { /* exited or stopping: clean up */
            p->lost = 0;
            rep_set(p, EXEC_RS_CUTOFF);
            clean_start(wl, p);
            snprintf(note, sizeof note, "replica %.200s had exited: cleaned up", p->r.id);
            i++;
        } else if (answered || ni < 0) {
            const cJSON *sl = p->r.slot[0] ? slot_by_name(wl->inv_slots, p->r.slot) : NULL;
            if (sl && jnum(sl, "port", 0) == p->r.port && jstr(sl, "status") &&
                strcmp(jstr(sl, "status"), "MAINT"))
                maint_start(wl, p->r.slot);
            log_warn("exec", "%s: replica %s of the record runs nowhere: gone", wl->name, p->r.id);
            rep_remove(wl, p->r.id);
        } else { /* its node did not answer: as recorded until the grace decides */
            if (p->r.state == EXEC_RS_STARTING) p->r.state = EXEC_RS_CUTOFF;
            if (p->r.state == EXEC_RS_ACTIVATING) p->r.state = EXEC_RS_STANDBY;
            i++;
        }
    }
    /* slots that point at one of our nodes' ports with no replica of ours: maint */
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(wl->inv_slots, "slots")) {
        const char *a = jstr(s, "addr"), *n = jstr(s, "server"), *st = jstr(s, "status");
        int port = (int)jnum(s, "port", 0);
        if (!a || !n || !st || !strcmp(st, "MAINT") || hb_slot_number(t->haproxy_prefix, n) < 0 ||
            port < t->replica.port_first || port > t->replica.port_last)
            continue;
        int ours = 0, held = 0;
        for (int ni = 0; ni < t->n_nodes; ni++) {
            char na[WL_ADDR_MAX];
            node_addr(x, t, t->nodes[ni], na, sizeof na);
            ours |= na[0] && !strcmp(na, a);
        }
        for (size_t i = 0; i < wl->n; i++)
            held |= !strcmp(wl->r[i].r.slot, n);
        if (ours && !held) maint_start(wl, n);
    }
    for (int i = 0; i < WL_MAX_NODES; i++) {
        cJSON_Delete(wl->inv_nodes[i]);
        wl->inv_nodes[i] = NULL;
    }
    cJSON_Delete(wl->inv_slots);
    wl->inv_slots = NULL;
    wl->inv = 2;
    wl->generation = wl->inv_gen;
    record_save(wl);
    if (wl->deleted) {
        wl_maybe_free(wl);
        return;
    }
    for (size_t i = 0; i < wl->n; i++) {
        hb_rep *p = &wl->r[i];
        report_replica(wl, p, p->r.state, "adopted: pid %ld on %s, slot %s %s", p->r.pid, p->r.node,
                       p->r.slot[0] ? p->r.slot : "none", p->hstatus[0] ? p->hstatus : "");
    }
    x->sink->inventory_done(x->cp, wl->name, wl->generation, 1, note);
}

static void call_unlink(hb *x, inv_call *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        x->calls = c->next;
    if (c->next) c->next->prev = c->prev;
}

/* A periodic check's answer: replicas the node no longer runs (exited, or unknown to it) are
 * gone: reported, and cleaned up (slot maint, replica-stop). */
static void check_answer(hb_wl *wl, int node, int ok, const cJSON *data) {
    wl->checks--;
    if (!ok || wl->inv != 2 || wl->deleted || node >= wl->spec->target.n_nodes) return;
    const char *nn = wl->spec->target.nodes[node];
    for (size_t i = 0; i < wl->n; i++) {
        hb_rep *p = &wl->r[i];
        if (p->lost || p->doing[0] || strcmp(p->r.node, nn)) continue;
        const cJSON *pr, *found = NULL;
        cJSON_ArrayForEach(pr, cJSON_GetObjectItemCaseSensitive(data, "replicas")) {
            const char *id = jstr(pr, "id");
            if (id && !strcmp(id, p->r.id)) found = pr;
        }
        const char *st = found ? jstr(found, "state") : NULL;
        if (found && !(st && !strcmp(st, "exited"))) continue;
        log_warn("exec", "%s: replica %s on %s %s: gone", wl->name, p->r.id, nn,
                 found ? "exited" : "is not known to its agent");
        p->lost = 1;
        rep_set(p, EXEC_RS_GONE);
        report_replica(wl, p, EXEC_RS_GONE, "%s on %s", found ? "exited" : "no process", nn);
        clean_start(wl, p);
    }
    record_save(wl);
}

static void inv_answer(void *arg, int ok, int status, cJSON *data, const char *error) {
    (void)status;
    inv_call *c = arg;
    hb_wl *wl = c->wl;
    call_unlink(wl->x, c);
    if (c->check) {
        check_answer(wl, c->node, ok, data);
        cJSON_Delete(data);
        free(c);
        wl_maybe_free(wl);
        return;
    }
    if (c->node < 0) {
        if (ok)
            wl->inv_slots = data;
        else {
            snprintf(wl->inv_err, sizeof wl->inv_err, "haproxy-slots on %.60s: %.170s",
                     wl->spec->target.haproxy_node, error ? error : "failed");
            cJSON_Delete(data);
        }
    } else if (ok) {
        wl->inv_nodes[c->node] = data;
    } else {
        log_warn("exec", "%s: inventory: replicas on %s: %s", wl->name,
                 wl->spec->target.nodes[c->node], error ? error : "failed");
        cJSON_Delete(data);
    }
    free(c);
    if (--wl->inv_wait == 0) inv_reconcile(wl);
}

static int inv_send(hb_wl *wl, int node, const char *target, const char *action, cJSON *args) {
    inv_call *c = calloc(1, sizeof *c);
    char err[256];
    if (!c || !args) {
        free(c);
        cJSON_Delete(args);
        return -ENOMEM;
    }
    c->wl = wl;
    c->node = node;
    wl->inv_wait++;
    int rc = exec_node_action(wl->x->cp, target, action, args, NULL, inv_answer, c, &c->h, err,
                              sizeof err);
    cJSON_Delete(args);
    if (rc < 0) {
        wl->inv_wait--;
        free(c);
        return rc;
    }
    c->next = wl->x->calls;
    if (c->next) c->next->prev = c;
    wl->x->calls = c;
    return 0;
}

static int hb_inventory(void *state, const workload_spec *spec, uint64_t generation, char *err,
                        size_t errlen) {
    hb *x = state;
    hb_wl *wl = wl_get(x, spec, 1);
    if (!wl) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    const wl_target *t = &spec->target;
    if (wl->inv == 2) { /* known: the new generation gets what the executor sees */
        wl->generation = generation;
        for (size_t i = 0; i < wl->n; i++)
            if (!wl->r[i].lost) report_replica(wl, &wl->r[i], wl->r[i].r.state, NULL);
        x->sink->inventory_done(x->cp, wl->name, generation, 1, "known replicas");
        return 0;
    }
    wl->inv_gen = generation;
    wl->generation = generation;
    if (wl->inv == 1) return 0; /* gathering: its result goes to this generation */
    if (cp_agent_node(x->cp, t->haproxy_node, NULL, 0, NULL) != 1) {
        snprintf(err, errlen, "HAProxy's node %s is not connected", t->haproxy_node);
        return -EHOSTUNREACH;
    }
    char missing[256] = "";
    size_t o = 0;
    for (int i = 0; i < t->n_nodes; i++)
        if (cp_agent_node(x->cp, t->nodes[i], NULL, 0, NULL) != 1 && o < sizeof missing)
            o += (size_t)snprintf(missing + o, sizeof missing - o, "%s%s", o ? ", " : "",
                                  t->nodes[i]);
    if (missing[0] && now_ms() - x->started_ms < grace_ms(spec)) {
        snprintf(err, errlen, "waiting for the agents of %s to connect", missing);
        return -EAGAIN;
    }
    record_load(wl);
    wl->inv = 1;
    wl->inv_err[0] = 0;
    wl->inv_wait = 1; /* held until every request is out */
    int rc = inv_send(wl, -1, t->haproxy_node, "haproxy-slots", hb_slots_args(t));
    for (int i = 0; rc == 0 && i < t->n_nodes; i++) {
        if (cp_agent_node(x->cp, t->nodes[i], NULL, 0, NULL) != 1) continue;
        inv_send(wl, i, t->nodes[i], "replicas", cJSON_CreateObject());
    }
    if (--wl->inv_wait == 0) inv_reconcile(wl);
    return 0;
}

static void hb_forget(void *state, const char *workload, uint64_t keep_generation) {
    hb *x = state;
    /* what runs on the fleet runs to its end (no orphan); its outcome is no longer reported */
    exec_tracker_forget(x->tr, workload, keep_generation, NULL, NULL);
    for (hb_wl *wl = x->wls; wl; wl = wl->next) {
        if (strcmp(wl->name, workload)) continue;
        if (keep_generation == 0) {
            wl->deleted = 1;
            wl_maybe_free(wl);
        }
        return;
    }
}

static void expired(void *arg, const exec_pending *pd) {
    hb *x = arg;
    hb_op *op = pd->handle;
    char msg[200];
    snprintf(msg, sizeof msg, "no outcome after %lld ms (step %d still under way)",
             (long long)(pd->deadline_ms - pd->started_ms), op->step);
    exec_result res = {.rq = op->rq,
                       .ok = 0,
                       .duration_ms = now_ms() - op->t0,
                       .startup_ms = -1,
                       .error = msg,
                       .details = op->details};
    x->sink->done(x->cp, &res);
}

static void hb_tick(void *state, const workload_spec *spec, uint64_t generation, int64_t now) {
    hb *x = state;
    hb_wl *wl = wl_get(x, spec, 0);
    /* forgotten (a new term of ownership): nothing is checked on the old view; the next
     * inventory reads the fleet again */
    if (!wl || wl->deleted || wl->inv != 2 || wl->generation != generation) return;
    *wl->spec = *spec;
    const wl_target *t = &spec->target;
    for (size_t i = 0; i < wl->n; i++) {
        hb_rep *p = &wl->r[i];
        int64_t since = 0;
        int up = cp_agent_node(x->cp, p->r.node, NULL, 0, &since);
        if (p->lost) {
            if (up == 1 && !p->doing[0]) clean_start(wl, p); /* back: stop what is left */
            continue;
        }
        if (up == 1 || p->doing[0]) continue;
        int64_t gone_for = up == 0 ? now - since : now - x->started_ms;
        if (gone_for < grace_ms(spec)) continue;
        p->lost = 1;
        p->r.since_ms = now;
        log_warn("exec", "%s: node %s gone for %lld s: replica %s counted lost", wl->name,
                 p->r.node, (long long)(gone_for / 1000), p->r.id);
        report_replica(wl, p, EXEC_RS_GONE, "node %s disconnected for %lld s: counted lost",
                       p->r.node, (long long)(gone_for / 1000));
        if (p->r.slot[0] && cp_agent_node(x->cp, t->haproxy_node, NULL, 0, NULL) == 1) {
            maint_start(wl, p->r.slot);
            p->r.slot[0] = 0;
        }
        record_save(wl);
    }
    /* the processes of each connected node that runs replicas: one round at a time */
    int round = wl->checks == 0;
    for (int ni = 0; round && ni < t->n_nodes; ni++) {
        int has = 0;
        for (size_t i = 0; i < wl->n && !has; i++)
            has = !wl->r[i].lost && !strcmp(wl->r[i].r.node, t->nodes[ni]);
        if (!has || cp_agent_node(x->cp, t->nodes[ni], NULL, 0, NULL) != 1) continue;
        inv_call *c = calloc(1, sizeof *c);
        cJSON *a = cJSON_CreateObject();
        char err[256];
        if (!c || !a) {
            free(c);
            cJSON_Delete(a);
            break;
        }
        c->wl = wl;
        c->node = ni;
        c->check = 1;
        if (exec_node_action(x->cp, t->nodes[ni], "replicas", a, NULL, inv_answer, c, &c->h, err,
                             sizeof err) < 0) {
            free(c);
        } else {
            c->next = x->calls;
            if (c->next) c->next->prev = c;
            x->calls = c;
            wl->checks++;
        }
        cJSON_Delete(a);
    }
    /* tracked actions past their deadline: reported failed now; their outcome, when it comes,
     * still moves the replica (reported as found) */
    exec_tracker_expire(x->tr, now, expired, x);
}

static cJSON *hb_replicas(void *state, const char *workload) {
    hb *x = state;
    cJSON *arr = cJSON_CreateArray();
    for (hb_wl *wl = x->wls; arr && wl; wl = wl->next) {
        if (strcmp(wl->name, workload)) continue;
        for (size_t i = 0; i < wl->n; i++) {
            const hb_rep *p = &wl->r[i];
            cJSON *o = cJSON_CreateObject();
            if (!o) break;
            cJSON_AddItemToArray(arr, o);
            cJSON_AddStringToObject(o, "id", p->r.id);
            cJSON_AddStringToObject(o, "state", p->lost ? "Lost" : exec_rstate_name(p->r.state));
            cJSON_AddNumberToObject(o, "since", (double)p->r.since_ms);
            cJSON_AddStringToObject(o, "node", p->r.node);
            cJSON_AddStringToObject(o, "addr", p->r.addr);
            cJSON_AddNumberToObject(o, "port", p->r.port);
            char srv[WL_NAME_MAX + HB_SERVER_MAX + 2] = "";
            if (p->r.slot[0]) snprintf(srv, sizeof srv, "%s/%s", wl->spec->target.name, p->r.slot);
            cJSON_AddStringToObject(o, "server", srv);
            cJSON_AddStringToObject(o, "haproxy_status", p->hstatus);
            cJSON_AddStringToObject(o, "cgroup", p->r.cgroup);
            cJSON_AddNumberToObject(o, "pid", (double)p->r.pid);
            if (p->startup_ms >= 0) cJSON_AddNumberToObject(o, "startup_ms", (double)p->startup_ms);
            cJSON_AddStringToObject(o, "doing", p->doing);
        }
    }
    return arr;
}

static int hb_start(struct controlplane *cp, const exec_sink *sink, void **state, char *err,
                    size_t errlen) {
    hb *x = calloc(1, sizeof *x);
    if (!x || !(x->tr = exec_tracker_new(HB_PENDING_MAX))) {
        free(x);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    x->cp = cp;
    x->sink = sink;
    x->started_ms = now_ms();
    int wrc = hb_writer_new(cp->loop, &x->wr);
    if (wrc < 0) {
        snprintf(err, errlen, "record writer: %s", strerror(-wrc));
        exec_tracker_free(x->tr);
        free(x);
        return wrc;
    }
    char d[1024];
    snprintf(d, sizeof d, "%s/exec", cp->cfg.data_dir);
    snprintf(x->dir, sizeof x->dir, "%s/exec/haproxy-backend", cp->cfg.data_dir);
    if ((mkdir(d, 0750) < 0 && errno != EEXIST) || (mkdir(x->dir, 0750) < 0 && errno != EEXIST)) {
        snprintf(err, errlen, "%s: %s", x->dir, strerror(errno));
        hb_writer_free(x->wr);
        exec_tracker_free(x->tr);
        free(x);
        return -EIO;
    }
    *state = x;
    return 0;
}

static void hb_stop(void *state) {
    hb *x = state;
    hb_writer_free(x->wr); /* what is still to be written is written (no callbacks) */
    x->wr = NULL;
    while (x->calls) {
        inv_call *c = x->calls;
        exec_node_action_cancel(c->h);
        x->calls = c->next;
        free(c);
    }
    while (x->ops) {
        hb_op *op = x->ops;
        exec_node_action_cancel(op->h);
        exec_node_action_cancel(op->h2);
        x->ops = op->next;
        cJSON_Delete(op->details);
        free(op);
    }
    while (x->wls) {
        hb_wl *wl = x->wls;
        x->wls = wl->next;
        wl_free(wl);
    }
    exec_tracker_free(x->tr);
    free(x);
}

static const executor hb_executor = {
    .name = "haproxy-backend",
    .kind = WL_TARGET_HAPROXY_BACKEND,
    .start = hb_start,
    .stop = hb_stop,
    .unusable = hb_unusable,
    .inventory = hb_inventory,
    .apply = hb_apply,
    .forget = hb_forget,
    .tick = hb_tick,
    .replicas = hb_replicas,
};

EXECUTOR_REGISTER(haproxy_backend, &hb_executor)
