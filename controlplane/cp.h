/* cp.h: the control plane's one global state, `struct controlplane` (defined in main.c, one
 * instance, read-only after config load except through the owning module's functions).
 *
 * Other modules reach it through a pointer (ops_cp(req), or the pointer given to their
 * CP_MODULE start function). To add a part: add ONE pointer field below "module state" and
 * register start/stop with CP_MODULE() from your own .c file; main.c needs no edit. */
#ifndef TIDE_CP_H
#define TIDE_CP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "version.h"

struct ev_loop;
struct tsdb;
struct cp_agents;
struct ops_server;
struct prom;

/* Configuration (controlplane/cp_config.c holds the table: key, default, validator). */
struct cp_config {
    char *listen;                 /* "ADDR:PORT" for agents */
    char *socket_path;            /* ops socket for tidectl */
    char *token_file;             /* pre-shared agent token */
    char *data_dir;               /* store directory */
    char *log_level;              /* debug|info|warn|error */
    char *clock_rate;             /* virtual clock (vclock.h): "1" = real time */
    char *clock_origin;           /* virtual clock: trace time at the anchor, "" = none */
    char *clock_anchor;           /* virtual clock: real time at the origin, "" = start-up */
    int64_t max_frame_bytes;      /* largest wire frame accepted */
    int64_t handshake_timeout_ms; /* a new connection must authenticate within this */
    int64_t idle_timeout_ms;      /* an agent silent this long is disconnected */
    int64_t heartbeat_ms;         /* interval agents are asked to heartbeat at */
    int64_t max_agents;           /* connections accepted at once */
    int64_t max_series;           /* series in the store (new ones beyond are refused) */
    int64_t max_series_per_node;  /* series carrying one node's name */
    int64_t max_clock_skew_ms;    /* samples (and batch seqs) this far ahead of now are refused */
    int require_node_keys;        /* the cluster token no longer authenticates agents */
    int64_t handshake_fail_burst; /* failed handshakes an address may have before refusal */
    int64_t handshake_fail_interval_ms; /* one more failure allowed per this */
    /* store, history and queries (tsdb.c, prom.c, http.c) */
    char *http;                   /* "ADDR:PORT" of the HTTP listener, "" = off */
    char *health_listen;          /* "ADDR:PORT" of the /healthz-only listener */
    char *http_bearer_token_file; /* HTTP clients must send this token ("" = none) */
    char *http_tls_cert_file, *http_tls_key_file; /* HTTPS on the API listener ("" = plain) */
    int64_t http_request_timeout_ms;              /* a whole request must arrive within this */
    int64_t http_max_connections_per_address;     /* connections one client address may hold */
    char *prometheus; /* base URL of the Prometheus history source, "" = none */
    char *prometheus_bearer_token_file;
    char *prometheus_ca_file;
    int prometheus_insecure_skip_verify;
    int64_t prometheus_timeout_ms;
    int64_t prometheus_max_points;
    int64_t query_timeout_ms;
    int64_t query_max_samples;
    int64_t query_max_concurrency;
    int64_t query_max_queue;
    int64_t retention_raw_ms, retention_1m_ms, retention_10m_ms;
    int64_t snapshot_interval_ms;
    /* Kubernetes API, for readiness-gate node actions (k8s.c) */
    char *k8s_api_url;
    char *k8s_token_file;
    char *k8s_ca_file;
    char *k8s_readiness_condition;
    int64_t k8s_timeout_ms;
    char *k8s_kubeconfig, *k8s_context;
    int64_t k8s_qps, k8s_burst;
    /* alert rules and their delivery (alerts/) */
    char *alertmanager_urls; /* comma-separated Alertmanager base URLs, "" = none */
    int64_t alertmanager_timeout_ms;
    char *alertmanager_bearer_token_file;
    char *alertmanager_basic_auth_user;
    char *alertmanager_basic_auth_password_file;
    int64_t alertmanager_queue_max;
    int64_t alert_resend_interval_ms;
    char *alert_external_url; /* base of generatorURL, "" = http://<http> */
    /* several control planes sharing the workloads through etcd (cluster/), "" = alone */
    char *etcd_endpoints; /* comma-separated etcd client URLs */
    char *etcd_prefix;    /* keys under it: members/, specs/, owners/ */
    char *etcd_member_name;
    char *etcd_ca_file, *etcd_cert_file, *etcd_key_file;
    char *etcd_user, *etcd_password_file;
    int64_t etcd_lease_ttl_ms;
    int64_t etcd_clock_skew_margin_ms;
    int64_t etcd_timeout_ms;
};

