/* uplink.c: the agent's connection to the control plane: name resolution off the loop (on a
 * one-thread worker pool, shared/work.h, abandoned at shutdown if it hangs; numeric addresses
 * need none),
 * non-blocking connect to each resolved address in turn, HMAC handshake (both sides prove
 * the token), heartbeats, frame dispatch, and reconnects with exponential backoff and jitter.
 * One state enum changed only by up_set_state(). */
#include <errno.h>
#include <ev.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "version.h"
#include "agent.h"
#include "log.h"
#include "wire.h"
#include "work.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define READ_CHUNK 16384
/* A control plane that stays silent this long while batches wait for their ACK is taken as
 * gone (a half-open connection: its host died without a reset), and the agent reconnects. */
#define ACK_SILENCE_MS 30000

enum up_state { UP_IDLE, UP_RESOLVING, UP_CONNECTING, UP_WAIT_CHALLENGE, UP_WAIT_ACK, UP_READY };
static const char *const up_names[] = {"idle",           "resolving", "connecting",
                                       "wait-challenge", "wait-ack",  "ready"};

/* One name lookup on the uplink's worker (an abandonable item: getaddrinfo cannot be
 * interrupted, so a lookup hanging at shutdown is left to free itself when it returns). */
typedef struct resolve_req {
    work w; /* first */
    struct uplink *u;
    char host[256], port[8];
    struct addrinfo *res;
    int gai, sys_errno; /* sys_errno: the worker's errno for EAI_SYSTEM */
    uplink_resolver rv;
} resolve_req;

static int default_resolve(const char *host, const char *port, const struct addrinfo *hints,
                           struct addrinfo **res) {
    return getaddrinfo(host, port, hints, res);
}
static uplink_resolver resolver = {default_resolve, freeaddrinfo};

void uplink_set_resolver(const uplink_resolver *rv) {
    if (rv)
        resolver = *rv;
    else
        resolver = (uplink_resolver){default_resolve, freeaddrinfo};
}

struct uplink {
    struct agent *ag;
    int link;                     /* index in ag->ups and report.c's link */
    char name[AGENT_CP_ADDR_MAX]; /* "HOST:PORT" as configured */
    enum up_state state;
    int fd;
    ev_io rio, wio;
    ev_timer timer; /* reconnect delay, or connect+handshake deadline */
    ev_timer hb;
    wire_decoder dec;
    wire_buf out;
    uint8_t nonce[WIRE_NONCE_LEN], cp_nonce[WIRE_NONCE_LEN];
    uint64_t seq;
    int64_t backoff_ms;
    int64_t heartbeat_ms;
    uint64_t cp_max_frame; /* what the control plane said it accepts (0 = unsaid) */
    int failures;          /* consecutive failed attempts */
    int64_t last_rx_ms;    /* monotonic, last frame from the control plane */
    char host[256];
    int port;
    int numeric;            /* host is an IP address: resolved on the loop, no thread */
    resolve_req *req;       /* lookup under way (may outlive a timed-out attempt) */
    work_pool *lookups;     /* one thread for the name lookups */
    struct addrinfo *addrs; /* this attempt's addresses (freed with addrs_free) */
    void (*addrs_free)(struct addrinfo *);
    struct addrinfo *next_addr; /* the next one to try when this one fails to connect */
    char addr_text[64];         /* the address being tried, for log lines */
    log_ratelimit rl;
};

/* The only place the state changes: forward one step, or back to idle from anywhere. */
static void up_set_state(uplink *u, enum up_state to) {
    if (to != UP_IDLE && to != u->state + 1) {
        log_error("uplink", "bad state change %s -> %s", up_names[u->state], up_names[to]);
        abort();
    }
    log_debug("uplink", "%s -> %s", up_names[u->state], up_names[to]);
    u->state = to;
}

static void schedule_reconnect(uplink *u) {
    /* Full exponential backoff with jitter in [d/2, d]: a restarted control plane is not hit
     * by every agent in the same millisecond. */
    int64_t d = u->backoff_ms;
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd) rnd = (uint32_t)rand();
    int64_t delay = d / 2 + (int64_t)(rnd % (uint32_t)(d / 2 + 1));
    u->backoff_ms = d * 2 > u->ag->cfg.reconnect_max_ms ? u->ag->cfg.reconnect_max_ms : d * 2;
    ev_timer_stop(u->ag->loop, &u->timer);
    ev_timer_set(&u->timer, delay / 1000.0, 0.);
    ev_timer_start(u->ag->loop, &u->timer);
    log_debug("uplink", "reconnecting in %lld ms", (long long)delay);
}

