/* agents.c: the agent listener, one connection state machine per agent (handshake -> ready ->
 * closed), the agents table, SAMPLES ingest into the store with durable acknowledgements, and
 * commands routed to agents (agents.h). */
#include "version.h"
#include "agents/agents.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cp.h"
#include "log.h"
#include "vclock.h"
#include "agents/nodekeys.h"
#include "api/ops.h"
#include "store/tsdb.h"
#include "wire.h"
#include "work.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Read in chunks of this size; a connection's buffer only grows past it for a bigger frame. */
#define READ_CHUNK 4096
/* Reads per readiness event, so that one busy agent cannot starve the others. */
#define READS_PER_EVENT 16
/* Output an agent does not read (commands, acks) beyond this closes the connection. */
#define OUT_LIMIT (16u << 20)
/* Series one connection may define: far above a node's cgroups x metrics, bounds memory. */
#define MAX_SERIES_PER_CONN (1u << 20)
#define DEFAULT_COMMAND_TIMEOUT_MS 30000

enum conn_state { CONN_HANDSHAKE, CONN_READY, CONN_CLOSED };
static const char *const state_names[] = {"handshake", "ready", "closed"};

/* Counters, defined once: each list generates struct fields and JSON keys (and the row
 * counters also their sums in the totals). ROW_*: per node (`tidectl agents`); TOTAL_*: the
 * whole listener (`tidectl status`), including connections that never authenticated. */
#define ROW_COUNTERS(X)                                                                            \
    X(samples, "samples stored")                                                                   \
    X(bytes, "frame bytes received after the handshake began")                                     \
    X(batches, "SAMPLES batches received")                                                         \
    X(duplicate_batches, "batches dropped because their seq was already stored")                   \
    X(unknown_series, "runs dropped because their series id was never defined")                    \
    X(series_refused, "series definitions refused for max_series or max_series_per_node")          \
    X(future_samples, "samples refused for a timestamp beyond now + max_clock_skew")
#define ROW_GAUGES(X)                                                                              \
    X(protocol_errors, "connections of this node closed for a protocol error")                     \
    X(spool_drops, "batches the agent dropped unsent (from its heartbeat)")                        \
    X(queued_bytes, "bytes the agent holds unacknowledged (from its heartbeat)")
#define TOTAL_COUNTERS(X)                                                                          \
    X(connections_total, "connections accepted since start")                                       \
    X(protocol_errors, "connections closed for a protocol error, authenticated or not")            \
    X(rejected_auth, "handshakes that failed HMAC verification")                                   \
    X(timeouts, "connections closed by the handshake or idle timeout")                             \
    X(refused_full, "connections refused because max_agents were connected")                       \
    X(refused_rate, "connections refused at accept: their address failed too many handshakes")

typedef struct idmap { /* agent series id -> store series id, open addressing */
    uint32_t *keys, *vals;
    uint8_t *used;
    size_t cap, n;
} idmap;

typedef struct nodecount { /* node name -> series carrying it, open addressing */
    char **names;
    uint32_t *counts;
    size_t cap, n;
} nodecount;

/* Failed handshakes per source address: a token bucket of handshake_fail_burst failures,
 * refilled by one per handshake_fail_interval; an address with no failure left is refused at
 * accept (one accept and close, no nonce, no log line each). A small table with 4-way slots:
 * a new address takes the slot that has recovered most. */
#define AUTHFAIL_SLOTS 4096
#define AUTHFAIL_WAYS 4
typedef struct authfail {
    char host[64]; /* "" = free */
    double left;   /* failures left before refusal */
    ev_tstamp at;  /* when left was last brought up to date */
    uint64_t refused;
} authfail;

typedef struct agent_row agent_row;
typedef struct agent_conn agent_conn;
typedef struct cp_cmd cp_cmd;

struct agent_row { /* one per node seen since start; outlives its connections */
    char node[64];
    char version[64];
    char address[64];
    int64_t connected_since, disconnected_at, last_heartbeat;
#define X_FIELD(name, help) uint64_t name;
    ROW_COUNTERS(X_FIELD)
    ROW_GAUGES(X_FIELD)
    uint64_t last_seq;    /* highest batch seq appended to the store (duplicate check) */
    uint64_t durable_seq; /* highest batch seq known durable (what HELLO_ACK promises) */
    int node_key;         /* the connection authenticated with the node's own key */
    agent_conn *conn;     /* NULL when not connected */
    agent_row *next;
};

struct agent_conn {
    ev_io rio, wio;
    ev_timer timer;
    int fd;
    enum conn_state state;
    cp_agents *owner;
    agent_row *row; /* set once authenticated */
    char address[64];
    char host[64]; /* address without the port: what failed handshakes are counted by */
    wire_decoder dec;
    wire_buf out;
    uint8_t nonce[WIRE_NONCE_LEN];
    uint64_t out_seq;
    uint64_t acked;
    ev_tstamp last_rx;
    int refs; /* store callbacks to come, callers on the stack: the struct lives until 0 */
    idmap series;
    agent_conn *prev, *next;
};

struct cp_cmd {
    ev_timer timer;
    cp_agents *owner;
    agent_conn *conn; /* NULL once failed/answered */
    char id[32];
    char node[64];
    char *error; /* why, when failing asynchronously */
    int failed;  /* the timer delivers a failure, not a timeout */
    int timeout_ms;
    cp_command_done_fn done;
    void *arg;
    cp_cmd *prev, *next;
};

struct cp_agents {
    struct controlplane *cp;
    ev_io lio;
    int lfd;
    agent_conn *conns;
    int nconns;
    agent_row *rows;
    cp_cmd *cmds;
    uint64_t next_cmd_id;
    /* totals */
    TOTAL_COUNTERS(X_FIELD)
#undef X_FIELD
    /* ingest scratch */
    int64_t *ts;
    double *v;
    size_t scratch_cap;
    char *lbuf;
    size_t lbuf_cap;
    log_ratelimit rl_unknown, rl_accept, rl_limit_node, rl_limit_all, rl_future;
    nodecount nodes; /* series per node, from the store at start, then as they are created */
    /* per-node keys (nodekeys.h): the table in force, its file, one writer thread */
    nodekeys keys;
    char keys_path[1100];
    work_pool *keys_pool;
    log_ratelimit rl_handshake, rl_refused;
    authfail fails[AUTHFAIL_SLOTS];
};

typedef struct durable_wait {
    agent_conn *conn;
    uint64_t seq;
} durable_wait;

/* Why a connection closes: a protocol error is logged as a warning and counted. */
enum close_kind { CLOSE_NORMAL = 0, CLOSE_PROTOCOL_ERROR = 1 };
static void conn_close(agent_conn *c, enum close_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- series id map ------------------------------------------------------------------------ */

static uint32_t hash32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static int idmap_get(const idmap *m, uint32_t key, uint32_t *val) {
    if (!m->cap) return 0;
    size_t mask = m->cap - 1;
    for (size_t i = hash32(key) & mask;; i = (i + 1) & mask) {
        if (!m->used[i]) return 0;
        if (m->keys[i] == key) {
            *val = m->vals[i];
            return 1;
        }
    }
}

static int idmap_put(idmap *m, uint32_t key, uint32_t val) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        idmap nm = {calloc(cap, 4), calloc(cap, 4), calloc(cap, 1), cap, 0};
        if (!nm.keys || !nm.vals || !nm.used) {
            free(nm.keys);
            free(nm.vals);
            free(nm.used);
            return -ENOMEM;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->used[i]) idmap_put(&nm, m->keys[i], m->vals[i]);
        free(m->keys);
        free(m->vals);
        free(m->used);
        *m = nm;
    }
    size_t mask = m->cap - 1;
    for (size_t i = hash32(key) & mask;; i = (i + 1) & mask) {
        if (!m->used[i]) {
            m->used[i] = 1;
            m->keys[i] = key;
            m->vals[i] = val;
            m->n++;
            return 0;
        }
        if (m->keys[i] == key) {
            m->vals[i] = val;
            return 0;
        }
    }
}