struct controlplane {
    struct ev_loop *loop;
    struct cp_config cfg;
    char *token; /* loaded from cfg.token_file */
    size_t token_len;
    int64_t started_wall_ms;
    struct tsdb *db;
    struct cp_agents *agents;
    struct ops_server *ops;
    /* ---- module state: one pointer per module, added by its owner ---- */
    struct prom *prom;              /* query/prom_module.c: Prometheus client, NULL: none */
    struct cp_http *http;           /* api/http.c: HTTP listener, query ops */
    struct cp_workloads *workloads; /* workloads/: applied specs, controllers, sync loop, ops */
    struct cp_k8s *k8s;             /* exec/k8s.c: Kubernetes API requests under way */
    struct exec_registry *exec;     /* exec/executor.c: the executors (started by workloads) */
    struct cp_alerts *alerts;       /* alerts/: alert rules, evaluation, Alertmanager delivery */
    struct cluster *cluster;        /* cluster/: etcd membership and ownership, NULL: alone */
};

/* A module's start/stop, run by main.c after the store, agents and ops socket are up and
 * before they go down. start returns 0 or -errno with err filled (the daemon then exits with
 * status 1); stop must stop every watcher and thread the module started and free its state.
 *
 * Order: a module names the modules it uses in `after` (comma-separated, "" none). It starts
 * after them and stops before them, so what it uses is there for as long as it runs (its
 * threads included). Modules with no order between them start in registration (link) order,
 * which nothing may rely on. The daemon's modules today:
 *   prometheus  (query/prom_module.c)  the Prometheus client, cp->prom
 *   http        after prometheus       HTTP listener, query ops (its threads query Prometheus)
 *   workloads   after prometheus       controllers (fetch threads query Prometheus)
 *   k8s                                Kubernetes API requests
 *   alerts      after prometheus       alert rules (evaluation threads query Prometheus)
 *   cluster                            etcd membership, specs and ownership (workloads after it)
 * (http starts after alerts too: its threads serve the alerts' snapshots)
 * so Prometheus starts first and stops last. A name in `after` that no module has, or a cycle,
 * fails the start with an error naming them. */
typedef int (*cp_module_start_fn)(struct controlplane *cp, char *err, size_t errlen);
typedef void (*cp_module_stop_fn)(struct controlplane *cp);
void cp_module_register(const char *name, const char *after, cp_module_start_fn start,
                        cp_module_stop_fn stop);

/* Run by main.c (cp.c): start every module in dependency order; on failure the ones started
 * are stopped again. stop runs them in the reverse order. */
int cp_modules_start(struct controlplane *cp, char *err, size_t errlen);
void cp_modules_stop(struct controlplane *cp);

/* The start order of n modules (names[i], after[i]) into order[0..n-1]: each after the ones
 * its after list names, otherwise in index order. 0, or -EINVAL with err naming an unknown
 * module or the modules of a cycle. */
int cp_module_order(const char *const *names, const char *const *after, int n, int *order,
                    char *err, size_t errlen);

/* The config table of the control plane (cp_config.c), and the loader used by main.c:
 * defaults, then --config FILE, then the flags. Returns 0, 1 when --help/--version was
 * printed, or -EINVAL with err naming the key and where it came from. */
extern const cfg_key cp_config_table[];
int cp_config_load(struct cp_config *cfg, int argc, char **argv, char *err, size_t errlen);
void cp_config_free(struct cp_config *cfg);

/* The ops socket server (ops.c). */
int ops_server_start(struct controlplane *cp, char *err, size_t errlen);
void ops_server_stop(struct controlplane *cp);

#define CP_MODULE(ident, name, start, stop) CP_MODULE_AFTER(ident, name, "", start, stop)
#define CP_MODULE_AFTER(ident, name, after, start, stop)                                           \
    __attribute__((constructor)) static void cp_module_reg_##ident(void) {                         \
        cp_module_register((name), (after), (start), (stop));                                      \
    }

#endif