static void disconnect(uplink *u, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void disconnect(uplink *u, int level, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int was_ready = u->state == UP_READY;
    struct ev_loop *loop = u->ag->loop;
    ev_io_stop(loop, &u->rio);
    ev_io_stop(loop, &u->wio);
    ev_timer_stop(loop, &u->hb);
    ev_timer_stop(loop, &u->timer);
    if (u->fd >= 0) close(u->fd);
    u->fd = -1;
    wire_decoder_fini(&u->dec);
    wire_buf_consume(&u->out, u->out.len);
    if (u->addrs) u->addrs_free(u->addrs);
    u->addrs = u->next_addr = NULL;
    up_set_state(u, UP_IDLE);
    u->failures++;
    if (was_ready)
        log_warn("uplink", "disconnected from %s:%d: %s", u->host, u->port, msg);
    else if (level >= LOG_ERROR) /* never hidden; the backoff bounds how often it comes */
        log_error("uplink", "control plane %s:%d: %s (attempt %d)", u->host, u->port, msg,
                  u->failures);
    else
        log_limited(&u->rl, level, "uplink", "control plane %s:%d: %s (attempt %d)", u->host,
                    u->port, msg, u->failures);
    schedule_reconnect(u);
}

static int flush_out(uplink *u) {
    while (u->out.len > 0) {
        ssize_t n = send(u->fd, u->out.data, u->out.len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                ev_io_start(u->ag->loop, &u->wio);
                return 0;
            }
            disconnect(u, LOG_WARN, "write: %s", strerror(errno));
            return -1;
        }
        wire_buf_consume(&u->out, (size_t)n);
    }
    ev_io_stop(u->ag->loop, &u->wio);
    return 0;
}

int uplink_ready(const uplink *u) {
    return u && u->state == UP_READY;
}

int uplink_ready_count(const struct agent *ag) {
    int n = 0;
    for (int i = 0; i < ag->nups; i++)
        n += uplink_ready(ag->ups[i]);
    return n;
}

const char *uplink_name(const uplink *u) {
    return u ? u->name : "-";
}

size_t uplink_backlog(const uplink *u) {
    return u ? u->out.len : 0;
}

size_t uplink_max_frame(const uplink *u, size_t own) {
    if (u && u->cp_max_frame >= 4096 && u->cp_max_frame < own) return (size_t)u->cp_max_frame;
    return own;
}

uint64_t uplink_next_seq(uplink *u) {
    return ++u->seq;
}

int uplink_send(uplink *u, const void *frame, size_t len) {
    if (!u || u->state != UP_READY) return -ENOTCONN;
    size_t at = u->out.len;
    if (u->out.cap - at < len) {
        size_t cap = u->out.cap ? u->out.cap : 256;
        while (cap - at < len)
            cap *= 2;
        uint8_t *p = realloc(u->out.data, cap);
        if (!p) return -ENOMEM;
        u->out.data = p;
        u->out.cap = cap;
    }
    memcpy(u->out.data + at, frame, len);
    u->out.len = at + len;
    u->out.frame_start = u->out.len;
    return flush_out(u) < 0 ? -ENOTCONN : 0;
}

static void send_heartbeat(uplink *u) {
    if (wire_enc_heartbeat(
            &u->out, ++u->seq, tide_now_wall_ms(), report_link_drops(u->ag->rep, u->link),
            report_link_queued_bytes(u->ag->rep, u->link), (size_t)u->ag->cfg.max_frame_bytes) < 0)
        return;
    flush_out(u);
}

static void on_heartbeat(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop;
    (void)revents;
    uplink *u = container_of(w, uplink, hb);
    if (u->state != UP_READY) return;
    int64_t silent = tide_now_mono_ms() - u->last_rx_ms;
    if (silent > ACK_SILENCE_MS && report_link_queued_bytes(u->ag->rep, u->link) > 0) {
        disconnect(u, LOG_WARN, "no answer for %lld ms while batches wait for their ACK",
                   (long long)silent);
        return;
    }
    send_heartbeat(u);
}

