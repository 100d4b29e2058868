/* ops.c: the ops socket server (ops.h): a unix stream socket, mode 0660, carrying framed JSON
 * requests from tidectl; handlers registered with OPS_COMMAND reply now or later. */
#include "api/ops.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cp.h"
#include "log.h"
#include "work.h"

#define MAX_OPS_CMDS 256
/* Ops clients are people and scripts: a handful at once. The cap keeps a runaway script
 * from exhausting descriptors that agents need. */
#define MAX_OPS_CONNS 64
/* A client with nothing under way is dropped after this. */
#define OPS_IDLE_MS 60000.0
/* A request must arrive whole within this from its first byte; the clock does not restart on
 * every byte, so clients trickling half requests cannot hold the slots for long. */
#define OPS_REQUEST_MS 10000.0
/* Requests (not replies) are small: a 1 MiB workload spec is at most a few MiB of JSON. A
 * bigger frame is refused before it is buffered (8 x 60 MB frames once stalled the loop). */
#define OPS_MAX_REQUEST (8u << 20)
/* Requests larger than this are parsed (cJSON) on a worker thread, not on the loop: a few
 * ms of the loop at most; 8 MiB of JSON takes tens of ms, more under load. */
#define OPS_INLINE_PARSE (64u << 10)
/* JSON values (roughly: commas and openings) in one request: far above any command's
 * arguments, and bounds what parsing one request can allocate to a few MB. */
#define OPS_MAX_VALUES 100000u

static struct {
    const char *name;
    ops_handler_fn fn;
    const char *help;
} cmds[MAX_OPS_CMDS];
static int ncmds;

void ops_register(const char *cmd, ops_handler_fn fn, const char *help) {
    if (ncmds == MAX_OPS_CMDS) {
        fprintf(stderr, "ops: more than %d commands registered\n", MAX_OPS_CMDS);
        abort();
    }
    cmds[ncmds].name = cmd;
    cmds[ncmds].fn = fn;
    cmds[ncmds].help = help;
    ncmds++;
}

typedef struct ops_conn ops_conn;
typedef struct parse_job parse_job;

struct ops_request {
    ops_conn *conn; /* NULL once the client is gone: the reply is dropped */
    struct controlplane *cp;
    ops_request *next;
};

struct ops_conn {
    ev_io rio, wio;
    ev_timer idle;
    int fd;
    struct ops_server *srv;
    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_len, out_cap;
    ops_request *pending;
    int closing_after_write;
    int partial;    /* part of a request is buffered: the request deadline runs */
    parse_job *job; /* a large request being parsed off the loop: reading waits for it */
    ops_conn *prev, *next;
};

/* One large request parsed on the ops pool's thread. */
struct parse_job {
    work w;
    ops_conn *conn; /* NULL once the client is gone */
    char *text;
    size_t len;
    int rc; /* ops_parse_request's */
    cJSON *root;
    const char *cmd;
    const cJSON *args;
    char err[200];
};

struct ops_server {
    struct controlplane *cp;
    ev_io lio;
    int fd;
    int nconns;
    ops_conn *conns;
    work_pool *pool; /* parses large requests */
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct controlplane *ops_cp(ops_request *req) {
    return req->cp;
}

int ops_parses_pending(struct controlplane *cp) {
    return cp->ops && cp->ops->pool ? (int)work_pool_load(cp->ops->pool) : 0;
}

static void conn_close(ops_conn *c) {
    struct ops_server *s = c->srv;
    ev_io_stop(s->cp->loop, &c->rio);
    ev_io_stop(s->cp->loop, &c->wio);
    ev_timer_stop(s->cp->loop, &c->idle);
    close(c->fd);
    if (c->job) c->job->conn = NULL; /* its done only frees it */
    for (ops_request *r = c->pending; r; r = r->next)
        r->conn = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    free(c->in);
    free(c->out);
    free(c);
}

static void conn_flush(ops_conn *c) {
    while (c->out_len > 0) {
        ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                ev_io_start(c->srv->cp->loop, &c->wio);
                return;
            }
            log_debug("ops", "client write failed: %s", strerror(errno));
            conn_close(c);
            return;
        }
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    ev_io_stop(c->srv->cp->loop, &c->wio);
    if (c->closing_after_write) conn_close(c);
}

