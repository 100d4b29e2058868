/* query.c: selector parser, range evaluation over the store and Prometheus, Prometheus JSON. */
#include "query/query.h"

#include "log.h"
#include "query/prom.h"
#include "query/promql.h"
#include "query/re.h"
#include "store/tsdb.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- parser ---- */

typedef struct lexer {
    const char *s;
    size_t i;
    char *err;
    size_t errlen;
} lexer;

static int fail(lexer *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(lexer *L, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(L->err, L->errlen, "bad selector at column %zu: %s", L->i + 1, msg);
    return -EINVAL;
}

static void ws(lexer *L) {
    while (L->s[L->i] == ' ' || L->s[L->i] == '\t' || L->s[L->i] == '\n' || L->s[L->i] == '\r')
        L->i++;
}

static int is_ident_start(int c, int metric) {
    return isalpha(c) || c == '_' || (metric && c == ':');
}
static int is_ident(int c, int metric) {
    return isalnum(c) || c == '_' || (metric && c == ':');
}

/* Reads an identifier into a malloc'd string; NULL (no error set) if none is here. */
static char *ident(lexer *L, int metric) {
    size_t b = L->i;
    if (!is_ident_start((unsigned char)L->s[b], metric)) return NULL;
    while (is_ident((unsigned char)L->s[L->i], metric))
        L->i++;
    return strndup(L->s + b, L->i - b);
}

static const char *describe(lexer *L) {
    static _Thread_local char buf[32];
    char c = L->s[L->i];
    if (!c) return "end of input";
    if (isprint((unsigned char)c))
        snprintf(buf, sizeof buf, "'%c'", c);
    else
        snprintf(buf, sizeof buf, "byte 0x%02x", (unsigned char)c);
    return buf;
}

static int string_lit(lexer *L, char **out) {
    char q = L->s[L->i];
    if (q != '"' && q != '\'') return fail(L, "expected a quoted string, found %s", describe(L));
    size_t start = L->i++;
    size_t cap = 32, n = 0;
    char *buf = malloc(cap);
    if (!buf) return -ENOMEM;
    for (;;) {
        char c = L->s[L->i];
        if (!c) {
            free(buf);
            L->i = start;
            return fail(L, "unterminated string");
        }
        L->i++;
        if (c == q) break;
        if (c == '\\') {
            char e = L->s[L->i];
            switch (e) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case '\\':
            case '"':
            case '\'':
                c = e;
                break;
            case 'x': {
                int hi = (unsigned char)L->s[L->i + 1], lo = hi ? (unsigned char)L->s[L->i + 2] : 0;
                if (!isxdigit(hi) || !isxdigit(lo)) {
                    free(buf);
                    return fail(L, "\\x needs two hex digits");
                }
                char hex[3] = {(char)hi, (char)lo, 0};
                c = (char)strtol(hex, NULL, 16);
                L->i += 2;
                break;
            }
            default:
                free(buf);
                return fail(L, "unknown escape \\%c in string", e ? e : '0');
            }
            L->i++;
        }
        if (n + 2 > cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
        }
        buf[n++] = c;
    }
    buf[n] = 0;
    *out = buf;
    return 0;
}

static int add_matcher(query_expr *e, char *name, int op, char *value, lexer *L) {
    query_matcher *nm = realloc(e->m, (e->nm + 1) * sizeof *nm);
    if (!nm) {
        free(name);
        free(value);
        return -ENOMEM;
    }
    e->m = nm;
    query_matcher *m = &e->m[e->nm];
    memset(m, 0, sizeof *m);
    m->name = name;
    m->value = value;
    m->op = op;
    if (op == QUERY_RE || op == QUERY_NRE) {
        char why[200];
        m->re = tide_re_new(value, why, sizeof why);
        if (!m->re) {
            int r =
                fail(L, "invalid regular expression \"%.200s\" for label %s: %s", value, name, why);
            free(name);
            free(value);
            return r;
        }
    }
    e->nm++;
    return 0;
}

/* After an item of a list closed by `close`: skips blanks and consumes ',' (1: another item
 * follows) or `close` (0: the list ended); anything else is an error naming `where`. */
static int list_next(lexer *L, char close, const char *where) {
    ws(L);
    if (L->s[L->i] == ',') {
        L->i++;
        return 1;
    }
    if (L->s[L->i] == close) {
        L->i++;
        return 0;
    }
    return fail(L, "expected ',' or '%c' %s, found %s", close, where, describe(L));
}

static int matchers(lexer *L, query_expr *e) {
    /* at '{' */
    L->i++;
    for (;;) {
        ws(L);
        if (L->s[L->i] == '}') {
            L->i++;
            return 0;
        }
        char *name = ident(L, 0);
        if (!name) return fail(L, "expected a label name or '}', found %s", describe(L));
        ws(L);
        int op;
        const char *s = L->s + L->i;
        if (s[0] == '=' && s[1] == '~') {
            op = QUERY_RE;
            L->i += 2;
        } else if (s[0] == '!' && s[1] == '~') {
            op = QUERY_NRE;
            L->i += 2;
        } else if (s[0] == '!' && s[1] == '=') {
            op = QUERY_NE;
            L->i += 2;
        } else if (s[0] == '=') {
            op = QUERY_EQ;
            L->i += 1;
        } else {
            int r = fail(L, "expected '=', '!=', '=~' or '!~' after label %s, found %s", name,
                         describe(L));
            free(name);
            return r;
        }
        ws(L);
        char *value = NULL;
        int rc = string_lit(L, &value);
        if (rc) {
            free(name);
            return rc;
        }
        rc = add_matcher(e, name, op, value, L);
        if (rc) return rc;
        rc = list_next(L, '}', "after a matcher");
        if (rc <= 0) return rc;
    }
}

static int matcher_matches_empty(const query_matcher *m) {
    switch (m->op) {
    case QUERY_EQ:
        return m->value[0] == 0;
    case QUERY_NE:
        return m->value[0] != 0;
    case QUERY_RE:
        return tide_re_match(m->re, "", 0);
    default:
        return !tide_re_match(m->re, "", 0);
    }
}

