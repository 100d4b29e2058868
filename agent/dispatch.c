/* dispatch.c: the action registry (action.h) and the COMMAND dispatcher: checks a fenced
 * command's token against the table of the highest tokens seen (fence.h; a stale control
 * plane's command is refused and never runs), runs the handler on the loop, sends
 * COMMAND_RESULT to the control plane that sent the command when it calls action_done(), and
 * answers a repeated command id (per control plane) with the stored result (the last
 * DISPATCH_KEEP ones) so commands are idempotent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "version.h"
#include "actions/action.h"
#include "agent.h"
#include "fence.h"
#include "log.h"
#include "wire.h"

#define MAX_ACTIONS 64
/* Results kept for repeated command ids: far more than the commands a control plane can have
 * in flight for one node, small (a few KB each at most). */
#define DISPATCH_KEEP 256

static struct {
    const char *name;
    action_fn fn;
} actions[MAX_ACTIONS];
static int nactions;

void action_register(const char *name, action_fn fn) {
    if (nactions == MAX_ACTIONS) {
        fprintf(stderr, "tide-agent: more than %d actions registered\n", MAX_ACTIONS);
        abort();
    }
    actions[nactions].name = name;
    actions[nactions].fn = fn;
    nactions++;
}

typedef struct stored {
    uplink *from; /* ids are the sender's: two control planes may use the same one */
    char id[130];
    int used, done, ok;
    char *error;
    cJSON *result;
} stored;

struct action_call {
    struct agent *ag;
    uplink *from;
    char id[130];
    char action[70];
    int64_t started_ms; /* monotonic */
    action_call *prev, *next;
};

#define DISPATCH_COUNTS 32 /* distinct action names counted (registered actions are fewer) */

struct dispatch {
    struct agent *ag;
    struct {
        char action[70];
        uint64_t n[2];     /* [failed, ok] */
        double seconds[2]; /* summed durations */
    } counts[DISPATCH_COUNTS];
    stored keep[DISPATCH_KEEP];
    int next_slot;
    action_call *running;
    fence_table fences;
    char fence_path[1024]; /* "" = memory only */
    uint64_t fence_refused;
    log_ratelimit rl;
};

struct ev_loop *action_loop(action_call *call) {
    return call->ag->loop;
}

const char *action_id(const action_call *call) {
    return call->id;
}

static stored *find_stored(dispatch *d, const uplink *from, const char *id) {
    for (int i = 0; i < DISPATCH_KEEP; i++)
        if (d->keep[i].used && d->keep[i].from == from && !strcmp(d->keep[i].id, id))
            return &d->keep[i];
    return NULL;
}

static void send_result(struct agent *ag, uplink *up, const char *id, int ok, const char *error,
                        const cJSON *result) {
    if (!uplink_ready(up)) {
        log_info("dispatch", "command %s finished while disconnected: result kept for a resend",
                 id);
        return;
    }
    wire_buf b;
    wire_buf_init(&b);
    long n = wire_enc_command_result(&b, uplink_next_seq(up), id, ok, error, result,
                                     (size_t)ag->cfg.max_frame_bytes);
    if (n == -EMSGSIZE) {
        /* the details do not fit: the outcome still must get through */
        n = wire_enc_command_result(&b, uplink_next_seq(up), id, ok,
                                    ok ? NULL : (error ? error : "failed"), NULL,
                                    (size_t)ag->cfg.max_frame_bytes);
    }
    if (n > 0) uplink_send(up, b.data, (size_t)n);
    wire_buf_fini(&b);
}

static void count_done(dispatch *d, const action_call *call, int ok) {
    int k = 0;
    while (k < DISPATCH_COUNTS && d->counts[k].action[0] &&
           strcmp(d->counts[k].action, call->action) != 0)
        k++;
    if (k == DISPATCH_COUNTS) return; /* only registered names run: never more than these */
    snprintf(d->counts[k].action, sizeof d->counts[k].action, "%s", call->action);
    d->counts[k].n[ok != 0]++;
    d->counts[k].seconds[ok != 0] += (double)(tide_now_mono_ms() - call->started_ms) / 1000;
}

