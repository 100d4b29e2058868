/* actions.c: node action names, argument schema and default deadlines (actions.h). */
#include "actions.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const names[TIDE_ACT_COUNT] = {
    [TIDE_ACT_DRAIN] = "drain",
    [TIDE_ACT_STANDBY] = "standby",
    [TIDE_ACT_ACTIVATE] = "activate",
    [TIDE_ACT_WARMUP] = "warmup",
    [TIDE_ACT_REPLICA_START] = "replica-start",
    [TIDE_ACT_REPLICA_STOP] = "replica-stop",
    [TIDE_ACT_REPLICAS] = "replicas",
    [TIDE_ACT_HAPROXY_SLOTS] = "haproxy-slots",
    [TIDE_ACT_HAPROXY_SLOT] = "haproxy-slot",
};

const char *tide_action_name(enum tide_action a) {
    return (unsigned)a < TIDE_ACT_COUNT ? names[a] : "?";
}

int tide_action_find(const char *name) {
    for (int i = 0; name && i < TIDE_ACT_COUNT; i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

const char *tide_action_list(void) {
    return "drain, standby, activate, warmup, replica-start, replica-stop, replicas, "
           "haproxy-slots, haproxy-slot";
}

int tide_replica_id_valid(const char *id) {
    size_t n = id ? strlen(id) : 0;
    if (n < 1 || n > TIDE_REPLICA_ID_MAX || id[0] == '.' || id[0] == '-') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* ---- the schema ------------------------------------------------------------------------- */

enum ktype {
    T_STR,    /* string of at most max bytes (min: at least that many) */
    T_NUM,    /* number in [min, max] */
    T_BOOL,   /* true / false */
    T_OBJ,    /* object (checked by the code that uses it) */
    T_STRARR, /* array of at most max strings, each at most TIDE_REPLICA_STR_MAX bytes */
    T_STRMAP, /* object of at most max string values of at most TIDE_REPLICA_STR_MAX bytes */
    T_ID,     /* a replica id (tide_replica_id_valid) */
    T_SIGNAL, /* a signal name: TERM, SIGTERM, INT, QUIT, HUP, USR1, USR2, KILL */
    T_ANY,    /* checked where it is used (the warm-up spec: agent/actions/warmup.c) */
};

#define A(x) (1u << (x))
#define REPLICA_ACTS (A(TIDE_ACT_DRAIN) | A(TIDE_ACT_STANDBY) | A(TIDE_ACT_ACTIVATE))
#define ALL_ACTS ((1u << TIDE_ACT_COUNT) - 1)
#define HAP_ACTS (A(TIDE_ACT_HAPROXY_SLOTS) | A(TIDE_ACT_HAPROXY_SLOT))

typedef struct key {
    const char *name;
    enum ktype type;
    double min, max;
    unsigned actions;  /* where it is accepted */
    unsigned required; /* where it must be given */
} key;

/* The warm-up spec's keys (agent/actions/warmup.h) accepted at the top level by "warmup". */
static const key keys[] = {
    /* form and length checked where they are used (a cgroup path, "ADDR:PORT", a socket path,
     * "BACKEND/SERVER"): the bound here only keeps hostile sizes out */
    {"cgroup", T_STR, 0, 4096, REPLICA_ACTS | A(TIDE_ACT_WARMUP), 0},
    {"endpoint", T_STR, 0, 4096, REPLICA_ACTS | A(TIDE_ACT_WARMUP), 0},
    {"haproxy_socket", T_STR, 0, 4096, REPLICA_ACTS | A(TIDE_ACT_WARMUP) | HAP_ACTS, HAP_ACTS},
    {"haproxy_server", T_STR, 0, 4096, REPLICA_ACTS | A(TIDE_ACT_WARMUP) | A(TIDE_ACT_HAPROXY_SLOT),
     A(TIDE_ACT_HAPROXY_SLOT)},
    /* haproxy-slots / haproxy-slot: names and addresses checked by agent/actions/haproxy_slot.c */
    {"backend", T_STR, 1, 127, A(TIDE_ACT_HAPROXY_SLOTS), A(TIDE_ACT_HAPROXY_SLOTS)},
    {"addr", T_STR, 1, 45, A(TIDE_ACT_HAPROXY_SLOT), 0},
    {"state", T_STR, 1, 8, A(TIDE_ACT_HAPROXY_SLOT), 0},
    {"timeout_ms", T_NUM, 1, 3600000, ALL_ACTS, 0},
    {"wait_connections", T_BOOL, 0, 0, REPLICA_ACTS | A(TIDE_ACT_WARMUP), 0},
    {"force", T_BOOL, 0, 0, REPLICA_ACTS | A(TIDE_ACT_WARMUP), 0},
    {"warmup", T_ANY, 0, 0, REPLICA_ACTS | A(TIDE_ACT_WARMUP), 0},
    {"method", T_ANY, 0, 0, A(TIDE_ACT_WARMUP), 0},
    {"path", T_ANY, 0, 0, A(TIDE_ACT_WARMUP), 0},
    {"url", T_ANY, 0, 0, A(TIDE_ACT_WARMUP), 0},
    {"body", T_ANY, 0, 0, A(TIDE_ACT_WARMUP), 0},
    {"headers", T_ANY, 0, 0, A(TIDE_ACT_WARMUP), 0},
    {"rate", T_ANY, 0, 0, A(TIDE_ACT_WARMUP), 0},
    {"start_rate", T_ANY, 0, 0, A(TIDE_ACT_WARMUP), 0},
    {"duration_ms", T_ANY, 0, 0, A(TIDE_ACT_WARMUP), 0},
    {"ramp_ms", T_ANY, 0, 0, A(TIDE_ACT_WARMUP), 0},
    {"max_inflight", T_ANY, 0, 0, A(TIDE_ACT_WARMUP), 0},
    {"request_timeout_ms", T_ANY, 0, 0, A(TIDE_ACT_WARMUP), 0},
    /* replica processes */
    {"id", T_ID, 0, 0, A(TIDE_ACT_REPLICA_START) | A(TIDE_ACT_REPLICA_STOP) | A(TIDE_ACT_REPLICAS),
     A(TIDE_ACT_REPLICA_START) | A(TIDE_ACT_REPLICA_STOP)},
    {"command", T_STRARR, 1, TIDE_REPLICA_ARGV_MAX, A(TIDE_ACT_REPLICA_START),
     A(TIDE_ACT_REPLICA_START)},
    {"env", T_STRMAP, 0, TIDE_REPLICA_ENV_MAX, A(TIDE_ACT_REPLICA_START), 0},
    {"cwd", T_STR, 1, TIDE_REPLICA_STR_MAX - 1, A(TIDE_ACT_REPLICA_START), 0},
    {"user", T_STR, 1, 64, A(TIDE_ACT_REPLICA_START), 0},
    {"port", T_NUM, 1, 65535, A(TIDE_ACT_REPLICA_START) | A(TIDE_ACT_HAPROXY_SLOT), 0},
    {"cpu_quota", T_NUM, 0.001, 1024, A(TIDE_ACT_REPLICA_START), 0}, /* cores */
    {"memory_bytes", T_NUM, 1 << 20, 1LL << 50, A(TIDE_ACT_REPLICA_START), 0},
    {"readiness", T_OBJ, 0, 0, A(TIDE_ACT_REPLICA_START), 0},
    {"stop_signal", T_SIGNAL, 0, 0, A(TIDE_ACT_REPLICA_START), 0},
    {"signal", T_SIGNAL, 0, 0, A(TIDE_ACT_REPLICA_STOP), 0},
    {"grace_ms", T_NUM, 0, 3600000, A(TIDE_ACT_REPLICA_START) | A(TIDE_ACT_REPLICA_STOP), 0},
    {"labels", T_STRMAP, 0, 32, A(TIDE_ACT_REPLICA_START), 0},
    {NULL, T_STR, 0, 0, 0, 0},
};

/* readiness = {path, timeout_ms, interval_ms, host} */
static const key readiness_keys[] = {
    {"path", T_STR, 1, 2048, ALL_ACTS, 0},
    {"timeout_ms", T_NUM, 1, 3600000, ALL_ACTS, 0},
    {"interval_ms", T_NUM, 1, 60000, ALL_ACTS, 0},
    {NULL, T_STR, 0, 0, 0, 0},
};

static const char *const signals[] = {"TERM", "INT", "QUIT", "HUP", "USR1", "USR2", "KILL", NULL};

static int signal_name_ok(const char *s) {
    if (!strncmp(s, "SIG", 3)) s += 3;
    for (int i = 0; signals[i]; i++)
        if (!strcmp(s, signals[i])) return 1;
    return 0;
}

static int check_value(const key *k, const cJSON *v, const char *where, char *err, size_t errlen) {
    switch (k->type) {
    case T_STR:
        if (!cJSON_IsString(v) || strlen(v->valuestring) < (size_t)k->min ||
            strlen(v->valuestring) > (size_t)k->max) {
            if (k->min > 0)
                snprintf(err, errlen, "%s\"%s\" must be a string of %.0f to %.0f bytes", where,
                         k->name, k->min, k->max);
            else
                snprintf(err, errlen, "%s\"%s\" must be a string of at most %.0f bytes", where,
                         k->name, k->max);
            return -EINVAL;
        }
        return 0;
    case T_NUM:
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= k->min && v->valuedouble <= k->max)) {
            snprintf(err, errlen, "%s\"%s\" must be a number in [%g, %.0f]", where, k->name, k->min,
                     k->max);
            return -EINVAL;
        }
        return 0;
    case T_BOOL:
        if (!cJSON_IsBool(v)) {
            snprintf(err, errlen, "%s\"%s\" must be true or false", where, k->name);
            return -EINVAL;
        }
        return 0;
    case T_ANY:
        return 0;
    case T_OBJ:
        if (!cJSON_IsObject(v)) {
            snprintf(err, errlen, "%s\"%s\" must be an object", where, k->name);
            return -EINVAL;
        }
        return 0;
    case T_STRARR:
    case T_STRMAP: {
        int arr = k->type == T_STRARR;
        if (arr ? !cJSON_IsArray(v) : !cJSON_IsObject(v)) {
            snprintf(err, errlen, "%s\"%s\" must be an %s of strings", where, k->name,
                     arr ? "array" : "object");
            return -EINVAL;
        }
        int n = cJSON_GetArraySize(v);
        if (n < (int)k->min || n > (int)k->max) {
            snprintf(err, errlen, "%s\"%s\" must hold %.0f to %.0f strings", where, k->name, k->min,
                     k->max);
            return -EINVAL;
        }
        const cJSON *it;
        int i = 0;
        cJSON_ArrayForEach(it, v) {
            if (!cJSON_IsString(it) || strlen(it->valuestring) >= TIDE_REPLICA_STR_MAX) {
                if (arr)
                    snprintf(err, errlen, "%s\"%s\"[%d] must be a string of at most %d bytes",
                             where, k->name, i, TIDE_REPLICA_STR_MAX - 1);
                else
                    snprintf(err, errlen, "%s\"%s\".\"%.64s\" must be a string of at most %d bytes",
                             where, k->name, it->string, TIDE_REPLICA_STR_MAX - 1);
                return -EINVAL;
            }
            if (!arr) {
                const char *name = it->string;
                size_t nl = strlen(name);
                int bad = nl == 0 || nl > 255 || (name[0] >= '0' && name[0] <= '9');
                for (size_t c = 0; c < nl && !bad; c++)
                    bad = !((name[c] >= 'a' && name[c] <= 'z') ||
                            (name[c] >= 'A' && name[c] <= 'Z') ||
                            (name[c] >= '0' && name[c] <= '9') || name[c] == '_' ||
                            (name[c] == '.' && !strcmp(k->name, "labels")) ||
                            (name[c] == '-' && !strcmp(k->name, "labels")));
                if (bad) {
                    snprintf(err, errlen, "%s\"%s\": bad name \"%.64s\"", where, k->name, name);
                    return -EINVAL;
                }
            }
            i++;
        }
        if (arr && n > 0 && !cJSON_GetArrayItem(v, 0)->valuestring[0]) {
            snprintf(err, errlen, "%s\"%s\"[0] (the program) must not be empty", where, k->name);
            return -EINVAL;
        }
        return 0;
    }
    case T_ID:
        if (!cJSON_IsString(v) || !tide_replica_id_valid(v->valuestring)) {
            snprintf(err, errlen,
                     "%s\"%s\" must be 1 to %d bytes of [A-Za-z0-9._-], not starting with '.' "
                     "or '-'",
                     where, k->name, TIDE_REPLICA_ID_MAX);
            return -EINVAL;
        }
        return 0;
    case T_SIGNAL:
        if (!cJSON_IsString(v) || !signal_name_ok(v->valuestring)) {
            snprintf(err, errlen, "%s\"%s\" must be one of TERM, INT, QUIT, HUP, USR1, USR2, KILL",
                     where, k->name);
            return -EINVAL;
        }
        return 0;
    }
    return 0;
}

static int check_object(const key *table, unsigned bit, const cJSON *obj, const char *where,
                        char *err, size_t errlen) {
    const cJSON *it;
    cJSON_ArrayForEach(it, obj) {
        const key *k = NULL;
        for (const key *t = table; t->name && !k; t++)
            if ((t->actions & bit) && !strcmp(t->name, it->string)) k = t;
        if (!k) {
            snprintf(err, errlen, "%sunknown argument \"%.64s\"", where, it->string);
            return -EINVAL;
        }
        if (check_value(k, it, where, err, errlen)) return -EINVAL;
    }
    for (const key *t = table; t->name; t++)
        if ((t->required & bit) && !cJSON_GetObjectItemCaseSensitive(obj, t->name)) {
            snprintf(err, errlen, "%s\"%s\" is required", where, t->name);
            return -EINVAL;
        }
    return 0;
}

int tide_action_args_check(enum tide_action a, const cJSON *args, char *err, size_t errlen) {
    if ((unsigned)a >= TIDE_ACT_COUNT) {
        snprintf(err, errlen, "unknown action");
        return -EINVAL;
    }
    cJSON empty = {0};
    empty.type = cJSON_Object;
    if (!args) args = &empty;
    if (!cJSON_IsObject(args)) {
        snprintf(err, errlen, "args must be a JSON object");
        return -EINVAL;
    }
    if (check_object(keys, A(a), args, "", err, errlen)) return -EINVAL;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(args, "readiness");
    if (r && check_object(readiness_keys, ALL_ACTS, r, "readiness: ", err, errlen)) return -EINVAL;
    return 0;
}

static double num(const cJSON *o, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

int tide_action_default_timeout_ms(enum tide_action a, const cJSON *args) {
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(args, "warmup");
    if (cJSON_IsNull(w)) w = NULL;
    const cJSON *spec = w ? w : a == TIDE_ACT_WARMUP ? args : NULL;
    double warm = spec || a == TIDE_ACT_WARMUP
                      ? num(spec, "duration_ms", TIDE_WARMUP_DURATION_MS) +
                            num(spec, "request_timeout_ms", TIDE_WARMUP_REQUEST_TIMEOUT_MS)
                      : 0;
    double t;
    switch (a) {
    case TIDE_ACT_DRAIN:
        t = TIDE_DRAIN_TIMEOUT_MS;
        break;
    case TIDE_ACT_STANDBY:
        t = TIDE_STANDBY_TIMEOUT_MS;
        break;
    case TIDE_ACT_ACTIVATE:
        t = TIDE_ACTIVATE_TIMEOUT_MS + warm;
        break;
    case TIDE_ACT_WARMUP:
        t = warm + TIDE_WARMUP_EXTRA_MS;
        break;
    case TIDE_ACT_REPLICA_START:
        t = num(cJSON_GetObjectItemCaseSensitive(args, "readiness"), "timeout_ms",
                TIDE_READY_TIMEOUT_MS) +
            TIDE_START_EXTRA_MS;
        break;
    case TIDE_ACT_REPLICA_STOP:
        t = num(args, "grace_ms", TIDE_STOP_GRACE_MS) + TIDE_STOP_EXTRA_MS;
        break;
    default:
        t = TIDE_REPLICAS_TIMEOUT_MS;
        break;
    }
    return t > 2e9 ? 2000000000 : (int)t;
}

int tide_action_timeout_ms(enum tide_action a, const cJSON *args) {
    double given = num(args, "timeout_ms", 0);
    return given >= 1 && given <= 3600000 ? (int)given : tide_action_default_timeout_ms(a, args);
}

int tide_template_expand(const char *s, const char *id, int port, const char *node, char *out,
                         size_t cap, char *err, size_t errlen) {
    size_t n = 0;
    char num_buf[16];
#define PUT(str, len)                                                                              \
    do {                                                                                           \
        if (n + (len) >= cap) {                                                                    \
            snprintf(err, errlen, "\"%.64s\": longer than %zu bytes once expanded", s, cap - 1);   \
            return -E2BIG;                                                                         \
        }                                                                                          \
        memcpy(out + n, (str), (len));                                                             \
        n += (len);                                                                                \
    } while (0)
    for (const char *p = s; *p;) {
        if (p[0] == '{' && p[1] == '{') {
            PUT("{", 1);
            p += 2;
        } else if (p[0] == '}' && p[1] == '}') {
            PUT("}", 1);
            p += 2;
        } else if (*p == '{') {
            const char *e = strchr(p, '}');
            size_t kl = e ? (size_t)(e - p - 1) : 0;
            const char *val = NULL;
            if (e && kl == 2 && !strncmp(p + 1, "id", 2)) {
                val = id;
            } else if (e && kl == 4 && !strncmp(p + 1, "port", 4)) {
                if (port > 0) {
                    snprintf(num_buf, sizeof num_buf, "%d", port);
                    val = num_buf;
                }
            } else if (e && kl == 4 && !strncmp(p + 1, "node", 4)) {
                val = node;
            } else {
                snprintf(err, errlen,
                         "\"%.64s\": unknown placeholder %.*s (known: {id}, {port}, {node}; "
                         "{{ and }} for braces)",
                         s, e ? (int)(kl + 2) : 1, p);
                return -EINVAL;
            }
            if (!val) {
                snprintf(err, errlen, "\"%.64s\": placeholder {%.*s} has no value here", s, (int)kl,
                         p + 1);
                return -EINVAL;
            }
            PUT(val, strlen(val));
            p = e + 1;
        } else if (*p == '}') {
            snprintf(err, errlen, "\"%.64s\": a lone '}' (write }} for a brace)", s);
            return -EINVAL;
        } else {
            PUT(p, 1);
            p++;
        }
    }
#undef PUT
    if (cap == 0) return -E2BIG;
    out[n] = 0;
    return (int)n;
}
