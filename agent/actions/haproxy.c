/* haproxy.c: HAProxy runtime API client (non-blocking, on the loop) and its reply parsers. */
#include "actions/haproxy.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* ---- parsers ---------------------------------------------------------------------------- */

static int bad_name_char(unsigned char c) {
    return c <= ' ' || c == 0x7f || c == ';' || c == '#' || c == '/';
}

int haproxy_parse_server_ref(const char *ref, char *backend, char *server, char *err,
                             size_t errlen) {
    const char *slash = ref ? strchr(ref, '/') : NULL;
    if (!slash) {
        snprintf(err, errlen, "haproxy server '%s' is not BACKEND/SERVER", ref ? ref : "");
        return -EINVAL;
    }
    size_t bl = (size_t)(slash - ref), sl = strlen(slash + 1);
    if (bl == 0 || sl == 0) {
        snprintf(err, errlen, "haproxy server '%s': empty %s name", ref,
                 bl == 0 ? "backend" : "server");
        return -EINVAL;
    }
    if (bl >= HAPROXY_NAME_MAX || sl >= HAPROXY_NAME_MAX) {
        snprintf(err, errlen, "haproxy server '%.40s...': name longer than %d bytes", ref,
                 HAPROXY_NAME_MAX - 1);
        return -EINVAL;
    }
    for (const char *p = ref; *p; p++) {
        if (p != slash && bad_name_char((unsigned char)*p)) {
            snprintf(err, errlen, "haproxy server '%s': invalid character at offset %d", ref,
                     (int)(p - ref));
            return -EINVAL;
        }
    }
    memcpy(backend, ref, bl);
    backend[bl] = '\0';
    memcpy(server, slash + 1, sl + 1);
    return 0;
}

/* A line of a text buffer: [p, p + n) without the newline. */
typedef struct span {
    const char *p;
    size_t n;
} span;

/* Returns the next line at *pos, advancing it; 0 at the end of the text. */
static int next_line(const char *text, size_t len, size_t *pos, span *line) {
    if (*pos >= len) return 0;
    const char *s = text + *pos;
    const char *nl = memchr(s, '\n', len - *pos);
    size_t n = nl ? (size_t)(nl - s) : len - *pos;
    *pos += n + (nl ? 1 : 0);
    if (n > 0 && s[n - 1] == '\r') n--;
    line->p = s;
    line->n = n;
    return 1;
}

/* Reads the CSV field starting at *pos of line into buf (HAProxy quotes fields holding commas
 * or quotes; "" inside quotes is a quote), NUL-terminated and truncated to cap - 1, and moves
 * *pos past its comma. Returns 0, or -1 when the line has no field left at *pos. */
static int csv_next(span line, size_t *pos, char *buf, size_t cap) {
    size_t i = *pos, o = 0;
    if (i > line.n) return -1;
    int quoted = i < line.n && line.p[i] == '"';
    if (quoted) i++;
    while (i < line.n) {
        char c = line.p[i];
        if (quoted) {
            if (c == '"') {
                if (i + 1 < line.n && line.p[i + 1] == '"') {
                    i++;
                } else {
                    quoted = 0;
                    i++;
                    continue;
                }
            }
        } else if (c == ',') {
            break;
        }
        if (o + 1 < cap) buf[o++] = c;
        i++;
    }
    if (cap) buf[o] = '\0';
    *pos = i + 1; /* past the comma; past the end (n + 1) after the last field */
    return 0;
}

/* Copies CSV field `idx` of line into buf. Returns 0, or -1 when the line has fewer fields. */
static int csv_field(span line, int idx, char *buf, size_t cap) {
    size_t pos = 0;
    for (int f = 0; f <= idx; f++)
        if (csv_next(line, &pos, buf, cap) != 0) return -1;
    return 0;
}

static int span_eq(const char *a, const char *b) {
    return strcmp(a, b) == 0;
}

static int parse_long(const char *s, long *out) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0) return -1;
    *out = v;
    return 0;
}

/* The end of a reply that did not have backend/server: -EINVAL with no_header when the reply
 * had no header line (no_header non-NULL), else -ENOENT naming the backend or the server that
 * is not there. */
