/* replica_action.c: drain, standby, activate and warm-up of one replica, on the loop. */
#include "actions/replica_action.h"

#include <errno.h>
#include <ev.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actions.h"
#include "actions/haproxy.h"
#include "log.h"
#include "actions/replica_cgroup.h"
#include "actions/sockdiag.h"
#include "actions/warmup.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))
#define DRAIN_POLL_S 0.02 /* in-flight checks every 20 ms: drain time is known to +-20 ms */

enum kind { K_DRAIN, K_STANDBY, K_ACTIVATE, K_WARMUP };
static const char *const kind_names[] = {"drain", "standby", "activate", "warmup"};

typedef struct job job;
typedef void (*hap_next_fn)(job *j, const char *reply, size_t len);

struct job {
    struct ev_loop *loop;
    enum kind kind;
    /* arguments */
    char cgroup[RCG_PATH_MAX];
    char endpoint[96];
    sockdiag_endpoint ep;
    int has_ep;
    char hsock[256], hbe[HAPROXY_NAME_MAX], hsrv[HAPROXY_NAME_MAX];
    int has_hap;
    int timeout_ms;
    int wait_connections;
    int force;
    warmup_spec wspec;
    int has_warmup;
    /* state */
    int64_t t0_us, deadline_us;
    replica_cgroup rc;
    ev_timer poll;
    hap_next_fn hap_next;
    /* the sub-operation under way (at most one), for cancel */
    haproxy_req *hreq;
    rcg_freeze_op *fop;
    rcg_reclaim_op *rop;
    warmup *wu;
    int forced_health;
    int polls;
    long sessions;
    int connections;
    int conn_method;
    char status[32];
    cJSON *result;
    replica_action_done_fn done;
    void *arg;
    job *prev, *next; /* jobs under way on this loop's agent (one process: one list) */
};

/* Actions under way, to refuse a second one on the same replica (a standby racing an activate
 * would leave it in whichever state came last). Only touched from the loop thread. */
static job *running;

static void running_add(job *j) {
    j->next = running;
    if (running) running->prev = j;
    running = j;
}

static void running_remove(job *j) {
    if (j->prev)
        j->prev->next = j->next;
    else if (running == j)
        running = j->next;
    if (j->next) j->next->prev = j->prev;
    j->prev = j->next = NULL;
}

/* The job under way on the same replica as j (same cgroup or same HAProxy server), or NULL. */
static job *running_conflict(const job *j) {
    for (job *o = running; o; o = o->next) {
        if (j->cgroup[0] && !strcmp(j->cgroup, o->cgroup)) return o;
        if (j->has_hap && o->has_hap && !strcmp(j->hsock, o->hsock) && !strcmp(j->hbe, o->hbe) &&
            !strcmp(j->hsrv, o->hsrv))
            return o;
    }
    return NULL;
}

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double ms_since(const job *j, int64_t t_us) {
    return round((double)(t_us - j->t0_us) / 1000.0 * 1000) / 1000;
}
static double elapsed_ms(const job *j) {
    return ms_since(j, now_us());
}
static int remaining_ms(const job *j) {
    int64_t r = (j->deadline_us - now_us()) / 1000;
    return r < 1 ? 1 : (int)r;
}

static void job_free(job *j) {
    running_remove(j);
    ev_timer_stop(j->loop, &j->poll);
    warmup_spec_fini(&j->wspec);
    cJSON_Delete(j->result);
    free(j);
}

/* What the log lines name: the cgroup, else the HAProxy server, else the endpoint. */
static const char *target(const job *j) {
    return j->cgroup[0] ? j->cgroup : j->has_hap ? j->hsrv : j->endpoint;
}

static void finish_ok(job *j) {
    cJSON_AddNumberToObject(j->result, "total_ms", elapsed_ms(j));
    cJSON *r = j->result;
    j->result = NULL;
    replica_action_done_fn done = j->done;
    void *arg = j->arg;
    log_info("action", "%s %s done in %.1f ms", kind_names[j->kind], target(j), elapsed_ms(j));
    job_free(j);
    done(arg, 1, r, NULL);
}