/* ---- series per node ------------------------------------------------------------------ */

static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* The count slot of node, created (0) when absent; NULL on out of memory. */
static uint32_t *nodecount_slot(nodecount *m, const char *node) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        nodecount nm = {calloc(cap, sizeof(char *)), calloc(cap, sizeof(uint32_t)), cap, 0};
        if (!nm.names || !nm.counts) {
            free(nm.names);
            free(nm.counts);
            return NULL;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->names[i]) continue;
            size_t j = str_hash(m->names[i]) & (cap - 1);
            while (nm.names[j])
                j = (j + 1) & (cap - 1);
            nm.names[j] = m->names[i];
            nm.counts[j] = m->counts[i];
            nm.n++;
        }
        free(m->names);
        free(m->counts);
        *m = nm;
    }
    size_t mask = m->cap - 1;
    for (size_t i = str_hash(node) & mask;; i = (i + 1) & mask) {
        if (!m->names[i]) {
            if (!(m->names[i] = strdup(node))) return NULL;
            m->counts[i] = 0;
            m->n++;
            return &m->counts[i];
        }
        if (!strcmp(m->names[i], node)) return &m->counts[i];
    }
}

static uint32_t nodecount_get(const nodecount *m, const char *node) {
    if (!m->cap) return 0;
    size_t mask = m->cap - 1;
    for (size_t i = str_hash(node) & mask; m->names[i]; i = (i + 1) & mask)
        if (!strcmp(m->names[i], node)) return m->counts[i];
    return 0;
}

static void nodecount_free(nodecount *m) {
    for (size_t i = 0; i < m->cap; i++)
        free(m->names[i]);
    free(m->names);
    free(m->counts);
    memset(m, 0, sizeof *m);
}

/* The store removed a series (retention): it no longer counts against its node's limit. */
static void on_series_removed(void *arg, uint32_t id, const tsdb_label *l, size_t nl) {
    nodecount *m = arg;
    (void)id;
    if (!m->cap) return;
    for (size_t k = 0; k < nl; k++) {
        if (strcmp(l[k].name, "node") != 0) continue;
        size_t mask = m->cap - 1;
        for (size_t i = str_hash(l[k].value) & mask; m->names[i]; i = (i + 1) & mask)
            if (!strcmp(m->names[i], l[k].value)) {
                if (m->counts[i]) m->counts[i]--;
                return;
            }
        return;
    }
}

/* Counts the store's series per "node" label (once, at start). 0 or -ENOMEM. */
static int nodecount_load(nodecount *m, tsdb *db) {
    uint32_t n = tsdb_series_count(db);
    for (uint32_t id = 1; id <= n; id++) {
        const tsdb_label *l;
        size_t nl;
        if (tsdb_series_labels(db, id, &l, &nl) != 0) continue;
        for (size_t k = 0; k < nl; k++) {
            if (strcmp(l[k].name, "node") != 0) continue;
            uint32_t *c = nodecount_slot(m, l[k].value);
            if (!c) return -ENOMEM;
            (*c)++;
            break;
        }
    }
    return 0;
}

static void idmap_free(idmap *m) {
    free(m->keys);
    free(m->vals);
    free(m->used);
    memset(m, 0, sizeof *m);
}

/* ---- connection basics -------------------------------------------------------------------- */

static const char *conn_name(const agent_conn *c, char *buf, size_t len) {
    if (c->row)
        snprintf(buf, len, "%s (node %s)", c->address, c->row->node);
    else
        snprintf(buf, len, "%s", c->address);
    return buf;
}

/* The only place a connection changes state. */
static void conn_set_state(agent_conn *c, enum conn_state to) {
    char name[160];
    if (!((c->state == CONN_HANDSHAKE && (to == CONN_READY || to == CONN_CLOSED)) ||
          (c->state == CONN_READY && to == CONN_CLOSED))) {
        log_error("agents", "%s: bad state change %s -> %s", conn_name(c, name, sizeof name),
                  state_names[c->state], state_names[to]);
        abort();
    }
    log_debug("agents", "%s: %s -> %s", conn_name(c, name, sizeof name), state_names[c->state],
              state_names[to]);
    c->state = to;
}

static void conn_free(agent_conn *c) {
    wire_decoder_fini(&c->dec);
    wire_buf_fini(&c->out);
    idmap_free(&c->series);
    free(c);
}

static void cmd_finish(cp_cmd *cmd, int ok, const cJSON *result, const char *error);

/* ---- failed handshakes per address -------------------------------------------------------- */

/* The slot of host, brought up to date at now; created when create (taking the way that has
 * recovered most), else NULL when host has none. */
static authfail *authfail_slot(cp_agents *a, const char *host, ev_tstamp now, int create) {
    double burst = (double)a->cp->cfg.handshake_fail_burst;
    double per = a->cp->cfg.handshake_fail_interval_ms / 1000.0;
    size_t base = (size_t)(str_hash(host) % (AUTHFAIL_SLOTS / AUTHFAIL_WAYS)) * AUTHFAIL_WAYS;
    authfail *best = NULL;
    double best_left = -1;
    for (size_t i = 0; i < AUTHFAIL_WAYS; i++) {
        authfail *f = &a->fails[base + i];
        if (f->host[0]) {
            f->left += (now - f->at) / per;
            if (f->left > burst) f->left = burst;
            f->at = now;
            if (!strcmp(f->host, host)) return f;
        }
        double left = f->host[0] ? f->left : burst + 1;
        if (left > best_left) {
            best = f;
            best_left = left;
        }
    }
    if (!create) return NULL;
    snprintf(best->host, sizeof best->host, "%s", host);
    best->left = burst;
    best->at = now;
    best->refused = 0;
    return best;
}

/* Counts one failed handshake of host. */
static void authfail_hit(cp_agents *a, const char *host) {
    authfail *f = authfail_slot(a, host, ev_now(a->cp->loop), 1);
    f->left -= 1;
    f->refused = 0;
}

/* 1 when host has no failed handshake left: the caller refuses its connection. */
static int authfail_refuse(cp_agents *a, const char *host) {
    authfail *f = authfail_slot(a, host, ev_now(a->cp->loop), 0);
    if (!f || f->left >= 1) return 0;
    f->refused++;
    return 1;
}

