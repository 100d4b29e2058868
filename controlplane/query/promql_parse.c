/* promql_parse.c: PromQL lexer and recursive-descent/precedence parser to pq_node trees, with
 * Prometheus's type checks. Bounded: text length, nesting depth, node count. */
#include "query/promql.h"
#include "query/promql_funcs.h"
#include "query/query.h"
#include "query/re.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct P {
    const char *s;
    size_t i, len;
    char *err;
    size_t errlen;
    int depth;
    size_t nodes;
    int failed;
} P;

static int perr(P *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(P *p, size_t at, const char *fmt, ...) {
    if (p->failed) return -EINVAL;
    p->failed = 1;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "parse error at char %zu: %s", at + 1, msg);
    return -EINVAL;
}

static void ws(P *p) {
    for (;;) {
        while (p->i < p->len && isspace((unsigned char)p->s[p->i]))
            p->i++;
        if (p->i < p->len && p->s[p->i] == '#') { /* comment to end of line */
            while (p->i < p->len && p->s[p->i] != '\n')
                p->i++;
            continue;
        }
        return;
    }
}

static int peek(P *p) {
    ws(p);
    return p->i < p->len ? (unsigned char)p->s[p->i] : 0;
}

static int accept(P *p, const char *tok) {
    ws(p);
    size_t n = strlen(tok);
    if (p->i + n <= p->len && !memcmp(p->s + p->i, tok, n)) {
        p->i += n;
        return 1;
    }
    return 0;
}

static int expect(P *p, const char *tok, const char *where) {
    if (accept(p, tok)) return 0;
    const char *found = p->i < p->len ? p->s + p->i : "end of input";
    return perr(p, p->i, "expected \"%s\" %s, found \"%.20s\"", tok, where, found);
}

static int is_id0(int c) {
    return isalpha(c) || c == '_' || c == ':';
}
static int is_id(int c) {
    return isalnum(c) || c == '_' || c == ':';
}

/* The identifier at the cursor (not consumed), length in *n; 0 if none. */
static size_t peek_ident(P *p) {
    ws(p);
    size_t b = p->i, e = b;
    if (e >= p->len || !is_id0((unsigned char)p->s[e])) return 0;
    while (e < p->len && is_id((unsigned char)p->s[e]))
        e++;
    return e - b;
}

static int ident_is(P *p, size_t n, const char *kw) {
    return strlen(kw) == n && !strncasecmp(p->s + p->i, kw, n);
}

static char *take_ident(P *p, size_t n) {
    char *r = strndup(p->s + p->i, n);
    p->i += n;
    return r;
}

static pq_node *node(P *p, int kind, size_t pos) {
    if (++p->nodes > PROMQL_MAX_NODES) {
        perr(p, pos, "the query has more than %d nodes", PROMQL_MAX_NODES);
        return NULL;
    }
    pq_node *n = calloc(1, sizeof *n);
    if (!n) {
        perr(p, pos, "out of memory");
        return NULL;
    }
    n->kind = kind;
    n->pos = pos;
    return n;
}