static int selector(lexer *L, query_expr *e) {
    ws(L);
    size_t at = L->i;
    char *metric = ident(L, 1);
    if (metric) {
        if (!strcmp(metric, "sum") || !strcmp(metric, "avg") || !strcmp(metric, "by")) {
            L->i = at;
            free(metric);
            return fail(L, "expected a metric name, found the keyword %.3s", L->s + at);
        }
        char *name = strdup("__name__");
        if (!name) {
            free(metric);
            return -ENOMEM;
        }
        int rc = add_matcher(e, name, QUERY_EQ, metric, L);
        if (rc) return rc;
        ws(L);
    }
    if (L->s[L->i] == '{') {
        int rc = matchers(L, e);
        if (rc) return rc;
    } else if (!metric) {
        return fail(L, "expected a metric name or '{', found %s", describe(L));
    }
    int ok = 0;
    for (size_t k = 0; k < e->nm; k++)
        ok |= !matcher_matches_empty(&e->m[k]);
    if (!ok) {
        L->i = at;
        return fail(L, "a selector needs a metric name or a matcher that does not match \"\"");
    }
    return 0;
}

static int by_clause(lexer *L, query_expr *e) {
    /* after "by" */
    ws(L);
    if (L->s[L->i] != '(') return fail(L, "expected '(' after by, found %s", describe(L));
    L->i++;
    for (;;) {
        ws(L);
        if (L->s[L->i] == ')') {
            L->i++;
            return 0;
        }
        char *name = ident(L, 0);
        if (!name)
            return fail(L, "expected a label name or ')' in by (...), found %s", describe(L));
        char **nb = realloc(e->by, (e->nby + 1) * sizeof *nb);
        if (!nb) {
            free(name);
            return -ENOMEM;
        }
        e->by = nb;
        e->by[e->nby++] = name;
        int rc = list_next(L, ')', "in by (...)");
        if (rc <= 0) return rc;
    }
}

static int keyword(lexer *L, const char *kw) {
    size_t n = strlen(kw);
    if (strncmp(L->s + L->i, kw, n) == 0 && !is_ident((unsigned char)L->s[L->i + n], 1)) {
        L->i += n;
        return 1;
    }
    return 0;
}

int query_parse(const char *text, query_expr **out, char *err, size_t errlen) {
    *out = NULL;
    lexer L = {text ? text : "", 0, err, errlen};
    query_expr *e = calloc(1, sizeof *e);
    if (!e) return -ENOMEM;
    int rc = 0;
    ws(&L);
    if (!L.s[L.i]) {
        rc = fail(&L, "empty query");
        goto out;
    }
    size_t save = L.i;
    int agg = keyword(&L, "sum") ? QUERY_AGG_SUM : keyword(&L, "avg") ? QUERY_AGG_AVG : 0;
    int have_by = 0;
    if (agg) {
        ws(&L);
        if (keyword(&L, "by")) {
            rc = by_clause(&L, e);
            if (rc) goto out;
            have_by = 1;
            ws(&L);
        } else if (L.s[L.i] != '(') {
            L.i = save; /* "sum" or "avg" is a metric name here */
            agg = 0;
        }
    }
    if (agg) {
        e->agg = agg;
        if (L.s[L.i] != '(') {
            rc = fail(&L, "expected '(' after %s, found %s", agg == QUERY_AGG_SUM ? "sum" : "avg",
                      describe(&L));
            goto out;
        }
        L.i++;
        rc = selector(&L, e);
        if (rc) goto out;
        ws(&L);
        if (L.s[L.i] != ')') {
            rc = fail(&L, "expected ')' after the selector, found %s", describe(&L));
            goto out;
        }
        L.i++;
        ws(&L);
        if (!have_by && keyword(&L, "by")) {
            rc = by_clause(&L, e);
            if (rc) goto out;
        }
    } else {
        rc = selector(&L, e);
        if (rc) goto out;
    }
    ws(&L);
    if (L.s[L.i]) {
        rc = fail(&L,
                  "unexpected %s after the end of the query (supported: a selector, "
                  "sum by (...) or avg by (...) over one)",
                  describe(&L));
        goto out;
    }
out:
    if (rc) {
        query_expr_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void query_expr_free(query_expr *e) {
    if (!e) return;
    for (size_t i = 0; i < e->nm; i++) {
        tide_re_free(e->m[i].re);
        free(e->m[i].name);
        free(e->m[i].value);
    }
    free(e->m);
    for (size_t i = 0; i < e->nby; i++)
        free(e->by[i]);
    free(e->by);
    free(e);
}

int query_match(const query_expr *e, const char *const *names, const char *const *values,
                size_t n) {
    for (size_t k = 0; k < e->nm; k++) {
        const query_matcher *m = &e->m[k];
        const char *v = "";
        for (size_t i = 0; i < n; i++)
            if (strcmp(names[i], m->name) == 0) {
                v = values[i];
                break;
            }
        int ok;
        switch (m->op) {
        case QUERY_EQ:
            ok = strcmp(v, m->value) == 0;
            break;
        case QUERY_NE:
            ok = strcmp(v, m->value) != 0;
            break;
        case QUERY_RE:
            ok = tide_re_match(m->re, v, strlen(v));
            break;
        default:
            ok = !tide_re_match(m->re, v, strlen(v));
            break;
        }
        if (!ok) return 0;
    }
    return 1;
}

/* ---- growable string ---- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < b->n + n + 1)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_str(sbuf *b, const char *s) {
    sb_put(b, s, strlen(s));
}
static char *sb_done(sbuf *b) {
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    if (!b->p) sb_put(b, "", 0);
    return b->p;
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if it is not one. */
static int utf8_len(const unsigned char *p) {
    if (p[0] < 0x80) return 1;
    int n = (p[0] & 0xE0) == 0xC0 ? 2 : (p[0] & 0xF0) == 0xE0 ? 3 : (p[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (!n || (n == 2 && p[0] < 0xC2)) return 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    if (n == 3 && ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] >= 0xA0))) return 0;
    if (n == 4 && ((p[0] == 0xF0 && p[1] < 0x90) || p[0] > 0xF4 || (p[0] == 0xF4 && p[1] >= 0x90)))
        return 0;
    return n;
}

/* A PromQL/JSON double-quoted string. In JSON, bytes that are not UTF-8 become U+FFFD so the
 * document stays valid whatever an agent put in a label. */
static void sb_quoted(sbuf *b, const char *s, int json) {
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char tmp[8];
        if (json && *p >= 0x80) {
            int n = utf8_len(p);
            if (n) {
                sb_put(b, (const char *)p, (size_t)n);
                p += n - 1;
            } else
                sb_put(b, "\\ufffd", 6);
            continue;
        }
        if (*p == '"' || *p == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)*p;
            sb_put(b, tmp, 2);
        } else if (*p == '\n')
            sb_put(b, "\\n", 2);
        else if (*p == '\t')
            sb_put(b, "\\t", 2);
        else if (*p == '\r')
            sb_put(b, "\\r", 2);
        else if (*p < 0x20) {
            snprintf(tmp, sizeof tmp, json ? "\\u%04x" : "\\x%02x", *p);
            sb_str(b, tmp);
        } else
            sb_put(b, (const char *)p, 1);
    }
    sb_put(b, "\"", 1);
}