static void conn_close(agent_conn *c, enum close_kind kind, const char *fmt, ...) {
    if (c->state == CONN_CLOSED) return;
    cp_agents *a = c->owner;
    struct ev_loop *loop = a->cp->loop;
    char reason[300], name[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (kind == CLOSE_PROTOCOL_ERROR && c->state == CONN_HANDSHAKE) {
        /* a failed handshake: counted against the address, its log line rate-limited */
        a->protocol_errors++;
        authfail_hit(a, c->host);
        log_limited(&a->rl_handshake, LOG_WARN, "agents", "%s closed: %s",
                    conn_name(c, name, sizeof name), reason);
    } else if (kind == CLOSE_PROTOCOL_ERROR) {
        a->protocol_errors++;
        if (c->row) c->row->protocol_errors++;
        log_warn("agents", "%s closed: %s", conn_name(c, name, sizeof name), reason);
    } else {
        log_info("agents", "%s closed: %s", conn_name(c, name, sizeof name), reason);
    }
    conn_set_state(c, CONN_CLOSED);
    ev_io_stop(loop, &c->rio);
    ev_io_stop(loop, &c->wio);
    ev_timer_stop(loop, &c->timer);
    close(c->fd);
    c->fd = -1;
    if (c->row && c->row->conn == c) {
        c->row->conn = NULL;
        c->row->disconnected_at = tide_now_wall_ms();
    }
    for (cp_cmd *cmd = a->cmds, *nx; cmd; cmd = nx) {
        nx = cmd->next;
        if (cmd->conn == c) cmd_finish(cmd, 0, NULL, "agent disconnected");
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    a->nconns--;
    if (c->refs == 0) conn_free(c);
}

/* Drops a reference taken around a call that may close c. Returns 0, or -1 when c is closed
 * (and then freed if nothing else holds it). */
static int conn_unref(agent_conn *c) {
    c->refs--;
    if (c->state != CONN_CLOSED) return 0;
    if (c->refs == 0) conn_free(c);
    return -1;
}

/* Writes what is queued; arms the write watcher on EAGAIN. Returns 0, or -1 when it closed c. */
static int conn_flush(agent_conn *c) {
    while (c->out.len > 0) {
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                if (c->out.len > OUT_LIMIT) {
                    conn_close(c, CLOSE_PROTOCOL_ERROR, "agent does not read (%zu bytes queued)",
                               c->out.len);
                    return -1;
                }
                ev_io_start(c->owner->cp->loop, &c->wio);
                return 0;
            }
            conn_close(c, CLOSE_NORMAL, "write: %s", strerror(errno));
            return -1;
        }
        wire_buf_consume(&c->out, (size_t)n);
    }
    ev_io_stop(c->owner->cp->loop, &c->wio);
    return 0;
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop;
    (void)revents;
    conn_flush(container_of(w, agent_conn, wio));
}

/* ---- commands ---------------------------------------------------------------------------- */

static void cmd_finish(cp_cmd *cmd, int ok, const cJSON *result, const char *error) {
    cp_agents *a = cmd->owner;
    ev_timer_stop(a->cp->loop, &cmd->timer);
    if (cmd->prev)
        cmd->prev->next = cmd->next;
    else
        a->cmds = cmd->next;
    if (cmd->next) cmd->next->prev = cmd->prev;
    cp_command_done_fn done = cmd->done;
    void *arg = cmd->arg;
    char *err_copy = cmd->error;
    free(cmd);
    done(arg, ok, result, error);
    free(err_copy);
}

static void on_cmd_timer(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop;
    (void)revents;
    cp_cmd *cmd = container_of(w, cp_cmd, timer);
    if (cmd->failed) {
        cmd_finish(cmd, 0, NULL, cmd->error ? cmd->error : "failed (out of memory)");
        return;
    }
    char msg[96];
    snprintf(msg, sizeof msg, "timed out after %d ms", cmd->timeout_ms);
    log_warn("agents", "command %s to node %s %s", cmd->id, cmd->node, msg);
    cmd_finish(cmd, 0, NULL, msg);
}

int cp_agent_command(struct controlplane *cp, const char *node, const char *action, cJSON *args,
                     int timeout_ms, cp_command_done_fn done, void *arg) {
    return cp_agent_command_fenced(cp, node, action, args, timeout_ms, NULL, 0, done, arg);
}

int cp_agent_command_fenced(struct controlplane *cp, const char *node, const char *action,
                            cJSON *args, int timeout_ms, const char *workload, uint64_t token,
                            cp_command_done_fn done, void *arg) {
    cp_agents *a = cp->agents;
    cp_cmd *cmd = calloc(1, sizeof *cmd);
    if (!cmd || !a) {
        /* Nowhere to defer the failure to: without memory nothing else works either. */
        free(cmd);
        cJSON_Delete(args);
        return -ENOMEM;
    }
    cmd->owner = a;
    cmd->done = done;
    cmd->arg = arg;
    cmd->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_COMMAND_TIMEOUT_MS;
    snprintf(cmd->id, sizeof cmd->id, "c%llu-%lld", (unsigned long long)++a->next_cmd_id,
             (long long)(a->cp->started_wall_ms % 1000000));
    snprintf(cmd->node, sizeof cmd->node, "%s", node);
    ev_init(&cmd->timer, on_cmd_timer);
    cmd->next = a->cmds;
    if (a->cmds) a->cmds->prev = cmd;
    a->cmds = cmd;

    int rc = 0;
    agent_row *row = NULL;
    for (agent_row *r = a->rows; r; r = r->next)
        if (!strcmp(r->node, node)) row = r;
    char why[160] = "";
    if (!row) {
        snprintf(why, sizeof why, "unknown node '%s'", node);
        rc = -ENOENT;
    } else if (!row->conn || row->conn->state != CONN_READY) {
        snprintf(why, sizeof why, "node '%s' is not connected", node);
        rc = -ENOENT;
    } else {
        agent_conn *c = row->conn;
        long n = wire_enc_command_fenced(&c->out, ++c->out_seq, cmd->id, action, args, workload,
                                         token, (size_t)cp->cfg.max_frame_bytes);
        if (n < 0) {
            snprintf(why, sizeof why, "command does not fit in a frame: %s", strerror((int)-n));
            rc = (int)n;
        } else {
            cmd->conn = c;
            if (workload)
                log_info("agents", "command %s %s -> node %s (workload %s, fence %llu)", cmd->id,
                         action, node, workload, (unsigned long long)token);
            else
                log_info("agents", "command %s %s -> node %s", cmd->id, action, node);
            ev_timer_set(&cmd->timer, cmd->timeout_ms / 1000.0, 0.);
            ev_timer_start(cp->loop, &cmd->timer);
            /* Written from the loop: a write error here would close c and call done from
             * inside this function. */
            ev_io_start(cp->loop, &c->wio);
        }
    }
    cJSON_Delete(args);
    if (rc < 0) {
        cmd->error = strdup(why);
        cmd->failed = 1;
        ev_timer_set(&cmd->timer, 0., 0.);
        ev_timer_start(cp->loop, &cmd->timer);
    }
    return rc;
}

/* ---- ingest -------------------------------------------------------------------------------- */

static void on_durable(void *arg, int status) {
    durable_wait *dw = arg;
    agent_conn *c = dw->conn;
    uint64_t seq = dw->seq;
    free(dw);
    c->refs--;
    if (c->state == CONN_CLOSED) {
        if (c->refs == 0) conn_free(c);
        return;
    }
    if (status < 0) {
        conn_close(c, CLOSE_NORMAL, "store could not make batch %llu durable: %s",
                   (unsigned long long)seq, strerror(-status));
        return;
    }
    if (c->row && seq > c->row->durable_seq) c->row->durable_seq = seq;
    if (seq <= c->acked) return;
    c->acked = seq;
    if (wire_enc_ack(&c->out, ++c->out_seq, seq, (size_t)c->owner->cp->cfg.max_frame_bytes) < 0) {
        conn_close(c, CLOSE_NORMAL, "out of memory queueing an ACK");
        return;
    }
    conn_flush(c);
}

static int want_durable_ack(agent_conn *c, uint64_t seq) {
    durable_wait *dw = malloc(sizeof *dw);
    if (!dw) return -ENOMEM;
    dw->conn = c;
    dw->seq = seq;
    c->refs += 2; /* one for the callback, one while it may run inline right here */
    tsdb_when_durable(c->owner->cp->db, on_durable, dw);
    return conn_unref(c);
}

static int ensure_scratch(cp_agents *a, size_t n) {
    if (n <= a->scratch_cap) return 0;
    size_t cap = a->scratch_cap ? a->scratch_cap : 1024;
    while (cap < n)
        cap *= 2;
    int64_t *ts = realloc(a->ts, cap * sizeof *ts);
    if (!ts) return -ENOMEM;
    a->ts = ts;
    double *v = realloc(a->v, cap * sizeof *v);
    if (!v) return -ENOMEM;
    a->v = v;
    a->scratch_cap = cap;
    return 0;
}