static int not_found(const char *no_header, int backend_seen, const char *backend,
                     const char *server, char *err, size_t errlen) {
    if (no_header) {
        snprintf(err, errlen, "%s", no_header);
        return -EINVAL;
    }
    if (!backend_seen)
        snprintf(err, errlen, "haproxy backend '%s' not found", backend);
    else
        snprintf(err, errlen, "haproxy server '%s' not found in backend '%s'", server, backend);
    return -ENOENT;
}

/* The '# pxname,...' header line of `show stat`: col[c] = the column of names[c] (-1 when
 * absent); the first `required` names must be there. 0, or -EINVAL with err set. */
static int stat_header(span line, int lineno, const char *const *names, int n, int required,
                       int *col, char *err, size_t errlen) {
    char field[HAPROXY_NAME_MAX + 64];
    if (line.n < 2 || line.p[0] != '#' || line.p[1] != ' ') {
        snprintf(err, errlen, "show stat: line %d is not the '# pxname,...' header", lineno);
        return -EINVAL;
    }
    for (int c = 0; c < n; c++)
        col[c] = -1;
    span h = {line.p + 2, line.n - 2};
    size_t hp = 0;
    for (int i = 0; i <= 4096 && csv_next(h, &hp, field, sizeof field) == 0; i++)
        for (int c = 0; c < n; c++)
            if (col[c] < 0 && span_eq(field, names[c])) col[c] = i;
    for (int c = 0; c < required; c++)
        if (col[c] < 0) {
            snprintf(err, errlen, "show stat: header lacks %s", names[c]);
            return -EINVAL;
        }
    return 0;
}

int haproxy_stat_find(const char *text, size_t len, const char *backend, const char *server,
                      haproxy_server_stat *out, char *err, size_t errlen) {
    size_t pos = 0;
    span line;
    enum { S_PX, S_SV, S_SCUR, S_STATUS, S_STOT, S_N }; /* the first four are required */
    static const char *const names[S_N] = {"pxname", "svname", "scur", "status", "stot"};
    int col[S_N];
    int have_header = 0, backend_seen = 0, lineno = 0;
    char field[HAPROXY_NAME_MAX + 64];

    while (next_line(text, len, &pos, &line)) {
        lineno++;
        if (line.n == 0) continue;
        if (!have_header) {
            int rc = stat_header(line, lineno, names, S_N, S_STOT, col, err, errlen);
            if (rc < 0) return rc;
            have_header = 1;
            continue;
        }
        if (csv_field(line, col[S_PX], field, sizeof field) != 0) {
            snprintf(err, errlen, "show stat: line %d has no pxname field", lineno);
            return -EINVAL;
        }
        if (!span_eq(field, backend)) continue;
        backend_seen = 1;
        if (csv_field(line, col[S_SV], field, sizeof field) != 0) {
            snprintf(err, errlen, "show stat: line %d has no svname field", lineno);
            return -EINVAL;
        }
        if (!span_eq(field, server)) continue;
        if (csv_field(line, col[S_SCUR], field, sizeof field) != 0 ||
            parse_long(field, &out->scur) != 0) {
            snprintf(err, errlen, "show stat: line %d (%s/%s): bad scur", lineno, backend, server);
            return -EINVAL;
        }
        out->stot = -1;
        if (col[S_STOT] >= 0 && csv_field(line, col[S_STOT], field, sizeof field) == 0) {
            long v;
            if (parse_long(field, &v) == 0) out->stot = v;
        }
        if (csv_field(line, col[S_STATUS], out->status, sizeof out->status) != 0) {
            snprintf(err, errlen, "show stat: line %d (%s/%s): no status field", lineno, backend,
                     server);
            return -EINVAL;
        }
        return 0;
    }
    return not_found(have_header ? NULL : "show stat: empty reply (no header)", backend_seen,
                     backend, server, err, errlen);
}

/* A counter field: -1 when empty (HAProxy leaves counters a proxy does not have empty), else
 * a whole number >= 0. 0, or -1 when malformed. */
static int counter_field(span line, int idx, double *out) {
    char f[64];
    long v;
    *out = -1;
    if (idx < 0 || csv_field(line, idx, f, sizeof f) != 0 || !f[0]) return 0;
    if (parse_long(f, &v) != 0) return -1;
    *out = (double)v;
    return 0;
}

