/* haproxy_slot.c: the node actions on HAProxy `server-template` slots, run by the agent of the
 * node that hosts HAProxy (its runtime API socket is local there):
 *
 *   haproxy-slots {haproxy_socket, backend}
 *     -> {backend, slots: [{server, addr, port, status, sessions, op_state, admin_state}]}
 *        from `show servers state BACKEND` and `show stat BACKEND 4 -1` (status "UP", "MAINT",
 *        "DRAIN", "DOWN", ...; sessions = scur)
 *   haproxy-slot {haproxy_socket, haproxy_server: "BACKEND/SERVER", addr, port,
 *                 state: ready|drain|maint}
 *     -> `set server B/S addr ADDR port PORT` (when addr or port is given), then
 *        `set server B/S state STATE` (when given), then reads the status back:
 *        {server, addr, port, state, status, ms}. The state and the read-back go in one
 *        exchange ("set ... state S; show stat B 4 -1": one connection, not two); addr/port
 *        has one of its own, so a refused address never lets the state change through.
 *
 * Every value that goes into a command line is checked first (names as haproxy.h says, addr an
 * IPv4 or IPv6 literal, port 1-65535, state one of three words), so no argument can add a
 * command. Each command has the action's deadline (timeout_ms, default 5000). */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actions.h"
#include "actions/action.h"
#include "actions/haproxy.h"
#include "log.h"

#define MAX_SLOTS 1024

typedef struct slot_job {
    action_call *call;
    int list; /* haproxy-slots */
    char sock[256], be[HAPROXY_NAME_MAX], srv[HAPROXY_NAME_MAX];
    char addr[64], state[16];
    int port, step, timeout_ms;
    int piped;           /* step 1 sent with the read-back: its reply holds both */
    char *servers_state; /* list: the first reply */
    size_t servers_state_len;
    struct timespec t0;
} slot_job;

static double since_ms(const slot_job *j) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - j->t0.tv_sec) * 1000 + (double)(t.tv_nsec - j->t0.tv_nsec) / 1e6;
}