void dispatch_each_count(const dispatch *d,
                         void (*fn)(void *arg, const char *action, int ok, uint64_t n,
                                    double seconds_total),
                         void *arg) {
    if (!d) return;
    for (int k = 0; k < DISPATCH_COUNTS && d->counts[k].action[0]; k++)
        for (int ok = 0; ok < 2; ok++)
            if (d->counts[k].n[ok])
                fn(arg, d->counts[k].action, ok, d->counts[k].n[ok], d->counts[k].seconds[ok]);
}

void action_done(action_call *call, int ok, cJSON *result, const char *error) {
    struct agent *ag = call->ag;
    dispatch *d = ag->disp;
    count_done(d, call, ok);
    if (!ok && !error) error = "failed (no reason given)";
    log_info("dispatch", "command %s (%s): %s%s%s", call->id, call->action, ok ? "ok" : "failed",
             ok ? "" : ": ", ok ? "" : error);
    send_result(ag, call->from, call->id, ok, ok ? NULL : error, result);
    stored *s = find_stored(d, call->from, call->id);
    if (s) {
        s->done = 1;
        s->ok = ok;
        s->error = ok ? NULL : strdup(error);
        s->result = result;
        result = NULL;
    }
    cJSON_Delete(result);
    if (call->prev)
        call->prev->next = call->next;
    else
        d->running = call->next;
    if (call->next) call->next->prev = call->prev;
    free(call);
}

uint64_t dispatch_fence_refused(const dispatch *d) {
    return d ? d->fence_refused : 0;
}

/* The fence of a command: 0 when it may run (a newer token recorded and persisted first), or
 * -1 after answering the refusal. */
static int fence_gate(dispatch *d, uplink *from, const char *id, const char *action,
                      const char *workload, uint64_t token) {
    uint64_t seen = 0;
    fence_verdict v = fence_check(&d->fences, workload, token, &seen);
    char msg[400];
    if (v == FENCE_STALE) {
        d->fence_refused++;
        snprintf(msg, sizeof msg,
                 "fenced: workload %s: token %llu is older than token %llu already seen (another "
                 "control plane owns the workload now)",
                 workload, (unsigned long long)token, (unsigned long long)seen);
        log_limited(&d->rl, LOG_WARN, "dispatch", "command %s (%s) from %s refused: %s", id, action,
                    uplink_name(from), msg);
        cJSON *r = cJSON_CreateObject();
        cJSON *f = cJSON_AddObjectToObject(r, "fenced");
        cJSON_AddStringToObject(f, "workload", workload);
        cJSON_AddNumberToObject(f, "token", (double)token);
        cJSON_AddNumberToObject(f, "seen", (double)seen);
        send_result(d->ag, from, id, 0, msg, r);
        cJSON_Delete(r);
        return -1;
    }
    if (v == FENCE_ACCEPT) {
        if (token) fence_record(&d->fences, workload, token, tide_now_wall_ms() / 1000);
        return 0;
    }
    /* newer: remember it (in memory at once: refusing older ones is safe even if the file
     * cannot be written), and on disk before acting, so a restart cannot forget it */
    int rc = fence_record(&d->fences, workload, token, tide_now_wall_ms() / 1000);
    char err[600] = "";
    if (rc == 0 && d->fence_path[0])
        rc = fence_save(&d->fences, d->fence_path, err, sizeof err);
    else if (rc < 0)
        snprintf(err, sizeof err, "%s", strerror(-rc));
    if (rc < 0) {
        snprintf(msg, sizeof msg, "fencing token %llu of workload %s not recorded: %.300s",
                 (unsigned long long)token, workload, err);
        log_error("dispatch", "command %s (%s): %s", id, action, msg);
        send_result(d->ag, from, id, 0, msg, NULL);
        return -1;
    }
    log_info("dispatch", "workload %s: fencing token %llu (was %llu) from %s", workload,
             (unsigned long long)token, (unsigned long long)seen, uplink_name(from));
    return 0;
}