int haproxy_stat_proxies(const char *text, size_t len, haproxy_proxy_stat *out, int cap, int *n,
                         int *seen, char *err, size_t errlen) {
    enum { C_PX, C_SV, C_SCUR, C_REQ, C_QCUR, C_5XX, C_N }; /* the first three are required */
    static const char *const names[C_N] = {"pxname",  "svname", "scur",
                                           "req_tot", "qcur",   "hrsp_5xx"};
    int col[C_N];
    size_t pos = 0;
    span line;
    int have_header = 0, lineno = 0;
    char field[HAPROXY_NAME_MAX + 64];
    *n = *seen = 0;
    while (next_line(text, len, &pos, &line)) {
        lineno++;
        if (line.n == 0) continue;
        if (!have_header) {
            int rc = stat_header(line, lineno, names, C_N, C_REQ, col, err, errlen);
            if (rc < 0) return rc;
            have_header = 1;
            continue;
        }
        char sv[16];
        if (csv_field(line, col[C_SV], sv, sizeof sv) != 0) {
            snprintf(err, errlen, "show stat: line %d has no svname field", lineno);
            return -EINVAL;
        }
        int be = span_eq(sv, "BACKEND");
        if (!be && !span_eq(sv, "FRONTEND")) continue; /* a server (or listener) row */
        (*seen)++;
        if (*n >= cap) continue;
        haproxy_proxy_stat *p = &out[*n];
        if (csv_field(line, col[C_PX], field, sizeof field) != 0) {
            snprintf(err, errlen, "show stat: line %d has no pxname field", lineno);
            return -EINVAL;
        }
        size_t fl = strlen(field);
        int bad = fl == 0 || fl >= HAPROXY_NAME_MAX;
        for (size_t i = 0; i < fl && !bad; i++)
            bad = bad_name_char((unsigned char)field[i]) || field[i] == '"' || field[i] == '\\';
        if (bad) continue;
        memcpy(p->name, field, fl + 1);
        p->backend = be;
        if (counter_field(line, col[C_REQ], &p->req_tot) ||
            counter_field(line, col[C_SCUR], &p->scur) ||
            counter_field(line, col[C_QCUR], &p->qcur) ||
            counter_field(line, col[C_5XX], &p->hrsp_5xx)) {
            snprintf(err, errlen, "show stat: line %d (%s %s): a counter is not a whole number",
                     lineno, be ? "backend" : "frontend", p->name);
            return -EINVAL;
        }
        (*n)++;
    }
    if (!have_header) {
        snprintf(err, errlen, "show stat: empty reply (no header)");
        return -EINVAL;
    }
    return 0;
}

/* Copies space-separated word `idx` of line into buf (truncated). Returns 0 or -1. */
static int word_field(span line, int idx, char *buf, size_t cap) {
    size_t i = 0;
    for (int f = 0;; f++) {
        while (i < line.n && line.p[i] == ' ')
            i++;
        if (i >= line.n) return -1;
        size_t o = 0;
        while (i < line.n && line.p[i] != ' ') {
            if (f == idx && o + 1 < cap) buf[o++] = line.p[i];
            i++;
        }
        if (f == idx) {
            buf[o] = '\0';
            return 0;
        }
    }
}

static int parse_int(const char *s, int *out) {
    long v;
    if (parse_long(s, &v) != 0 || v > 0x7fffffff) return -1;
    *out = (int)v;
    return 0;
}

/* Column numbers of a `show servers state` header ("# be_id be_name srv_id ..."), -1 where a
 * column is absent: any HAProxy version's column order works. */
typedef struct state_cols {
    int be, srv, op, admin, addr, port;
} state_cols;

static void state_header(span line, state_cols *c) {
    char field[HAPROXY_NAME_MAX + 64];
    span h = {line.p + 1, line.n - 1};
    *c = (state_cols){-1, -1, -1, -1, -1, -1};
    for (int i = 0; word_field(h, i, field, sizeof field) == 0 && i < 4096; i++) {
        if (span_eq(field, "be_name"))
            c->be = i;
        else if (span_eq(field, "srv_name"))
            c->srv = i;
        else if (span_eq(field, "srv_op_state"))
            c->op = i;
        else if (span_eq(field, "srv_admin_state"))
            c->admin = i;
        else if (span_eq(field, "srv_addr"))
            c->addr = i;
        else if (span_eq(field, "srv_port"))
            c->port = i;
    }
}