char *query_selector_promql(const query_expr *e) {
    sbuf b = {0};
    const char *metric = NULL;
    for (size_t k = 0; k < e->nm && !metric; k++) {
        const char *v = e->m[k].value;
        if (e->m[k].op != QUERY_EQ || strcmp(e->m[k].name, "__name__") != 0 ||
            !is_ident_start((unsigned char)v[0], 1) || !strcmp(v, "sum") || !strcmp(v, "avg") ||
            !strcmp(v, "by"))
            continue;
        size_t i = 1;
        while (is_ident((unsigned char)v[i], 1))
            i++;
        if (!v[i]) metric = v;
    }
    if (metric) sb_str(&b, metric);
    sb_put(&b, "{", 1);
    int first = 1;
    static const char *ops[] = {"=", "!=", "=~", "!~"};
    for (size_t k = 0; k < e->nm; k++) {
        const query_matcher *m = &e->m[k];
        if (metric && m->value == metric) continue;
        if (!first) sb_put(&b, ",", 1);
        first = 0;
        sb_str(&b, m->name);
        sb_str(&b, ops[m->op]);
        sb_quoted(&b, m->value, 0);
    }
    sb_put(&b, "}", 1);
    return sb_done(&b);
}

/* ---- values and times ---- */

/* v in decimal into buf (at least 21 bytes), without printf's machinery */
static void fmt_i64(char *buf, int64_t v) {
    char t[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        t[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *buf++ = '-';
    while (n)
        *buf++ = t[--n];
    *buf = 0;
}

void query_format_value(double v, char *buf, size_t len) {
    if (isnan(v)) {
        snprintf(buf, len, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        snprintf(buf, len, signbit(v) ? "-0" : "0");
        return;
    }
    if (v == trunc(v) && fabs(v) < 1e15 && len >= 21) { /* an integer: its digits are the
                                                           shortest form */
        fmt_i64(buf, (int64_t)v);
        return;
    }
    /* the fewest significant digits that read back as v: full-precision values (most
     * computed ones) are settled by two or three tries, short ones by counting up */
    char e[64];
    int p;
    snprintf(e, sizeof e, "%.*e", 14, v);
    if (strtod(e, NULL) == v) {
        for (p = 1; p < 15; p++) {
            snprintf(e, sizeof e, "%.*e", p - 1, v);
            if (strtod(e, NULL) == v) break;
        }
        if (p == 15) snprintf(e, sizeof e, "%.*e", 14, v);
    } else {
        for (p = 16; p <= 17; p++) {
            snprintf(e, sizeof e, "%.*e", p - 1, v);
            if (strtod(e, NULL) == v) break;
        }
    }
    /* e = [-]d[.ddd]e[+-]XX -> plain decimal */
    const char *s = e;
    int neg = *s == '-';
    if (neg) s++;
    char digits[40];
    size_t nd = 0;
    for (; *s && *s != 'e'; s++)
        if (isdigit((unsigned char)*s)) digits[nd++] = *s;
    int exp = atoi(s + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    int pos = exp + 1;
    sbuf b = {0};
    if (neg) sb_put(&b, "-", 1);
    if (pos <= 0) {
        sb_put(&b, "0.", 2);
        for (int i = 0; i < -pos; i++)
            sb_put(&b, "0", 1);
        sb_put(&b, digits, nd);
    } else if ((size_t)pos >= nd) {
        sb_put(&b, digits, nd);
        for (size_t i = nd; i < (size_t)pos; i++)
            sb_put(&b, "0", 1);
    } else {
        sb_put(&b, digits, (size_t)pos);
        sb_put(&b, ".", 1);
        sb_put(&b, digits + pos, nd - (size_t)pos);
    }
    char *r = sb_done(&b);
    snprintf(buf, len, "%s", r ? r : "NaN");
    free(r);
}

static void format_ts(int64_t ms, char *buf, size_t len) {
    if (ms % 1000 == 0 && len >= 21) {
        fmt_i64(buf, ms / 1000);
        return;
    }
    snprintf(buf, len, "%.3f", (double)ms / 1000);
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '0')
        buf[--n] = 0;
}

int query_parse_time(const char *s, int64_t *ms) {
    if (!s || !*s) return -EINVAL;
    char *end;
    double d = strtod(s, &end);
    if (end != s && !*end && isfinite(d) && (isdigit((unsigned char)s[0]) || s[0] == '-')) {
        if (fabs(d) > 9.2e15) return -EINVAL;
        *ms = (int64_t)llround(d * 1000.0);
        return 0;
    }
    int y, mo, da, h, mi, se, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &da, &h, &mi, &se, &n) != 6 ||
        n != 19)
        return -EINVAL;
    const char *p = s + n;
    int64_t frac_ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        int64_t f = 0;
        while (isdigit((unsigned char)*p)) {
            if (digits < 3) f = f * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (!digits) return -EINVAL;
        for (int k = digits; k < 3; k++)
            f *= 10;
        frac_ms = f;
    }
    int off_min = 0;
    if (*p == 'Z' || *p == 'z')
        p++;
    else if (*p == '+' || *p == '-') {
        int oh, om, m2 = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m2) != 2 || m2 != 5) return -EINVAL;
        off_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else
        return -EINVAL;
    if (*p || mo < 1 || mo > 12 || da < 1 || da > 31 || h > 23 || mi > 59 || se > 60)
        return -EINVAL;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = da,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = se};
    time_t t = timegm(&tm);
    *ms = ((int64_t)t - (int64_t)off_min * 60) * 1000 + frac_ms;
    return 0;
}