static void finish_err(job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void finish_err(job *j, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *r = j->result;
    if (r) cJSON_AddNumberToObject(r, "total_ms", elapsed_ms(j));
    j->result = NULL;
    replica_action_done_fn done = j->done;
    void *arg = j->arg;
    log_warn("action", "%s %s failed: %s", kind_names[j->kind], target(j), msg);
    job_free(j);
    done(arg, 0, r, msg);
}

/* ---- arguments -------------------------------------------------------------------------- */

static const char *arg_str(const cJSON *args, const char *key, int *bad) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, key);
    if (!v || cJSON_IsNull(v)) return NULL;
    if (!cJSON_IsString(v)) {
        *bad = 1;
        return NULL;
    }
    return v->valuestring;
}

/* Parses args into j. Returns 0 or -EINVAL with err. */
static int parse_args(job *j, const cJSON *args, char *err, size_t errlen) {
    int bad = 0;
    const char *cg, *ep, *hs, *hv;
    if (args && !cJSON_IsObject(args)) {
        snprintf(err, errlen, "args must be a JSON object");
        return -EINVAL;
    }
    static const enum tide_action acts[] = {TIDE_ACT_DRAIN, TIDE_ACT_STANDBY, TIDE_ACT_ACTIVATE,
                                            TIDE_ACT_WARMUP};
    if (tide_action_args_check(acts[j->kind], args, err, errlen)) return -EINVAL;
    cg = arg_str(args, "cgroup", &bad);
    if (bad) {
        snprintf(err, errlen, "\"cgroup\" must be a string");
        return -EINVAL;
    }
    ep = arg_str(args, "endpoint", &bad);
    if (bad) {
        snprintf(err, errlen, "\"endpoint\" must be a string");
        return -EINVAL;
    }
    hs = arg_str(args, "haproxy_socket", &bad);
    if (bad) {
        snprintf(err, errlen, "\"haproxy_socket\" must be a string");
        return -EINVAL;
    }
    hv = arg_str(args, "haproxy_server", &bad);
    if (bad) {
        snprintf(err, errlen, "\"haproxy_server\" must be a string");
        return -EINVAL;
    }
    if (cg) {
        if (rcg_check_path(cg, err, errlen)) return -EINVAL;
        snprintf(j->cgroup, sizeof j->cgroup, "%s", cg);
    }
    if (ep) {
        if (sockdiag_parse_endpoint(ep, &j->ep, err, errlen)) return -EINVAL;
        j->has_ep = 1;
        snprintf(j->endpoint, sizeof j->endpoint, "%s", ep);
    }
    if (!hs != !hv) {
        snprintf(err, errlen, "\"haproxy_socket\" and \"haproxy_server\" go together");
        return -EINVAL;
    }
    if (hs) {
        if (strlen(hs) >= 108) {
            snprintf(err, errlen, "\"haproxy_socket\" path longer than 107 bytes");
            return -EINVAL;
        }
        snprintf(j->hsock, sizeof j->hsock, "%s", hs);
        if (haproxy_parse_server_ref(hv, j->hbe, j->hsrv, err, errlen)) return -EINVAL;
        j->has_hap = 1;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(args, "timeout_ms");
    if (t && !(cJSON_IsNumber(t) && t->valuedouble >= 1 && t->valuedouble <= 3600000)) {
        snprintf(err, errlen, "\"timeout_ms\" must be a number in [1, 3600000]");
        return -EINVAL;
    }
    const cJSON *wc = cJSON_GetObjectItemCaseSensitive(args, "wait_connections");
    if (wc && !cJSON_IsBool(wc)) {
        snprintf(err, errlen, "\"wait_connections\" must be true or false");
        return -EINVAL;
    }
    const cJSON *force = cJSON_GetObjectItemCaseSensitive(args, "force");
    if (force && !cJSON_IsBool(force)) {
        snprintf(err, errlen, "\"force\" must be true or false");
        return -EINVAL;
    }
    j->force = cJSON_IsTrue(force);
    j->wait_connections = wc ? cJSON_IsTrue(wc) : !j->has_hap;

    const cJSON *wspec = cJSON_GetObjectItemCaseSensitive(args, "warmup");
    if (j->kind == K_WARMUP && !wspec) wspec = args;
    if (wspec && !cJSON_IsNull(wspec) && (j->kind == K_WARMUP || j->kind == K_ACTIVATE)) {
        if (warmup_spec_from_json(wspec, j->has_ep ? j->endpoint : NULL, &j->wspec, err, errlen))
            return -EINVAL;
        j->has_warmup = 1;
    }
    double warm_ms = j->has_warmup ? j->wspec.duration_ms + j->wspec.request_timeout_ms : 0;
    j->timeout_ms = tide_action_timeout_ms(acts[j->kind], args);
    if (j->has_warmup && j->timeout_ms < warm_ms) {
        snprintf(err, errlen,
                 "\"timeout_ms\" %d is shorter than the warm-up (%.0f ms: duration_ms + "
                 "request_timeout_ms)",
                 j->timeout_ms, warm_ms);
        return -EINVAL;
    }

    switch (j->kind) {
    case K_DRAIN:
        if (!j->has_hap && !j->has_ep) {
            snprintf(err, errlen,
                     "drain needs an HAProxy server (haproxy_socket + haproxy_server) "
                     "or an endpoint to watch");
            return -EINVAL;
        }
        if (j->wait_connections && !j->has_ep) {
            snprintf(err, errlen, "\"wait_connections\" needs an endpoint");
            return -EINVAL;
        }
        break;
    case K_STANDBY:
    case K_ACTIVATE:
        if (!j->cgroup[0]) {
            snprintf(err, errlen, "%s needs a cgroup", kind_names[j->kind]);
            return -EINVAL;
        }
        break;
    case K_WARMUP:
        break;
    }
    return 0;
}

/* ---- HAProxy helpers -------------------------------------------------------------------- */

static void hap_done_cb(void *arg, int rc, const char *reply, size_t len, const char *err) {
    job *j = arg;
    j->hreq = NULL; /* freed by the client after this returns */
    if (rc < 0) {
        finish_err(j, "%s", err);
        return;
    }
    j->hap_next(j, reply, len);
}

/* Sends cmd; next() gets the reply, failures finish the job. */
static void hap_send(job *j, const char *cmd, hap_next_fn next) {
    char err[512];
    j->hap_next = next;
    int rc = haproxy_command(j->loop, j->hsock, cmd, remaining_ms(j), hap_done_cb, j, &j->hreq, err,
                             sizeof err);
    if (rc < 0) finish_err(j, "%s", err);
}

static void hap_show_stat(job *j, hap_next_fn next) {
    char cmd[2 * HAPROXY_NAME_MAX + 32];
    /* a numeric name would be read as a proxy id: ask for every proxy's servers then */
    int numeric = j->hbe[strspn(j->hbe, "0123456789")] == '\0';
    snprintf(cmd, sizeof cmd, "show stat %s 4 -1", numeric ? "-1" : j->hbe);
    hap_send(j, cmd, next);
}

static void hap_set(job *j, const char *what, hap_next_fn next) {
    char cmd[2 * HAPROXY_NAME_MAX + 64];
    snprintf(cmd, sizeof cmd, "set server %s/%s %s", j->hbe, j->hsrv, what);
    hap_send(j, cmd, next);
}

/* Parses a show stat reply into j->sessions / j->status. Returns 0 or finishes the job with
 * the error and returns -1. */
static int hap_parse_stat(job *j, const char *reply, size_t len) {
    char err[512];
    haproxy_server_stat st;
    int rc = haproxy_stat_find(reply, len, j->hbe, j->hsrv, &st, err, sizeof err);
    if (rc == -EINVAL && len > 0 && reply[0] != '#') {
        /* HAProxy answered with a message instead of CSV ("No such proxy.") */
        char msg[512];
        haproxy_set_reply_check(reply, len, msg, sizeof msg);
        if (strstr(msg, "No such")) {
            finish_err(j, "haproxy backend '%s' not found", j->hbe);
        } else {
            finish_err(j, "show stat: %s", msg);
        }
        return -1;
    }
    if (rc < 0) {
        finish_err(j, "%s", err);
        return -1;
    }
    j->sessions = st.scur;
    snprintf(j->status, sizeof j->status, "%s", st.status);
    return 0;
}

/* Checks a `set server` reply; finishes the job on error. */
static int hap_check_set(job *j, const char *reply, size_t len) {
    char err[512];
    if (haproxy_set_reply_check(reply, len, err, sizeof err) < 0) {
        finish_err(j, "%s (server %s/%s)", err, j->hbe, j->hsrv);
        return -1;
    }
    return 0;
}

static int status_is(const char *status, const char *prefix) {
    return strncmp(status, prefix, strlen(prefix)) == 0;
}

/* ---- drain ------------------------------------------------------------------------------ */

static void drain_tick(job *j);

static void drain_check(job *j) {
    int zero = 1;
    if (j->has_hap) zero &= j->sessions == 0;
    if (j->has_ep) {
        char err[512];
        int rc =
            sockdiag_count_established(&j->ep, &j->connections, &j->conn_method, err, sizeof err);
        if (rc < 0) {
            finish_err(j, "counting connections to %s: %s", j->endpoint, err);
            return;
        }
        if (j->wait_connections) zero &= j->connections == 0;
    }
    j->polls++;
    int64_t t = now_us();
    if (zero || t >= j->deadline_us) {
        cJSON *r = j->result;
        cJSON_AddBoolToObject(r, "clean", zero);
        cJSON_AddNumberToObject(r, "drain_ms", elapsed_ms(j));
        if (j->has_hap) {
            cJSON_AddNumberToObject(r, "sessions", (double)j->sessions);
            cJSON_AddStringToObject(r, "haproxy_status", j->status);
        }
        if (j->has_ep) {
            cJSON_AddNumberToObject(r, "connections", j->connections);
            cJSON_AddStringToObject(r, "connections_source",
                                    j->conn_method == SOCKDIAG_NETLINK ? "sock_diag" : "proc");
        }
        cJSON_AddNumberToObject(r, "polls", j->polls);
        if (zero)
            finish_ok(j);
        else
            finish_err(j, "drain not clean after %d ms: %ld sessions, %d connections still open",
                       j->timeout_ms, j->has_hap ? j->sessions : 0L,
                       j->has_ep ? j->connections : 0);
        return;
    }
    ev_timer_set(&j->poll, DRAIN_POLL_S, 0.);
    ev_timer_start(j->loop, &j->poll);
}

static void drain_stat_reply(job *j, const char *reply, size_t len) {
    if (hap_parse_stat(j, reply, len) == 0) drain_check(j);
}

static void drain_poll_cb(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop;
    (void)revents;
    drain_tick(container_of(w, job, poll));
}

static void drain_tick(job *j) {
    if (j->has_hap)
        hap_show_stat(j, drain_stat_reply);
    else
        drain_check(j);
}

static void drain_set_reply(job *j, const char *reply, size_t len) {
    if (hap_check_set(j, reply, len) == 0) drain_tick(j);
}

static void drain_first_stat(job *j, const char *reply, size_t len) {
    if (hap_parse_stat(j, reply, len) < 0) return;
    int already = status_is(j->status, "DRAIN") || status_is(j->status, "MAINT");
    cJSON_AddBoolToObject(j->result, "already", already);
    cJSON_AddStringToObject(j->result, "haproxy_status_before", j->status);
    if (already)
        drain_tick(j);
    else
        hap_set(j, "state drain", drain_set_reply);
}

static void drain_start(job *j) {
    ev_init(&j->poll, drain_poll_cb);
    if (j->has_hap)
        hap_show_stat(j, drain_first_stat);
    else
        drain_tick(j);
}

/* ---- standby ---------------------------------------------------------------------------- */

static void standby_reclaim_done(void *arg, int rc, const rcg_reclaim_result *res,
                                 const char *err) {
    job *j = arg;
    j->rop = NULL; /* after done the reclaim frees itself */
    if (rc < 0) {
        finish_err(j, "%s", err);
        return;
    }
    cJSON *r = j->result;
    cJSON_AddStringToObject(r, "reclaim_method", res->method);
    cJSON_AddNumberToObject(r, "memory_before_bytes", (double)res->before_bytes);
    cJSON_AddNumberToObject(r, "memory_after_bytes", (double)res->after_bytes);
    cJSON_AddNumberToObject(r, "reclaimed_bytes", (double)res->reclaimed_bytes);
    cJSON_AddNumberToObject(r, "reclaim_ms", round(res->ms * 1000) / 1000);
    cJSON_AddBoolToObject(r, "reclaim_timed_out", res->timed_out);
    cJSON_AddBoolToObject(r, "swap", res->swap);
    if (res->limit_original_bytes >= 0) {
        cJSON_AddNumberToObject(r, "memory_limit_original_bytes",
                                (double)res->limit_original_bytes);
        cJSON_AddNumberToObject(r, "memory_limit_bytes", (double)res->limit_after_bytes);
        cJSON_AddNumberToObject(r, "memory_limit_steps", res->limit_steps);
    }
    finish_ok(j);
}

static void standby_frozen(void *arg, int rc, const rcg_freeze_result *res, const char *err) {
    job *j = arg;
    j->fop = NULL;
    if (rc < 0) {
        finish_err(j, "%s%s", err,
                   j->has_hap ? " (the HAProxy server stays in MAINT: activate brings it back)"
                              : "");
        return;
    }
    cJSON_AddStringToObject(j->result, "freezer", res->freezer);
    cJSON_AddBoolToObject(j->result, "already", res->already);
    cJSON_AddNumberToObject(j->result, "freeze_ms", round(res->ms * 1000) / 1000);
    char e[512];
    if (rcg_reclaim_start(j->loop, &j->rc, remaining_ms(j), standby_reclaim_done, j, &j->rop, e,
                          sizeof e) < 0)
        finish_err(j, "%s", e);
}

static void standby_freeze(job *j) {
    char err[1024];
    if (rcg_freeze_start(j->loop, &j->rc, 1, remaining_ms(j), standby_frozen, j, &j->fop, err,
                         sizeof err) < 0)
        finish_err(j, "%s", err);
}

static void standby_maint_reply(job *j, const char *reply, size_t len) {
    if (hap_check_set(j, reply, len) == 0) {
        cJSON_AddStringToObject(j->result, "haproxy_status", "MAINT");
        standby_freeze(j);
    }
}

static void standby_stat_reply(job *j, const char *reply, size_t len) {
    if (hap_parse_stat(j, reply, len) < 0) return;
    cJSON_AddStringToObject(j->result, "haproxy_status_before", j->status);
    if (status_is(j->status, "MAINT")) {
        cJSON_AddStringToObject(j->result, "haproxy_status", j->status);
        standby_freeze(j);
        return;
    }
    if (!status_is(j->status, "DRAIN") && !j->force) {
        finish_err(j, "haproxy server %s/%s is %s, not drained: drain it first (or pass force)",
                   j->hbe, j->hsrv, j->status);
        return;
    }
    /* maintenance stops health checks against the frozen process and closes HAProxy's idle
     * pooled connections to it */
    hap_set(j, "state maint", standby_maint_reply);
}

static void standby_start(job *j) {
    if (j->has_hap)
        hap_show_stat(j, standby_stat_reply);
    else
        standby_freeze(j);
}

/* ---- activate --------------------------------------------------------------------------- */

static void activate_stat_reply(job *j, const char *reply, size_t len);

static void activate_health_reply(job *j, const char *reply, size_t len) {
    if (hap_check_set(j, reply, len) == 0) hap_show_stat(j, activate_stat_reply);
}

static void activate_stat_reply(job *j, const char *reply, size_t len) {
    if (hap_parse_stat(j, reply, len) < 0) return;
    if (status_is(j->status, "DOWN") && !j->forced_health) {
        /* marked down by health checks while it could not answer: the process was just thawed
         * and answers again, so say so instead of waiting for `rise` checks */
        j->forced_health = 1;
        hap_set(j, "health up", activate_health_reply);
        return;
    }
    cJSON_AddStringToObject(j->result, "haproxy_status", j->status);
    cJSON_AddBoolToObject(j->result, "forced_health_up", j->forced_health);
    if (!status_is(j->status, "UP")) {
        finish_err(j, "haproxy server %s/%s is %s after 'state ready'", j->hbe, j->hsrv, j->status);
        return;
    }
    cJSON_AddNumberToObject(j->result, "ready_ms", elapsed_ms(j));
    finish_ok(j);
}

static void activate_ready_reply(job *j, const char *reply, size_t len) {
    if (hap_check_set(j, reply, len) == 0) hap_show_stat(j, activate_stat_reply);
}

static void activate_online(job *j) {
    if (j->has_hap) {
        hap_set(j, "state ready", activate_ready_reply);
        return;
    }
    cJSON_AddNumberToObject(j->result, "ready_ms", elapsed_ms(j));
    finish_ok(j);
}

static void activate_warm_done(void *arg, cJSON *res) {
    job *j = arg;
    j->wu = NULL;
    cJSON_AddItemToObject(j->result, "warmup", res);
    cJSON_AddNumberToObject(j->result, "warmup_ms",
                            cJSON_GetNumberValue(cJSON_GetObjectItem(res, "duration_ms")));
    activate_online(j);
}

static void activate_thawed(void *arg, int rc, const rcg_freeze_result *res, const char *err) {
    job *j = arg;
    j->fop = NULL;
    if (rc < 0) {
        finish_err(j, "%s", err);
        return;
    }
    cJSON_AddStringToObject(j->result, "freezer", res->freezer);
    cJSON_AddBoolToObject(j->result, "already", res->already);
    cJSON_AddNumberToObject(j->result, "thaw_ms", round(res->ms * 1000) / 1000);
    if (j->has_warmup) {
        char e[512];
        if (warmup_start(j->loop, &j->wspec, activate_warm_done, j, &j->wu, e, sizeof e) < 0)
            finish_err(j, "%s", e);
        return;
    }
    activate_online(j);
}

static void activate_start(job *j) {
    char err[1024];
    /* the limit first: a thawed process must not meet the lowered one */
    int64_t limit = -1;
    int r = rcg_memory_limit_restore(&j->rc, &limit, err, sizeof err);
    if (r < 0) {
        finish_err(j, "%s", err);
        return;
    }
    cJSON_AddBoolToObject(j->result, "memory_limit_restored", r == 1);
    if (r == 1) cJSON_AddNumberToObject(j->result, "memory_limit_bytes", (double)limit);
    if (rcg_freeze_start(j->loop, &j->rc, 0, remaining_ms(j), activate_thawed, j, &j->fop, err,
                         sizeof err) < 0)
        finish_err(j, "%s", err);
}

/* ---- warm-up ---------------------------------------------------------------------------- */

static void warmup_only_done(void *arg, cJSON *res) {
    job *j = arg;
    j->wu = NULL;
    while (res->child) {
        cJSON *it = cJSON_DetachItemViaPointer(res, res->child);
        cJSON_AddItemToObject(j->result, it->string, it);
    }
    cJSON_Delete(res);
    finish_ok(j);
}

static void warmup_only_start(job *j) {
    char e[512];
    if (!j->has_warmup) {
        finish_err(j, "warmup needs an endpoint or a url");
        return;
    }
    if (warmup_start(j->loop, &j->wspec, warmup_only_done, j, &j->wu, e, sizeof e) < 0)
        finish_err(j, "%s", e);
}

/* ---- entry ------------------------------------------------------------------------------ */

void replica_action_run(struct ev_loop *loop, const char *action, const cJSON *args,
                        replica_action_done_fn done, void *arg) {
    char err[1024];
    int kind = -1;
    for (int i = 0; i < 4; i++)
        if (action && strcmp(action, kind_names[i]) == 0) kind = i;
    if (kind < 0) {
        snprintf(err, sizeof err, "unknown node action '%s' (drain, standby, activate, warmup)",
                 action ? action : "");
        done(arg, 0, NULL, err);
        return;
    }
    job *j = calloc(1, sizeof *j);
    if (!j || !(j->result = cJSON_CreateObject())) {
        free(j);
        done(arg, 0, NULL, "out of memory");
        return;
    }
    j->loop = loop;
    j->kind = (enum kind)kind;
    j->done = done;
    j->arg = arg;
    ev_init(&j->poll, drain_poll_cb);
    j->t0_us = now_us();
    if (parse_args(j, args, err, sizeof err) < 0) {
        cJSON_Delete(j->result);
        j->result = NULL;
        finish_err(j, "%s", err);
        return;
    }
    j->deadline_us = j->t0_us + (int64_t)j->timeout_ms * 1000;
    job *other = running_conflict(j);
    if (other) {
        cJSON_Delete(j->result);
        j->result = NULL;
        finish_err(j, "another action (%s) is under way on this replica: retry when it is done",
                   kind_names[other->kind]);
        return;
    }
    running_add(j);
    cJSON_AddStringToObject(j->result, "action", kind_names[kind]);
    if (j->cgroup[0]) cJSON_AddStringToObject(j->result, "cgroup", j->cgroup);
    if (j->has_ep) cJSON_AddStringToObject(j->result, "endpoint", j->endpoint);
    if (j->has_hap) {
        char ref[2 * HAPROXY_NAME_MAX + 2];
        snprintf(ref, sizeof ref, "%s/%s", j->hbe, j->hsrv);
        cJSON_AddStringToObject(j->result, "haproxy_server", ref);
    }
    cJSON_AddNumberToObject(j->result, "timeout_ms", j->timeout_ms);
    if (j->kind == K_STANDBY || j->kind == K_ACTIVATE) {
        if (rcg_resolve(j->cgroup, NULL, &j->rc, err, sizeof err) < 0) {
            finish_err(j, "%s", err);
            return;
        }
        cJSON_AddItemToObject(j->result, "cgroup_dirs", rcg_json(&j->rc));
    }
    switch (j->kind) {
    case K_DRAIN:
        drain_start(j);
        break;
    case K_STANDBY:
        standby_start(j);
        break;
    case K_ACTIVATE:
        activate_start(j);
        break;
    case K_WARMUP:
        warmup_only_start(j);
        break;
    }
}

int replica_action_cancel_all(void) {
    int n = 0;
    while (running) {
        job *j = running;
        log_warn("action", "%s %s stopped at shutdown after %.0f ms", kind_names[j->kind],
                 target(j), elapsed_ms(j));
        haproxy_cancel(j->hreq);
        rcg_freeze_cancel(j->fop);
        rcg_reclaim_cancel(j->rop);
        warmup_cancel(j->wu);
        job_free(j);
        n++;
    }
    rcg_reclaim_shutdown();
    return n;
}