/* The first column a parser needs that the header lacks (srv_addr and srv_port only when
 * want_addr), or NULL. */
static const char *state_missing(const state_cols *c, int want_addr) {
    if (c->be < 0) return "be_name";
    if (c->srv < 0) return "srv_name";
    if (c->op < 0) return "srv_op_state";
    if (c->admin < 0) return "srv_admin_state";
    if (want_addr && c->addr < 0) return "srv_addr";
    if (want_addr && c->port < 0) return "srv_port";
    return NULL;
}

/* The next data row of a "show servers state" answer for backend: header lines are read into
 * *c (checked: want_addr also needs the address columns), the format version line and other
 * backends' rows skipped. 1 with *line set, 0 at the end, -EINVAL with err. */
static int state_row(const char *text, size_t len, const char *backend, int want_addr, size_t *pos,
                     state_cols *c, int *have_header, int *backend_seen, int *lineno, span *line,
                     char *err, size_t errlen) {
    char field[HAPROXY_NAME_MAX + 64];
    while (next_line(text, len, pos, line)) {
        (*lineno)++;
        if (line->n == 0) continue;
        if (line->p[0] == '#') {
            state_header(*line, c);
            const char *miss = state_missing(c, want_addr);
            if (miss) {
                snprintf(err, errlen, "show servers state: header on line %d lacks %s", *lineno,
                         miss);
                return -EINVAL;
            }
            *have_header = 1;
            continue;
        }
        if (!*have_header) continue; /* the format version line ("1") */
        if (word_field(*line, c->be, field, sizeof field) != 0) {
            snprintf(err, errlen, "show servers state: line %d is too short", *lineno);
            return -EINVAL;
        }
        if (!span_eq(field, backend)) continue;
        *backend_seen = 1;
        return 1;
    }
    return 0;
}

int haproxy_servers_state_find(const char *text, size_t len, const char *backend,
                               const char *server, haproxy_server_state *out, char *err,
                               size_t errlen) {
    size_t pos = 0;
    span line;
    state_cols c;
    int have_header = 0, backend_seen = 0, lineno = 0;
    char field[HAPROXY_NAME_MAX + 64];

    int r;
    while ((r = state_row(text, len, backend, 0, &pos, &c, &have_header, &backend_seen, &lineno,
                          &line, err, errlen)) > 0) {
        if (word_field(line, c.srv, field, sizeof field) != 0) {
            snprintf(err, errlen, "show servers state: line %d is too short", lineno);
            return -EINVAL;
        }
        if (!span_eq(field, server)) continue;
        if (word_field(line, c.op, field, sizeof field) != 0 ||
            parse_int(field, &out->op_state) != 0 ||
            word_field(line, c.admin, field, sizeof field) != 0 ||
            parse_int(field, &out->admin_state) != 0) {
            snprintf(err, errlen, "show servers state: line %d (%s/%s): bad state fields", lineno,
                     backend, server);
            return -EINVAL;
        }
        return 0;
    }
    if (r < 0) return r;
    return not_found(have_header ? NULL : "show servers state: no '# be_id ...' header",
                     backend_seen, backend, server, err, errlen);
}