static void send_json(ops_conn *c, cJSON *j) {
    char *text = cJSON_PrintUnformatted(j);
    if (!text) {
        log_error("ops", "out of memory formatting a reply");
        conn_close(c);
        return;
    }
    size_t len = strlen(text);
    if (len > OPS_MAX_FRAME) {
        free(text);
        log_error("ops", "reply of %zu bytes exceeds the ops frame limit", len);
        conn_close(c);
        return;
    }
    if (c->out_len + 4 + len > c->out_cap) {
        size_t cap = c->out_len + 4 + len;
        uint8_t *p = realloc(c->out, cap);
        if (!p) {
            free(text);
            conn_close(c);
            return;
        }
        c->out = p;
        c->out_cap = cap;
    }
    uint8_t *h = c->out + c->out_len;
    h[0] = (uint8_t)(len >> 24);
    h[1] = (uint8_t)(len >> 16);
    h[2] = (uint8_t)(len >> 8);
    h[3] = (uint8_t)len;
    memcpy(h + 4, text, len);
    c->out_len += 4 + len;
    free(text);
    conn_flush(c);
}

/* Unlinks req from its connection's pending list and frees it; returns the connection. */
static ops_conn *req_finish(ops_request *req) {
    ops_conn *c = req->conn;
    if (c) {
        for (ops_request **pp = &c->pending; *pp; pp = &(*pp)->next)
            if (*pp == req) {
                *pp = req->next;
                break;
            }
    }
    free(req);
    return c;
}

void ops_reply(ops_request *req, cJSON *data) {
    ops_conn *c = req_finish(req);
    if (!c) {
        cJSON_Delete(data);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", 1);
    cJSON_AddItemToObject(o, "data", data ? data : cJSON_CreateNull());
    send_json(c, o);
    cJSON_Delete(o);
}

/* Replaces every byte that is not part of a valid UTF-8 sequence (overlong forms and
 * surrogates included) with '?', in place: error messages echo client input, and the reply
 * must stay valid JSON text. */
static void utf8_sanitize(char *s) {
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        size_t n = c < 0x80             ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;
        int ok = n > 0;
        for (size_t k = 1; ok && k < n; k++)
            ok = (p[k] & 0xc0) == 0x80;
        if (ok && n == 2) ok = c >= 0xc2;
        if (ok && n == 3) {
            unsigned cp = (c & 0x0f) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu);
            ok = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff);
        }
        if (ok && n == 4) {
            unsigned cp =
                (c & 0x07) << 18 | (p[1] & 0x3fu) << 12 | (p[2] & 0x3fu) << 6 | (p[3] & 0x3fu);
            ok = cp >= 0x10000 && cp <= 0x10ffff;
        }
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

