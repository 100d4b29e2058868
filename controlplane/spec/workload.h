/* workload.h: the workload spec (YAML, `kind: Workload`) that tells Tide what to scale and how:
 * target, replica bounds, metrics, portrait providers, behavior and stability checkers.
 *
 * Parsing is pure (a buffer in, a struct out) and validation is complete: every problem is
 * reported with its field path and line, e.g.
 *   spec.behavior.scaleDown.gray.changePercent (line 31): must be in 1..100, got 0
 * and unknown fields are rejected by name. The same struct drives the live control plane and
 * `tidectl simulate`. Times are seconds, utilization targets are percent (0 < t <= 100). */
#ifndef TIDE_WORKLOAD_H
#define TIDE_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#define WL_NAME_MAX 64
#define WL_EXPR_MAX 512
#define WL_MAX_TRAFFIC 8
#define WL_MAX_PROVIDERS 16
#define WL_MAX_WINDOWS 32
#define WL_MAX_POLICIES 8
#define WL_MAX_CHECKERS 8
#define WL_MAX_NODES 32

typedef enum wl_target_kind {
    WL_TARGET_DEPLOYMENT = 0,
    WL_TARGET_STATEFULSET,
    WL_TARGET_HAPROXY_BACKEND,
    WL_TARGET_SYSTEMD_UNIT,
} wl_target_kind;

typedef enum wl_mode { WL_MODE_AUTO = 0, WL_MODE_PREVIEW } wl_mode;

/* A metric source: an agent series selector (`selector: '{workload="web",metric="cpu"}'`) or
 * a PromQL expression (`query: ...`); exactly one is set. A query in the store's selector
 * subset (query.h) is evaluated over the store merged with Prometheus; any other PromQL goes
 * to Prometheus alone (it is checked for balanced brackets and quotes here, and by Prometheus
 * when it is first run). */
typedef struct wl_source {
    char name[WL_NAME_MAX];
    char selector[WL_EXPR_MAX];
    char query[WL_EXPR_MAX];
} wl_source;

/* HAProxyBackend: the replica template, what the executor asks an agent's replica-start for
 * (shared/actions.h). Words, env values and cwd may hold the placeholders {id}, {port} and
 * {node} (tide_template_expand); they are checked at parse time. */
#define WL_REPLICA_ARGS_MAX 64  /* command words */
#define WL_REPLICA_WORD_MAX 512 /* one word or env value, with its NUL */
#define WL_REPLICA_ENV_MAX 32
#define WL_PATH_MAX 256 /* cwd, HAProxy socket, readiness path */
#define WL_ADDR_MAX 46  /* an IPv4 or IPv6 literal */

typedef struct wl_env {
    char name[WL_NAME_MAX];
    char value[WL_REPLICA_WORD_MAX];
} wl_env;

typedef struct wl_replica_template {
    char command[WL_REPLICA_ARGS_MAX][WL_REPLICA_WORD_MAX];
    int n_command;
    wl_env env[WL_REPLICA_ENV_MAX];
    int n_env;
    char cwd[WL_PATH_MAX];            /* "" = the agent's replica directory */
    char user[WL_NAME_MAX];           /* "" = the agent's user */
    double cpu_cores;                 /* CPU quota in cores; 0 = no limit */
    long long memory_bytes;           /* memory.max; 0 = no limit */
    char readiness_path[WL_PATH_MAX]; /* HTTP GET on the replica's port; "" = port accepts */
    int readiness_timeout_seconds;    /* default 30 */
    char stop_signal[8];              /* TERM (default), INT, QUIT, HUP, USR1, USR2, KILL */
    int grace_seconds;                /* stop signal -> SIGKILL; default 10 */
    int port_first, port_last;        /* the ports replicas listen on, per node */
} wl_replica_template;

/* Warm-up traffic for a replica being activated (thawed from standby): sent by the node's
 * agent to the replica's own address after the thaw and before the replica takes real
 * traffic (HAProxy server ready, Kubernetes readiness gate True); the agent's warm-up spec
 * (agent/actions/warmup.h). Given as spec.target.replica.warmup (HAProxyBackend) or
 * spec.warmup (Deployment, StatefulSet: with scaleTargetRef or target). Durations are seconds
 * (millisecond resolution) in the spec and milliseconds here. */
#define WL_WARMUP_HEADERS_MAX 16
#define WL_WARMUP_BODY_MAX 4096
#define WL_WARMUP_METHOD_MAX 16

typedef struct wl_warmup {
    int enabled;                       /* the block was given */
    char method[WL_WARMUP_METHOD_MAX]; /* "GET" */
    char path[WL_PATH_MAX];            /* "/" */
    char body[WL_WARMUP_BODY_MAX];
    int has_body;
    char headers[WL_WARMUP_HEADERS_MAX][WL_REPLICA_WORD_MAX]; /* "Name: value" */
    int n_headers;
    double rate;            /* requests/s at the end of the ramp; default 20 */
    double start_rate;      /* requests/s at the start; 0 = rate / 10 */
    int duration_ms;        /* default 2000 */
    int ramp_ms;            /* -1 = duration / 2 */
    int max_inflight;       /* default 16 */
    int request_timeout_ms; /* default 2000 */
} wl_warmup;