int haproxy_servers_state_list(const char *text, size_t len, const char *backend, haproxy_slot *out,
                               int cap, int *n, char *err, size_t errlen) {
    size_t pos = 0;
    span line;
    state_cols c;
    int have_header = 0, backend_seen = 0, lineno = 0;
    char field[HAPROXY_NAME_MAX + 64];
    *n = 0;
    int r;
    while ((r = state_row(text, len, backend, 1, &pos, &c, &have_header, &backend_seen, &lineno,
                          &line, err, errlen)) > 0) {
        if (*n == cap) {
            snprintf(err, errlen, "show servers state: backend '%s' has more than %d servers",
                     backend, cap);
            return -E2BIG;
        }
        haproxy_slot *sl = &out[*n];
        memset(sl, 0, sizeof *sl);
        char port[32];
        if (word_field(line, c.srv, sl->name, sizeof sl->name) != 0 ||
            word_field(line, c.addr, sl->addr, sizeof sl->addr) != 0 ||
            word_field(line, c.op, field, sizeof field) != 0 ||
            parse_int(field, &sl->op_state) != 0 ||
            word_field(line, c.admin, field, sizeof field) != 0 ||
            parse_int(field, &sl->admin_state) != 0 ||
            word_field(line, c.port, port, sizeof port) != 0 || parse_int(port, &sl->port) != 0 ||
            sl->port < 0 || sl->port > 65535) {
            snprintf(err, errlen, "show servers state: line %d (backend %s): bad fields", lineno,
                     backend);
            return -EINVAL;
        }
        (*n)++;
    }
    if (r < 0) return r;
    if (!have_header && memmem(text, len, "find backend", 12)) {
        /* HAProxy: "Can't find backend." */
        snprintf(err, errlen, "haproxy backend '%s' not found", backend);
        return -ENOENT;
    }
    if (!have_header) {
        snprintf(err, errlen, "show servers state: no '# be_id ...' header");
        return -EINVAL;
    }
    if (!backend_seen) {
        snprintf(err, errlen, "haproxy backend '%s' not found", backend);
        return -ENOENT;
    }
    return 0;
}

int haproxy_set_reply_check(const char *reply, size_t len, char *err, size_t errlen) {
    size_t a = 0, b = len;
    while (a < b && (reply[a] == '\n' || reply[a] == '\r' || reply[a] == ' '))
        a++;
    while (b > a && (reply[b - 1] == '\n' || reply[b - 1] == '\r' || reply[b - 1] == ' '))
        b--;
    if (a == b) return 0;
    size_t n = b - a;
    if (n > 200) n = 200;
    char msg[201];
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)reply[a + i];
        msg[i] = (c < ' ' || c == 0x7f) ? ' ' : (char)c;
    }
    msg[n] = '\0';
    snprintf(err, errlen, "haproxy: %s", msg);
    if (strstr(msg, "No such server") || strstr(msg, "No such backend")) return -ENOENT;
    return -EINVAL;
}

int haproxy_reply_split(const char *reply, size_t len, size_t *first_len, size_t *rest_off) {
    if (len >= 1 && reply[0] == '\n') { /* no output: the empty line alone */
        *first_len = 0;
        *rest_off = 1;
        return 0;
    }
    for (size_t i = 0; i + 1 < len; i++)
        if (reply[i] == '\n' && reply[i + 1] == '\n') {
            *first_len = i + 1;
            *rest_off = i + 2;
            return 0;
        }
    return -EINVAL;
}

/* ---- client ----------------------------------------------------------------------------- */

struct haproxy_req {
    ev_io io;
    ev_timer timer;
    struct ev_loop *loop;
    int fd;
    char *out; /* command + '\n' */
    size_t out_len, out_off;
    char *in;
    size_t in_len, in_cap;
    haproxy_done_fn done;
    void *arg;
    int timeout_ms;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static void req_free(haproxy_req *r) {
    ev_io_stop(r->loop, &r->io);
    ev_timer_stop(r->loop, &r->timer);
    if (r->fd >= 0) close(r->fd);
    free(r->out);
    free(r->in);
    free(r);
}

static void req_finish(haproxy_req *r, int rc, const char *err) {
    haproxy_done_fn done = r->done;
    void *arg = r->arg;
    ev_io_stop(r->loop, &r->io);
    ev_timer_stop(r->loop, &r->timer);
    if (rc == 0) {
        done(arg, 0, r->in ? r->in : "", r->in_len, NULL);
    } else {
        done(arg, rc, NULL, 0, err);
    }
    req_free(r);
}

static void req_fail_errno(haproxy_req *r, const char *what, int e) {
    char err[256];
    snprintf(err, sizeof err, "haproxy socket %s: %s: %s", r->path, what, strerror(e));
    req_finish(r, -e, err);
}

static void req_io_cb(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop;
    haproxy_req *r = container_of(w, haproxy_req, io);
    if (revents & EV_WRITE) {
        if (r->out_off == 0) { /* first writability: the connect finished */
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr) {
                req_fail_errno(r, "connect", soerr);
                return;
            }
        }
        ssize_t n = send(r->fd, r->out + r->out_off, r->out_len - r->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            req_fail_errno(r, "send", errno);
            return;
        }
        r->out_off += (size_t)n;
        if (r->out_off == r->out_len) {
            ev_io_stop(r->loop, &r->io);
            ev_io_set(&r->io, r->fd, EV_READ);
            ev_io_start(r->loop, &r->io);
        }
        return;
    }
    for (;;) {
        if (r->in_cap - r->in_len < 4096) {
            size_t cap = r->in_cap ? r->in_cap * 2 : 8192;
            if (cap > HAPROXY_REPLY_MAX + 1) cap = HAPROXY_REPLY_MAX + 1;
            if (cap <= r->in_len + 1) {
                char err[160];
                snprintf(err, sizeof err, "haproxy socket %s: reply larger than %u bytes", r->path,
                         HAPROXY_REPLY_MAX);
                req_finish(r, -EMSGSIZE, err);
                return;
            }
            char *p = realloc(r->in, cap);
            if (!p) {
                req_fail_errno(r, "read", ENOMEM);
                return;
            }
            r->in = p;
            r->in_cap = cap;
        }
        ssize_t n = recv(r->fd, r->in + r->in_len, r->in_cap - r->in_len - 1, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            req_fail_errno(r, "recv", errno);
            return;
        }
        if (n == 0) {
            r->in[r->in_len] = '\0';
            req_finish(r, 0, NULL);
            return;
        }
        r->in_len += (size_t)n;
    }
}