int query_parse_duration(const char *s, int64_t *ms) {
    if (!s || !*s) return -EINVAL;
    char *end;
    double d = strtod(s, &end);
    if (end != s && !*end) {
        if (!isfinite(d) || d <= 0 || d > 9.2e12) return -EINVAL;
        *ms = (int64_t)llround(d * 1000.0);
        return *ms > 0 ? 0 : -EINVAL;
    }
    int64_t total = 0;
    const char *p = s;
    while (*p) {
        if (!isdigit((unsigned char)*p)) return -EINVAL;
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            n = n * 10 + (*p++ - '0');
            if (n > 1000000000) return -EINVAL;
        }
        int64_t unit;
        if (!strncmp(p, "ms", 2)) {
            unit = 1;
            p += 2;
        } else if (*p == 's') {
            unit = 1000;
            p++;
        } else if (*p == 'm') {
            unit = 60000;
            p++;
        } else if (*p == 'h') {
            unit = 3600000;
            p++;
        } else if (*p == 'd') {
            unit = 86400000;
            p++;
        } else if (*p == 'w') {
            unit = 7 * 86400000LL;
            p++;
        } else if (*p == 'y') {
            unit = 365 * 86400000LL;
            p++;
        } else
            return -EINVAL;
        total += n * unit;
    }
    if (total <= 0) return -EINVAL;
    *ms = total;
    return 0;
}

/* ---- evaluation ---- */

typedef struct rseries {
    char **names, **values;
    size_t nlabels;
    char *key;
    size_t keylen;
    double *v;
    int used; /* prometheus series merged into a store series */
} rseries;

static char *label_key(char *const *names, char *const *values, size_t n, size_t *len) {
    size_t l = 0;
    for (size_t i = 0; i < n; i++)
        l += strlen(names[i]) + strlen(values[i]) + 2;
    char *k = malloc(l ? l : 1), *p = k;
    if (!k) return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(names[i]) + 1, b = strlen(values[i]) + 1;
        memcpy(p, names[i], a);
        p += a;
        memcpy(p, values[i], b);
        p += b;
    }
    *len = l;
    return k;
}

/* Frees n label pairs and both arrays; either array may be NULL. */
static void free_labels(char **names, char **values, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (names) free(names[i]);
        if (values) free(values[i]);
    }
    free(names);
    free(values);
}

static void rseries_fini(rseries *s) {
    free_labels(s->names, s->values, s->nlabels);
    free(s->key);
    free(s->v);
}

void query_result_fini(query_result *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        query_series *s = &r->s[i];
        free_labels(s->names, s->values, s->nlabels);
        free(s->v);
        free(s->ts);
    }
    free(r->s);
    free(r->str);
    r->str = NULL;
    r->s = NULL;
    r->n = r->cap = 0;
}

typedef struct group {
    char **names, **values;
    size_t nlabels;
    char *key;
    size_t keylen;
    double *sum;
    double *cnt;
} group;

typedef struct evalctx {
    const query_expr *e;
    size_t nsteps;
    query_result *r;
    group *g;
    size_t ng, capg;
} evalctx;

/* Appends one series; the array doubles (amortised O(1) per series: a selector matching
 * thousands of series must not copy the array once per series). */
static int push_result(query_result *r, char **names, char **values, size_t n, double *v) {
    if (r->n >= r->cap) {
        size_t ncap = r->n ? 2 * r->n : 16;
        query_series *ns = realloc(r->s, ncap * sizeof *ns);
        if (!ns) return -ENOMEM;
        r->s = ns;
        r->cap = ncap;
    }
    r->s[r->n++] = (query_series){.names = names, .values = values, .nlabels = n, .v = v};
    return 0;
}

static char **dup_strs(char *const *src, size_t n) {
    char **d = calloc(n ? n : 1, sizeof *d);
    if (!d) return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(d[i] = strdup(src[i]))) {
            for (size_t k = 0; k < i; k++)
                free(d[k]);
            free(d);
            return NULL;
        }
    return d;
}