static void reply_error_v(ops_request *req, int status, cJSON *data, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void reply_error_v(ops_request *req, int status, cJSON *data, const char *fmt, va_list ap) {
    ops_conn *c = req_finish(req);
    if (!c) {
        cJSON_Delete(data);
        return;
    }
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    utf8_sanitize(msg);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", 0);
    cJSON_AddStringToObject(o, "error", msg);
    cJSON_AddNumberToObject(o, "status", status);
    if (data) cJSON_AddItemToObject(o, "data", data);
    send_json(c, o);
    cJSON_Delete(o);
}

void ops_reply_error(ops_request *req, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    reply_error_v(req, status, NULL, fmt, ap);
    va_end(ap);
}

void ops_reply_error_data(ops_request *req, int status, cJSON *data, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    reply_error_v(req, status, data, fmt, ap);
    va_end(ap);
}

int ops_parse_request(const char *text, size_t len, cJSON **root, const char **cmd,
                      const cJSON **args, char *err, size_t errlen) {
    *root = NULL;
    /* a NUL (raw, or \u0000 in a string) would cut names short: "sta\u0000tus" ran status */
    int nul = memchr(text, 0, len) != NULL;
    for (size_t i = 0; !nul && i + 1 < len; i++) {
        if (text[i] != '\\') continue;
        if (text[i + 1] == 'u' && i + 5 < len && !strncmp(text + i + 2, "0000", 4)) nul = 1;
        i++; /* skip the escaped character (so "\\u0000" is not one) */
    }
    if (nul) {
        snprintf(err, errlen, "request contains a NUL character");
        return -EINVAL;
    }
    /* cJSON spends ~64 bytes per value: 8 MiB of "0," would be 256 MB. Requests carry a few
     * values (a spec is one string), so count them before building anything. */
    size_t values = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == ',' || ch == '[' || ch == '{') {
            values++;
        }
    }
    if (values > OPS_MAX_VALUES) {
        snprintf(err, errlen, "request has more than %u JSON values", OPS_MAX_VALUES);
        return -EINVAL;
    }
    cJSON *r = cJSON_ParseWithLength(text, len);
    if (!r || !cJSON_IsObject(r)) {
        cJSON_Delete(r);
        snprintf(err, errlen, "request is not a JSON object");
        return -EINVAL;
    }
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(r, "cmd");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(r, "args");
    if (!cJSON_IsString(c)) {
        cJSON_Delete(r);
        snprintf(err, errlen, "request has no \"cmd\" string");
        return -EINVAL;
    }
    if (a && !cJSON_IsObject(a) && !cJSON_IsNull(a)) {
        cJSON_Delete(r);
        snprintf(err, errlen, "\"args\" must be an object");
        return -EINVAL;
    }
    *root = r;
    *cmd = c->valuestring;
    *args = cJSON_IsObject(a) ? a : NULL;
    return 0;
}

/* Runs a parsed request (rc, root, cmd, args, err as ops_parse_request left them); takes
 * root. */
static void dispatch_parsed(ops_conn *c, int rc, cJSON *root, const char *cmd, const cJSON *args,
                            const char *err) {
    ops_request *req = calloc(1, sizeof *req);
    if (!req) {
        cJSON_Delete(root);
        conn_close(c);
        return;
    }
    req->conn = c;
    req->cp = c->srv->cp;
    req->next = c->pending;
    c->pending = req;
    if (rc != 0) {
        ops_reply_error(req, rc == -EAGAIN ? 1 : 2, "%s", err);
        return;
    }
    for (int i = 0; i < ncmds; i++)
        if (!strcmp(cmds[i].name, cmd)) {
            static cJSON empty = {.type = cJSON_Object};
            log_debug("ops", "request %s", cmd);
            cmds[i].fn(req, args ? args : &empty);
            cJSON_Delete(root);
            return;
        }
    ops_reply_error(req, 2, "unknown command '%s'", cmd);
    cJSON_Delete(root);
}

static void process(ops_conn *c);

static void parse_run(work *w) {
    parse_job *j = container_of(w, parse_job, w);
    j->rc = ops_parse_request(j->text, j->len, &j->root, &j->cmd, &j->args, j->err, sizeof j->err);
}

static int conn_alive(struct ops_server *srv, ops_conn *c) {
    for (ops_conn *x = srv->conns; x; x = x->next)
        if (x == c) return 1;
    return 0;
}

static void parse_done(work *w, int status) {
    parse_job *j = container_of(w, parse_job, w);
    ops_conn *c = j->conn;
    free(j->text);
    if (!c || status < 0) { /* the client left, or shutting down */
        if (c) {
            c->job = NULL;
            conn_close(c);
        }
        cJSON_Delete(j->root);
        free(j);
        return;
    }
    c->job = NULL;
    struct ops_server *srv = c->srv;
    dispatch_parsed(c, j->rc, j->root, j->cmd, j->args, j->err);
    free(j);
    if (!conn_alive(srv, c)) return; /* a failed write closed it */
    ev_io_start(srv->cp->loop, &c->rio);
    process(c); /* requests that came behind it */
}

/* A request frame: small ones are parsed here, large ones on the pool (the connection reads
 * nothing more until that is done, so replies keep their order). */
