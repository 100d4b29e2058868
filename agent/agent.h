/* agent.h: tide-agent's configuration and its one global state (`struct agent`, defined in
 * main.c), plus the interfaces between the agent's core modules: uplink (connection to the
 * control plane), report (sink, batches, the unacknowledged queue), collect (collector
 * scheduler) and dispatch (node action commands).
 *
 * Other parts add: a config key (one line in agent_config.c's table + a field below) and, for
 * sampling or actions, a collector (collector.h) or an action (action.h). */
#ifndef TIDE_AGENT_H
#define TIDE_AGENT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "version.h"

struct ev_loop;

/* Control planes an agent reports to at most (the `controlplane` list). */
#define AGENT_MAX_CONTROLPLANES 8
#define AGENT_CP_ADDR_MAX 264 /* "HOST:PORT" (a host name of up to 255 bytes) */

struct agent_config {
    char *controlplane; /* "ADDR:PORT[,ADDR:PORT...]" of the control plane(s) */
    /* controlplane split by agent_config_load (not a key): ncps >= 1 after a load */
    char cps[AGENT_MAX_CONTROLPLANES][AGENT_CP_ADDR_MAX];
    int ncps;
    char *node;       /* node name ("" = hostname) */
    char *token_file; /* pre-shared token */
    char *log_level;
    char *clock_rate;        /* virtual clock (vclock.h): "1" = real time */
    char *clock_origin;      /* virtual clock: trace time at the anchor, "" = none */
    char *clock_anchor;      /* virtual clock: real time at the origin, "" = start-up */
    int64_t interval_ms;     /* sampling interval */
    int64_t queue_max_bytes; /* unacknowledged batches held in memory */
    int64_t max_frame_bytes;
    int64_t reconnect_min_ms, reconnect_max_ms;
    int64_t connect_timeout_ms; /* connect + handshake */
    /* ---- keys of other modules below ---- */
    /* cgroup sampling (cgroup_collect.c) */
    char *cgroup_roots;   /* comma-separated extra roots */
    char *cgroup_include; /* comma-separated globs */
    char *cgroup_exclude;
    char *cgroup_prefix; /* "controller=path|self,..." (v1) */
    int cgroup_kubernetes, cgroup_systemd;
    int64_t cgroup_detail_every;
    /* on-disk spool (spool_agent.c) */
    char *spool_dir; /* "" = no spool */
    int64_t spool_max_bytes;
    /* the agent's own HTTP endpoint (agent_http.c) */
    char *http_listen; /* "ADDR:PORT", "" = none */
    /* replica processes (actions/replica_proc.c) */
    char *replica_dir;    /* "" = off */
    char *replica_cgroup; /* parent cgroup of replica cgroups */
    /* fencing tokens (fence.c, dispatch.c) */
    char *state_dir; /* where the token table is kept ("" = memory only) */
    int64_t fence_max_workloads;
    int64_t fence_expiry_ms;
    /* HAProxy's per-proxy totals (collect/haproxy_collect.c) */
    char *haproxy_stats; /* HAProxy's stats socket, "" = off */
};

extern const cfg_key agent_config_table[];
/* Splits a `controlplane` list ("ADDR:PORT[,ADDR:PORT...]", spaces around commas allowed)
 * into out (at most AGENT_MAX_CONTROLPLANES, each a valid ADDR:PORT, no duplicates). Returns
 * the count (>= 1) or -EINVAL with err saying which entry is wrong. */
int agent_cp_list(const char *list, char out[][AGENT_CP_ADDR_MAX], char *err, size_t errlen);
/* Defaults, --config FILE, then flags (--KEY VALUE, '-' for '_'); splits controlplane into
 * cps/ncps. 0, 1 after --help/--version, or -EINVAL with err naming the key and where. */
int agent_config_load(struct agent_config *cfg, int argc, char **argv, char *err, size_t errlen);
void agent_config_free(struct agent_config *cfg);

typedef struct uplink uplink;
typedef struct report report;
typedef struct collect collect;
typedef struct dispatch dispatch;

struct agent {
    struct ev_loop *loop;
    struct agent_config cfg;
    char node[64];
    char *token;
    size_t token_len;
    uplink *ups[AGENT_MAX_CONTROLPLANES]; /* one per control plane, cfg.cps order */
    int nups;
    report *rep;
    collect *col;
    dispatch *disp;
    /* the on-disk spools when spool_dir is set (spool_agent.c), one per control plane, else
     * NULL */
    struct spool *spools[AGENT_MAX_CONTROLPLANES];
    int64_t http_port; /* the port agent_http.c listens on, 0 none */
};

/* ---- uplink.c: connection, handshake, reconnect with backoff and jitter, heartbeats ------ */
/* One connection per control plane of cfg.cps (ag->ups[i], each on its own backoff, ack and
 * queue: report.c's link i). */
int uplink_start(struct agent *ag, char *err, size_t errlen);
void uplink_stop(struct agent *ag);
/* The calls below take one connection's handle (ag->ups[i]; NULL: not started). */
/* 1 when authenticated and writable. */
int uplink_ready(const uplink *u);
/* Connections ready now (of ag->nups). */
int uplink_ready_count(const struct agent *ag);
/* "HOST:PORT" of the connection's control plane ("-" for NULL). */
const char *uplink_name(const uplink *u);
/* Queues a complete frame for the control plane. 0, or -ENOTCONN when not ready. */
int uplink_send(uplink *u, const void *frame, size_t len);
/* Bytes queued in the socket-side buffer (flow control for resends). */
size_t uplink_backlog(const uplink *u);
/* Largest payload to send: own (our max_frame_bytes), or less when the control plane said so. */
size_t uplink_max_frame(const uplink *u, size_t own);
/* Next per-connection seq for a non-SAMPLES message. */
uint64_t uplink_next_seq(uplink *u);
/* The name lookup for a control plane given by name (numeric addresses use none): runs on a
 * thread of its own, never on the loop. Tests install a slow or scripted one; free releases
 * what resolve returned. NULL restores getaddrinfo()/freeaddrinfo(). Before uplink_start(). */
