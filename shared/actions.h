/* actions.h: what the control plane and the agent must agree on about node actions (COMMAND
 * messages, shared/PROTOCOL.md): their names, the arguments each takes with their types and
 * bounds, and their default deadlines. The agent checks a COMMAND's args against this schema
 * before it acts; the control plane checks them before it sends, so an operator sees the same
 * error either way, and computes how long to wait from the same defaults the agent applies.
 *
 * Semantic checks (a cgroup path's form, an HAProxy server reference, a warm-up spec's keys)
 * stay with the code that acts on the value; the schema holds names, types and ranges. */
#ifndef TIDE_ACTIONS_H
#define TIDE_ACTIONS_H

#include <stddef.h>

struct cJSON;

enum tide_action {
    TIDE_ACT_DRAIN,
    TIDE_ACT_STANDBY,
    TIDE_ACT_ACTIVATE,
    TIDE_ACT_WARMUP,
    TIDE_ACT_REPLICA_START,
    TIDE_ACT_REPLICA_STOP,
    TIDE_ACT_REPLICAS,
    TIDE_ACT_HAPROXY_SLOTS,
    TIDE_ACT_HAPROXY_SLOT,
    TIDE_ACT_COUNT
};

/* Default deadlines (ms) of the actions' own work on the agent. */
#define TIDE_DRAIN_TIMEOUT_MS 30000
#define TIDE_STANDBY_TIMEOUT_MS 10000
#define TIDE_ACTIVATE_TIMEOUT_MS 10000 /* plus the warm-up's duration and request timeout */
#define TIDE_WARMUP_EXTRA_MS 10000     /* beyond the warm-up's duration and request timeout */
#define TIDE_WARMUP_DURATION_MS 2000   /* warm-up spec defaults (agent/actions/warmup.h) */
#define TIDE_WARMUP_REQUEST_TIMEOUT_MS 2000
#define TIDE_READY_TIMEOUT_MS 30000 /* replica-start: readiness.timeout_ms default */
#define TIDE_READY_INTERVAL_MS 50   /* replica-start: readiness.interval_ms default */
#define TIDE_START_EXTRA_MS 5000    /* replica-start: beyond the readiness timeout */
#define TIDE_STOP_GRACE_MS 10000    /* replica-stop: grace before SIGKILL */
#define TIDE_STOP_EXTRA_MS 5000     /* replica-stop: beyond the grace (SIGKILL, cgroup removal) */
#define TIDE_REPLICAS_TIMEOUT_MS 5000
#define TIDE_HAPROXY_TIMEOUT_MS 5000 /* haproxy-slots, haproxy-slot */

/* Replica ids: 1..253 bytes of [A-Za-z0-9._-], not starting with '.' or '-' (a Kubernetes pod
 * name fits; the id is also a cgroup directory and a file name on the node). */
#define TIDE_REPLICA_ID_MAX 253
/* 1 valid, 0 not. */
int tide_replica_id_valid(const char *id);

/* replica-start limits */
#define TIDE_REPLICA_ARGV_MAX 256      /* command words */
#define TIDE_REPLICA_ENV_MAX 256       /* environment entries */
#define TIDE_REPLICA_STR_MAX 4096      /* one word, env value, path */
#define TIDE_REPLICA_CMDLINE_MAX 65536 /* all words and env entries together, expanded */

const char *tide_action_name(enum tide_action a);
/* The action named, or -1. */
int tide_action_find(const char *name);
/* "drain, standby, activate, ..." for error messages (static). */
const char *tide_action_list(void);

/* Checks args (a JSON object or NULL) against action a's schema: no unknown key, every key of
 * its type and range, required keys present. Returns 0, or -EINVAL with err naming the key and
 * what was wrong ("\"timeout_ms\" must be a number in [1, 3600000]"). */
int tide_action_args_check(enum tide_action a, const struct cJSON *args, char *err, size_t errlen);

/* The deadline (ms) the agent applies to action a with args when "timeout_ms" is not given:
 * from the defaults above and the durations args name (warm-up, readiness, grace). */
int tide_action_default_timeout_ms(enum tide_action a, const struct cJSON *args);
/* "timeout_ms" when given, else the default. */
int tide_action_timeout_ms(enum tide_action a, const struct cJSON *args);

/* Expands the placeholders {id}, {port}, {node} in s into out (cap bytes, NUL-terminated);
 * "{{" and "}}" stand for a brace. port < 0 or node NULL: that placeholder is an error.
 * Returns the length, or -EINVAL (unknown or unavailable placeholder, unbalanced brace) /
 * -E2BIG with err naming it. */
int tide_template_expand(const char *s, const char *id, int port, const char *node, char *out,
                         size_t cap, char *err, size_t errlen);

#endif