static void become_ready(uplink *u, uint64_t last_seq) {
    struct ev_loop *loop = u->ag->loop;
    up_set_state(u, UP_READY);
    ev_timer_stop(loop, &u->timer);
    u->backoff_ms = u->ag->cfg.reconnect_min_ms;
    log_info("uplink", "connected to %s:%d%s%s%s as node %s (control plane holds batch %llu)",
             u->host, u->port, u->numeric ? "" : " (", u->numeric ? "" : u->addr_text,
             u->numeric ? "" : ")", u->ag->node, (unsigned long long)last_seq);
    u->failures = 0;
    if (u->heartbeat_ms > 0) {
        ev_timer_set(&u->hb, u->heartbeat_ms / 1000.0, u->heartbeat_ms / 1000.0);
        ev_timer_start(loop, &u->hb);
    }
    int rc = report_on_connect(u->ag->rep, u->link, last_seq);
    if (rc < 0 && u->state == UP_READY)
        disconnect(u, LOG_WARN, "cannot resend the queue: %s", strerror(-rc));
    /* The first heartbeat at once: the control plane's table shows the agent's spool state
     * from the start instead of after one interval. */
    if (u->state == UP_READY && u->heartbeat_ms > 0) send_heartbeat(u);
}

/* One frame. Returns 0, or -1 after disconnecting. */
static int handle_frame(uplink *u, const wire_msg *m) {
    struct agent *ag = u->ag;
    uint8_t mac[WIRE_MAC_LEN];
    switch (u->state) {
    case UP_WAIT_CHALLENGE:
        if (m->t != WIRE_HELLO || m->u.hello.mac) {
            disconnect(u, LOG_WARN, "expected the control plane's HELLO, got %s",
                       wire_type_name(m->t));
            return -1;
        }
        memcpy(u->cp_nonce, m->u.hello.nonce, WIRE_NONCE_LEN);
        u->heartbeat_ms = (int64_t)m->u.hello.heartbeat_ms;
        u->cp_max_frame = m->u.hello.max_frame;
        if (wire_nonce(u->nonce) < 0 ||
            wire_auth_mac(ag->token, ag->token_len, "agent", u->cp_nonce, u->nonce, ag->node, mac) <
                0 ||
            wire_enc_hello_agent(&u->out, ++u->seq, ag->node, "tide-agent " TIDE_VERSION, u->nonce,
                                 mac, (size_t)ag->cfg.max_frame_bytes) < 0) {
            disconnect(u, LOG_ERROR, "cannot build HELLO");
            return -1;
        }
        up_set_state(u, UP_WAIT_ACK);
        return flush_out(u);
    case UP_WAIT_ACK:
        if (m->t != WIRE_HELLO_ACK) {
            disconnect(u, LOG_WARN, "expected HELLO_ACK, got %s", wire_type_name(m->t));
            return -1;
        }
        if (wire_auth_mac(ag->token, ag->token_len, "controlplane", u->nonce, u->cp_nonce, ag->node,
                          mac) < 0 ||
            !wire_mac_equal(mac, m->u.hello_ack.mac)) {
            disconnect(u, LOG_ERROR,
                       "the control plane failed to prove the token (HMAC "
                       "mismatch): not sending it anything");
            return -1;
        }
        become_ready(u, m->u.hello_ack.last_seq);
        return u->state == UP_READY ? 0 : -1;
    case UP_READY:
        switch (m->t) {
        case WIRE_ACK:
            report_on_ack(ag->rep, u->link, m->u.ack.ack);
            return 0;
        case WIRE_COMMAND: {
            char id[130], action[70];
            snprintf(id, sizeof id, "%.*s", (int)m->u.command.id.len, m->u.command.id.p);
            snprintf(action, sizeof action, "%.*s", (int)m->u.command.action.len,
                     m->u.command.action.p);
            cJSON *args =
                m->u.command.args ? wire_object_to_json(m->u.command.args) : cJSON_CreateObject();
            if (!args) {
                disconnect(u, LOG_WARN, "COMMAND %s: args are not convertible to JSON", id);
                return -1;
            }
            char workload[WIRE_WORKLOAD_MAX + 1];
            snprintf(workload, sizeof workload, "%.*s", (int)m->u.command.workload.len,
                     m->u.command.workload.p);
            dispatch_command(ag->disp, u, id, action, args, workload[0] ? workload : NULL,
                             m->u.command.fence);
            cJSON_Delete(args);
            return u->state == UP_READY ? 0 : -1;
        }
        default:
            disconnect(u, LOG_WARN, "unexpected %s from the control plane", wire_type_name(m->t));
            return -1;
        }
    default:
        return 0;
    }
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop;
    (void)revents;
    uplink *u = container_of(w, uplink, rio);
    for (int round = 0; round < 16; round++) {
        size_t avail;
        uint8_t *p = wire_decoder_reserve(&u->dec, READ_CHUNK, &avail);
        if (!p) {
            disconnect(u, LOG_ERROR, "out of memory");
            return;
        }
        ssize_t n = recv(u->fd, p, avail, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return;
            disconnect(u, LOG_WARN, "read: %s", strerror(errno));
            return;
        }
        if (n == 0) {
            disconnect(u, u->state == UP_WAIT_ACK ? LOG_ERROR : LOG_WARN, "%s",
                       u->state == UP_WAIT_ACK ? "closed during the handshake (wrong token?)"
                                               : "closed by the control plane");
            return;
        }
        wire_decoder_consumed(&u->dec, (size_t)n);
        u->last_rx_ms = tide_now_mono_ms();
        wire_msg m;
        enum wire_decode_result r;
        while ((r = wire_decoder_next(&u->dec, &m)) == WIRE_FRAME)
            if (handle_frame(u, &m) < 0) return;
        if (r == WIRE_ERROR) {
            disconnect(u, LOG_WARN, "protocol error: %s", u->dec.err);
            return;
        }
        if ((size_t)n < avail) return;
    }
}

