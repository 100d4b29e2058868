/* config.c: table-driven `key = value` configuration (config.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

const cfg_key *cfg_find(const cfg_key *tab, const char *key) {
    for (const cfg_key *k = tab; k->key; k++)
        if (strcmp(k->key, key) == 0) return k;
    return NULL;
}

static int parse_int_suffix(const char *s, const char *const *sfx, const int64_t *mult,
                            int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno) return -EINVAL;
    while (*end == ' ')
        end++;
    int64_t m = 1;
    if (*end) {
        int found = 0;
        for (int i = 0; sfx[i]; i++)
            if (strcmp(end, sfx[i]) == 0) {
                m = mult[i];
                found = 1;
                break;
            }
        if (!found) return -EINVAL;
    }
    if (v != 0 && (v > INT64_MAX / m || v < INT64_MIN / m)) return -ERANGE;
    *out = (int64_t)v * m;
    return 0;
}

static int parse_value(const cfg_key *k, const char *value, void *field, char *err, size_t errlen) {
    static const char *const dur_sfx[] = {"ms", "s", "m", "h", NULL};
    static const int64_t dur_mul[] = {1, 1000, 60000, 3600000};
    static const char *const byte_sfx[] = {"k", "K", "M", "G", "KiB", "MiB", "GiB", NULL};
    static const int64_t byte_mul[] = {1024, 1024, 1 << 20, 1 << 30, 1024, 1 << 20, 1 << 30};
    static const char *const no_sfx[] = {NULL};
    int64_t v = 0;
    int rc;
    switch (k->type) {
    case CFG_STR: {
        char *dup = strdup(value);
        if (!dup) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        if (k->validate && (rc = k->validate(&dup, err, errlen)) < 0) {
            free(dup);
            return rc;
        }
        char **dst = field;
        free(*dst);
        *dst = dup;
        return 0;
    }
    case CFG_BOOL: {
        int b;
        if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on") ||
            !strcmp(value, "1"))
            b = 1;
        else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off") ||
                 !strcmp(value, "0"))
            b = 0;
        else {
            snprintf(err, errlen, "'%s' is not a boolean (true/false)", value);
            return -EINVAL;
        }
        if (k->validate && (rc = k->validate(&b, err, errlen)) < 0) return rc;
        *(int *)field = b;
        return 0;
    }
    case CFG_INT:
        rc = parse_int_suffix(value, no_sfx, NULL, &v);
        if (rc < 0) {
            snprintf(err, errlen, "'%s' is not an integer", value);
            return rc;
        }
        break;
    case CFG_DURATION:
        rc = parse_int_suffix(value, dur_sfx, dur_mul, &v);
        if (rc < 0) {
            snprintf(err, errlen, "'%s' is not a duration (e.g. 500ms, 5s, 2m, 1h)", value);
            return rc;
        }
        break;
    case CFG_BYTES:
        rc = parse_int_suffix(value, byte_sfx, byte_mul, &v);
        if (rc < 0) {
            snprintf(err, errlen, "'%s' is not a size (e.g. 4096, 64k, 4M, 1G)", value);
            return rc;
        }
        break;
    }
    if (k->min < k->max && (v < k->min || v > k->max)) {
        snprintf(err, errlen, "%lld is out of range [%lld, %lld]%s", (long long)v,
                 (long long)k->min, (long long)k->max,
                 k->type == CFG_DURATION ? " ms"
                 : k->type == CFG_BYTES  ? " bytes"
                                         : "");
        return -EINVAL;
    }
    if (k->max == 0 && k->min > 0 && v < k->min) { /* a lower bound only (max 0: none) */
        snprintf(err, errlen, "%lld is below the minimum %lld%s", (long long)v, (long long)k->min,
                 k->type == CFG_DURATION ? " ms"
                 : k->type == CFG_BYTES  ? " bytes"
                                         : "");
        return -EINVAL;
    }
    if (k->validate && (rc = k->validate(&v, err, errlen)) < 0) return rc;
    *(int64_t *)field = v;
    return 0;
}