/* The highest batch seq accepted: agents number batches from the wall clock in ms (see
 * PROTOCOL.md), so a seq cannot be honestly ahead of it by more than the clock skew. Also
 * keeps seqs below 2^53, exact in JSON. The real clock, also under a virtual one (the agents
 * number batches by the real clock: vclock.h). */
static uint64_t seq_bound(const cp_agents *a) {
    return (uint64_t)(vclock_real_ms() + a->cp->cfg.max_clock_skew_ms);
}

/* Handles SAMPLES. Returns 0, or -1 when it closed the connection. */
static int handle_samples(agent_conn *c, const wire_msg *m) {
    cp_agents *a = c->owner;
    agent_row *row = c->row;
    row->batches++;
    int64_t now = tide_now_wall_ms();
    int64_t skew = a->cp->cfg.max_clock_skew_ms;
    if (m->seq > seq_bound(a)) {
        /* Agents number batches from the wall clock in ms: a seq beyond it (2^64-1, say)
         * would make every later batch of this node a "duplicate" */
        conn_close(c, CLOSE_PROTOCOL_ERROR,
                   "batch seq %llu is beyond the clock in ms + max_clock_skew (%llu): refused",
                   (unsigned long long)m->seq, (unsigned long long)seq_bound(a));
        return -1;
    }
    if (m->seq <= row->last_seq) {
        /* A resend of something already stored: drop it, acknowledge it once durable. */
        row->duplicate_batches++;
        log_debug("agents", "node %s: batch %llu is a duplicate (have %llu)", row->node,
                  (unsigned long long)m->seq, (unsigned long long)row->last_seq);
    } else {
        for (uint32_t i = 0; i < m->u.samples.nruns; i++) {
            uint32_t aid, tid;
            size_t n;
            wire_samples_run(m, i, &aid, NULL, NULL, 0, &n);
            if (!idmap_get(&c->series, aid, &tid)) {
                row->unknown_series++;
                log_limited(&a->rl_unknown, LOG_WARN, "agents",
                            "node %s: %zu samples for series id %u that was never defined on "
                            "this connection: dropped",
                            row->node, n, aid);
                continue;
            }
            if (ensure_scratch(a, n) < 0) {
                conn_close(c, CLOSE_NORMAL, "out of memory for a run of %zu samples", n);
                return -1;
            }
            if (tid == 0) continue; /* its definition was refused (counted there) */
            wire_samples_run(m, i, &aid, a->ts, a->v, a->scratch_cap, &n);
            size_t kept = 0;
            for (size_t k = 0; k < n; k++) { /* a sample from years ahead locks a series */
                if (a->ts[k] > now + skew) continue;
                a->ts[kept] = a->ts[k];
                a->v[kept++] = a->v[k];
            }
            if (kept < n) {
                row->future_samples += n - kept;
                log_limited(&a->rl_future, LOG_WARN, "agents",
                            "node %s: %zu samples of series %u stamped beyond now + "
                            "max_clock_skew (%lld ms): refused (check the node's clock)",
                            row->node, n - kept, aid, (long long)skew);
                n = kept;
            }
            int rc = tsdb_append(a->cp->db, row->node, m->seq, tid, a->ts, a->v, n);
            if (rc == -ENOENT) {
                /* removed by retention while this connection still named it: the agent
                 * defines every series again when it reconnects and resends the batch */
                conn_close(c, CLOSE_NORMAL,
                           "series %u was removed (nothing inside retention): reconnect to "
                           "define it again",
                           aid);
                return -1;
            }
            if (rc < 0) {
                conn_close(c, CLOSE_NORMAL, "store refused batch %llu: %s",
                           (unsigned long long)m->seq, strerror(-rc));
                return -1;
            }
            row->samples += n;
        }
        row->last_seq = m->seq;
    }
    int rc = want_durable_ack(c, m->seq);
    if (rc == -ENOMEM) conn_close(c, CLOSE_NORMAL, "out of memory");
    return rc < 0 ? -1 : 0;
}