static void connect_next(uplink *u, const char *why);

static void on_write(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop;
    (void)revents;
    uplink *u = container_of(w, uplink, wio);
    if (u->state == UP_CONNECTING) {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr) {
            char why[200];
            snprintf(why, sizeof why, "connect to %s: %s", u->addr_text, strerror(soerr));
            if (u->next_addr)
                log_debug("uplink", "%s; trying the next address of %s", why, u->host);
            connect_next(u, why);
            return;
        }
        up_set_state(u, UP_WAIT_CHALLENGE);
        ev_io_start(u->ag->loop, &u->rio);
    }
    if (flush_out(u) < 0) return;
    if (u->state == UP_READY) report_pump(u->ag->rep, u->link);
}

static void resolve_run(work *w) {
    resolve_req *r = (resolve_req *)w;
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    r->res = NULL;
    r->gai = r->rv.resolve(r->host, r->port, &hints, &r->res);
    r->sys_errno = errno;
    if (r->gai != 0) r->res = NULL;
}

/* The uplink was stopped while the lookup hung: release it on the worker. */
static void resolve_orphan(work *w) {
    resolve_req *r = (resolve_req *)w;
    if (r->res) r->rv.free(r->res);
    free(r);
}

static void resolve_done(work *w, int status);

/* Starts the lookup (or keeps waiting for one still under way). 0 or -errno. */
static int resolve_start(uplink *u) {
    if (u->req) return 0; /* a slow lookup from an earlier attempt: its answer is as fresh */
    resolve_req *r = calloc(1, sizeof *r);
    if (!r) return -ENOMEM;
    snprintf(r->host, sizeof r->host, "%s", u->host);
    snprintf(r->port, sizeof r->port, "%d", u->port);
    r->rv = resolver;
    r->u = u;
    int rc = work_submit_abandonable(u->lookups, &r->w, resolve_run, resolve_done, resolve_orphan);
    if (rc < 0) {
        free(r);
        return rc;
    }
    u->req = r;
    return 0;
}

