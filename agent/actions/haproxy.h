/* haproxy.h: HAProxy runtime API client over its unix stats socket, run on the agent's libev
 * loop (one non-blocking connection per command), plus pure parsers for the text it answers
 * (`show stat` CSV, `show servers state`, and the reply to `set server`).
 *
 * HAProxy's socket is non-interactive by default: it reads one line, answers and closes, so a
 * command's reply is everything read until EOF. */
#ifndef TIDE_HAPROXY_H
#define TIDE_HAPROXY_H

#include <stddef.h>

struct ev_loop;

#define HAPROXY_NAME_MAX 128         /* backend / server names we accept */
#define HAPROXY_REPLY_MAX (4u << 20) /* a reply larger than this is an error */

/* ---- pure parsers (no I/O; tests and the fuzzer feed them captured text) ---- */

/* Splits "BACKEND/SERVER" into its parts. Returns 0, or -EINVAL with err naming what was wrong
 * (missing '/', empty part, too long, or a character HAProxy would misread: space, ';', '#',
 * control characters). */
int haproxy_parse_server_ref(const char *ref, char *backend, char *server, char *err,
                             size_t errlen);

typedef struct haproxy_server_stat {
    long scur;       /* current sessions on the server */
    long stot;       /* total sessions since start, -1 when absent */
    char status[32]; /* "UP", "DOWN", "DRAIN", "MAINT", "UP 1/3", ... */
} haproxy_server_stat;

/* Finds the row of BACKEND/SERVER in `show stat` CSV output (header line "# pxname,svname,...",
 * columns located by name, so any HAProxy version's column order works). Returns 0 with *out
 * filled; -ENOENT when the backend or the server is not in the text (err says which);
 * -EINVAL when the text is not `show stat` CSV or the row is malformed (err says where). */
int haproxy_stat_find(const char *text, size_t len, const char *backend, const char *server,
                      haproxy_server_stat *out, char *err, size_t errlen);

/* One proxy's totals as a FRONTEND or BACKEND row of `show stat` shows them (what HAProxy's own
 * Prometheus exporter calls haproxy_frontend_* / haproxy_backend_*). A counter HAProxy leaves
 * empty (req_tot of a `mode tcp` proxy, qcur of a frontend) is -1. */
typedef struct haproxy_proxy_stat {
    char name[HAPROXY_NAME_MAX];
    int backend;    /* 0: the FRONTEND row, 1: the BACKEND row */
    double req_tot; /* HTTP requests since HAProxy started */
    double scur;    /* current sessions */
    double qcur;    /* requests queued (backends) */
    double hrsp_5xx;
} haproxy_proxy_stat;

#define HAPROXY_PROXIES_MAX 256 /* proxy rows one `show stat` reply may hold for us */

/* Every FRONTEND and BACKEND row of `show stat` CSV (columns located by name; server rows are
 * skipped) into out, in order, at most cap; *n = rows stored, *seen = rows found (more than *n
 * when cap was too small; the caller says so). A name longer than HAPROXY_NAME_MAX - 1 or with
 * a character HAProxy does not allow in one is skipped and counted in *seen. 0, or -EINVAL with
 * err naming the line when the text is not `show stat` CSV or a row's counter is malformed. */
int haproxy_stat_proxies(const char *text, size_t len, haproxy_proxy_stat *out, int cap, int *n,
                         int *seen, char *err, size_t errlen);

typedef struct haproxy_server_state {
    int op_state;    /* srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping */
    int admin_state; /* srv_admin_state bits: 0x01 FMAINT, 0x08 FDRAIN, 0x20 RMAINT... */
} haproxy_server_state;

/* Finds BACKEND/SERVER in `show servers state` output (a version line, then a "# be_id
 * be_name ..." header, then space-separated rows; columns located by name). Same returns as
 * haproxy_stat_find(). */
int haproxy_servers_state_find(const char *text, size_t len, const char *backend,
                               const char *server, haproxy_server_state *out, char *err,
                               size_t errlen);

/* One server of a backend as `show servers state` shows it (a `server-template` slot). */
typedef struct haproxy_slot {
    char name[HAPROXY_NAME_MAX];
    char addr[64]; /* srv_addr */
    int port;      /* srv_port */
    int op_state, admin_state;
} haproxy_slot;

/* Every server of BACKEND in `show servers state` output, in order, into out (at most cap):
 * 0 with *n set; -ENOENT when the backend has no row (err "haproxy backend 'x' not found"),
 * -E2BIG beyond cap, -EINVAL for text that is not `show servers state` output. */
int haproxy_servers_state_list(const char *text, size_t len, const char *backend, haproxy_slot *out,
                               int cap, int *n, char *err, size_t errlen);

/* Interprets the reply to a `set server ...` command: HAProxy answers nothing (an empty line)
 * on success and a message ("No such server.", "No such backend.", "Require 'backend/server'.")
 * otherwise. Returns 0 on success, or -ENOENT (unknown backend or server) / -EINVAL (anything
 * else) with the message, trimmed, in err. */
int haproxy_set_reply_check(const char *reply, size_t len, char *err, size_t errlen);

/* Splits the reply to several commands sent at once ("cmd1; cmd2"): HAProxy ends each
 * command's output with an empty line (a command with no output answers the empty line
 * alone). The first command's output (without its empty line) is reply[0, *first_len), the
 * rest starts at *rest_off. Returns 0, or -EINVAL when the first output has no end. */
int haproxy_reply_split(const char *reply, size_t len, size_t *first_len, size_t *rest_off);

/* ---- asynchronous client ---- */

typedef struct haproxy_req haproxy_req;

/* Called once when a command finished: rc 0 with the whole reply (NUL-terminated, borrowed for
 * the call only), or -errno with err describing it (socket missing, refused, timed out, reply
 * too large). */
typedef void (*haproxy_done_fn)(void *arg, int rc, const char *reply, size_t len, const char *err);

/* Sends one command line (without the newline) to the HAProxy socket at `socket_path` and calls
 * done from the loop with the reply. timeout_ms bounds connect+send+reply. Returns 0 when the
 * command is under way (done will be called later, never from inside this call) and, if req is
 * not NULL, sets *req so the caller can cancel; or -errno with err filled when it could not
 * start (-ENOENT socket missing, -ECONNREFUSED nobody listening, -ENAMETOOLONG path too long,
 * -EACCES) -- done is then not called. */
int haproxy_command(struct ev_loop *loop, const char *socket_path, const char *command,
                    int timeout_ms, haproxy_done_fn done, void *arg, haproxy_req **req, char *err,
                    size_t errlen);

/* Stops a command under way without calling its done callback and frees it. NULL is ignored. */
void haproxy_cancel(haproxy_req *req);

#endif