void dispatch_command(dispatch *d, uplink *from, const char *id, const char *action,
                      const cJSON *args, const char *workload, uint64_t token) {
    struct agent *ag = d->ag;
    if (workload && fence_gate(d, from, id, action, workload, token) < 0) return;
    stored *s = find_stored(d, from, id);
    if (s) {
        if (s->done) {
            log_info("dispatch", "command %s repeated: answering with the stored result", id);
            send_result(ag, from, id, s->ok, s->error, s->result);
        } else {
            log_info("dispatch", "command %s repeated while running: answering when it ends", id);
        }
        return;
    }
    action_fn fn = NULL;
    for (int i = 0; i < nactions; i++)
        if (!strcmp(actions[i].name, action)) fn = actions[i].fn;
    if (!fn) {
        char msg[128];
        snprintf(msg, sizeof msg, "unknown action '%s'", action);
        log_warn("dispatch", "command %s: %s", id, msg);
        send_result(ag, from, id, 0, msg, NULL);
        return;
    }
    /* Take the oldest slot for this id's result. */
    s = &d->keep[d->next_slot];
    d->next_slot = (d->next_slot + 1) % DISPATCH_KEEP;
    free(s->error);
    cJSON_Delete(s->result);
    memset(s, 0, sizeof *s);
    s->used = 1;
    s->from = from;
    snprintf(s->id, sizeof s->id, "%s", id);
    action_call *call = calloc(1, sizeof *call);
    if (!call) {
        s->used = 0;
        send_result(ag, from, id, 0, "agent out of memory", NULL);
        return;
    }
    call->ag = ag;
    call->from = from;
    call->started_ms = tide_now_mono_ms();
    snprintf(call->id, sizeof call->id, "%s", id);
    snprintf(call->action, sizeof call->action, "%s", action);
    call->next = d->running;
    if (d->running) d->running->prev = call;
    d->running = call;
    log_info("dispatch", "command %s: %s", id, action);
    fn(call, args);
}

int dispatch_init(struct agent *ag, char *err, size_t errlen) {
    dispatch *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    d->ag = ag;
    d->rl = (log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
    fence_init(&d->fences,
               ag->cfg.fence_max_workloads > 0 ? (size_t)ag->cfg.fence_max_workloads : 4096,
               ag->cfg.fence_expiry_ms > 0 ? ag->cfg.fence_expiry_ms / 1000 : 30 * 86400);
    if (ag->cfg.state_dir && ag->cfg.state_dir[0]) {
        if (mkdir(ag->cfg.state_dir, 0700) < 0 && errno != EEXIST) {
            int e = errno;
            snprintf(err, errlen, "state_dir %s: %s", ag->cfg.state_dir, strerror(e));
            free(d);
            return -e;
        }
        snprintf(d->fence_path, sizeof d->fence_path, "%s/fence", ag->cfg.state_dir);
        char why[800];
        int rc = fence_load(&d->fences, d->fence_path, tide_now_wall_ms() / 1000, why, sizeof why);
        if (rc < 0) {
            snprintf(err, errlen,
                     "fencing tokens: %s (a damaged file is not ignored: an agent that forgot "
                     "the tokens could obey a stale control plane; move it away to start afresh)",
                     why);
            fence_fini(&d->fences);
            free(d);
            return rc;
        }
        log_info("dispatch", "fencing tokens of %zu workload(s) from %s", d->fences.n,
                 d->fence_path);
    } else {
        log_info("dispatch", "no state_dir: fencing tokens are kept in memory only");
    }
    ag->disp = d;
    return 0;
}

void dispatch_fini(struct agent *ag) {
    dispatch *d = ag->disp;
    if (!d) return;
    /* Actions still running when the agent stops: their own modules stop their watchers;
     * the calls themselves are released here. */
    for (action_call *c = d->running, *nx; c; c = nx) {
        nx = c->next;
        log_warn("dispatch", "command %s (%s) still running at shutdown", c->id, c->action);
        free(c);
    }
    for (int i = 0; i < DISPATCH_KEEP; i++) {
        free(d->keep[i].error);
        cJSON_Delete(d->keep[i].result);
    }
    fence_fini(&d->fences);
    free(d);
    ag->disp = NULL;
}

/* The built-in action "ping": answers at once with the agent's version and clock, so that the
 * whole command path (control plane -> agent -> result) can be checked on any node. */
static void action_ping(action_call *call, const cJSON *args) {
    (void)args;
    cJSON *r = cJSON_CreateObject();
    if (r) {
        cJSON_AddStringToObject(r, "agent_version", "tide-agent " TIDE_VERSION);
        cJSON_AddNumberToObject(r, "agent_time", (double)tide_now_wall_ms());
    }
    action_done(call, 1, r, NULL);
}

AGENT_ACTION(ping, "ping", action_ping)