/* Connects to the next untried address; after the last one fails, disconnects (backoff). */
static void connect_next(uplink *u, const char *why) {
    struct ev_loop *loop = u->ag->loop;
    for (;;) {
        struct addrinfo *ai = u->next_addr;
        if (!ai) {
            disconnect(u, LOG_WARN, "%s", why);
            return;
        }
        u->next_addr = ai->ai_next;
        char ip[INET6_ADDRSTRLEN] = "?";
        getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, sizeof ip, NULL, 0, NI_NUMERICHOST);
        snprintf(u->addr_text, sizeof u->addr_text, "%s", ip);
        ev_io_stop(loop, &u->wio);
        if (u->fd >= 0) close(u->fd);
        u->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (u->fd < 0) {
            disconnect(u, LOG_ERROR, "socket: %s", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(u->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(u->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        if (connect(u->fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
            int e = errno;
            if (u->next_addr)
                log_debug("uplink", "connect %s (%s): %s; trying the next address", u->host, ip,
                          strerror(e));
            why = strerror(e);
            continue;
        }
        ev_io_set(&u->rio, u->fd, EV_READ);
        ev_io_set(&u->wio, u->fd, EV_WRITE);
        ev_io_start(loop, &u->wio);
        ev_timer_stop(loop, &u->timer);
        ev_timer_set(&u->timer, u->ag->cfg.connect_timeout_ms / 1000.0, 0.);
        ev_timer_start(loop, &u->timer);
        return;
    }
}

/* The addresses are known: start connecting to the first. */
static void have_addresses(uplink *u, struct addrinfo *res, void (*res_free)(struct addrinfo *)) {
    u->addrs = u->next_addr = res;
    u->addrs_free = res_free;
    if (wire_decoder_init(&u->dec, (size_t)u->ag->cfg.max_frame_bytes) < 0) {
        disconnect(u, LOG_ERROR, "out of memory");
        return;
    }
    up_set_state(u, UP_CONNECTING);
    connect_next(u, "no address");
}

static void resolve_failed(uplink *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void resolve_failed(uplink *u, const char *fmt, ...) {
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    disconnect(u, LOG_WARN, "cannot resolve %s: %s (sampling goes on; batches wait)", u->host, msg);
}

static void resolve_done(work *w, int status) {
    resolve_req *r = (resolve_req *)w;
    uplink *u = r->u;
    int gai = r->gai, sys_errno = r->sys_errno;
    struct addrinfo *res = r->res;
    void (*res_free)(struct addrinfo *) = r->rv.free;
    u->req = NULL;
    free(r);
    if (status < 0) { /* cancelled: the uplink is stopping */
        if (res) res_free(res);
        return;
    }
    if (u->state != UP_RESOLVING) { /* answered after its attempt timed out: the next re-resolves */
        if (res) res_free(res);
        return;
    }
    if (gai != 0) {
        resolve_failed(u, "%s", gai == EAI_SYSTEM ? strerror(sys_errno) : gai_strerror(gai));
        return;
    }
    have_addresses(u, res, res_free);
}

static void try_connect(uplink *u) {
    struct ev_loop *loop = u->ag->loop;
    up_set_state(u, UP_RESOLVING);
    if (u->numeric) {
        char port[8];
        snprintf(port, sizeof port, "%d", u->port);
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
        struct addrinfo *res = NULL;
        int gai = getaddrinfo(u->host, port, &hints, &res);
        if (gai != 0) {
            resolve_failed(u, "%s", gai_strerror(gai));
            return;
        }
        have_addresses(u, res, freeaddrinfo);
        return;
    }
    int rc = resolve_start(u);
    if (rc < 0) {
        resolve_failed(u, "cannot start a lookup thread: %s", strerror(-rc));
        return;
    }
    /* the lookup's deadline; the loop goes on sampling meanwhile */
    ev_timer_stop(loop, &u->timer);
    ev_timer_set(&u->timer, u->ag->cfg.connect_timeout_ms / 1000.0, 0.);
    ev_timer_start(loop, &u->timer);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop;
    (void)revents;
    uplink *u = container_of(w, uplink, timer);
    if (u->state == UP_IDLE) {
        try_connect(u);
        return;
    }
    if (u->state == UP_RESOLVING) {
        resolve_failed(u, "no answer within %lld ms (DNS slow or unreachable?)",
                       (long long)u->ag->cfg.connect_timeout_ms);
        return;
    }
    if (u->state == UP_CONNECTING && u->next_addr) {
        char why[200];
        snprintf(why, sizeof why, "connect to %s: no answer within %lld ms", u->addr_text,
                 (long long)u->ag->cfg.connect_timeout_ms);
        connect_next(u, why);
        return;
    }
    if (u->state != UP_READY)
        disconnect(u, LOG_WARN, "no connection and handshake within %lld ms (%s)",
                   (long long)u->ag->cfg.connect_timeout_ms, up_names[u->state]);
}

/* Starts the connection to control plane `link` of the list. 0 or -errno with err. */
static int uplink_start_one(struct agent *ag, int link, char *err, size_t errlen) {
    uplink *u = calloc(1, sizeof *u);
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    const char *addr = ag->cfg.cps[link];
    snprintf(u->name, sizeof u->name, "%s", addr);
    if (cfg_split_hostport(addr, u->host, sizeof u->host, &u->port) < 0) {
        snprintf(err, errlen, "controlplane '%s' is not ADDR:PORT", addr);
        free(u);
        return -EINVAL;
    }
    struct in6_addr probe;
    u->numeric =
        inet_pton(AF_INET, u->host, &probe) == 1 || inet_pton(AF_INET6, u->host, &probe) == 1;
    u->ag = ag;
    u->link = link;
    u->fd = -1;
    u->state = UP_IDLE;
    u->backoff_ms = ag->cfg.reconnect_min_ms;
    u->rl = (log_ratelimit)LOG_RATELIMIT_INIT(60000, 3);
    wire_buf_init(&u->out);
    ev_io_init(&u->rio, on_read, -1, EV_READ);
    ev_io_init(&u->wio, on_write, -1, EV_WRITE);
    ev_timer_init(&u->timer, on_timer, 0., 0.);
    ev_init(&u->hb, on_heartbeat);
    if (!u->numeric) { /* numeric addresses need no lookup thread */
        int rc = work_pool_new(ag->loop, 1, 0, &u->lookups);
        if (rc < 0) {
            snprintf(err, errlen, "name lookup worker: %s", strerror(-rc));
            free(u);
            return rc;
        }
    }
    ag->ups[link] = u;
    ev_timer_start(ag->loop, &u->timer); /* connect on the first loop turn */
    return 0;
}

int uplink_start(struct agent *ag, char *err, size_t errlen) {
    if (ag->cfg.ncps == 0) { /* a caller that set controlplane alone (tests, benchmarks) */
        ag->cfg.ncps = agent_cp_list(ag->cfg.controlplane, ag->cfg.cps, err, errlen);
        if (ag->cfg.ncps < 0) {
            ag->cfg.ncps = 0;
            return -EINVAL;
        }
    }
    int n = ag->cfg.ncps;
    if (report_links(ag->rep) < n) {
        snprintf(err, errlen, "the report queue was set up for %d control plane(s), not %d",
                 report_links(ag->rep), n);
        return -EINVAL;
    }
    for (int i = 0; i < n; i++) {
        int rc = uplink_start_one(ag, i, err, errlen);
        if (rc < 0) {
            uplink_stop(ag);
            return rc;
        }
        ag->nups = i + 1;
    }
    return 0;
}

static void uplink_stop_one(struct agent *ag, uplink *u) {
    struct ev_loop *loop = ag->loop;
    if (u->state == UP_READY && u->out.len > 0) {
        /* best effort: hand the last bytes to the kernel */
        ssize_t n = send(u->fd, u->out.data, u->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
    }
    ev_io_stop(loop, &u->rio);
    ev_io_stop(loop, &u->wio);
    ev_timer_stop(loop, &u->timer);
    ev_timer_stop(loop, &u->hb);
    /* a lookup still under way is abandoned: it frees itself and never touches u */
    work_pool_free(u->lookups);
    u->req = NULL;
    if (u->addrs) u->addrs_free(u->addrs);
    if (u->fd >= 0) close(u->fd);
    wire_decoder_fini(&u->dec);
    wire_buf_fini(&u->out);
    free(u);
}

void uplink_stop(struct agent *ag) {
    for (int i = 0; i < AGENT_MAX_CONTROLPLANES; i++) {
        if (ag->ups[i]) uplink_stop_one(ag, ag->ups[i]);
        ag->ups[i] = NULL;
    }
    ag->nups = 0;
}