static int handle_series_def(agent_conn *c, const wire_msg *m) {
    cp_agents *a = c->owner;
    for (uint32_t i = 0; i < m->u.series_def.n; i++) {
        uint32_t aid;
        const msgpack_object *l;
        wire_series_def_get(m, i, &aid, &l);
        uint32_t nl = l->via.map.size;
        tsdb_label labels[nl + 1];
        /* copy the strings out NUL-terminated */
        size_t need = 0;
        for (uint32_t k = 0; k < nl; k++)
            need += l->via.map.ptr[k].key.via.str.size + l->via.map.ptr[k].val.via.str.size + 2;
        if (need > a->lbuf_cap) {
            char *p = realloc(a->lbuf, need);
            if (!p) {
                conn_close(c, CLOSE_NORMAL, "out of memory");
                return -1;
            }
            a->lbuf = p;
            a->lbuf_cap = need;
        }
        char *p = a->lbuf;
        size_t n = 0;
        for (uint32_t k = 0; k < nl; k++) {
            const msgpack_object_kv *kv = &l->via.map.ptr[k];
            char *key = p;
            memcpy(p, kv->key.via.str.ptr, kv->key.via.str.size);
            p += kv->key.via.str.size;
            *p++ = 0;
            char *val = p;
            memcpy(p, kv->val.via.str.ptr, kv->val.via.str.size);
            p += kv->val.via.str.size;
            *p++ = 0;
            if (!strcmp(key, "node")) continue; /* the authenticated name replaces it */
            labels[n].name = key;
            labels[n].value = val;
            n++;
        }
        labels[n].name = "node";
        labels[n].value = c->row->node;
        n++;
        uint32_t tid, old;
        /* checked before anything is created; a redefined id (a new label set for it) makes
         * a new store series too, so the store's series are what the node limit counts */
        if (!idmap_get(&c->series, aid, &old) && c->series.n >= MAX_SERIES_PER_CONN) {
            conn_close(c, CLOSE_PROTOCOL_ERROR, "more than %u series defined", MAX_SERIES_PER_CONN);
            return -1;
        }
        int rc = tsdb_series_lookup(a->cp->db, labels, n, &tid);
        if (rc == -ENOENT) {
            uint32_t *have = nodecount_slot(&a->nodes, c->row->node);
            if (!have) {
                conn_close(c, CLOSE_NORMAL, "out of memory");
                return -1;
            }
            if (*have >= (uint64_t)a->cp->cfg.max_series_per_node)
                rc = -EUSERS;
            else
                rc = tsdb_series(a->cp->db, labels, n, &tid);
            if (rc == -EUSERS || rc == -EDQUOT) {
                /* refused, not a protocol error: the agent would only reconnect and retry;
                 * its samples for this id are dropped (and the id no longer means an older
                 * label set) */
                c->row->series_refused++;
                log_limited(rc == -EUSERS ? &a->rl_limit_node : &a->rl_limit_all, LOG_WARN,
                            "agents", "node %s: series %u refused: %s (%lld) reached", c->row->node,
                            aid, rc == -EUSERS ? "max_series_per_node" : "max_series",
                            (long long)(rc == -EUSERS ? a->cp->cfg.max_series_per_node
                                                      : a->cp->cfg.max_series));
                tid = 0;
                rc = 0;
            } else if (rc == 0) {
                (*have)++;
            }
        }
        if (rc < 0) {
            conn_close(c, CLOSE_NORMAL, "store refused series %u: %s", aid, strerror(-rc));
            return -1;
        }
        if (idmap_put(&c->series, aid, tid) < 0) {
            conn_close(c, CLOSE_NORMAL, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* ---- handshake --------------------------------------------------------------------------- */

static agent_row *row_for(cp_agents *a, const char *node) {
    for (agent_row *r = a->rows; r; r = r->next)
        if (!strcmp(r->node, node)) return r;
    agent_row *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    snprintf(r->node, sizeof r->node, "%s", node);
    /* kept sorted by node name: `tidectl agents` lists them in that order */
    agent_row **pp = &a->rows;
    while (*pp && strcmp((*pp)->node, node) < 0)
        pp = &(*pp)->next;
    r->next = *pp;
    *pp = r;
    return r;
}

static int handle_hello(agent_conn *c, const wire_msg *m) {
    cp_agents *a = c->owner;
    struct controlplane *cp = a->cp;
    if (!m->u.hello.mac) {
        conn_close(c, CLOSE_PROTOCOL_ERROR, "HELLO with role other than \"agent\"");
        return -1;
    }
    char node[64], version[64];
    snprintf(node, sizeof node, "%.*s", (int)m->u.hello.node.len, m->u.hello.node.p);
    snprintf(version, sizeof version, "%.*s",
             (int)(m->u.hello.version.len < 63 ? m->u.hello.version.len : 63),
             m->u.hello.version.len ? m->u.hello.version.p : "");
    for (char *p = version; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    /* The key that proves this name: the node's own when it has one (then nothing else
     * does), else the cluster token unless require_node_keys. */
    const nodekey *nk = nodekeys_find(&a->keys, node);
    if ((nk && nk->revoked) || (!nk && cp->cfg.require_node_keys)) {
        a->rejected_auth++;
        conn_close(c, CLOSE_PROTOCOL_ERROR,
                   nk ? "node %s: its key was revoked (issue a new one: tidectl token node %s)"
                      : "node %s has no node key and require_node_keys is on (issue one: "
                        "tidectl token node %s)",
                   node, node);
        return -1;
    }
    const char *key = nk ? nk->key : cp->token;
    size_t keylen = nk ? NODEKEY_LEN : cp->token_len;
    uint8_t mac[WIRE_MAC_LEN];
    if (wire_auth_mac(key, keylen, "agent", c->nonce, m->u.hello.nonce, node, mac) < 0 ||
        !wire_mac_equal(mac, m->u.hello.mac)) {
        a->rejected_auth++;
        conn_close(c, CLOSE_PROTOCOL_ERROR,
                   "wrong token: HELLO from node %s failed HMAC verification (%s)", node,
                   nk ? "the node has a key of its own: only that key authenticates it"
                      : "cluster token");
        return -1;
    }
    agent_row *row = row_for(a, node);
    if (!row) {
        conn_close(c, CLOSE_NORMAL, "out of memory");
        return -1;
    }
    if (row->conn)
        conn_close(row->conn, CLOSE_NORMAL, "replaced by a new connection from %s", c->address);
    c->row = row;
    row->conn = c;
    row->node_key = nk != NULL;
    snprintf(row->version, sizeof row->version, "%s", version);
    snprintf(row->address, sizeof row->address, "%s", c->address);
    row->connected_since = tide_now_wall_ms();
    row->bytes += m->frame_bytes;
    /* What the store holds after a restart was replayed from its WAL: durable. */
    uint64_t stored = tsdb_source_seq(cp->db, node);
    if (stored > seq_bound(a)) { /* stored before seqs were bounded: would stop this node */
        log_warn("agents",
                 "node %s: stored batch seq %llu is beyond the clock (a bogus batch from "
                 "before seqs were bounded): ignored",
                 node, (unsigned long long)stored);
        stored = 0;
    }
    if (stored > row->last_seq) row->last_seq = stored;
    if (stored > row->durable_seq) row->durable_seq = stored;
    /* The agent drops every batch up to last_seq, so promise only what is durable; batches
     * appended but not yet durable come again and are dropped as duplicates, then ACKed. */
    if (wire_auth_mac(key, keylen, "controlplane", m->u.hello.nonce, c->nonce, node, mac) < 0 ||
        wire_enc_hello_ack(&c->out, ++c->out_seq, mac, row->durable_seq,
                           (size_t)cp->cfg.max_frame_bytes) < 0) {
        conn_close(c, CLOSE_NORMAL, "cannot build HELLO_ACK");
        return -1;
    }
    conn_set_state(c, CONN_READY);
    wire_decoder_set_max(&c->dec, (size_t)cp->cfg.max_frame_bytes);
    c->acked = row->durable_seq;
    log_info("agents", "node %s (agent %s) connected from %s with %s, last batch %llu", node,
             version, c->address, nk ? "its node key" : "the cluster token",
             (unsigned long long)row->durable_seq);
    /* From now on the timer watches for silence. */
    ev_timer_stop(cp->loop, &c->timer);
    ev_timer_set(&c->timer, cp->cfg.idle_timeout_ms / 1000.0, 0.);
    ev_timer_start(cp->loop, &c->timer);
    return conn_flush(c);
}

/* ---- reading ----------------------------------------------------------------------------- */

/* Handles one decoded frame. Returns 0, or -1 when the connection was closed. */
static int handle_frame(agent_conn *c, const wire_msg *m) {
    if (c->state == CONN_HANDSHAKE) {
        if (m->t != WIRE_HELLO) {
            conn_close(c, CLOSE_PROTOCOL_ERROR, "expected HELLO first, got %s",
                       wire_type_name(m->t));
            return -1;
        }
        return handle_hello(c, m);
    }
    agent_row *row = c->row;
    row->bytes += m->frame_bytes;
    switch (m->t) {
    case WIRE_SAMPLES:
        return handle_samples(c, m);
    case WIRE_SERIES_DEF:
        return handle_series_def(c, m);
    case WIRE_HEARTBEAT:
        row->last_heartbeat = tide_now_wall_ms();
        row->spool_drops = m->u.heartbeat.spool_drops;
        row->queued_bytes = m->u.heartbeat.queued_bytes;
        return 0;
    case WIRE_COMMAND_RESULT: {
        char id[130];
        snprintf(id, sizeof id, "%.*s", (int)m->u.command_result.id.len, m->u.command_result.id.p);
        for (cp_cmd *cmd = c->owner->cmds; cmd; cmd = cmd->next) {
            if (cmd->conn != c || strcmp(cmd->id, id) != 0) continue;
            cJSON *res =
                m->u.command_result.result ? wire_object_to_json(m->u.command_result.result) : NULL;
            char err[512];
            snprintf(err, sizeof err, "%.*s", (int)m->u.command_result.error.len,
                     m->u.command_result.error.p);
            int ok = m->u.command_result.ok;
            log_info("agents", "command %s on node %s: %s%s%s", id, row->node, ok ? "ok" : "failed",
                     ok ? "" : ": ", ok ? "" : err);
            c->refs++; /* done() may do anything, even close this connection */
            cmd_finish(cmd, ok, res, ok ? NULL : (err[0] ? err : "failed (no reason given)"));
            cJSON_Delete(res);
            return conn_unref(c);
        }
        log_debug("agents", "node %s: result for unknown or expired command %s", row->node, id);
        return 0;
    }
    default:
        conn_close(c, CLOSE_PROTOCOL_ERROR, "unexpected %s from an agent", wire_type_name(m->t));
        return -1;
    }
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents) {
    (void)revents;
    agent_conn *c = container_of(w, agent_conn, rio);
    for (int round = 0; round < READS_PER_EVENT; round++) {
        size_t want = READ_CHUNK, avail;
        size_t pending = wire_decoder_pending(&c->dec);
        if (pending >= 4) {
            const uint8_t *h = c->dec.buf + c->dec.start;
            size_t flen =
                4 + (((size_t)h[0] << 24) | ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3]);
            if (flen > pending && flen - pending > want) want = flen - pending;
        }
        uint8_t *p = wire_decoder_reserve(&c->dec, want, &avail);
        if (!p) {
            conn_close(c, CLOSE_NORMAL, "out of memory for a read buffer");
            return;
        }
        ssize_t n = recv(c->fd, p, avail, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            conn_close(c, CLOSE_NORMAL, "read: %s", strerror(errno));
            return;
        }
        if (n == 0) {
            if (wire_decoder_pending(&c->dec) > 0)
                conn_close(c, CLOSE_PROTOCOL_ERROR,
                           "peer closed in the middle of a frame (%zu bytes pending)",
                           wire_decoder_pending(&c->dec));
            else
                conn_close(c, CLOSE_NORMAL, "peer closed the connection");
            return;
        }
        wire_decoder_consumed(&c->dec, (size_t)n);
        c->last_rx = ev_now(loop);
        wire_msg m;
        enum wire_decode_result r;
        while ((r = wire_decoder_next(&c->dec, &m)) == WIRE_FRAME)
            if (handle_frame(c, &m) < 0) return;
        if (r == WIRE_ERROR) {
            conn_close(c, CLOSE_PROTOCOL_ERROR, "%s", c->dec.err);
            return;
        }
        if ((size_t)n < avail) break;
    }
    /* Idle agents keep no big buffers. */
    if (c->dec.cap > 64 * 1024) wire_decoder_shrink(&c->dec, 64 * 1024);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)revents;
    agent_conn *c = container_of(w, agent_conn, timer);
    cp_agents *a = c->owner;
    if (c->state == CONN_HANDSHAKE) {
        a->timeouts++;
        if (wire_decoder_pending(&c->dec) > 0)
            conn_close(c, CLOSE_PROTOCOL_ERROR,
                       "stalled in the middle of a frame during the handshake (%zu bytes "
                       "pending after %lld ms)",
                       wire_decoder_pending(&c->dec), (long long)a->cp->cfg.handshake_timeout_ms);
        else
            conn_close(c, CLOSE_PROTOCOL_ERROR, "no HELLO within %lld ms",
                       (long long)a->cp->cfg.handshake_timeout_ms);
        return;
    }
    ev_tstamp idle = a->cp->cfg.idle_timeout_ms / 1000.0;
    ev_tstamp left = c->last_rx + idle - ev_now(loop);
    if (left > 0.001) {
        ev_timer_set(w, left, 0.);
        ev_timer_start(loop, w);
        return;
    }
    a->timeouts++;
    if (wire_decoder_pending(&c->dec) > 0)
        conn_close(c, CLOSE_PROTOCOL_ERROR,
                   "stalled in the middle of a frame (%zu bytes pending, silent for %lld ms)",
                   wire_decoder_pending(&c->dec), (long long)a->cp->cfg.idle_timeout_ms);
    else
        conn_close(c, CLOSE_NORMAL, "silent for %lld ms", (long long)a->cp->cfg.idle_timeout_ms);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents) {
    (void)loop;
    (void)revents;
    cp_agents *a = container_of(w, cp_agents, lio);
    struct controlplane *cp = a->cp;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(a->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN)
                log_limited(&a->rl_accept, LOG_WARN, "agents", "accept: %s", strerror(errno));
            return;
        }
        char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV);
        if (a->nconns >= cp->cfg.max_agents) {
            a->refused_full++;
            log_limited(&a->rl_accept, LOG_WARN, "agents",
                        "refusing %s:%s: %lld agent connections already (max_agents)", host, port,
                        (long long)cp->cfg.max_agents);
            close(fd);
            continue;
        }
        if (authfail_refuse(a, host)) {
            a->refused_rate++;
            log_limited(&a->rl_refused, LOG_WARN, "agents",
                        "refusing %s:%s: too many failed handshakes from %s (more than %lld; "
                        "one more allowed every %lld ms)",
                        host, port, host, (long long)cp->cfg.handshake_fail_burst,
                        (long long)cp->cfg.handshake_fail_interval_ms);
            close(fd);
            continue;
        }
        char address[64];
        snprintf(address, sizeof address, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host,
                 port);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (cp_agents_adopt(cp, fd, address) < 0) {
            log_limited(&a->rl_accept, LOG_ERROR, "agents", "cannot set up a connection");
            close(fd);
        }
    }
}