static void free_strs(char **v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void promql_free(pq_node *n) {
    if (!n) return;
    free(n->str);
    for (size_t i = 0; i < n->nm; i++) {
        free(n->m[i].name);
        free(n->m[i].value);
        tide_re_free(n->m[i].re);
    }
    free(n->m);
    free_strs(n->labels, n->nlabels);
    free_strs(n->include, n->ninclude);
    for (size_t i = 0; i < n->nargs; i++)
        promql_free(n->args[i]);
    free(n->args);
    promql_free(n->lhs);
    promql_free(n->rhs);
    free(n);
}

int promql_walk_selectors(const pq_node *n, int (*fn)(const pq_node *, void *), void *arg) {
    if (!n) return 0;
    if (n->kind == PQ_SEL) return fn(n, arg);
    int r;
    for (size_t i = 0; i < n->nargs; i++)
        if ((r = promql_walk_selectors(n->args[i], fn, arg))) return r;
    if ((r = promql_walk_selectors(n->lhs, fn, arg))) return r;
    return promql_walk_selectors(n->rhs, fn, arg);
}

/* ---- literals ---- */

static int parse_string(P *p, char **out) {
    ws(p);
    size_t start = p->i;
    char q = p->s[p->i];
    if (q != '"' && q != '\'' && q != '`') return perr(p, p->i, "expected a string");
    p->i++;
    size_t cap = 32, n = 0;
    char *b = malloc(cap);
    if (!b) return perr(p, start, "out of memory");
    for (;;) {
        if (p->i >= p->len) {
            free(b);
            return perr(p, start, "unterminated quoted string");
        }
        unsigned char c = (unsigned char)p->s[p->i++];
        unsigned char tmp[4];
        size_t tn = 1;
        tmp[0] = c;
        if (c == (unsigned char)q) break;
        if (q != '`' && c == '\n') {
            free(b);
            return perr(p, start, "unterminated quoted string");
        }
        if (q != '`' && c == '\\') {
            if (p->i >= p->len) {
                free(b);
                return perr(p, start, "unterminated quoted string");
            }
            char e = p->s[p->i++];
            unsigned long cp = 0;
            int hex = 0;
            switch (e) {
            case 'a':
                tmp[0] = '\a';
                break;
            case 'b':
                tmp[0] = '\b';
                break;
            case 'f':
                tmp[0] = '\f';
                break;
            case 'n':
                tmp[0] = '\n';
                break;
            case 'r':
                tmp[0] = '\r';
                break;
            case 't':
                tmp[0] = '\t';
                break;
            case 'v':
                tmp[0] = '\v';
                break;
            case '\\':
                tmp[0] = '\\';
                break;
            case '"':
                tmp[0] = '"';
                break;
            case '\'':
                tmp[0] = '\'';
                break;
            case 'x':
                hex = 2;
                break;
            case 'u':
                hex = 4;
                break;
            case 'U':
                hex = 8;
                break;
            default:
                if (e >= '0' && e <= '7' && p->i + 1 < p->len && p->s[p->i] >= '0' &&
                    p->s[p->i] <= '7' && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '7') {
                    cp = (unsigned long)((e - '0') * 64 + (p->s[p->i] - '0') * 8 +
                                         (p->s[p->i + 1] - '0'));
                    p->i += 2;
                    if (cp > 255) {
                        free(b);
                        return perr(p, p->i, "octal escape value > 255");
                    }
                    tmp[0] = (unsigned char)cp;
                    break;
                }
                free(b);
                return perr(p, p->i - 2, "unknown escape sequence \\%c", e ? e : '0');
            }
            if (hex) {
                for (int k = 0; k < hex; k++) {
                    int d = p->i < p->len ? (unsigned char)p->s[p->i] : 0;
                    if (!isxdigit(d)) {
                        free(b);
                        return perr(p, p->i, "invalid hex escape");
                    }
                    cp = cp * 16 + (unsigned long)(isdigit(d) ? d - '0' : (tolower(d) - 'a' + 10));
                    p->i++;
                }
                if (hex == 2)
                    tmp[0] = (unsigned char)cp;
                else {
                    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                        free(b);
                        return perr(p, p->i, "invalid Unicode code point in escape");
                    }
                    if (cp < 0x80)
                        tmp[0] = (unsigned char)cp;
                    else if (cp < 0x800) {
                        tmp[0] = (unsigned char)(0xC0 | (cp >> 6));
                        tmp[1] = (unsigned char)(0x80 | (cp & 0x3F));
                        tn = 2;
                    } else if (cp < 0x10000) {
                        tmp[0] = (unsigned char)(0xE0 | (cp >> 12));
                        tmp[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                        tmp[2] = (unsigned char)(0x80 | (cp & 0x3F));
                        tn = 3;
                    } else {
                        tmp[0] = (unsigned char)(0xF0 | (cp >> 18));
                        tmp[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
                        tmp[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                        tmp[3] = (unsigned char)(0x80 | (cp & 0x3F));
                        tn = 4;
                    }
                }
            }
        }
        if (n + tn + 1 > cap) {
            cap = cap * 2 + tn;
            char *nb = realloc(b, cap);
            if (!nb) {
                free(b);
                return perr(p, start, "out of memory");
            }
            b = nb;
        }
        memcpy(b + n, tmp, tn);
        n += tn;
    }
    if (memchr(b, 0, n)) {
        free(b);
        return perr(p, start, "a string may not contain a NUL byte");
    }
    b[n] = 0;
    *out = b;
    return 0;
}

/* A duration literal (1h30m, 5m, 500ms, 2d, 1w, 1y); 0 with *ms or -EINVAL. */
static int parse_duration_lit(P *p, int64_t *ms) {
    ws(p);
    size_t start = p->i;
    int64_t total = 0;
    int any = 0;
    while (p->i < p->len && isdigit((unsigned char)p->s[p->i])) {
        int64_t n = 0;
        while (p->i < p->len && isdigit((unsigned char)p->s[p->i])) {
            n = n * 10 + (p->s[p->i++] - '0');
            if (n > 1000000000000LL) return perr(p, start, "duration out of range");
        }
        int64_t unit;
        const char *u = p->s + p->i;
        size_t left = p->len - p->i;
        if (left >= 2 && u[0] == 'm' && u[1] == 's')
            unit = 1, p->i += 2;
        else if (left && *u == 's')
            unit = 1000, p->i++;
        else if (left && *u == 'm')
            unit = 60000, p->i++;
        else if (left && *u == 'h')
            unit = 3600000, p->i++;
        else if (left && *u == 'd')
            unit = 86400000, p->i++;
        else if (left && *u == 'w')
            unit = 7 * 86400000LL, p->i++;
        else if (left && *u == 'y')
            unit = 365 * 86400000LL, p->i++;
        else
            return perr(p, start, "bad duration: a number needs a unit (ms s m h d w y)");
        if (n > INT64_MAX / unit / 4 || total > INT64_MAX / 4)
            return perr(p, start, "duration out of range");
        total += n * unit;
        any = 1;
    }
    if (!any) return perr(p, start, "expected a duration");
    *ms = total;
    return 0;
}

/* A number literal at the cursor; 1 if one was read. */
static int number_lit(P *p, double *v) {
    ws(p);
    const char *s = p->s + p->i;
    size_t n = peek_ident(p);
    if (n && (ident_is(p, n, "inf") || ident_is(p, n, "nan"))) {
        *v = ident_is(p, n, "inf") ? INFINITY : NAN;
        p->i += n;
        return 1;
    }
    if (!(isdigit((unsigned char)s[0]) || (s[0] == '.' && isdigit((unsigned char)s[1])))) return 0;
    /* a duration (5m) is not a number here: callers parse those where they are expected */
    char buf[128];
    size_t k = 0;
    while (p->i + k < p->len && k < sizeof buf - 1 &&
           (isalnum((unsigned char)s[k]) || s[k] == '.' ||
            ((s[k] == '+' || s[k] == '-') && k && (s[k - 1] == 'e' || s[k - 1] == 'E') &&
             !(s[0] == '0' && (s[1] == 'x' || s[1] == 'X')))))
        k++;
    memcpy(buf, s, k);
    buf[k] = 0;
    char *end;
    double d = strtod(buf, &end);
    if (*end || end == buf) {
        perr(p, p->i, "bad number or duration syntax: \"%s\"", buf);
        return -1;
    }
    p->i += k;
    *v = d;
    return 1;
}

/* ---- selectors ---- */

static int add_matcher(P *p, pq_node *n, char *name, int op, char *value, size_t at) {
    query_matcher *nm = realloc(n->m, (n->nm + 1) * sizeof *nm);
    if (!nm) {
        free(name);
        free(value);
        return perr(p, at, "out of memory");
    }
    n->m = nm;
    query_matcher *m = &n->m[n->nm++];
    memset(m, 0, sizeof *m);
    m->name = name;
    m->value = value;
    m->op = op;
    if (op == QUERY_RE || op == QUERY_NRE) {
        char why[200];
        m->re = tide_re_new(value, why, sizeof why);
        if (!m->re)
            return perr(p, at, "invalid regular expression \"%.200s\" for label %s: %s", value,
                        name, why);
    }
    return 0;
}

static int matcher_empty(const query_matcher *m) {
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

static int label_matchers(P *p, pq_node *n) {
    /* at '{' */
    p->i++;
    for (;;) {
        if (accept(p, "}")) break;
        size_t at = p->i;
        size_t k = peek_ident(p);
        if (!k) return perr(p, p->i, "expected a label name or \"}\" in the label matchers");
        char *name = take_ident(p, k);
        if (!name) return perr(p, at, "out of memory");
        int op;
        if (accept(p, "=~"))
            op = QUERY_RE;
        else if (accept(p, "!~"))
            op = QUERY_NRE;
        else if (accept(p, "!="))
            op = QUERY_NE;
        else if (accept(p, "="))
            op = QUERY_EQ;
        else {
            free(name);
            return perr(p, p->i, "expected a label matching operator (= != =~ !~) after %.*s",
                        (int)k, p->s + at);
        }
        char *value;
        if (parse_string(p, &value)) {
            free(name);
            return -EINVAL;
        }
        if (!strcmp(name, "__name__") && n->nm && !strcmp(n->m[0].name, "__name__") && n->str) {
            free(name);
            free(value);
            return perr(p, at, "metric name must not be set twice");
        }
        if (add_matcher(p, n, name, op, value, at)) return -EINVAL;
        if (accept(p, ",")) continue;
        if (accept(p, "}")) break;
        return perr(p, p->i, "expected \",\" or \"}\" in the label matchers");
    }
    return 0;
}

static int selector(P *p, pq_node *n, char *metric, size_t at) {
    n->kind = PQ_SEL;
    n->type = PQ_T_VECTOR;
    if (metric) {
        n->str = strdup(metric);
        char *name = strdup("__name__");
        if (!n->str || !name) {
            free(name);
            free(metric);
            return perr(p, at, "out of memory");
        }
        if (add_matcher(p, n, name, QUERY_EQ, metric, at)) return -EINVAL;
    }
    if (peek(p) == '{' && label_matchers(p, n)) return -EINVAL;
    int ok = 0;
    for (size_t k = 0; k < n->nm; k++)
        ok |= !matcher_empty(&n->m[k]);
    if (!ok) return perr(p, at, "vector selector must contain at least one non-empty matcher");
    return 0;
}

/* ---- expressions ---- */

static pq_node *expr(P *p, int minprec);

static int label_list(P *p, char ***out, size_t *n) {
    if (expect(p, "(", "before the label list")) return -EINVAL;
    for (;;) {
        if (accept(p, ")")) return 0;
        size_t k = peek_ident(p);
        if (!k) return perr(p, p->i, "expected a label name in the grouping list");
        if (*n >= 256) return perr(p, p->i, "more than 256 labels in a grouping list");
        char **nv = realloc(*out, (*n + 1) * sizeof *nv);
        if (!nv) return perr(p, p->i, "out of memory");
        *out = nv;
        if (!(nv[*n] = take_ident(p, k))) return perr(p, p->i, "out of memory");
        (*n)++;
        if (accept(p, ",")) continue;
        if (accept(p, ")")) return 0;
        return perr(p, p->i, "expected \",\" or \")\" in the grouping list");
    }
}

static const char *type_name(int t) {
    switch (t) {
    case PQ_T_SCALAR:
        return "scalar";
    case PQ_T_VECTOR:
        return "instant vector";
    case PQ_T_MATRIX:
        return "range vector";
    default:
        return "string";
    }
}

static pq_node *call(P *p, const pq_func *f, size_t at) {
    pq_node *n = node(p, PQ_CALL, at);
    if (!n) return NULL;
    n->func = (int)(f - pq_funcs);
    n->type = f->ret;
    /* at '(' */
    p->i++;
    if (!accept(p, ")")) {
        for (;;) {
            if (n->nargs >= 64) {
                perr(p, p->i, "too many arguments");
                goto fail;
            }
            pq_node *a = expr(p, 0);
            if (!a) goto fail;
            pq_node **na = realloc(n->args, (n->nargs + 1) * sizeof *na);
            if (!na) {
                promql_free(a);
                perr(p, at, "out of memory");
                goto fail;
            }
            n->args = na;
            n->args[n->nargs++] = a;
            if (accept(p, ",")) continue;
            if (expect(p, ")", "after the function arguments")) goto fail;
            break;
        }
    }
    if (n->nargs < (size_t)f->minargs || (f->maxargs >= 0 && n->nargs > (size_t)f->maxargs)) {
        perr(p, at, "expected %d argument(s) in call to \"%s\", got %zu", f->minargs, f->name,
             n->nargs);
        goto fail;
    }
    for (size_t i = 0; i < n->nargs; i++) {
        int want = i < (size_t)f->ntypes ? f->args[i] : f->args[f->ntypes - 1];
        int got = n->args[i]->type;
        if (got != want) {
            perr(p, n->args[i]->pos, "expected type %s in call to function \"%s\", got %s",
                 type_name(want), f->name, type_name(got));
            goto fail;
        }
    }
    return n;
fail:
    promql_free(n);
    return NULL;
}

static pq_node *aggregation(P *p, int op, size_t at) {
    pq_node *n = node(p, PQ_AGG, at);
    if (!n) return NULL;
    n->op = op;
    n->type = PQ_T_VECTOR;
    size_t k = peek_ident(p);
    int grouped = 0;
    if (k && (ident_is(p, k, "by") || ident_is(p, k, "without"))) {
        n->without = ident_is(p, k, "without");
        p->i += k;
        if (label_list(p, &n->labels, &n->nlabels)) goto fail;
        grouped = 1;
    }
    if (expect(p, "(", "after the aggregation")) goto fail;
    int param = op == PQ_TOPK || op == PQ_BOTTOMK || op == PQ_QUANTILE || op == PQ_COUNT_VALUES;
    if (param) {
        if (!(n->lhs = expr(p, 0))) goto fail;
        if (expect(p, ",", "after the aggregation's parameter")) goto fail;
    }
    if (!(n->rhs = expr(p, 0))) goto fail;
    if (expect(p, ")", "after the aggregation's argument")) goto fail;
    k = peek_ident(p);
    if (!grouped && k && (ident_is(p, k, "by") || ident_is(p, k, "without"))) {
        n->without = ident_is(p, k, "without");
        p->i += k;
        if (label_list(p, &n->labels, &n->nlabels)) goto fail;
    }
    if (n->rhs->type != PQ_T_VECTOR) {
        perr(p, n->rhs->pos, "expected type instant vector in aggregation expression, got %s",
             type_name(n->rhs->type));
        goto fail;
    }
    if (param) {
        int want = op == PQ_COUNT_VALUES ? PQ_T_STRING : PQ_T_SCALAR;
        if (n->lhs->type != want) {
            perr(p, n->lhs->pos, "expected type %s in aggregation parameter, got %s",
                 type_name(want), type_name(n->lhs->type));
            goto fail;
        }
    }
    return n;
fail:
    promql_free(n);
    return NULL;
}

static const struct {
    const char *name;
    int op;
} aggs[] = {{"sum", PQ_SUM},         {"avg", PQ_AVG},           {"min", PQ_MIN},
            {"max", PQ_MAX},         {"count", PQ_COUNT},       {"stddev", PQ_STDDEV},
            {"stdvar", PQ_STDVAR},   {"group", PQ_GROUP},       {"topk", PQ_TOPK},
            {"bottomk", PQ_BOTTOMK}, {"quantile", PQ_QUANTILE}, {"count_values", PQ_COUNT_VALUES}};

/* @ and offset after a selector, subquery or parenthesised expression */
static int modifiers(P *p, pq_node *n) {
    for (;;) {
        size_t k = peek_ident(p);
        if (k && ident_is(p, k, "offset")) {
            size_t at = p->i;
            p->i += k;
            if (n->offset_ms) return perr(p, at, "offset may not be set multiple times");
            int neg = accept(p, "-");
            int64_t d;
            if (parse_duration_lit(p, &d)) return -EINVAL;
            n->offset_ms = neg ? -d : d;
            continue;
        }
        if (peek(p) == '@') {
            size_t at = p->i;
            p->i++;
            if (n->at) return perr(p, at, "@ <timestamp> may not be set multiple times");
            size_t kk = peek_ident(p);
            if (kk && (ident_is(p, kk, "start") || ident_is(p, kk, "end"))) {
                n->at = ident_is(p, kk, "start") ? PQ_AT_START : PQ_AT_END;
                p->i += kk;
                if (expect(p, "(", "after start/end") || expect(p, ")", "after start(/end("))
                    return -EINVAL;
                continue;
            }
            int neg = accept(p, "-");
            double v;
            int r = number_lit(p, &v);
            if (r <= 0) return r < 0 ? -EINVAL : perr(p, p->i, "expected a timestamp after @");
            if (neg) v = -v;
            if (!isfinite(v) || fabs(v) > 9.2e15)
                return perr(p, at, "timestamp out of bounds for @ modifier: %g", v);
            n->at = PQ_AT_TIME;
            n->at_ms = (int64_t)llround(v * 1000);
            continue;
        }
        return 0;
    }
}

static pq_node *primary(P *p) {
    int c = peek(p);
    size_t at = p->i;
    if (!c) {
        perr(p, at, "unexpected end of input");
        return NULL;
    }
    pq_node *n = NULL;
    if (c == '(') {
        p->i++;
        pq_node *in = expr(p, 0);
        if (!in) return NULL;
        if (expect(p, ")", "to close the parenthesis")) {
            promql_free(in);
            return NULL;
        }
        n = node(p, PQ_PAREN, at);
        if (!n) {
            promql_free(in);
            return NULL;
        }
        n->lhs = in;
        n->type = in->type;
    } else if (c == '"' || c == '\'' || c == '`') {
        n = node(p, PQ_STR, at);
        if (!n) return NULL;
        n->type = PQ_T_STRING;
        if (parse_string(p, &n->str)) goto fail;
        return n;
    } else if (c == '{') {
        n = node(p, PQ_SEL, at);
        if (!n || selector(p, n, NULL, at)) goto fail;
    } else {
        double v;
        int r = number_lit(p, &v);
        if (r < 0) return NULL;
        if (r) {
            n = node(p, PQ_NUM, at);
            if (!n) return NULL;
            n->type = PQ_T_SCALAR;
            n->num = v;
            return n;
        }
        size_t k = peek_ident(p);
        if (!k) {
            perr(p, at, "unexpected character: '%c'", isprint(c) ? c : '?');
            return NULL;
        }
        size_t save = p->i;
        p->i += k;
        int paren = peek(p) == '(';
        int grouping = 0;
        {
            size_t k2 = peek_ident(p);
            grouping = k2 && (ident_is(p, k2, "by") || ident_is(p, k2, "without"));
        }
        p->i = save;
        for (size_t a = 0; a < sizeof aggs / sizeof *aggs; a++)
            if (ident_is(p, k, aggs[a].name) && (paren || grouping)) {
                p->i += k;
                n = aggregation(p, aggs[a].op, at);
                if (!n) return NULL;
                goto post;
            }
        if (paren) {
            const pq_func *f = pq_func_find(p->s + p->i, k);
            if (!f) {
                perr(p, at, "unknown function with name \"%.*s\"", (int)k, p->s + p->i);
                return NULL;
            }
            p->i += k;
            n = call(p, f, at);
            if (!n) return NULL;
            goto post;
        }
        static const char *const kw[] = {"by",         "without",     "on",    "ignoring",
                                         "group_left", "group_right", "bool",  "offset",
                                         "and",        "or",          "unless"};
        for (size_t kk = 0; kk < sizeof kw / sizeof *kw; kk++)
            if (ident_is(p, k, kw[kk]) && peek(p) != '{') {
                perr(p, at, "unexpected keyword \"%s\"", kw[kk]);
                return NULL;
            }
        char *metric = take_ident(p, k);
        if (!metric) {
            perr(p, at, "out of memory");
            return NULL;
        }
        n = node(p, PQ_SEL, at);
        if (!n) {
            free(metric);
            return NULL;
        }
        if (selector(p, n, metric, at)) goto fail;
    }
post:
    /* postfix: [range] / [range:step], offset, @ */
    for (;;) {
        if (peek(p) == '[') {
            size_t b = p->i++;
            int64_t range, step = 0;
            if (parse_duration_lit(p, &range)) goto fail;
            if (range <= 0) {
                perr(p, b, "range must be positive");
                goto fail;
            }
            int subq = accept(p, ":");
            if (subq && peek(p) != ']' && parse_duration_lit(p, &step)) goto fail;
            if (expect(p, "]", "to close the range")) goto fail;
            if (!subq) {
                if (n->kind != PQ_SEL || n->range_ms || n->offset_ms || n->at) {
                    perr(p, b, "ranges only allowed for vector selectors (use a subquery: [%s:])",
                         "range");
                    goto fail;
                }
                n->range_ms = range;
                n->type = PQ_T_MATRIX;
            } else {
                if (n->type != PQ_T_VECTOR) {
                    perr(p, b, "subquery is only allowed on instant vector, got %s",
                         type_name(n->type));
                    goto fail;
                }
                pq_node *s = node(p, PQ_SUBQ, b);
                if (!s) goto fail;
                s->lhs = n;
                s->range_ms = range;
                s->step_ms = step;
                s->type = PQ_T_MATRIX;
                n = s;
            }
            continue;
        }
        size_t k = peek_ident(p);
        if ((k && ident_is(p, k, "offset")) || peek(p) == '@') {
            if (n->kind != PQ_SEL && n->kind != PQ_SUBQ) {
                perr(p, p->i, "offset and @ modifiers must follow a selector or subquery");
                goto fail;
            }
            if (modifiers(p, n)) goto fail;
            continue;
        }
        break;
    }
    return n;
fail:
    promql_free(n);
    return NULL;
}

static pq_node *unary(P *p) {
    if (++p->depth > PROMQL_MAX_DEPTH) {
        perr(p, p->i, "the query nests deeper than %d levels", PROMQL_MAX_DEPTH);
        return NULL;
    }
    pq_node *r;
    int c = peek(p);
    if (c == '-' || c == '+') {
        size_t at = p->i++;
        /* unary minus binds less tightly than ^: -2^2 = -4 */
        pq_node *in = expr(p, 6);
        if (!in) {
            p->depth--;
            return NULL;
        }
        if (in->type != PQ_T_SCALAR && in->type != PQ_T_VECTOR) {
            perr(p, at,
                 "unary expression only allowed on expressions of type scalar or instant vector, "
                 "got %s",
                 type_name(in->type));
            promql_free(in);
            p->depth--;
            return NULL;
        }
        if (c == '+') {
            r = in;
        } else if (in->kind == PQ_NUM) {
            in->num = -in->num;
            r = in;
        } else {
            r = node(p, PQ_NEG, at);
            if (!r) {
                promql_free(in);
                p->depth--;
                return NULL;
            }
            r->lhs = in;
            r->type = in->type;
        }
    } else
        r = primary(p);
    p->depth--;
    return r;
}

/* binary operator at the cursor: op and precedence, length consumed in *len; 0 if none */
static int binop_at(P *p, int *prec, size_t *len) {
    ws(p);
    const char *s = p->s + p->i;
    size_t left = p->len - p->i;
    static const struct {
        const char *t;
        int op, prec;
    } ops[] = {{"==", PQ_EQL, 3}, {"!=", PQ_NEQ, 3}, {">=", PQ_GTE, 3}, {"<=", PQ_LTE, 3},
               {">", PQ_GTR, 3},  {"<", PQ_LSS, 3},  {"+", PQ_ADD, 4},  {"-", PQ_SUB, 4},
               {"*", PQ_MUL, 5},  {"/", PQ_DIV, 5},  {"%", PQ_MOD, 5},  {"^", PQ_POW, 6}};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        size_t n = strlen(ops[i].t);
        if (left >= n && !memcmp(s, ops[i].t, n)) {
            *prec = ops[i].prec;
            *len = n;
            return ops[i].op;
        }
    }
    size_t k = peek_ident(p);
    if (!k) return 0;
    *len = k;
    if (ident_is(p, k, "and")) return *prec = 2, PQ_AND;
    if (ident_is(p, k, "unless")) return *prec = 2, PQ_UNLESS;
    if (ident_is(p, k, "or")) return *prec = 1, PQ_OR;
    if (ident_is(p, k, "atan2")) return *prec = 5, PQ_ATAN2;
    return 0;
}

static int is_cmp(int op) {
    return op >= PQ_EQL && op <= PQ_LTE;
}
static int is_set(int op) {
    return op >= PQ_AND;
}

static pq_node *expr(P *p, int minprec) {
    if (++p->depth > PROMQL_MAX_DEPTH) {
        perr(p, p->i, "the query nests deeper than %d levels", PROMQL_MAX_DEPTH);
        return NULL;
    }
    pq_node *l = unary(p);
    while (l) {
        int prec;
        size_t len;
        size_t at = p->i;
        int op = binop_at(p, &prec, &len);
        if (!op || prec < minprec) break;
        p->i += len;
        pq_node *b = node(p, PQ_BIN, at);
        if (!b) {
            promql_free(l);
            l = NULL;
            break;
        }
        b->op = op;
        b->lhs = l;
        l = b;
        b->card = is_set(op) ? PQ_MANY_MANY : PQ_ONE_ONE;
        size_t k = peek_ident(p);
        if (k && ident_is(p, k, "bool")) {
            if (!is_cmp(op)) {
                perr(p, p->i, "bool modifier can only be used on comparison operators");
                goto fail;
            }
            p->i += k;
            b->bool_mod = 1;
            k = peek_ident(p);
        }
        if (k && (ident_is(p, k, "on") || ident_is(p, k, "ignoring"))) {
            b->on = ident_is(p, k, "on");
            b->has_matching = 1;
            p->i += k;
            if (label_list(p, &b->labels, &b->nlabels)) goto fail;
            k = peek_ident(p);
            if (k && (ident_is(p, k, "group_left") || ident_is(p, k, "group_right"))) {
                if (is_set(op)) {
                    perr(p, p->i, "no grouping allowed for \"%.*s\" operation", (int)len,
                         p->s + at);
                    goto fail;
                }
                b->card = ident_is(p, k, "group_left") ? PQ_MANY_ONE : PQ_ONE_MANY;
                p->i += k;
                if (peek(p) == '(' && label_list(p, &b->include, &b->ninclude)) goto fail;
            }
        }
        /* ^ is right-associative: its right side may hold another ^ */
        pq_node *r = expr(p, op == PQ_POW ? prec : prec + 1);
        if (!r) goto fail;
        b->rhs = r;
        int lt = b->lhs->type, rt = r->type;
        if ((lt != PQ_T_SCALAR && lt != PQ_T_VECTOR) || (rt != PQ_T_SCALAR && rt != PQ_T_VECTOR)) {
            perr(p, at, "binary expression must contain only scalar and instant vector types");
            goto fail;
        }
        if (is_set(op) && (lt != PQ_T_VECTOR || rt != PQ_T_VECTOR)) {
            perr(p, at, "set operator \"%.*s\" not allowed in binary scalar expression", (int)len,
                 p->s + at);
            goto fail;
        }
        if (is_cmp(op) && lt == PQ_T_SCALAR && rt == PQ_T_SCALAR && !b->bool_mod) {
            perr(p, at, "comparisons between scalars must use BOOL modifier");
            goto fail;
        }
        if ((lt != PQ_T_VECTOR || rt != PQ_T_VECTOR) && b->has_matching) {
            perr(p, at, "vector matching only allowed between instant vectors");
            goto fail;
        }
        b->type = lt == PQ_T_SCALAR && rt == PQ_T_SCALAR ? PQ_T_SCALAR : PQ_T_VECTOR;
        continue;
    fail:
        promql_free(l);
        l = NULL;
    }
    p->depth--;
    return l;
}

int promql_parse(const char *text, pq_node **out, char *err, size_t errlen) {
    *out = NULL;
    P p = {.s = text, .len = strlen(text), .err = err, .errlen = errlen};
    if (p.len > PROMQL_MAX_QUERY) {
        snprintf(err, errlen, "the query is longer than %d bytes", PROMQL_MAX_QUERY);
        return -EINVAL;
    }
    if (!peek(&p)) {
        snprintf(err, errlen, "parse error: no expression found in input");
        return -EINVAL;
    }
    pq_node *n = expr(&p, 0);
    if (n && peek(&p)) {
        perr(&p, p.i, "unexpected \"%.20s\" after the expression", p.s + p.i);
        promql_free(n);
        n = NULL;
    }
    if (!n) {
        if (!p.failed) snprintf(err, errlen, "parse error");
        return -EINVAL;
    }
    *out = n;
    return 0;
}