static void dispatch(ops_conn *c, const char *text, size_t len) {
    if (len > OPS_INLINE_PARSE && c->srv->pool) {
        parse_job *j = calloc(1, sizeof *j);
        if (j && (j->text = malloc(len))) {
            memcpy(j->text, text, len);
            j->len = len;
            j->conn = c;
            int rc = work_submit(c->srv->pool, &j->w, parse_run, parse_done);
            if (rc == 0) {
                c->job = j;
                ev_io_stop(c->srv->cp->loop, &c->rio);
                return;
            }
            free(j->text);
        }
        free(j);
        dispatch_parsed(c, -EAGAIN, NULL, NULL, NULL,
                        "the control plane is busy parsing other large requests; try again");
        return;
    }
    cJSON *root;
    const char *cmd;
    const cJSON *args;
    char err[200];
    int rc = ops_parse_request(text, len, &root, &cmd, &args, err, sizeof err);
    dispatch_parsed(c, rc, root, cmd, args, err);
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop;
    (void)revents;
    ops_conn *c = container_of(w, ops_conn, rio);
    struct ops_server *srv = c->srv;
    for (;;) {
        if (c->in_cap - c->in_len < 4096) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 8192;
            if (cap > OPS_MAX_REQUEST + 4) cap = OPS_MAX_REQUEST + 4;
            if (cap <= c->in_len) {
                log_warn("ops", "client request exceeds %u bytes: closed", OPS_MAX_REQUEST);
                conn_close(c);
                return;
            }
            uint8_t *p = realloc(c->in, cap);
            if (!p) {
                conn_close(c);
                return;
            }
            c->in = p;
            c->in_cap = cap;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            conn_close(c);
            return;
        }
        if (n == 0) {
            /* tidectl half-closes nothing; EOF means it is gone. Pending replies are dropped. */
            conn_close(c);
            return;
        }
        c->in_len += (size_t)n;
        process(c);
        if (!conn_alive(srv, c) || c->job) return;
    }
}

/* Handles the whole requests buffered on c, up to one handed to the parse pool. c may be
 * closed (freed) on return: callers check with conn_alive. */
static void process(ops_conn *c) {
    {
        size_t off = 0;
        while (c->in_len - off >= 4 && !c->job) {
            const uint8_t *h = c->in + off;
            size_t len = ((size_t)h[0] << 24) | ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3];
            if (len == 0 || len > OPS_MAX_REQUEST) {
                log_warn("ops",
                         "client sent a request frame of length %zu (1 to %u bytes allowed): "
                         "closed",
                         len, OPS_MAX_REQUEST);
                conn_close(c);
                return;
            }
            if (c->in_len - off < 4 + len) break;
            /* A handler may reply at once, and a failed write closes (frees) c. */
            struct ops_server *srv = c->srv;
            dispatch(c, (const char *)h + 4, len);
            off += 4 + len;
            if (!conn_alive(srv, c)) return;
        }
        if (off > 0) {
            memmove(c->in, c->in + off, c->in_len - off);
            c->in_len -= off;
        }
        /* the deadline: idle after whole requests, from the first byte of a partial one */
        if (off > 0 || (c->in_len > 0 && !c->partial)) {
            c->partial = c->in_len > 0;
            c->idle.repeat = (c->partial ? OPS_REQUEST_MS : OPS_IDLE_MS) / 1000.0;
            ev_timer_again(c->srv->cp->loop, &c->idle);
        }
    }
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop;
    (void)revents;
    conn_flush(container_of(w, ops_conn, wio));
}