int cp_agents_adopt(struct controlplane *cp, int fd, const char *address) {
    cp_agents *a = cp->agents;
    struct ev_loop *loop = cp->loop;
    agent_conn *c = calloc(1, sizeof *c);
    if (!c || wire_decoder_init(&c->dec, WIRE_HANDSHAKE_MAX_FRAME) < 0 ||
        wire_nonce(c->nonce) < 0) {
        if (c) wire_decoder_fini(&c->dec);
        free(c);
        return -ENOMEM;
    }
    c->fd = fd;
    c->owner = a;
    c->state = CONN_HANDSHAKE;
    snprintf(c->address, sizeof c->address, "%s", address);
    /* "host:port" or "[v6]:port" -> host */
    const char *colon = strrchr(address, ':');
    size_t hl = colon ? (size_t)(colon - address) : strlen(address);
    if (hl >= 2 && address[0] == '[' && address[hl - 1] == ']')
        snprintf(c->host, sizeof c->host, "%.*s", (int)(hl - 2), address + 1);
    else
        snprintf(c->host, sizeof c->host, "%.*s", (int)hl, address);
    wire_buf_init(&c->out);
    c->last_rx = ev_now(loop);
    ev_io_init(&c->rio, on_read, fd, EV_READ);
    ev_io_init(&c->wio, on_write, fd, EV_WRITE);
    ev_timer_init(&c->timer, on_timer, cp->cfg.handshake_timeout_ms / 1000.0, 0.);
    c->next = a->conns;
    if (a->conns) a->conns->prev = c;
    a->conns = c;
    a->nconns++;
    a->connections_total++;
    ev_io_start(loop, &c->rio);
    ev_timer_start(loop, &c->timer);
    log_debug("agents", "connection from %s", c->address);
    if (wire_enc_hello_challenge(&c->out, ++c->out_seq, "tide-controlplane " TIDE_VERSION, c->nonce,
                                 (uint64_t)cp->cfg.heartbeat_ms,
                                 (size_t)cp->cfg.max_frame_bytes) < 0) {
        conn_close(c, CLOSE_NORMAL, "cannot build the HELLO challenge");
        return 0;
    }
    conn_flush(c);
    return 0;
}

/* ---- start / stop / tables ---------------------------------------------------------------- */