static void job_end(slot_job *j, int ok, cJSON *res, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void job_end(slot_job *j, int ok, cJSON *res, const char *fmt, ...) {
    char msg[512] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    action_call *call = j->call;
    free(j->servers_state);
    free(j);
    action_done(call, ok, res, ok ? NULL : msg);
}

static void step(slot_job *j);

static void cmd_done(void *arg, int rc, const char *reply, size_t len, const char *err) {
    slot_job *j = arg;
    char e[300];
    if (rc) {
        job_end(j, 0, NULL, "%s", err);
        return;
    }
    if (j->list) {
        if (j->step == 0) {
            j->servers_state = malloc(len + 1);
            if (!j->servers_state) {
                job_end(j, 0, NULL, "out of memory");
                return;
            }
            memcpy(j->servers_state, reply, len + 1);
            j->servers_state_len = len;
            j->step = 1;
            step(j);
            return;
        }
        haproxy_slot *slots = calloc(MAX_SLOTS, sizeof *slots);
        int n = 0;
        if (!slots) {
            job_end(j, 0, NULL, "out of memory");
            return;
        }
        int prc = haproxy_servers_state_list(j->servers_state, j->servers_state_len, j->be, slots,
                                             MAX_SLOTS, &n, e, sizeof e);
        if (prc) {
            free(slots);
            job_end(j, 0, NULL, "%s", e);
            return;
        }
        cJSON *res = cJSON_CreateObject();
        cJSON *arr = res ? cJSON_AddArrayToObject(res, "slots") : NULL;
        cJSON_AddStringToObject(res, "backend", j->be);
        for (int i = 0; arr && i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            if (!o) break;
            haproxy_server_stat st;
            int have = haproxy_stat_find(reply, len, j->be, slots[i].name, &st, e, sizeof e) == 0;
            cJSON_AddStringToObject(o, "server", slots[i].name);
            cJSON_AddStringToObject(o, "addr", slots[i].addr);
            cJSON_AddNumberToObject(o, "port", slots[i].port);
            cJSON_AddStringToObject(o, "status", have ? st.status : "unknown");
            cJSON_AddNumberToObject(o, "sessions", have ? (double)st.scur : 0);
            cJSON_AddNumberToObject(o, "op_state", slots[i].op_state);
            cJSON_AddNumberToObject(o, "admin_state", slots[i].admin_state);
            cJSON_AddItemToArray(arr, o);
        }
        free(slots);
        cJSON_AddNumberToObject(res, "ms", since_ms(j));
        job_end(j, 1, res, NULL);
        return;
    }
    if (j->step == 0 || j->step == 1) {
        /* addr/port: HAProxy answers what it changed ("... changed from ... to ..." or "no need
         * to change ..."); state: nothing. Anything naming a missing server or backend, or
         * saying "Invalid"/"Require", is an error. */
        int bad = strstr(reply, "No such") || strstr(reply, "nvalid") || strstr(reply, "Require") ||
                  strstr(reply, "ermission") || strstr(reply, "Unknown") ||
                  strstr(reply, "Could not") || strstr(reply, "Can't") || strstr(reply, "annot ");
        size_t first = len, rest = len;
        if (j->piped && haproxy_reply_split(reply, len, &first, &rest) < 0) {
            job_end(j, 0, NULL, "haproxy server %s/%s: no end to the answer of set server", j->be,
                    j->srv);
            return;
        }
        if (j->piped) { /* the state's answer alone is checked; the stat rows follow */
            bad = first > 0 && haproxy_set_reply_check(reply, first, e, sizeof e) != 0;
            len = first;
        } else if (j->step == 1 && haproxy_set_reply_check(reply, len, e, sizeof e)) {
            bad = 1;
        }
        if (bad) {
            char msg[201];
            size_t n = len > 200 ? 200 : len;
            for (size_t i = 0; i < n; i++)
                msg[i] = (reply[i] < ' ' || reply[i] == 0x7f) ? ' ' : reply[i];
            msg[n] = 0;
            job_end(j, 0, NULL, "haproxy server %s/%s: %s", j->be, j->srv, msg);
            return;
        }
        if (j->piped) { /* the read-back came with it */
            reply += rest;
            len = strlen(reply);
        } else {
            j->step++;
            step(j);
            return;
        }
    }
    haproxy_server_stat st;
    if (haproxy_stat_find(reply, len, j->be, j->srv, &st, e, sizeof e)) {
        job_end(j, 0, NULL, "%s", e);
        return;
    }
    cJSON *res = cJSON_CreateObject();
    if (res) {
        char ref[2 * HAPROXY_NAME_MAX + 2];
        snprintf(ref, sizeof ref, "%s/%s", j->be, j->srv);
        cJSON_AddStringToObject(res, "server", ref);
        if (j->addr[0]) cJSON_AddStringToObject(res, "addr", j->addr);
        if (j->port) cJSON_AddNumberToObject(res, "port", j->port);
        if (j->state[0]) cJSON_AddStringToObject(res, "state", j->state);
        cJSON_AddStringToObject(res, "status", st.status);
        cJSON_AddNumberToObject(res, "sessions", (double)st.scur);
        cJSON_AddNumberToObject(res, "ms", since_ms(j));
    }
    job_end(j, 1, res, NULL);
}

/* Sends the next command of the job (skipping steps that have nothing to do). */
static void step(slot_job *j) {
    char cmd[512], err[300];
    if (j->list) {
        snprintf(cmd, sizeof cmd, j->step == 0 ? "show servers state %s" : "show stat %s 4 -1",
                 j->be);
    } else {
        if (j->step == 0 && !j->addr[0] && !j->port) j->step = 1;
        if (j->step == 1 && !j->state[0]) j->step = 2;
        if (j->step == 0 && j->addr[0] && j->port)
            snprintf(cmd, sizeof cmd, "set server %s/%s addr %s port %d", j->be, j->srv, j->addr,
                     j->port);
        else if (j->step == 0 && j->addr[0])
            snprintf(cmd, sizeof cmd, "set server %s/%s addr %s", j->be, j->srv, j->addr);
        else if (j->step == 0)
            snprintf(cmd, sizeof cmd, "set server %s/%s port %d", j->be, j->srv, j->port);
        else if (j->step == 1) {
            snprintf(cmd, sizeof cmd, "set server %s/%s state %s; show stat %s 4 -1", j->be, j->srv,
                     j->state, j->be);
            j->piped = 1;
        } else
            snprintf(cmd, sizeof cmd, "show stat %s 4 -1", j->be);
    }
    if (haproxy_command(action_loop(j->call), j->sock, cmd, j->timeout_ms, cmd_done, j, NULL, err,
                        sizeof err) < 0)
        job_end(j, 0, NULL, "%s", err);
}

static void slot_run(action_call *call, const cJSON *args, int list) {
    char err[300];
    enum tide_action a = list ? TIDE_ACT_HAPROXY_SLOTS : TIDE_ACT_HAPROXY_SLOT;
    if (tide_action_args_check(a, args, err, sizeof err)) {
        action_done(call, 0, NULL, err);
        return;
    }
    slot_job *j = calloc(1, sizeof *j);
    if (!j) {
        action_done(call, 0, NULL, "out of memory");
        return;
    }
    j->call = call;
    j->list = list;
    clock_gettime(CLOCK_MONOTONIC, &j->t0);
    j->timeout_ms = tide_action_timeout_ms(a, args);
    const char *sock = cJSON_GetObjectItemCaseSensitive(args, "haproxy_socket")->valuestring;
    if (!sock[0] || strlen(sock) >= 108) {
        job_end(j, 0, NULL, "\"haproxy_socket\" must be a path of 1 to 107 bytes");
        return;
    }
    snprintf(j->sock, sizeof j->sock, "%s", sock);
    if (list) {
        char ref[HAPROXY_NAME_MAX + 4], srv[HAPROXY_NAME_MAX];
        snprintf(ref, sizeof ref, "%s/x",
                 cJSON_GetObjectItemCaseSensitive(args, "backend")->valuestring);
        if (haproxy_parse_server_ref(ref, j->be, srv, err, sizeof err)) {
            job_end(j, 0, NULL, "\"backend\": %s", err);
            return;
        }
    } else {
        const char *ref = cJSON_GetObjectItemCaseSensitive(args, "haproxy_server")->valuestring;
        if (haproxy_parse_server_ref(ref, j->be, j->srv, err, sizeof err)) {
            job_end(j, 0, NULL, "%s", err);
            return;
        }
        const cJSON *addr = cJSON_GetObjectItemCaseSensitive(args, "addr");
        const cJSON *port = cJSON_GetObjectItemCaseSensitive(args, "port");
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(args, "state");
        if (addr) {
            unsigned char buf[16];
            if (inet_pton(AF_INET, addr->valuestring, buf) != 1 &&
                inet_pton(AF_INET6, addr->valuestring, buf) != 1) {
                job_end(j, 0, NULL, "\"addr\" '%.64s' is not an IPv4 or IPv6 address",
                        addr->valuestring);
                return;
            }
            snprintf(j->addr, sizeof j->addr, "%s", addr->valuestring);
        }
        if (port) j->port = (int)port->valuedouble;
        if (state) {
            if (strcmp(state->valuestring, "ready") && strcmp(state->valuestring, "drain") &&
                strcmp(state->valuestring, "maint")) {
                job_end(j, 0, NULL, "\"state\" must be ready, drain or maint");
                return;
            }
            snprintf(j->state, sizeof j->state, "%s", state->valuestring);
        }
    }
    step(j);
}

static void slots_run(action_call *call, const cJSON *args) {
    slot_run(call, args, 1);
}
static void slot_set_run(action_call *call, const cJSON *args) {
    slot_run(call, args, 0);
}

AGENT_ACTION(haproxy_slots, "haproxy-slots", slots_run)
AGENT_ACTION(haproxy_slot, "haproxy-slot", slot_set_run)