typedef struct wl_target {
    wl_target_kind kind;
    char namespace_[WL_NAME_MAX]; /* Deployment/StatefulSet */
    char name[WL_NAME_MAX];       /* Deployment/StatefulSet name, HAProxy backend name */
    char unit[WL_NAME_MAX];       /* systemd template unit, e.g. "web@.service" */
    char nodes[WL_MAX_NODES][WL_NAME_MAX];
    /* HAProxyBackend: the address HAProxy reaches a node's replicas at; "" = the address the
     * node's agent connects from */
    char node_addr[WL_MAX_NODES][WL_ADDR_MAX];
    int n_nodes;
    int scale_target_ref; /* given as spec.scaleTargetRef (HPA v2 form) */
    /* HAProxyBackend: has_executor when both `haproxy` and `replica` are given (without them
     * the workload can only be previewed) */
    int has_executor;
    char haproxy_node[WL_NAME_MAX];   /* the agent on the HAProxy host */
    char haproxy_socket[WL_PATH_MAX]; /* its runtime API socket */
    char haproxy_prefix[WL_NAME_MAX]; /* the backend's server-template prefix */
    wl_replica_template replica;
    wl_warmup warmup; /* HAProxyBackend: spec.target.replica.warmup; else spec.warmup */
} wl_target;

/* A cron expression: 5 fields (minute hour day-of-month month day-of-week), each a bit set.
 * Day-of-week 0 and 7 are Sunday. dom_any/dow_any record a `*` so that the usual cron rule
 * applies (both restricted: either may match). */
typedef struct wl_cron {
    uint64_t minute; /* bits 0..59 */
    uint32_t hour;   /* bits 0..23 */
    uint32_t dom;    /* bits 1..31 */
    uint16_t month;  /* bits 1..12 */
    uint8_t dow;     /* bits 0..6 */
    uint8_t dom_any, dow_any;
} wl_cron;

typedef struct wl_cron_window {
    wl_cron start, end;
    char start_text[WL_NAME_MAX], end_text[WL_NAME_MAX];
    int replicas;
    int line;
} wl_cron_window;

typedef enum wl_provider_type {
    WL_PROV_STATIC = 0,
    WL_PROV_CRON,
    WL_PROV_REACTIVE,
    WL_PROV_PREDICTIVE,
} wl_provider_type;

typedef struct wl_provider {
    wl_provider_type type;
    char name[WL_NAME_MAX]; /* defaults to the type name */
    int priority;
    /* static */
    int replicas;
    /* cron */
    char time_zone[WL_NAME_MAX]; /* TZ database name; "UTC" by default */
    wl_cron_window windows[WL_MAX_WINDOWS];
    int n_windows;
    /* predictive */
    char model[WL_NAME_MAX];     /* a forecast.h model name */
    double quantile;             /* (0,1), default 0.9 */
    int horizon_seconds;         /* default 3600 */
    int retrain_seconds;         /* default 86400 */
    int reforecast_seconds;      /* default 300 */
    int max_age_seconds;         /* a model older than this is stale; default 7 days */
    double capacity_per_replica; /* traffic one replica serves at 100%; 0 = fitted model */
} wl_provider;

typedef enum wl_policy_type { WL_POLICY_PODS = 0, WL_POLICY_PERCENT } wl_policy_type;
typedef enum wl_select { WL_SELECT_MAX = 0, WL_SELECT_MIN, WL_SELECT_DISABLED } wl_select;
typedef enum wl_gray_state { WL_GRAY_CUTOFF = 0, WL_GRAY_STANDBY, WL_GRAY_DELETED } wl_gray_state;

typedef struct wl_policy {
    wl_policy_type type;
    int value;
    int period_seconds;
} wl_policy;

/* One direction of behavior: HPA-style stabilization and rate policies (they shape the
 * reactive provider exactly as in Kubernetes) plus Tide's gray strategy for the planner. */
typedef struct wl_direction {
    int stabilization_seconds;
    wl_select select;
    wl_policy policies[WL_MAX_POLICIES];
    int n_policies;
    /* gray strategy */
    wl_gray_state state;         /* scaleDown only: where scaled-in replicas end up */
    int change_percent;          /* share of the change (current -> target) made per step, 1..100 */
    int change_interval_seconds; /* minimum time between two steps */
    int observation_seconds;     /* time a step is watched by the stability checkers */
} wl_direction;

typedef enum wl_check_action { WL_CHECK_PAUSE = 0, WL_CHECK_ROLLBACK } wl_check_action;
typedef enum wl_check_op { WL_OP_GT = 0, WL_OP_LT } wl_check_op;