int cfg_set(const cfg_key *tab, void *target, const char *key, const char *value, const char *where,
            char *err, size_t errlen) {
    const cfg_key *k = cfg_find(tab, key);
    if (!k) {
        snprintf(err, errlen, "%s: unknown key '%s'", where, key);
        return -ENOENT;
    }
    char why[256];
    int rc = parse_value(k, value, (char *)target + k->offset, why, sizeof why);
    if (rc < 0) snprintf(err, errlen, "%s: key '%s': %s", where, key, why);
    return rc;
}

int cfg_defaults(const cfg_key *tab, void *target, char *err, size_t errlen) {
    for (const cfg_key *k = tab; k->key; k++) {
        int rc = cfg_set(tab, target, k->key, k->def ? k->def : (k->type == CFG_STR ? "" : "0"),
                         "default", err, errlen);
        if (rc < 0) return rc;
    }
    return 0;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

int cfg_load_stream(const cfg_key *tab, void *target, FILE *f, const char *path, char *err,
                    size_t errlen) {
    char line[4096], where[512];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errlen, "%s: line longer than %zu bytes", where, sizeof line - 2);
            return -EINVAL;
        }
        char *s = trim(line);
        if (*s == 0 || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s: expected 'key = value', got '%.80s'", where, s);
            return -EINVAL;
        }
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
            val[vl - 1] = 0;
            val++;
        } else if (vl &&
                   (val[0] == '"' || val[vl - 1] == '"' || val[0] == '\'' || val[vl - 1] == '\'')) {
            snprintf(err, errlen, "%s: unbalanced quote in the value of '%.80s'", where, key);
            return -EINVAL;
        }
        if (*key == 0) {
            snprintf(err, errlen, "%s: missing key before '='", where);
            return -EINVAL;
        }
        if ((rc = cfg_set(tab, target, key, val, where, err, errlen)) < 0) return rc;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        return -EIO;
    }
    return 0;
}

int cfg_load_file(const cfg_key *tab, void *target, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    int rc = cfg_load_stream(tab, target, f, path, err, errlen);
    fclose(f);
    return rc;
}

/* Splits "--KEY[=VALUE]" into the table's spelling of KEY ('-' written as '_'); returns the
 * length of KEY as written in the argument (without "--"), value (or NULL) in *eq. */
static size_t flag_key(const char *a, char *key, size_t keylen, const char **eq) {
    *eq = strchr(a, '=');
    size_t kl = *eq ? (size_t)(*eq - a - 2) : strlen(a + 2);
    if (kl >= keylen) kl = keylen - 1;
    memcpy(key, a + 2, kl);
    key[kl] = 0;
    for (char *p = key; *p; p++)
        if (*p == '-') *p = '_';
    return kl;
}