struct addrinfo;
typedef struct uplink_resolver {
    int (*resolve)(const char *host, const char *port, const struct addrinfo *hints,
                   struct addrinfo **res);
    void (*free)(struct addrinfo *res);
} uplink_resolver;
void uplink_set_resolver(const uplink_resolver *rv);

/* ---- report.c: the sink of collector.h, batches and the unacknowledged queue ------------- */
int report_init(struct agent *ag, char *err, size_t errlen);
void report_fini(struct agent *ag);
/* The calls below take the module's own handle (ag->rep; NULL: not started, where noted). */
struct agent_sink *report_sink(report *r);
/* Closes the batch being built (after a collection round) and sends it when connected. */
void report_flush(report *r);
/* Every batch is queued once per control plane ("link", the index of its uplink in ag->ups;
 * the encoded frame is shared), and each link has its own acknowledgement, resend cursor,
 * memory bound (queue_max_bytes) and spill. */
int report_links(const report *r);
/* Called by uplink l after HELLO_ACK: drops l's batches <= last_seq, sends every series
 * definition, then resends l's queue oldest first. 0 or -errno (the connection is then
 * dropped). */
int report_on_connect(report *r, int l, uint64_t last_seq);
void report_on_ack(report *r, int l, uint64_t ack);
/* Called by uplink l when its socket buffer drained: continue a resend (NULL ok). */
void report_pump(report *r, int l);
/* For link l's heartbeats: batches dropped unsent since start, and bytes held unacknowledged. */
uint64_t report_link_drops(const report *r, int l);
uint64_t report_link_queued_bytes(const report *r, int l);
/* The same summed over the links (NULL: 0), for the agent's /metrics and /healthz. */
uint64_t report_drops(const report *r);
uint64_t report_queued_bytes(const report *r);

/* The spool seam (agent/spool.{c,h}): when the in-memory queue exceeds
 * queue_max_bytes, its OLDEST batches are handed to put() instead of being dropped; after a
 * reconnect, next() gives them back (oldest first, seq > after) before the in-memory ones are
 * resent; ack() tells which are acknowledged; drops() counts what the spool itself dropped.
 * put() returns 0 (taken) or -errno (then the batch is dropped and counted); next() returns
 * 1 with *frame malloc'd (caller frees), 0 when none is left, or -errno. */
typedef struct report_spill {
    void *ctx;
    int (*put)(void *ctx, uint64_t seq, const void *frame, size_t len);
    int (*next)(void *ctx, uint64_t after, uint64_t *seq, void **frame, size_t *len);
    void (*ack)(void *ctx, uint64_t acked);
    uint64_t (*drops)(void *ctx);
    void (*close)(void *ctx); /* at shutdown; may be NULL */
} report_spill;
/* Installs link l's spill (copied); call before the loop runs. */
void report_set_spill(report *r, int l, const report_spill *spill);

/* ---- collect.c: the collector scheduler ---------------------------------------------------- */
int collect_start(struct agent *ag, char *err, size_t errlen);
void collect_stop(struct agent *ag);
/* The scheduler's own cost, for the agent's /metrics: rounds run, wall and CPU seconds spent
 * in them (sampling every collector and flushing the batch), the last round's wall seconds,
 * and collectors failing now. */
typedef struct collect_stats {
    uint64_t rounds;
    double seconds_total, seconds_last, cpu_seconds_total;
    int failing;
} collect_stats;
void collect_get_stats(const collect *cl, collect_stats *st);
/* Applies cfg.interval_ms after a reload (the next round comes one new interval from now). */
void collect_set_interval(collect *cl, int64_t interval_ms);

/* ---- dispatch.c: COMMAND -> action handler -> COMMAND_RESULT ------------------------------ */
int dispatch_init(struct agent *ag, char *err, size_t errlen);
void dispatch_fini(struct agent *ag);
/* Commands finished since start, per action name and outcome, for the agent's /metrics:
 * calls fn once per (action, ok) pair that ran. */
void dispatch_each_count(const dispatch *d,
                         void (*fn)(void *arg, const char *action, int ok, uint64_t n,
                                    double seconds_total),
                         void *arg);
/* A COMMAND arrived on connection `from` (args: JSON object, borrowed; workload NULL: no
 * fence, else its fencing token). A fenced command older than the token held for its
 * workload is refused (fence.h) without running; the result goes back on `from`. */
void dispatch_command(dispatch *d, uplink *from, const char *id, const char *action,
                      const cJSON *args, const char *workload, uint64_t token);
/* Commands refused by fencing since start (for /metrics). */
uint64_t dispatch_fence_refused(const dispatch *d);

/* Startup hooks for agent parts that need setup beyond collectors and actions (e.g. the spool):
 * start runs after the config is loaded and before the loop, stop at shutdown (reverse order). */
typedef int (*agent_module_start_fn)(struct agent *ag, char *err, size_t errlen);
typedef void (*agent_module_stop_fn)(struct agent *ag);
void agent_module_register(const char *name, agent_module_start_fn start,
                           agent_module_stop_fn stop);
int agent_modules_start(struct agent *ag, char *err, size_t errlen);
void agent_modules_stop(struct agent *ag);

#define AGENT_MODULE(ident, name, start, stop)                                                     \
    __attribute__((constructor)) static void agent_module_reg_##ident(void) {                      \
        agent_module_register((name), (start), (stop));                                            \
    }

#endif