static void req_timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop;
    (void)revents;
    haproxy_req *r = container_of(w, haproxy_req, timer);
    char err[200];
    snprintf(err, sizeof err, "haproxy socket %s: no complete reply within %d ms", r->path,
             r->timeout_ms);
    req_finish(r, -ETIMEDOUT, err);
}

int haproxy_command(struct ev_loop *loop, const char *socket_path, const char *command,
                    int timeout_ms, haproxy_done_fn done, void *arg, haproxy_req **reqp, char *err,
                    size_t errlen) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!socket_path || !*socket_path) {
        snprintf(err, errlen, "haproxy socket path is empty");
        return -EINVAL;
    }
    if (strlen(socket_path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "haproxy socket path '%s' longer than %zu bytes", socket_path,
                 sizeof sa.sun_path - 1);
        return -ENAMETOOLONG;
    }
    if (strchr(command, '\n')) {
        snprintf(err, errlen, "haproxy command contains a newline");
        return -EINVAL;
    }
    strcpy(sa.sun_path, socket_path);
    haproxy_req *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "haproxy: out of memory");
        return -ENOMEM;
    }
    r->loop = loop;
    r->done = done;
    r->arg = arg;
    strcpy(r->path, socket_path);
    r->out_len = strlen(command) + 1;
    r->out = malloc(r->out_len + 1);
    r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (!r->out || r->fd < 0) {
        int e = r->out ? errno : ENOMEM;
        snprintf(err, errlen, "haproxy socket %s: %s", socket_path, strerror(e));
        req_free(r);
        return -e;
    }
    memcpy(r->out, command, r->out_len - 1);
    r->out[r->out_len - 1] = '\n';
    r->out[r->out_len] = '\0';
    if (connect(r->fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS &&
        errno != EAGAIN) {
        int e = errno;
        if (e == ENOENT)
            snprintf(err, errlen, "haproxy socket %s missing", socket_path);
        else if (e == ECONNREFUSED)
            snprintf(err, errlen, "haproxy socket %s: nobody listening (connection refused)",
                     socket_path);
        else
            snprintf(err, errlen, "haproxy socket %s: connect: %s", socket_path, strerror(e));
        req_free(r);
        return -e;
    }
    if (timeout_ms <= 0) timeout_ms = 5000;
    r->timeout_ms = timeout_ms;
    ev_io_init(&r->io, req_io_cb, r->fd, EV_WRITE);
    ev_timer_init(&r->timer, req_timer_cb, timeout_ms / 1000.0, 0);
    ev_io_start(loop, &r->io);
    ev_timer_start(loop, &r->timer);
    if (reqp) *reqp = r;
    return 0;
}

void haproxy_cancel(haproxy_req *req) {
    if (req) req_free(req);
}