int cfg_load_args(const cfg_key *tab, void *target, int argc, char **argv, char *err,
                  size_t errlen) {
    int rc = cfg_defaults(tab, target, err, errlen);
    if (rc < 0) return rc;
    /* --config first, so that flags override the file wherever they appear. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return CFG_ARGS_HELP;
        if (!strcmp(argv[i], "--version")) return CFG_ARGS_VERSION;
        const char *path = NULL;
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--config needs a FILE");
                return -EINVAL;
            }
            path = argv[++i];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            path = argv[i] + 9;
        }
        if (path && (rc = cfg_load_file(tab, target, path, err, errlen)) < 0) return rc;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config")) {
            i++;
            continue;
        }
        if (!strncmp(a, "--config=", 9)) continue;
        if (strncmp(a, "--", 2) != 0 || !a[2]) {
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", a);
            return -EINVAL;
        }
        char key[64];
        const char *eq;
        size_t kl = flag_key(a, key, sizeof key, &eq);
        if (!cfg_find(tab, key)) {
            snprintf(err, errlen, "unknown option '%.*s' (see --help)", (int)(kl + 2), a);
            return -EINVAL;
        }
        const char *val;
        if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "option '%s' needs a value", a);
                return -EINVAL;
            }
            val = argv[++i];
        }
        char where[80];
        snprintf(where, sizeof where, "--%.*s", (int)kl, a + 2);
        if ((rc = cfg_set(tab, target, key, val, where, err, errlen)) < 0) return rc;
    }
    return 0;
}

void cfg_free(const cfg_key *tab, void *target) {
    for (const cfg_key *k = tab; k->key; k++)
        if (k->type == CFG_STR) {
            char **p = (char **)((char *)target + k->offset);
            free(*p);
            *p = NULL;
        }
}

int cfg_split_hostport(const char *s, char *host, size_t hostlen, int *port) {
    const char *colon;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') return -EINVAL;
        hl = (size_t)(close - s - 1);
        if (hl == 0 || hl >= hostlen) return -EINVAL;
        memcpy(host, s + 1, hl);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) return -EINVAL;
        hl = (size_t)(colon - s);
        if (hl == 0 || hl >= hostlen || memchr(s, ':', hl)) return -EINVAL;
        memcpy(host, s, hl);
    }
    host[hl] = 0;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == 0 || *end || errno || p < 0 || p > 65535) return -EINVAL;
    *port = (int)p;
    return 0;
}

int cfg_valid_hostport(const void *value, char *err, size_t errlen) {
    const char *s = *(char *const *)value;
    char host[256];
    int port;
    if (cfg_split_hostport(s, host, sizeof host, &port) < 0) {
        snprintf(err, errlen, "'%s' is not ADDR:PORT (e.g. 127.0.0.1:7470)", s);
        return -EINVAL;
    }
    return 0;
}

int cfg_valid_log_level(const void *value, char *err, size_t errlen) {
    static const char *const names[] = {"debug", "info", "warn", "warning", "error", "off", NULL};
    const char *s = *(char *const *)value;
    for (int i = 0; names[i]; i++)
        if (strcmp(s, names[i]) == 0) return 0;
    snprintf(err, errlen, "'%s' is not one of debug, info, warn, error, off", s);
    return -EINVAL;
}

int cfg_valid_nonempty(const void *value, char *err, size_t errlen) {
    const char *s = *(char *const *)value;
    if (*s) return 0;
    snprintf(err, errlen, "must not be empty");
    return -EINVAL;
}

static int key_equal(const cfg_key *k, const void *a, const void *b) {
    const char *pa = (const char *)a + k->offset, *pb = (const char *)b + k->offset;
    switch (k->type) {
    case CFG_STR: {
        const char *x = *(char *const *)pa, *y = *(char *const *)pb;
        return strcmp(x ? x : "", y ? y : "") == 0;
    }
    case CFG_BOOL:
        return *(const int *)pa == *(const int *)pb;
    default:
        return *(const int64_t *)pa == *(const int64_t *)pb;
    }
}

int cfg_diff(const cfg_key *tab, const void *a, const void *b,
             void (*fn)(const cfg_key *k, void *arg), void *arg) {
    int n = 0;
    for (const cfg_key *k = tab; k->key; k++)
        if (!key_equal(k, a, b)) {
            n++;
            if (fn) fn(k, arg);
        }
    return n;
}

int cfg_copy_key(const cfg_key *k, void *dst, const void *src) {
    char *pd = (char *)dst + k->offset;
    const char *ps = (const char *)src + k->offset;
    switch (k->type) {
    case CFG_STR: {
        const char *v = *(char *const *)ps;
        char *dup = strdup(v ? v : "");
        if (!dup) return -ENOMEM;
        free(*(char **)pd);
        *(char **)pd = dup;
        return 0;
    }
    case CFG_BOOL:
        *(int *)pd = *(const int *)ps;
        return 0;
    default:
        *(int64_t *)pd = *(const int64_t *)ps;
        return 0;
    }
}

int cfg_reload(const cfg_key *tab, void *running, const void *fresh, const char *who) {
    int n = 0;
    for (const cfg_key *k = tab; k->key; k++) {
        if (key_equal(k, running, fresh)) continue;
        n++;
        if (!k->reloadable)
            log_warn(who,
                     "reload: %s changed in the configuration; it takes effect after a restart",
                     k->key);
        else if (cfg_copy_key(k, running, fresh) == 0)
            log_info(who, "reload: %s changed", k->key);
        else
            log_error(who, "reload: %s: out of memory (the running value is kept)", k->key);
    }
    return n;
}