int cp_agents_start(struct controlplane *cp, char *err, size_t errlen) {
    char host[256], portstr[8];
    int port;
    if (cfg_split_hostport(cp->cfg.listen, host, sizeof host, &port) < 0) {
        snprintf(err, errlen, "listen %s: not ADDR:PORT", cp->cfg.listen);
        return -EINVAL;
    }
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "listen %s: %s", cp->cfg.listen, gai_strerror(gai));
        return -EINVAL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, e = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        e = errno;
        snprintf(err, errlen, "listen %s: %s", cp->cfg.listen, strerror(e));
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        return -e;
    }
    freeaddrinfo(res);
    cp_agents *a = calloc(1, sizeof *a);
    if (!a) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    a->cp = cp;
    a->lfd = fd;
    a->rl_unknown = (log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
    a->rl_accept = (log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
    a->rl_limit_node = (log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
    a->rl_limit_all = (log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
    a->rl_future = (log_ratelimit)LOG_RATELIMIT_INIT(10000, 5);
    a->rl_handshake = (log_ratelimit)LOG_RATELIMIT_INIT(10000, 10);
    a->rl_refused = (log_ratelimit)LOG_RATELIMIT_INIT(10000, 2);
    snprintf(a->keys_path, sizeof a->keys_path, "%s/node_keys", cp->cfg.data_dir);
    char kerr[600] = "";
    int krc = nodekeys_load(a->keys_path, &a->keys, kerr, sizeof kerr);
    if (krc == 0 &&
        (krc = work_pool_new(cp->loop, /* threads = */ 1, /* queued = */ 64, &a->keys_pool)) < 0)
        snprintf(kerr, sizeof kerr, "cannot start the key writer: %s", strerror(-krc));
    if (krc < 0) {
        snprintf(err, errlen, "node keys: %s", kerr);
        nodekeys_fini(&a->keys);
        free(a);
        close(fd);
        return krc;
    }
    if (cp->db && nodecount_load(&a->nodes, cp->db) < 0) {
        nodecount_free(&a->nodes);
        free(a);
        close(fd);
        snprintf(err, errlen, "out of memory counting series per node");
        return -ENOMEM;
    }
    if (cp->db) tsdb_set_removed_hook(cp->db, on_series_removed, &a->nodes);
    ev_io_init(&a->lio, on_accept, fd, EV_READ);
    ev_io_start(cp->loop, &a->lio);
    cp->agents = a;
    size_t nkeys = 0;
    for (size_t i = 0; i < a->keys.n; i++)
        nkeys += !a->keys.v[i].revoked;
    log_info("agents", "listening for agents on %s (%zu node keys%s)", cp->cfg.listen, nkeys,
             cp->cfg.require_node_keys ? ", required" : "; the cluster token for other nodes");
    return 0;
}

void cp_agents_stop(struct controlplane *cp) {
    cp_agents *a = cp->agents;
    if (!a) return;
    ev_io_stop(cp->loop, &a->lio);
    close(a->lfd);
    if (cp->db) tsdb_set_removed_hook(cp->db, NULL, NULL);
    work_pool_free(a->keys_pool); /* pending key writes finish (and reply) first */
    a->keys_pool = NULL;
    while (a->conns)
        conn_close(a->conns, CLOSE_NORMAL, "control plane shutting down");
    while (a->cmds) {
        /* failures scheduled but not yet delivered */
        cp_cmd *cmd = a->cmds;
        cmd_finish(cmd, 0, NULL,
                   cmd->failed && cmd->error ? cmd->error : "control plane shutting down");
    }
    for (agent_row *r = a->rows, *nx; r; r = nx) {
        nx = r->next;
        free(r);
    }
    free(a->ts);
    free(a->v);
    free(a->lbuf);
    nodecount_free(&a->nodes);
    nodekeys_fini(&a->keys);
    free(a);
    cp->agents = NULL;
}

cJSON *cp_agents_json(struct controlplane *cp) {
    cJSON *arr = cJSON_CreateArray();
    cp_agents *a = cp->agents;
    if (!a || !arr) return arr;
    for (agent_row *r = a->rows; r; r = r->next) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "node", r->node);
        cJSON_AddStringToObject(o, "agent_version", r->version);
        cJSON_AddStringToObject(o, "address", r->address);
        cJSON_AddBoolToObject(o, "connected", r->conn != NULL);
        cJSON_AddNumberToObject(o, "connected_since", (double)r->connected_since);
        cJSON_AddNumberToObject(o, "disconnected_at", (double)(r->conn ? 0 : r->disconnected_at));
        cJSON_AddNumberToObject(o, "last_heartbeat", (double)r->last_heartbeat);
#define X_JSON(name, help) cJSON_AddNumberToObject(o, #name, (double)r->name);
        ROW_COUNTERS(X_JSON)
        ROW_GAUGES(X_JSON)
#undef X_JSON
        char num[32];
        snprintf(num, sizeof num, "%llu", (unsigned long long)r->last_seq);
        cJSON_AddRawToObject(o, "last_seq", num); /* exact, even beyond 2^53 */
        cJSON_AddNumberToObject(o, "series", (double)nodecount_get(&a->nodes, r->node));
        cJSON_AddStringToObject(o, "auth",
                                !r->conn      ? ""
                                : r->node_key ? "node-key"
                                              : "cluster-token");
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

int cp_agent_node(struct controlplane *cp, const char *node, char *host, size_t hostlen,
                  int64_t *since_ms) {
    if (!cp->agents) return -ENOENT;
    for (agent_row *r = cp->agents->rows; r; r = r->next) {
        if (strcmp(r->node, node)) continue;
        if (host && hostlen) {
            /* "1.2.3.4:5" or "[::1]:5" -> "1.2.3.4" / "::1" */
            const char *a = r->address, *end = strrchr(a, ':');
            if (a[0] == '[') {
                a++;
                end = strchr(a, ']');
            }
            size_t n = end ? (size_t)(end - a) : strlen(a);
            snprintf(host, hostlen, "%.*s", (int)n, a);
        }
        if (since_ms) *since_ms = r->conn ? r->connected_since : r->disconnected_at;
        return r->conn != NULL;
    }
    return -ENOENT;
}

int64_t cp_agents_connected(struct controlplane *cp) {
    int64_t n = 0;
    if (cp->agents)
        for (agent_row *r = cp->agents->rows; r; r = r->next)
            n += r->conn != NULL;
    return n;
}

cJSON *cp_agents_totals_json(struct controlplane *cp) {
    cp_agents *a = cp->agents;
    cJSON *o = cJSON_CreateObject();
    if (!a || !o) return o;
    struct {
#define X_FIELD(name, help) uint64_t name;
        ROW_COUNTERS(X_FIELD)
#undef X_FIELD
    } sum = {0};
    uint64_t connected = 0, known = 0;
    for (agent_row *r = a->rows; r; r = r->next) {
#define X_SUM(name, help) sum.name += r->name;
        ROW_COUNTERS(X_SUM)
#undef X_SUM
        connected += r->conn != NULL;
        known++;
    }
    cJSON_AddNumberToObject(o, "connections", (double)a->nconns);
    cJSON_AddNumberToObject(o, "agents_connected", (double)connected);
    cJSON_AddNumberToObject(o, "agents_known", (double)known);
#define X_JSON(name, help) cJSON_AddNumberToObject(o, #name, (double)a->name);
    TOTAL_COUNTERS(X_JSON)
#undef X_JSON
#define X_JSON(name, help) cJSON_AddNumberToObject(o, #name, (double)sum.name);
    ROW_COUNTERS(X_JSON)
#undef X_JSON
    return o;
}

static void cmd_agents(ops_request *req, const cJSON *args) {
    (void)args;
    ops_reply(req, cp_agents_json(ops_cp(req)));
}

OPS_COMMAND(agents, "agents", "agents: the agents table (one row per node)", cmd_agents)

typedef struct ping_req {
    ops_request *req;
    int64_t start_ms;
    int rc;
    char node[64];
} ping_req;

static void ping_done(void *arg, int ok, const cJSON *result, const char *error) {
    ping_req *p = arg;
    if (ok) {
        cJSON *d = result ? cJSON_Duplicate(result, 1) : cJSON_CreateObject();
        cJSON_AddStringToObject(d, "node", p->node);
        cJSON_AddNumberToObject(d, "rtt_ms", (double)(tide_now_mono_ms() - p->start_ms));
        ops_reply(p->req, d);
    } else {
        ops_reply_error(p->req, p->rc == -ENOENT ? 2 : 1, "%s", error);
    }
    free(p);
}

/* {"node": NAME, "timeout_ms": N}: sends the built-in "ping" action to the node's agent. */
static void cmd_ping(ops_request *req, const cJSON *args) {
    const cJSON *node = cJSON_GetObjectItemCaseSensitive(args, "node");
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(args, "timeout_ms");
    if (!cJSON_IsString(node) || !wire_node_valid(node->valuestring, strlen(node->valuestring))) {
        ops_reply_error(req, 2, "ping: \"node\" must be a node name");
        return;
    }
    ping_req *p = calloc(1, sizeof *p);
    if (!p) {
        ops_reply_error(req, 1, "out of memory");
        return;
    }
    p->req = req;
    p->start_ms = tide_now_mono_ms();
    snprintf(p->node, sizeof p->node, "%s", node->valuestring);
    p->rc = cp_agent_command(ops_cp(req), node->valuestring, "ping", NULL,
                             cJSON_IsNumber(to) ? to->valueint : 5000, ping_done, p);
    if (p->rc == -ENOMEM) { /* the one failure ping_done is not called for */
        ops_reply_error(req, 1, "ping: out of memory");
        free(p);
    }
}

OPS_COMMAND(ping, "ping", "ping {node}: round trip of a command to that node's agent", cmd_ping)

/* ---- per-node keys (tidectl token) ---------------------------------------------------------- */

/* A change of the key table being written to its file by the keys pool's one thread (in
 * submission order, so the file ends as the last change left it); the ops reply follows. */
typedef struct keys_job {
    work w;
    cp_agents *a;
    ops_request *req;
    nodekeys snap; /* the table after the change: what is written */
    int rc;
    cJSON *reply;
} keys_job;

static void keys_run(work *w) {
    keys_job *j = container_of(w, keys_job, w);
    j->rc = nodekeys_save(j->a->keys_path, &j->snap);
}

static void keys_done(work *w, int status) {
    keys_job *j = container_of(w, keys_job, w);
    int rc = status < 0 ? status : j->rc;
    if (rc == 0) {
        ops_reply(j->req, j->reply);
    } else {
        cJSON_Delete(j->reply);
        log_error("agents",
                  "node keys: cannot write %s: %s (the change is in force until a restart)",
                  j->a->keys_path, strerror(-rc));
        ops_reply_error(j->req, 1,
                        "the change is in force but could not be stored in %s: %s (it is lost "
                        "when the control plane restarts; try again)",
                        j->a->keys_path, strerror(-rc));
    }
    nodekeys_fini(&j->snap);
    free(j);
}

/* Gives node a new key (key != NULL) or revokes it, closes its connection (which proved its
 * name with something no longer valid), stores the table off the loop and replies `reply`
 * once stored. Nothing changes when an error is replied here. */
static void keys_change(ops_request *req, const char *node, const char *key, cJSON *reply) {
    cp_agents *a = ops_cp(req)->agents;
    keys_job *j = calloc(1, sizeof *j);
    nodekeys live = {0};
    int rc = j ? nodekeys_copy(&j->snap, &a->keys) : -ENOMEM;
    if (rc == 0) rc = nodekeys_set(&j->snap, node, key, tide_now_wall_ms());
    if (rc == 0) rc = nodekeys_copy(&live, &j->snap);
    if (rc == 0) {
        j->a = a;
        j->req = req;
        j->reply = reply;
        rc = work_submit(a->keys_pool, &j->w, keys_run, keys_done);
    }
    if (rc < 0) {
        ops_reply_error(req, rc == -ENOSPC ? 2 : 1, "node keys: %s",
                        rc == -ENOSPC   ? "the table is full (65536 nodes)"
                        : rc == -EAGAIN ? "too many changes being stored; try again"
                                        : strerror(-rc));
        cJSON_Delete(reply);
        nodekeys_fini(&live);
        if (j) nodekeys_fini(&j->snap);
        free(j);
        return;
    }
    nodekeys_fini(&a->keys);
    a->keys = live;
    for (agent_row *r = a->rows; r; r = r->next)
        if (!strcmp(r->node, node) && r->conn)
            conn_close(r->conn, CLOSE_NORMAL,
                       key ? "node key changed: the agent must reconnect with it"
                           : "node key revoked");
    log_info("agents", "node %s: %s", node, key ? "new node key issued" : "node key revoked");
}

static const char *node_arg(ops_request *req, const cJSON *args, const char *cmd) {
    const cJSON *node = cJSON_GetObjectItemCaseSensitive(args, "node");
    if (!cJSON_IsString(node) || !wire_node_valid(node->valuestring, strlen(node->valuestring))) {
        ops_reply_error(req, 2, "%s: \"node\" must be 1-63 characters of [A-Za-z0-9._-]", cmd);
        return NULL;
    }
    return node->valuestring;
}

/* {"node": NAME}: issues NAME a new random key (replacing and invalidating any older one) and
 * replies {node, key, key_id, created} once it is stored. */
static void cmd_token_node(ops_request *req, const cJSON *args) {
    const char *node = node_arg(req, args, "token-node");
    if (!node || !ops_cp(req)->agents) {
        if (node) ops_reply_error(req, 1, "token-node: the agent listener is not running");
        return;
    }
    char key[NODEKEY_LEN + 1], id[13];
    int rc = nodekeys_new_key(key);
    if (rc == 0) rc = nodekeys_key_id(key, id);
    if (rc < 0) {
        ops_reply_error(req, 1, "token-node: cannot make a key: %s", strerror(-rc));
        return;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "node", node);
    cJSON_AddStringToObject(d, "key", key);
    cJSON_AddStringToObject(d, "key_id", id);
    cJSON_AddNumberToObject(d, "created", (double)tide_now_wall_ms());
    keys_change(req, node, key, d);
    memset(key, 0, sizeof key);
}

/* {"node": NAME}: revokes NAME's key: the node is refused (cluster token included) until it
 * gets a new one. Replies {node, revoked: true, was: "key"|"revoked"|"none"}. */
static void cmd_token_revoke(ops_request *req, const cJSON *args) {
    const char *node = node_arg(req, args, "token-revoke");
    if (!node || !ops_cp(req)->agents) {
        if (node) ops_reply_error(req, 1, "token-revoke: the agent listener is not running");
        return;
    }
    const nodekey *k = nodekeys_find(&ops_cp(req)->agents->keys, node);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "node", node);
    cJSON_AddBoolToObject(d, "revoked", 1);
    cJSON_AddStringToObject(d, "was", !k ? "none" : k->revoked ? "revoked" : "key");
    keys_change(req, node, NULL, d);
}

/* The key table: {require_node_keys, keys: [{node, state: "key"|"revoked", key_id, created,
 * connected, auth}]}; keys themselves are never shown again. */
static void cmd_token_list(ops_request *req, const cJSON *args) {
    (void)args;
    struct controlplane *cp = ops_cp(req);
    cp_agents *a = cp->agents;
    cJSON *d = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(d, "keys");
    cJSON_AddBoolToObject(d, "require_node_keys", cp->cfg.require_node_keys);
    for (size_t i = 0; a && i < a->keys.n; i++) {
        const nodekey *k = &a->keys.v[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "node", k->node);
        cJSON_AddStringToObject(o, "state", k->revoked ? "revoked" : "key");
        char id[13] = "";
        if (!k->revoked) nodekeys_key_id(k->key, id);
        cJSON_AddStringToObject(o, "key_id", id);
        cJSON_AddNumberToObject(o, "created", (double)k->created_ms);
        const agent_row *row = NULL;
        for (const agent_row *r = a->rows; r && !row; r = r->next)
            if (!strcmp(r->node, k->node)) row = r;
        cJSON_AddBoolToObject(o, "connected", row && row->conn);
        cJSON_AddItemToArray(arr, o);
    }
    ops_reply(req, d);
}

OPS_COMMAND(token_node, "token-node",
            "token-node {node}: issue a node its own agent key (replaces any older one)",
            cmd_token_node)
OPS_COMMAND(token_revoke, "token-revoke",
            "token-revoke {node}: revoke a node's key; the node is refused until a new one",
            cmd_token_revoke)
OPS_COMMAND(token_list, "token-list", "token-list: the per-node keys (ids, never the keys)",
            cmd_token_list)
