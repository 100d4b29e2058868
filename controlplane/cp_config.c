/* cp_config.c: the control plane's config table and its loader (defaults, --config FILE,
 * then flags: every key KEY can also be given as --KEY with '_' written as '-'). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "version.h"
#include "config.h"
#include "vclock.h"
#include "cp.h"
#include "wire.h"
#include "alerts/amclient.h"
#include "cluster/etcd.h"

#define F(field) offsetof(struct cp_config, field)

/* Checked with the configuration (exit 2 before anything is bound): only http(s) is fetched. */
static int valid_prometheus_url(const void *value, char *err, size_t errlen) {
    const char *u = *(const char *const *)value;
    if (!u || !u[0] || !strncmp(u, "http://", 7) || !strncmp(u, "https://", 8)) return 0;
    snprintf(err, errlen, "'%s' is not an http:// or https:// URL", u);
    return -EINVAL;
}

static int valid_etcd_endpoints(const void *value, char *err, size_t errlen) {
    return etcd_endpoints_check(*(const char *const *)value, err, errlen);
}

/* A key prefix: '/' then path characters, no trailing '/' (members/, specs/ and owners/ go
 * under it). */
static int valid_etcd_prefix(const void *value, char *err, size_t errlen) {
    const char *p = *(const char *const *)value;
    size_t n = p ? strlen(p) : 0;
    if (n < 2 || n > 200 || p[0] != '/' || p[n - 1] == '/' ||
        p[strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-")]) {
        snprintf(err, errlen,
                 "'%s' is not a key prefix: '/' then up to 199 of A-Z a-z 0-9 / . _ -, not "
                 "ending in '/'",
                 p ? p : "");
        return -EINVAL;
    }
    return 0;
}

static int valid_alertmanager_urls(const void *value, char *err, size_t errlen) {
    const char *u = *(const char *const *)value;
    return am_urls_check(u, err, errlen);
}

const cfg_key cp_config_table[] = {
    /* Loopback: agents on other machines need an explicit address, so nothing is exposed by
     * accident. 7470 is unassigned by IANA. */
    {"listen", CFG_STR, F(listen), "127.0.0.1:7470", 0, 0, cfg_valid_hostport, 0,
     "ADDR:PORT the agent listener binds to"},
    /* The path systemd's RuntimeDirectory=tide gives us, and tidectl's default. */
    {"socket", CFG_STR, F(socket_path), "/run/tide/controlplane.sock", 0, 0, cfg_valid_nonempty, 0,
     "unix ops socket for tidectl (mode 0660)"},
    /* Installed by the operator (tmpfiles.d makes /etc/tide 0750 root:tide). */
    {"token_file", CFG_STR, F(token_file), "/etc/tide/token", 0, 0, cfg_valid_nonempty, 0,
     "file holding the pre-shared agent token (>= 16 bytes, not world-readable)"},
    /* systemd's StateDirectory=tide. */
    {"data_dir", CFG_STR, F(data_dir), "/var/lib/tide", 0, 0, cfg_valid_nonempty, 0,
     "directory of the time series store (WAL, snapshots)"},
    /* info: one line per connection change and error, quiet at steady state. */
    {"log_level", CFG_STR, F(log_level), "info", 0, 0, cfg_valid_log_level, 1,
     "debug, info, warn, error or off"},
    /* 4 MiB holds a batch of ~350,000 samples: far above one sampling round of a large node,
     * small enough that 1,000 agents cannot make us buffer gigabytes. */
    {"max_frame_bytes", CFG_BYTES, F(max_frame_bytes), "4M", 4096, WIRE_MAX_FRAME_LIMIT, NULL, 0,
     "largest wire frame accepted from an agent"},
    /* An honest agent answers the challenge within one round trip; 5 s tolerates a loaded
     * node while freeing slots held by peers that never speak. */
    {"handshake_timeout", CFG_DURATION, F(handshake_timeout_ms), "5s", 100, 600000, NULL, 0,
     "a new connection must authenticate within this"},
    /* Six missed heartbeats at the default 5 s interval. */
    {"idle_timeout", CFG_DURATION, F(idle_timeout_ms), "30s", 200, 3600000, NULL, 0,
     "an authenticated agent silent this long is disconnected"},
    /* 5 s: 1,000 agents cost 200 small frames/s, and a dead agent shows within 30 s. */
    {"heartbeat_interval", CFG_DURATION, F(heartbeat_ms), "5s", 100, 600000, NULL, 0,
     "heartbeat interval the control plane asks agents for"},
    /* Beyond the 1,000-agent design point with room; each idle agent costs ~10 KB. */
    {"max_agents", CFG_INT, F(max_agents), "4096", 1, 65536, NULL, 0,
     "agent connections accepted at once (more are closed at accept)"},
    /* ~1.1 KB of memory per series (920 MB for 805 k series measured): 500,000
     * keep the store near half of the shipped 1 GiB MemoryMax, leaving room for queries and
     * models. */
    {"max_series", CFG_INT, F(max_series), "500000", 1, 100000000, NULL, 0,
     "series the store holds at most (new ones beyond are refused and counted)"},
    /* A large node: 200 containers x ~20 metrics is 4,000 series; 10,000 leaves room while
     * one node's agent cannot take more than 2% of the store. */
    {"max_series_per_node", CFG_INT, F(max_series_per_node), "10000", 1, 100000000, NULL, 0,
     "series one node may define (new ones beyond are refused and counted)"},
    /* NTP keeps nodes within milliseconds; minutes tolerate a badly set clock while a sample
     * from years ahead can no longer lock a series out. */
    {"max_clock_skew", CFG_DURATION, F(max_clock_skew_ms), "5m", 1000, 86400000, NULL, 0,
     "samples (and batch numbers, which agents take from the clock) this far ahead of the "
     "control plane's clock are refused and counted"},
    /* Off: nodes without a key of their own keep authenticating with the cluster token, as
     * before node keys existed; a node that has one must use it whatever this says. On:
     * the cluster token no longer authenticates any agent (once every node has its key). */
    {"require_node_keys", CFG_BOOL, F(require_node_keys), "false", 0, 0, NULL, 0,
     "agents must authenticate with a per-node key (tidectl token node NAME); the cluster "
     "token is refused"},
    /* An agent with the right key never fails a handshake; 10 leaves room for a mistyped key
     * file while a flood from one address costs one accept and close per connection. */
    {"handshake_fail_burst", CFG_INT, F(handshake_fail_burst), "10", 1, 1000000, NULL, 0,
     "failed handshakes one source address may have in a row before its connections are "
     "refused at accept"},
    /* One more failure allowed per second: a misconfigured agent retrying every few seconds
     * is never refused; a flood of thousands a second is. */
    {"handshake_fail_interval", CFG_DURATION, F(handshake_fail_interval_ms), "1s", 1, 3600000, NULL,
     0, "time after which a refused address may try one more handshake"},
    /* Loopback: the query API and /metrics carry every series; expose them on purpose.
     * 7471 sits next to the agent port. */
    {"http", CFG_STR, F(http), "127.0.0.1:7471", 0, 0, cfg_valid_hostport, 0,
     "ADDR:PORT of the HTTP listener (/api/v1/query_range, /metrics, /healthz)"},
    /* Off by default (a fixed port would clash between control planes on one machine); set
     * it for a liveness probe that no query client, slow or many, can starve. */
    {"health_listen", CFG_STR, F(health_listen), "", 0, 0, NULL, 0,
     "ADDR:PORT of a listener serving only /healthz (its own connections), empty = none"},
    /* Off by default (loopback); set it when the listener is exposed. Read at start. */
    {"http_bearer_token_file", CFG_STR, F(http_bearer_token_file), "", 0, 0, NULL, 0,
     "file with a token HTTP clients must send as Authorization: Bearer (all but /healthz), "
     "empty = none"},
    /* Off by default (loopback). Both or neither; read at start. */
    {"http_tls_cert_file", CFG_STR, F(http_tls_cert_file), "", 0, 0, NULL, 0,
     "PEM certificate (chain) of the HTTP listener: it then speaks HTTPS only, TLS 1.2 or "
     "newer; empty = plain HTTP"},
    {"http_tls_key_file", CFG_STR, F(http_tls_key_file), "", 0, 0, NULL, 0,
     "PEM private key of http_tls_cert_file (not readable by others)"},
    /* A request is a few hundred bytes; 10 s allows a very slow network while a client
     * sending a byte a second (slowloris) holds a slot no longer than that. */
    {"http_request_timeout", CFG_DURATION, F(http_request_timeout_ms), "10s", 100, 600000, NULL, 0,
     "an HTTP client must send a whole request within this (else it is disconnected)"},
    /* A quarter of the 64 connections: one client cannot hold them all. */
    {"http_max_connections_per_address", CFG_INT, F(http_max_connections_per_address), "16", 1, 64,
     NULL, 0, "HTTP connections one client address may hold at once"},
    /* No history source unless named: the store alone still answers queries. */
    {"prometheus", CFG_STR, F(prometheus), "", 0, 0, valid_prometheus_url, 0,
     "base URL of the Prometheus that holds the history (query_range), empty = none"},
    {"prometheus_bearer_token_file", CFG_STR, F(prometheus_bearer_token_file), "", 0, 0, NULL, 0,
     "file with a bearer token sent to Prometheus, empty = none"},
    {"prometheus_ca_file", CFG_STR, F(prometheus_ca_file), "", 0, 0, NULL, 0,
     "CA bundle for an https Prometheus, empty = the system's"},
    {"prometheus_insecure_skip_verify", CFG_BOOL, F(prometheus_insecure_skip_verify), "false", 0, 0,
     NULL, 0, "do not verify Prometheus's TLS certificate (testing only)"},
    /* Prometheus answers a week of one series in well under a second; 10 s marks it down. */
    {"prometheus_timeout", CFG_DURATION, F(prometheus_timeout_ms), "10s", 100, 600000, NULL, 0,
     "timeout of one request to Prometheus"},
    /* Prometheus refuses more than 11,000 points per series in one query_range. */
    {"prometheus_max_points", CFG_INT, F(prometheus_max_points), "11000", 2, 11000, NULL, 0,
     "points per series in one request to Prometheus (longer ranges are split)"},
    /* Query limits: Prometheus's --query.timeout default; a sample budget that keeps
     * two concurrent queries well inside the shipped 1 GiB unit (a sample held costs ~8-16
     * bytes plus its share of the JSON); two running queries per core of a small node, the
     * rest waiting in a short queue. */
    {"query_timeout", CFG_DURATION, F(query_timeout_ms), "2m", 100, 3600000, NULL, 0,
     "longest a query may run (waiting in the queue included); a request's timeout= may lower it"},
    {"query_max_samples", CFG_INT, F(query_max_samples), "20000000", 1000, 1000000000, NULL, 0,
     "samples one query may hold in memory at once (points read plus values computed)"},
    {"query_max_concurrency", CFG_INT, F(query_max_concurrency), "4", 1, 256, NULL, 0,
     "queries evaluated at once; more wait in the queue"},
    {"query_max_queue", CFG_INT, F(query_max_queue), "32", 0, 4096, NULL, 0,
     "queries waiting for a slot; beyond this a query is answered 503 at once"},
    /* Raw samples for two days (recent detail), minutes for 35 days (weekly seasonality
     * with room), 10-minute buckets for 400 days (yearly). */
    {"retention_raw", CFG_DURATION, F(retention_raw_ms), "48h", 60000, 0, NULL, 0,
     "how long raw samples are kept (counted back from each series' newest)"},
    {"retention_1m", CFG_DURATION, F(retention_1m_ms), "840h", 60000, 0, NULL, 0,
     "how long 1-minute buckets (sum, count, min, max) are kept"},
    {"retention_10m", CFG_DURATION, F(retention_10m_ms), "9600h", 600000, 0, NULL, 0,
     "how long 10-minute buckets are kept"},
    /* Bounds replay time after a crash to a few minutes of WAL. */
    {"snapshot_interval", CFG_DURATION, F(snapshot_interval_ms), "5m", 1000, 86400000, NULL, 0,
     "how often the store writes a snapshot (and drops the WAL it covers)"},
    /* In-cluster defaults: the API service's DNS name and the service account files the
     * kubelet mounts into every pod, so a control plane running in a pod needs no keys. */
    {"k8s_api_url", CFG_STR, F(k8s_api_url), "https://kubernetes.default.svc", 0, 0,
     cfg_valid_nonempty, 0, "Kubernetes API base URL (readiness-gate node actions)"},
    {"k8s_token_file", CFG_STR, F(k8s_token_file),
     "/var/run/secrets/kubernetes.io/serviceaccount/token", 0, 0, NULL, 0,
     "bearer token file for the Kubernetes API, read at every request (tokens rotate), empty = "
     "none"},
    {"k8s_ca_file", CFG_STR, F(k8s_ca_file), "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
     0, 0, NULL, 0, "CA bundle of the Kubernetes API, empty = the system's"},
    /* A domain-prefixed type cannot clash with the kubelet's own conditions. */
    {"k8s_readiness_condition", CFG_STR, F(k8s_readiness_condition), "tide.io/serving", 0, 0,
     cfg_valid_nonempty, 0, "pod condition type named in the pods' readinessGates"},
    /* The API server answers a status patch in milliseconds; 10 s marks it unreachable. */
    {"k8s_timeout", CFG_DURATION, F(k8s_timeout_ms), "10s", 100, 600000, NULL, 0,
     "timeout of one Kubernetes API request"},
    /* Outside the cluster: a kubeconfig names the server and the credentials (and then wins
     * over k8s_api_url/k8s_token_file/k8s_ca_file). */
    {"k8s_kubeconfig", CFG_STR, F(k8s_kubeconfig), "", 0, 0, NULL, 0,
     "kubeconfig file for the Kubernetes API (running outside the cluster), empty = in-cluster "
     "service account"},
    {"k8s_context", CFG_STR, F(k8s_context), "", 0, 0, NULL, 0,
     "context of k8s_kubeconfig to use, empty = its current-context"},
    /* client-go's defaults: a controller's steady rate stays far below, bursts (a gray step
     * over many pods) are smoothed instead of tripping the API server's priority and fairness */
    {"k8s_qps", CFG_INT, F(k8s_qps), "5", 1, 10000, NULL, 0,
     "client-side rate limit of Kubernetes API requests per second"},
    {"k8s_burst", CFG_INT, F(k8s_burst), "10", 1, 10000, NULL, 0,
     "Kubernetes API requests allowed at once above k8s_qps"},
    /* The virtual clock (vclock.h) is for benchmarks and tests that replay a trace faster
     * than real time; off by default (rate 1, no origin = the real clock). */
    {"clock_rate", CFG_STR, F(clock_rate), "1", 0, 0, vclock_valid_rate, 0,
     "virtual clock: trace seconds per real second (benchmarks; default 1 = real time)"},
    {"clock_origin", CFG_STR, F(clock_origin), "", 0, 0, vclock_valid_instant, 0,
     "virtual clock: trace time (unix s or UTC) at the anchor (default: the real time)"},
    {"clock_anchor", CFG_STR, F(clock_anchor), "", 0, 0, vclock_valid_instant, 0,
     "virtual clock: real time (unix s or UTC) at which the trace is at clock_origin"},
    /* Alert delivery: none unless named. 10 s as for Prometheus; 10,000 alerts per
     * Alertmanager hold a minute's outage of a thousand rules many times over (~1 KB each). */
    {"alertmanager_urls", CFG_STR, F(alertmanager_urls), "", 0, 0, valid_alertmanager_urls, 0,
     "comma-separated Alertmanager base URLs that alerts are sent to (v2 API), empty = none"},
    {"alertmanager_timeout", CFG_DURATION, F(alertmanager_timeout_ms), "10s", 100, 600000, NULL, 0,
     "timeout of one request to an Alertmanager"},
    {"alertmanager_bearer_token_file", CFG_STR, F(alertmanager_bearer_token_file), "", 0, 0, NULL,
     0, "file with a bearer token sent to the Alertmanagers (read at every request), empty = none"},
    {"alertmanager_basic_auth_user", CFG_STR, F(alertmanager_basic_auth_user), "", 0, 0, NULL, 0,
     "basic auth user for the Alertmanagers, empty = none"},
    {"alertmanager_basic_auth_password_file", CFG_STR, F(alertmanager_basic_auth_password_file), "",
     0, 0, NULL, 0, "file with the basic auth password (read at every request)"},
    {"alertmanager_queue_max", CFG_INT, F(alertmanager_queue_max), "10000", 1, 10000000, NULL, 0,
     "alerts queued per Alertmanager while it cannot be reached (beyond: the oldest are dropped)"},
    /* Prometheus's --rules.alert.resend-delay; firing alerts carry endsAt 4 resends ahead, so an
     * Alertmanager resolves them by itself if Tide goes away. */
    {"alert_resend_interval", CFG_DURATION, F(alert_resend_interval_ms), "1m", 1000, 3600000, NULL,
     0, "how often firing alerts are sent again"},
    {"alert_external_url", CFG_STR, F(alert_external_url), "", 0, 0, valid_prometheus_url, 0,
     "base URL in the alerts' generatorURL, empty = http://<http>"},
    /* High availability (cluster/): off unless etcd is named; then every key below counts. */
    {"etcd_endpoints", CFG_STR, F(etcd_endpoints), "", 0, 0, valid_etcd_endpoints, 0,
     "comma-separated etcd client URLs (v3 JSON gateway); several control planes with the same "
     "endpoints and prefix share the workloads; empty = this control plane runs alone"},
    {"etcd_prefix", CFG_STR, F(etcd_prefix), "/tide", 0, 0, valid_etcd_prefix, 0,
     "etcd key prefix of this group of control planes (members/, specs/, owners/ under it)"},
    /* Unique per control plane; the default is unique per host and HTTP port. */
    {"etcd_member_name", CFG_STR, F(etcd_member_name), "", 0, 0, NULL, 0,
     "this control plane's member name in etcd, empty = HOSTNAME/<http>"},
    {"etcd_ca_file", CFG_STR, F(etcd_ca_file), "", 0, 0, NULL, 0,
     "CA bundle of https:// etcd endpoints, empty = the system's"},
    {"etcd_cert_file", CFG_STR, F(etcd_cert_file), "", 0, 0, NULL, 0,
     "client certificate for etcd (--client-cert-auth), empty = none"},
    {"etcd_key_file", CFG_STR, F(etcd_key_file), "", 0, 0, NULL, 0,
     "private key of etcd_cert_file, empty = none"},
    {"etcd_user", CFG_STR, F(etcd_user), "", 0, 0, NULL, 0,
     "etcd user (etcd auth enabled), empty = no authentication"},
    {"etcd_password_file", CFG_STR, F(etcd_password_file), "", 0, 0, NULL, 0,
     "file with etcd_user's password (read at every authentication)"},
    /* 10 s: a dead control plane's workloads move within ~10 s plus a sync, while keep-alives
     * every 3.3 s survive two lost in a row and a leader election of etcd (~1-2 s). */
    {"etcd_lease_ttl", CFG_DURATION, F(etcd_lease_ttl_ms), "10s", 2000, 3600000, NULL, 0,
     "TTL of this control plane's etcd lease (membership, ownership); kept alive every third "
     "of it"},
    /* 2 s: covers the time between a decision and its action reaching a node and clock rate
     * differences (ppm) many times over; at most half the TTL. */
    {"etcd_clock_skew_margin", CFG_DURATION, F(etcd_clock_skew_margin_ms), "2s", 100, 1800000, NULL,
     0,
     "a control plane acts only while its last confirmed keep-alive is younger than the TTL "
     "minus this"},
    /* Loopback or a LAN answers in milliseconds; 2 s leaves room for an fsync storm. */
    {"etcd_timeout", CFG_DURATION, F(etcd_timeout_ms), "2s", 100, 60000, NULL, 0,
     "timeout of one etcd request (per endpoint tried)"},
    CFG_END,
};

static void usage(void) {
    printf(
        "usage: tide-controlplane [--config FILE] [--listen ADDR:PORT] [--socket PATH]\n"
        "                         [--token-file FILE] [--data-dir DIR] [--log-level LEVEL]\n"
        "                         [--KEY VALUE ...]\n\n"
        "Every config key can be set in the file (`key = value`) or as --KEY (with '-' for '_');\n"
        "flags override the file. Keys:\n");
    for (const cfg_key *k = cp_config_table; k->key; k++)
        printf("  %-20s %s (default %s)\n", k->key, k->help, k->def && *k->def ? k->def : "\"\"");
    printf("\nexit status: 0 clean shutdown, 1 runtime failure, 2 bad configuration\n");
}

int cp_config_load(struct cp_config *cfg, int argc, char **argv, char *err, size_t errlen) {
    memset(cfg, 0, sizeof *cfg);
    int rc = cfg_load_args(cp_config_table, cfg, argc, argv, err, errlen);
    if (rc == CFG_ARGS_HELP) {
        usage();
        return 1;
    }
    if (rc == CFG_ARGS_VERSION) {
        printf("tide-controlplane %s (wire protocol %d)\n", TIDE_VERSION, WIRE_VERSION);
        return 1;
    }
    if (rc < 0) return rc;
    vclock_spec clock; /* the three keys together (an anchor alone is refused) */
    return vclock_parse(cfg->clock_rate, cfg->clock_origin, cfg->clock_anchor, &clock, err, errlen);
}

void cp_config_free(struct cp_config *cfg) {
    cfg_free(cp_config_table, cfg);
}