/* Folds one evaluated series (labels + v) into the output: as is, or into its group. */
static int fold(evalctx *c, char *const *names, char *const *values, size_t n, const double *v) {
    const query_expr *e = c->e;
    if (e->agg == QUERY_AGG_NONE) {
        if ((c->r->n + 1) * c->nsteps > QUERY_MAX_SAMPLES) return -E2BIG;
        double *copy = malloc(c->nsteps * sizeof *copy);
        char **nn = dup_strs(names, n), **vv = dup_strs(values, n);
        if (!copy || !nn || !vv) {
            free(copy);
            free_labels(nn, vv, n);
            return -ENOMEM;
        }
        memcpy(copy, v, c->nsteps * sizeof *copy);
        int rc = push_result(c->r, nn, vv, n, copy);
        if (rc) {
            free_labels(nn, vv, n);
            free(copy);
        }
        return rc;
    }
    /* group labels: the by-labels this series has (non-empty), sorted by name */
    char *gn[64], *gv[64];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 64; i++)
        for (size_t b = 0; b < e->nby; b++)
            if (!strcmp(names[i], e->by[b]) && values[i][0]) {
                gn[k] = names[i];
                gv[k++] = values[i];
                break;
            }
    size_t keylen;
    char *key = label_key(gn, gv, k, &keylen);
    if (!key) return -ENOMEM;
    group *g = NULL;
    for (size_t i = 0; i < c->ng; i++)
        if (c->g[i].keylen == keylen && !memcmp(c->g[i].key, key, keylen)) {
            g = &c->g[i];
            break;
        }
    if (g)
        free(key);
    else {
        if ((c->ng + 1) * c->nsteps > QUERY_MAX_SAMPLES) {
            free(key);
            return -E2BIG;
        }
        if (c->ng == c->capg) {
            size_t ncap = c->capg ? c->capg * 2 : 16;
            group *ng = realloc(c->g, ncap * sizeof *ng);
            if (!ng) {
                free(key);
                return -ENOMEM;
            }
            c->g = ng;
            c->capg = ncap;
        }
        g = &c->g[c->ng];
        memset(g, 0, sizeof *g);
        g->key = key;
        g->keylen = keylen;
        g->names = dup_strs(gn, k);
        g->values = dup_strs(gv, k);
        g->nlabels = k;
        g->sum = calloc(c->nsteps, sizeof *g->sum);
        g->cnt = calloc(c->nsteps, sizeof *g->cnt);
        c->ng++;
        if (!g->names || !g->values || !g->sum || !g->cnt) return -ENOMEM;
    }
    for (size_t t = 0; t < c->nsteps; t++)
        if (!isnan(v[t])) {
            g->sum[t] += v[t];
            g->cnt[t] += 1;
        }
    return 0;
}

static int groups_finish(evalctx *c) {
    int rc = 0;
    for (size_t i = 0; i < c->ng; i++) {
        group *g = &c->g[i];
        if (!rc && g->sum) {
            size_t have = 0;
            for (size_t t = 0; t < c->nsteps; t++) {
                if (g->cnt[t] == 0)
                    g->sum[t] = NAN;
                else {
                    if (c->e->agg == QUERY_AGG_AVG) g->sum[t] /= g->cnt[t];
                    have++;
                }
            }
            if (have) {
                rc = push_result(c->r, g->names, g->values, g->nlabels, g->sum);
                if (!rc) {
                    g->names = g->values = NULL;
                    g->nlabels = 0;
                    g->sum = NULL;
                }
            }
        }
        free_labels(g->names, g->values, g->nlabels);
        free(g->sum);
        free(g->cnt);
        free(g->key);
    }
    free(c->g);
    c->g = NULL;
    c->ng = 0;
    return rc;
}

static int cmp_series(const void *a, const void *b) {
    const query_series *x = a, *y = b;
    for (size_t i = 0; i < x->nlabels && i < y->nlabels; i++) {
        int c = strcmp(x->names[i], y->names[i]);
        if (c) return c;
        c = strcmp(x->values[i], y->values[i]);
        if (c) return c;
    }
    return (x->nlabels > y->nlabels) - (x->nlabels < y->nlabels);
}