static void on_idle(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop;
    (void)revents;
    ops_conn *c = container_of(w, ops_conn, idle);
    if (c->job) { /* its request is whole and being parsed; nothing is read meanwhile */
        ev_timer_again(loop, w);
        return;
    }
    if (c->partial) {
        log_warn("ops", "client sent no whole request within %.0f s: closed",
                 OPS_REQUEST_MS / 1000);
        conn_close(c);
        return;
    }
    if (c->pending || c->job) {
        /* a slow handler (node action) or a parse is still working: keep waiting */
        ev_timer_again(loop, w);
        return;
    }
    log_debug("ops", "idle client closed");
    conn_close(c);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents) {
    (void)revents;
    struct ops_server *s = container_of(w, struct ops_server, lio);
    for (;;) {
        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) log_warn("ops", "accept: %s", strerror(errno));
            return;
        }
        if (s->nconns >= MAX_OPS_CONNS) {
            /* make room by dropping a client that is only holding part of a request (or
             * nothing, with no reply pending): such clients cannot lock tidectl out */
            ops_conn *victim = NULL;
            for (ops_conn *x = s->conns; x && !victim; x = x->next)
                if (x->partial && !x->pending) victim = x;
            for (ops_conn *x = s->conns; x && !victim; x = x->next)
                if (!x->pending && !x->out_len) victim = x;
            if (victim) {
                log_warn("ops", "%d ops clients: dropped one %s to admit a new one", MAX_OPS_CONNS,
                         victim->partial ? "holding half a request" : "idle");
                conn_close(victim);
            } else {
                log_warn("ops", "more than %d ops clients, all busy: refusing one", MAX_OPS_CONNS);
                close(fd);
                continue;
            }
        }
        ops_conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->srv = s;
        ev_io_init(&c->rio, on_read, fd, EV_READ);
        ev_io_init(&c->wio, on_write, fd, EV_WRITE);
        ev_init(&c->idle, on_idle);
        c->idle.repeat = OPS_IDLE_MS / 1000.0;
        ev_io_start(loop, &c->rio);
        ev_timer_again(loop, &c->idle);
        c->next = s->conns;
        if (s->conns) s->conns->prev = c;
        s->conns = c;
        s->nconns++;
    }
}

int ops_server_start(struct controlplane *cp, char *err, size_t errlen) {
    const char *path = cp->cfg.socket_path;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "ops socket %s: path longer than %zu bytes", path,
                 sizeof sa.sun_path - 1);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "ops socket: %s", strerror(e));
        return -e;
    }
    /* A socket file left by a crashed daemon is removed; a live daemon's socket is not. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "ops socket %s: exists and is not a socket", path);
            close(fd);
            return -EEXIST;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
        if (probe >= 0) close(probe);
        if (live) {
            snprintf(err, errlen, "ops socket %s: another control plane is serving it", path);
            close(fd);
            return -EADDRINUSE;
        }
        unlink(path);
    }
    mode_t old = umask(0117); /* the socket file is created 0660 */
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    umask(old);
    if (rc < 0 || chmod(path, 0660) < 0 || listen(fd, 64) < 0) {
        if (rc == 0) e = errno;
        snprintf(err, errlen, "ops socket %s: %s", path, strerror(e));
        close(fd);
        return -e;
    }
    struct ops_server *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        unlink(path);
        snprintf(err, errlen, "ops socket: out of memory");
        return -ENOMEM;
    }
    s->cp = cp;
    s->fd = fd;
    /* one thread: requests are small but for workload specs, and one at a time bounds what
     * parsing can allocate */
    if ((rc = work_pool_new(cp->loop, /* threads = */ 1, /* queued = */ MAX_OPS_CONNS, &s->pool)) <
        0) {
        free(s);
        close(fd);
        unlink(path);
        snprintf(err, errlen, "ops socket: cannot start the parse pool: %s", strerror(-rc));
        return rc;
    }
    ev_io_init(&s->lio, on_accept, fd, EV_READ);
    ev_io_start(cp->loop, &s->lio);
    cp->ops = s;
    log_info("ops", "serving tidectl on %s", path);
    return 0;
}

void ops_server_stop(struct controlplane *cp) {
    struct ops_server *s = cp->ops;
    if (!s) return;
    while (s->conns)
        conn_close(s->conns);
    work_pool_free(s->pool); /* parses under way end; their clients are gone */
    ev_io_stop(cp->loop, &s->lio);
    close(s->fd);
    unlink(cp->cfg.socket_path);
    free(s);
    cp->ops = NULL;
}

static void cmd_help(ops_request *req, const cJSON *args) {
    (void)args;
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < ncmds; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "cmd", cmds[i].name);
        cJSON_AddStringToObject(o, "help", cmds[i].help ? cmds[i].help : "");
        cJSON_AddItemToArray(a, o);
    }
    ops_reply(req, a);
}

OPS_COMMAND(help, "help", "help: the ops commands this control plane serves", cmd_help)