typedef struct wl_checker {
    char name[WL_NAME_MAX];
    wl_source metric; /* metric.name "utilization" means the workload's utilization metric */
    wl_check_op op;
    double threshold;
    wl_check_action action;
    int cooldown_seconds;
} wl_checker;

typedef struct workload_spec {
    char name[WL_NAME_MAX];
    /* metadata.namespace; a Deployment/StatefulSet target lives in it (target.namespace_ is
     * the same: a spec.target.namespace that contradicts metadata.namespace is refused, one
     * given alone sets both) */
    char namespace_[WL_NAME_MAX];
    wl_target target;
    int min_replicas, max_replicas;
    wl_mode mode;
    int paused;
    /* metrics */
    wl_source utilization;
    double target_utilization; /* percent */
    wl_source traffic[WL_MAX_TRAFFIC];
    int n_traffic;
    wl_source replicas_metric;
    int has_replicas_metric;
    int metrics_offset_seconds; /* metrics are read as they were this long ago (PromQL's offset) */
    /* portrait */
    wl_provider providers[WL_MAX_PROVIDERS];
    int n_providers;
    /* behavior */
    wl_direction up, down;
    int scale_up_ahead_seconds; /* -1 = auto (measured start-up time of new replicas) */
    int keep_alive_seconds;     /* standby replicas are deleted after this; default 3600 */
    int sync_seconds;           /* planner period; default 15 (the HPA sync period) */
    double tolerance;           /* reactive tolerance; default 0.1 */
    wl_checker checkers[WL_MAX_CHECKERS];
    int n_checkers;
} workload_spec;

/* Collected validation problems. */
typedef struct wl_problem {
    char path[160];
    int line;
    char msg[200];
} wl_problem;

typedef struct wl_problems {
    wl_problem *v;
    size_t n, cap;
} wl_problems;

void wl_problems_init(wl_problems *p);
void wl_problems_fini(wl_problems *p);
/* Appends "path (line N): msg" lines, one per problem, to a malloc'd string (caller frees). */
char *wl_problems_format(const wl_problems *p);

/* Fills the defaults (HPA default behavior, Auto mode, ...) into a zeroed spec. */
void wl_defaults(workload_spec *s);

/* Parses and validates one YAML document. Returns 0 with *out filled, -EINVAL when the
 * document has problems (all of them are appended to probs; *out is then unspecified), or
 * -ENOMEM. probs may be NULL when the caller only needs the verdict. */
int wl_parse(const char *buf, size_t len, workload_spec *out, wl_problems *probs);
/* Reads a file and parses it; -errno from reading (one problem naming the path). */
int wl_load(const char *path, workload_spec *out, wl_problems *probs);

/* Parses one 5-field cron expression. Returns 0 or -EINVAL with why (e.g. "field 2 (hour):
 * 25 out of range 0-23"). */
int wl_cron_parse(const char *expr, wl_cron *out, char *why, size_t whylen);
/* Does the cron expression match the local wall-clock minute given by struct tm fields? */
int wl_cron_match(const wl_cron *c, int min, int hour, int mday, int mon /* 1..12 */,
                  int wday /* 0..6, 0 = Sunday */);

/* Local wall-clock fields of unix time t in the TZ database zone tz ("UTC" when empty).
 * Thread-safe (a lock serialises the TZ switch). Returns 0, or -EINVAL for an unknown zone. */
struct tm;
int wl_localtime(const char *tz, int64_t t, struct tm *out);
/* Evaluates a cron provider on the grid t0 + i*step (i < n): out[i] = the largest replicas
 * of the windows open at that time, or -1 when none is. A window opens at a minute its start
 * expression matches and closes at a minute its end expression matches (an end wins when both
 * match). Returns 0, or -EINVAL for a bad zone or grid. */
int wl_cron_eval(const wl_provider *p, int64_t t0, int64_t step, int n, int *out);

/* The window states at one minute, kept between calls so that a caller moving forward in time
 * (the controller, the simulator) steps ahead from there instead of searching the past again
 * for each window's last event (up to 400 days for a yearly window). Zero-initialise. */
typedef struct wl_cron_state {
    int64_t t; /* the minute the states hold for; 0 = unknown */
    unsigned char active[WL_MAX_WINDOWS];
} wl_cron_state;
/* wl_cron_eval with a state: used when it is at most 7 days behind t0, then updated. */
int wl_cron_eval_from(const wl_provider *p, int64_t t0, int64_t step, int n, int *out,
                      wl_cron_state *st);
/* Is tz a zone the TZ database knows? */
int wl_zone_valid(const char *tz);

const char *wl_target_kind_name(wl_target_kind k);
const char *wl_gray_state_name(wl_gray_state s);
const char *wl_provider_type_name(wl_provider_type t);

#endif