int query_label_name_ok(const char *s) {
    if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_')) return 0;
    for (size_t i = 1; s[i]; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_')) return 0;
    return 1;
}

typedef struct match_probe {
    struct tsdb *db;
    const promql_limits *lim;
} match_probe;

/* 1 when the selector matches a series of the store. Past the query's deadline or once it is
 * cancelled it answers 1: the engine then stops the query with the right error. */
static int sel_matches_store(const pq_node *sel, void *arg) {
    const match_probe *mp = arg;
    struct tsdb *db = mp->db;
    query_expr qe = {0};
    qe.m = sel->m;
    qe.nm = sel->nm;
    uint32_t count = tsdb_series_count(db);
    for (uint32_t id = 1; id <= count; id++) {
        if ((id & 63) == 0 && mp->lim) {
            if (mp->lim->deadline_mono_ms && tide_now_mono_ms() > mp->lim->deadline_mono_ms)
                return 1;
            if (mp->lim->cancel && atomic_load(mp->lim->cancel)) return 1;
            if (mp->lim->stop && mp->lim->stop(mp->lim->stop_arg)) return 1;
        }
        const tsdb_label *labels;
        size_t nl;
        if (tsdb_series_labels(db, id, &labels, &nl) || nl > 64) continue;
        const char *names[64], *values[64];
        for (size_t i = 0; i < nl; i++) {
            names[i] = labels[i].name;
            values[i] = labels[i].value;
        }
        if (query_match(&qe, names, values, nl)) return 1;
    }
    return 0;
}

static int sel_any(const pq_node *sel, void *arg) {
    (void)sel;
    (void)arg;
    return 1;
}

/* Merges Prometheus's result into r (the engine's): per label set, r's value wins at every
 * step where it has one. */
static int merge_prom(query_result *r, prom_result *pr) {
    for (size_t i = 0; i < pr->n; i++) {
        prom_series *ps = &pr->s[i];
        size_t kl;
        char *key = label_key(ps->names, ps->values, ps->nlabels, &kl);
        if (!key) return -ENOMEM;
        query_series *dst = NULL;
        for (size_t j = 0; j < r->n && !dst; j++) {
            size_t jl;
            char *jk = label_key(r->s[j].names, r->s[j].values, r->s[j].nlabels, &jl);
            if (!jk) {
                free(key);
                return -ENOMEM;
            }
            if (jl == kl && !memcmp(jk, key, kl)) dst = &r->s[j];
            free(jk);
        }
        free(key);
        if (!dst) {
            double *v = malloc((r->nsteps ? r->nsteps : 1) * sizeof *v);
            if (!v) return -ENOMEM;
            for (size_t k = 0; k < r->nsteps; k++)
                v[k] = query_absent();
            if (push_result(r, ps->names, ps->values, ps->nlabels, v)) {
                free(v);
                return -ENOMEM;
            }
            ps->names = ps->values = NULL;
            ps->nlabels = 0;
            dst = &r->s[r->n - 1];
        }
        for (size_t k = 0; k < ps->n; k++) {
            int64_t off = ps->ts_ms[k] - r->start_ms;
            if (off < 0 || off % r->step_ms) continue;
            size_t idx = (size_t)(off / r->step_ms);
            if (idx >= r->nsteps || !query_is_absent(dst->v[idx])) continue;
            dst->v[idx] = ps->v[k];
            r->prom_points++;
        }
    }
    return 0;
}

/* The PromQL engine, with the forwarding rule when a Prometheus is configured. */
static int engine_range(const query_ctx *ctx, const char *text, int64_t start_ms, int64_t end_ms,
                        int64_t step_ms, query_result *r, char *err, size_t errlen) {
    pq_node *ast;
    int rc = promql_parse(text, &ast, err, errlen);
    if (rc) return rc;
    int has_sel = promql_walk_selectors(ast, sel_any, NULL);
    match_probe mp = {ctx->db, ctx->lim};
    int local =
        !ctx->prom || !ctx->db || !has_sel || promql_walk_selectors(ast, sel_matches_store, &mp);
    if (local) {
        rc = promql_eval(ctx->db, ast, start_ms, end_ms, step_ms, ctx->lim, r, err, errlen);
    } else {
        memset(r, 0, sizeof *r);
        r->start_ms = start_ms;
        r->step_ms = step_ms;
        r->nsteps = (size_t)((end_ms - start_ms) / step_ms + 1);
        r->engine = 1;
    }
    if (!rc && ctx->prom && has_sel && r->type != QUERY_RESULT_MATRIX_RAW &&
        r->type != QUERY_RESULT_STRING) {
        prom_result pr = {0};
        char perr[400];
        int prc =
            prom_query_range(ctx->prom, text, start_ms, end_ms, step_ms, &pr, perr, sizeof perr);
        if (prc == 0) {
            r->prom_used = 1;
            if (r->type == QUERY_RESULT_SCALAR && r->n == 1 && !local) r->type = 0;
            prc = merge_prom(r, &pr);
            if (prc) {
                rc = prc;
                snprintf(err, errlen, "out of memory");
            } else if (r->n > 1 && r->type == QUERY_RESULT_SERIES)
                qsort(r->s, r->n, sizeof *r->s, cmp_series);
        } else if (prc == -EINVAL && !local) {
            snprintf(err, errlen, "prometheus rejected the query: %s", perr);
            rc = -EINVAL;
        } else {
            snprintf(r->warning, sizeof r->warning,
                     "prometheus unavailable, served the store's data only: %s", perr);
        }
        prom_result_fini(&pr);
    }
    promql_free(ast);
    if (rc) query_result_fini(r);
    return rc;
}

static int range_query(const query_ctx *ctx, const char *text, int64_t start_ms, int64_t end_ms,
                       int64_t step_ms, query_result *r, char *err, size_t errlen);

/* The store's label strings are read under a tsdb_read_begin: series removed meanwhile keep
 * theirs until the query is done. */
int query_range(const query_ctx *ctx, const char *text, int64_t start_ms, int64_t end_ms,
                int64_t step_ms, query_result *r, char *err, size_t errlen) {
    if (!ctx->db) return range_query(ctx, text, start_ms, end_ms, step_ms, r, err, errlen);
    unsigned rd = tsdb_read_begin(ctx->db);
    int rc = range_query(ctx, text, start_ms, end_ms, step_ms, r, err, errlen);
    tsdb_read_end(ctx->db, rd);
    return rc;
}

static int range_query(const query_ctx *ctx, const char *text, int64_t start_ms, int64_t end_ms,
                       int64_t step_ms, query_result *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    if (step_ms <= 0) {
        snprintf(err, errlen,
                 "zero or negative query resolution step widths are not accepted. "
                 "Try a positive integer");
        return -EINVAL;
    }
    if (end_ms < start_ms) {
        snprintf(err, errlen, "end timestamp must not be before start time");
        return -EINVAL;
    }
    if ((end_ms - start_ms) / step_ms + 1 > QUERY_MAX_POINTS) {
        snprintf(err, errlen,
                 "exceeded maximum resolution of 11,000 points per timeseries. "
                 "Try decreasing the query resolution (?step=XX)");
        return -EINVAL;
    }
    query_expr *e = NULL;
    char lerr[8];
    if (!ctx->prom || query_parse(text, &e, lerr, sizeof lerr) != 0)
        return engine_range(ctx, text, start_ms, end_ms, step_ms, r, err, errlen);
    int rc = 0;
    size_t nsteps = (size_t)((end_ms - start_ms) / step_ms + 1);
    r->start_ms = start_ms;
    r->step_ms = step_ms;
    r->nsteps = nsteps;

    /* Prometheus first: its series are merged into the store's as those are evaluated */
    rseries *ps = NULL;
    size_t nps = 0;
    if (ctx->prom) {
        char *promql = query_selector_promql(e);
        prom_result pr = {0};
        char perr[400];
        int prc = promql ? prom_query_range(ctx->prom, promql, start_ms, end_ms, step_ms, &pr, perr,
                                            sizeof perr)
                         : -ENOMEM;
        free(promql);
        if (prc == 0) {
            r->prom_used = 1;
            ps = calloc(pr.n ? pr.n : 1, sizeof *ps);
            if (!ps) prc = -ENOMEM;
            for (size_t i = 0; ps && i < pr.n; i++) {
                prom_series *s = &pr.s[i];
                rseries *d = &ps[nps++];
                d->names = s->names;
                d->values = s->values;
                d->nlabels = s->nlabels;
                s->names = s->values = NULL;
                s->nlabels = 0;
                d->key = label_key(d->names, d->values, d->nlabels, &d->keylen);
                d->v = malloc(nsteps * sizeof *d->v);
                if (!d->key || !d->v) {
                    prc = -ENOMEM;
                    break;
                }
                for (size_t k = 0; k < nsteps; k++)
                    d->v[k] = NAN;
                for (size_t k = 0; k < s->n; k++) {
                    int64_t off = s->ts_ms[k] - start_ms;
                    if (off < 0 || off % step_ms) continue;
                    size_t idx = (size_t)(off / step_ms);
                    if (idx < nsteps) d->v[idx] = s->v[k];
                }
            }
            prom_result_fini(&pr);
            if (prc) {
                rc = prc;
                snprintf(err, errlen, "out of memory");
                goto out;
            }
        } else if (prc == -EINVAL) {
            snprintf(err, errlen, "prometheus rejected the selector: %s", perr);
            rc = -EINVAL;
            goto out;
        } else {
            snprintf(r->warning, sizeof r->warning,
                     "prometheus unavailable, served the store's data only: %s", perr);
        }
    }

    evalctx c = {e, nsteps, r, NULL, 0, 0};
    double *v = malloc(nsteps * sizeof *v);
    if (!v) {
        rc = -ENOMEM;
        goto out;
    }
    if (ctx->db) {
        uint32_t count = tsdb_series_count(ctx->db);
        const promql_limits *lim = ctx->lim;
        for (uint32_t id = 1; id <= count && !rc; id++) {
            if ((id & 63) == 0 && lim) {
                if (lim->deadline_mono_ms && tide_now_mono_ms() > lim->deadline_mono_ms) {
                    rc = -ETIMEDOUT;
                    break;
                }
                if ((lim->cancel && atomic_load(lim->cancel)) ||
                    (lim->stop && lim->stop(lim->stop_arg))) {
                    rc = -ECANCELED;
                    break;
                }
            }
            const tsdb_label *labels;
            size_t nl;
            if (tsdb_series_labels(ctx->db, id, &labels, &nl)) continue;
            const char *names[64], *values[64];
            if (nl > 64) continue;
            for (size_t i = 0; i < nl; i++) {
                names[i] = labels[i].name;
                values[i] = labels[i].value;
            }
            if (!query_match(e, names, values, nl)) continue;
            int64_t first, last;
            int got = tsdb_eval_step(ctx->db, id, start_ms, step_ms, nsteps, QUERY_LOOKBACK_MS, v,
                                     &first, &last);
            if (got < 0) {
                rc = got;
                break;
            }
            size_t have = (size_t)got, from_store = have, from_prom = 0;
            if (nps) {
                size_t keylen;
                char *key = label_key((char *const *)names, (char *const *)values, nl, &keylen);
                if (!key) {
                    rc = -ENOMEM;
                    break;
                }
                /* The store wins over the span it covers, [first point, last point + step);
                 * outside it Prometheus's values are used where it has them, so a stale
                 * store value carried by the lookback does not hide fresher history. */
                for (size_t i = 0; i < nps; i++)
                    if (!ps[i].used && ps[i].keylen == keylen && !memcmp(ps[i].key, key, keylen)) {
                        ps[i].used = 1;
                        for (size_t k = 0; k < nsteps; k++) {
                            int64_t t = start_ms + (int64_t)k * step_ms;
                            int inside = t >= first && t < last + step_ms;
                            if (isnan(ps[i].v[k]) || (inside && !isnan(v[k]))) continue;
                            if (isnan(v[k]))
                                have++;
                            else
                                from_store--;
                            from_prom++;
                            v[k] = ps[i].v[k];
                        }
                        break;
                    }
                free(key);
            }
            if (have) {
                r->store_points += from_store;
                r->prom_points += from_prom;
                rc = fold(&c, (char *const *)names, (char *const *)values, nl, v);
            }
        }
    }
    for (size_t i = 0; i < nps && !rc; i++)
        if (!ps[i].used) {
            for (size_t k = 0; k < nsteps; k++)
                r->prom_points += !isnan(ps[i].v[k]);
            rc = fold(&c, ps[i].names, ps[i].values, ps[i].nlabels, ps[i].v);
        }
    int frc = groups_finish(&c);
    if (!rc) rc = frc;
    free(v);
    if (rc == -E2BIG) {
        snprintf(err, errlen,
                 "query processing would load too many samples into memory "
                 "(more than %d series x steps); narrow the selector, aggregate "
                 "with sum/avg by, or use a larger step",
                 QUERY_MAX_SAMPLES);
    } else if (rc == -ETIMEDOUT)
        snprintf(err, errlen, "query timed out in query execution");
    else if (rc == -ECANCELED)
        snprintf(err, errlen, "query cancelled (client gone or shutting down)");
    else if (rc)
        snprintf(err, errlen, "query failed: %s", strerror(-rc));
    else if (r->n > 1)
        qsort(r->s, r->n, sizeof *r->s, cmp_series);
out:
    for (size_t i = 0; i < nps; i++)
        rseries_fini(&ps[i]);
    free(ps);
    query_expr_free(e);
    if (rc) query_result_fini(r);
    return rc;
}

/* {"metric":{"name":"value",...}  -- the caller continues the object */
static void sb_metric(sbuf *b, const query_series *s) {
    sb_str(b, "{\"metric\":{");
    for (size_t k = 0; k < s->nlabels; k++) {
        if (k) sb_put(b, ",", 1);
        sb_quoted(b, s->names[k], 1);
        sb_put(b, ":", 1);
        sb_quoted(b, s->values[k], 1);
    }
}

/* closes result and data, adds the warning if any, closes the response */
static char *sb_result_done(sbuf *b, const query_result *r) {
    sb_str(b, "]}");
    if (r->warning[0]) {
        sb_str(b, ",\"warnings\":[");
        sb_quoted(b, r->warning, 1);
        sb_str(b, "]");
    }
    sb_str(b, "}");
    return sb_done(b);
}

/* "no value at this step": the engine's marker, or any NaN in the selector subset's results */
static int no_value(const query_result *r, double v) {
    return r->engine ? query_is_absent(v) : isnan(v);
}

static void sb_point(sbuf *b, int64_t ts, double v) {
    char tbuf[48], vbuf[64];
    format_ts(ts, tbuf, sizeof tbuf);
    query_format_value(v, vbuf, sizeof vbuf);
    sb_put(b, "[", 1);
    sb_str(b, tbuf);
    sb_put(b, ",\"", 2);
    sb_str(b, vbuf);
    sb_put(b, "\"]", 2);
}

static void sb_raw_matrix(sbuf *b, const query_result *r) {
    sb_str(b, "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[");
    for (size_t i = 0; i < r->n; i++) {
        const query_series *s = &r->s[i];
        if (i) sb_put(b, ",", 1);
        sb_metric(b, s);
        sb_str(b, "},\"values\":[");
        for (size_t k = 0; k < s->npts; k++) {
            if (k) sb_put(b, ",", 1);
            sb_point(b, s->ts[k], s->v[k]);
        }
        sb_str(b, "]}");
    }
}

char *query_result_json(const query_result *r) {
    sbuf b = {0};
    if (r->type == QUERY_RESULT_MATRIX_RAW) {
        sb_raw_matrix(&b, r);
        return sb_result_done(&b, r);
    }
    sb_str(&b, "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[");
    int firsts = 1;
    for (size_t i = 0; i < r->n; i++) {
        const query_series *s = &r->s[i];
        size_t have = 0;
        for (size_t t = 0; t < r->nsteps; t++)
            have += !no_value(r, s->v[t]);
        if (!have && r->engine) continue;
        if (!firsts) sb_put(&b, ",", 1);
        firsts = 0;
        sb_metric(&b, s);
        sb_str(&b, "},\"values\":[");
        int first = 1;
        for (size_t t = 0; t < r->nsteps; t++) {
            if (no_value(r, s->v[t])) continue;
            if (!first) sb_put(&b, ",", 1);
            first = 0;
            sb_point(&b, r->start_ms + (int64_t)t * r->step_ms, s->v[t]);
        }
        sb_str(&b, "]}");
    }
    return sb_result_done(&b, r);
}

char *query_error_json(const char *type, const char *msg) {
    sbuf b = {0};
    sb_str(&b, "{\"status\":\"error\",\"errorType\":");
    sb_quoted(&b, type, 1);
    sb_str(&b, ",\"error\":");
    sb_quoted(&b, msg, 1);
    sb_str(&b, "}");
    return sb_done(&b);
}

char *query_result_vector_json(const query_result *r) {
    sbuf b = {0};
    if (r->type == QUERY_RESULT_MATRIX_RAW) {
        sb_raw_matrix(&b, r);
        return sb_result_done(&b, r);
    }
    if (r->type == QUERY_RESULT_SCALAR || r->type == QUERY_RESULT_STRING) {
        sb_str(&b, r->type == QUERY_RESULT_SCALAR
                       ? "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":"
                       : "{\"status\":\"success\",\"data\":{\"resultType\":\"string\",\"result\":");
        char tbuf[48];
        format_ts(r->start_ms, tbuf, sizeof tbuf);
        sb_put(&b, "[", 1);
        sb_str(&b, tbuf);
        sb_put(&b, ",", 1);
        if (r->type == QUERY_RESULT_STRING)
            sb_quoted(&b, r->str ? r->str : "", 1);
        else {
            char vbuf[64];
            query_format_value(r->n && r->nsteps ? r->s[0].v[0] : NAN, vbuf, sizeof vbuf);
            sb_put(&b, "\"", 1);
            sb_str(&b, vbuf);
            sb_put(&b, "\"", 1);
        }
        sb_str(&b, "]");
        /* sb_result_done closes with "]}": the scalar has no array to close */
        sb_str(&b, "}");
        if (r->warning[0]) {
            sb_str(&b, ",\"warnings\":[");
            sb_quoted(&b, r->warning, 1);
            sb_str(&b, "]");
        }
        sb_str(&b, "}");
        return sb_done(&b);
    }
    sb_str(&b, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[");
    char tbuf[48], vbuf[64];
    format_ts(r->start_ms, tbuf, sizeof tbuf);
    int first = 1;
    for (size_t i = 0; i < r->n; i++) {
        const query_series *s = &r->s[i];
        if (!r->nsteps || no_value(r, s->v[0])) continue;
        if (!first) sb_put(&b, ",", 1);
        first = 0;
        sb_metric(&b, s);
        query_format_value(s->v[0], vbuf, sizeof vbuf);
        sb_str(&b, "},\"value\":[");
        sb_str(&b, tbuf);
        sb_str(&b, ",\"");
        sb_str(&b, vbuf);
        sb_str(&b, "\"]}");
    }
    return sb_result_done(&b, r);
}

/* ,"warnings":["..."] when there is one */
static void sb_warning(sbuf *b, const char *w) {
    if (!w || !w[0]) return;
    sb_str(b, ",\"warnings\":[");
    sb_quoted(b, w, 1);
    sb_put(b, "]", 1);
}

char *query_series_json(query_result *r) {
    if (r->n > 1) qsort(r->s, r->n, sizeof *r->s, cmp_series);
    sbuf b = {0};
    sb_str(&b, "{\"status\":\"success\",\"data\":[");
    for (size_t i = 0; i < r->n; i++) {
        const query_series *s = &r->s[i];
        if (i && !cmp_series(&r->s[i - 1], s)) continue; /* the same label set twice */
        sb_str(&b, i ? ",{" : "{");
        for (size_t k = 0; k < s->nlabels; k++) {
            if (k) sb_put(&b, ",", 1);
            sb_quoted(&b, s->names[k], 1);
            sb_put(&b, ":", 1);
            sb_quoted(&b, s->values[k], 1);
        }
        sb_put(&b, "}", 1);
    }
    sb_put(&b, "]", 1);
    sb_warning(&b, r->warning);
    sb_put(&b, "}", 1);
    return sb_done(&b);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *query_strings_json(const char **v, size_t n, const char *warning) {
    if (n > 1) qsort(v, n, sizeof *v, cmp_str);
    sbuf b = {0};
    sb_str(&b, "{\"status\":\"success\",\"data\":[");
    for (size_t i = 0; i < n; i++) {
        if (i && !strcmp(v[i], v[i - 1])) continue;
        if (i) sb_put(&b, ",", 1);
        sb_quoted(&b, v[i], 1);
    }
    sb_put(&b, "]", 1);
    sb_warning(&b, warning);
    sb_put(&b, "}", 1);
    return sb_done(&b);
}
