/* cgroup_parse.c: pure parsers for cgroup and /proc text (see cgroup_parse.h). */
#include "collect/cgroup_parse.h"

#include "errmsg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A cursor over lines of a buffer that need not be NUL-terminated. */
typedef struct line_iter {
    const char *p, *end;
    int lineno;
} line_iter;

typedef struct span {
    const char *s;
    size_t n;
} span;

static int next_line(line_iter *it, span *line) {
    if (it->p >= it->end) return 0;
    const char *nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
    const char *stop = nl ? nl : it->end;
    line->s = it->p;
    line->n = (size_t)(stop - it->p);
    it->p = nl ? nl + 1 : it->end;
    it->lineno++;
    return 1;
}

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r';
}

/* Splits the next whitespace-separated token off *rest. Returns 0 when none is left. */
static int next_token(span *rest, span *tok) {
    size_t i = 0;
    while (i < rest->n && is_space(rest->s[i]))
        i++;
    if (i == rest->n) return 0;
    size_t j = i;
    while (j < rest->n && !is_space(rest->s[j]))
        j++;
    tok->s = rest->s + i;
    tok->n = j - i;
    rest->s += j;
    rest->n -= j;
    return 1;
}

static int span_eq(span a, const char *lit) {
    size_t n = strlen(lit);
    return a.n == n && memcmp(a.s, lit, n) == 0;
}

/* Prints at most 32 bytes of a token, for error messages. */
#define TOKFMT "\"%.*s\""
#define TOKARG(t) (int)((t).n > 32 ? 32 : (t).n), (t).s

/* Decimal unsigned 64-bit integer spanning the whole token. Returns 0 or -EINVAL/-ERANGE. */
static int span_u64(span t, uint64_t *out) {
    if (t.n == 0) return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < t.n; i++) {
        char c = t.s[i];
        if (c < '0' || c > '9') return -EINVAL;
        unsigned d = (unsigned)(c - '0');
        if (v > (UINT64_MAX - d) / 10) return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* A finite, non-negative decimal like "12.34" spanning the whole token. */
static int span_double(span t, double *out) {
    char tmp[48];
    if (t.n == 0 || t.n >= sizeof tmp) return -EINVAL;
    for (size_t i = 0; i < t.n; i++)
        if (!((t.s[i] >= '0' && t.s[i] <= '9') || t.s[i] == '.')) return -EINVAL;
    memcpy(tmp, t.s, t.n);
    tmp[t.n] = '\0';
    char *endp = NULL;
    double v = strtod(tmp, &endp);
    if (endp != tmp + t.n) return -EINVAL;
    *out = v;
    return 0;
}

int cgp_parse_u64(const char *buf, size_t len, const char *what, uint64_t *out, char *err,
                  size_t errlen) {
    line_iter it = {buf, buf + len, 0};
    span line, tok, extra;
    if (!next_line(&it, &line) || !next_token(&line, &tok))
        return errmsg(err, errlen, -EINVAL, "%s: empty file", what);
    if (next_token(&line, &extra))
        return errmsg(err, errlen, -EINVAL, "%s line 1: unexpected text after the value: " TOKFMT,
                      what, TOKARG(extra));
    int rc = span_u64(tok, out);
    if (rc == -ERANGE)
        return errmsg(err, errlen, -EINVAL, "%s line 1: value out of range: " TOKFMT, what,
                      TOKARG(tok));
    if (rc < 0)
        return errmsg(err, errlen, -EINVAL, "%s line 1: not a number: " TOKFMT, what, TOKARG(tok));
    return 0;
}

/* A flat keyed file ("key value" per line): calls on_key for every line. Lines must have
 * exactly two tokens and a numeric value; a blank line is allowed. */
typedef void (*kv_fn)(void *ctx, span key, uint64_t value);

static int parse_flat_keyed(const char *buf, size_t len, const char *what, kv_fn fn, void *ctx,
                            char *err, size_t errlen) {
    line_iter it = {buf, buf + len, 0};
    span line, key, val, extra;
    int lines = 0;
    while (next_line(&it, &line)) {
        if (!next_token(&line, &key)) continue;
        if (!next_token(&line, &val))
            return errmsg(err, errlen, -EINVAL, "%s line %d: key " TOKFMT " has no value", what,
                          it.lineno, TOKARG(key));
        if (next_token(&line, &extra))
            return errmsg(err, errlen, -EINVAL,
                          "%s line %d: unexpected text after the value of " TOKFMT, what, it.lineno,
                          TOKARG(key));
        uint64_t v;
        int rc = span_u64(val, &v);
        if (rc < 0)
            return errmsg(err, errlen, -EINVAL, "%s line %d: value of " TOKFMT " is %s: " TOKFMT,
                          what, it.lineno, TOKARG(key),
                          rc == -ERANGE ? "out of range" : "not a number", TOKARG(val));
        fn(ctx, key, v);
        lines++;
    }
    if (lines == 0) return errmsg(err, errlen, -EINVAL, "%s: empty file", what);
    return 0;
}

static void cpu_stat_kv(void *ctx, span key, uint64_t v) {
    cgp_cpu_stat *s = ctx;
    if (span_eq(key, "usage_usec")) {
        s->usage_ns = v * 1000;
        s->have |= CGP_CPU_USAGE;
    } else if (span_eq(key, "nr_periods")) {
        s->nr_periods = v;
        s->have |= CGP_CPU_PERIODS;
    } else if (span_eq(key, "nr_throttled")) {
        s->nr_throttled = v;
        s->have |= CGP_CPU_THROTTLED;
    } else if (span_eq(key, "throttled_time")) {
        s->throttled_ns = v;
        s->have |= CGP_CPU_THROTTLED_TIME;
    } else if (span_eq(key, "throttled_usec")) {
        s->throttled_ns = v * 1000;
        s->have |= CGP_CPU_THROTTLED_TIME;
    }
}

int cgp_parse_cpu_stat(const char *buf, size_t len, cgp_cpu_stat *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    return parse_flat_keyed(buf, len, "cpu.stat", cpu_stat_kv, out, err, errlen);
}

static void mem_stat_kv(void *ctx, span key, uint64_t v) {
    cgp_mem_stat *m = ctx;
    if (span_eq(key, "rss")) {
        m->rss = v;
        m->have |= CGP_MEM_RSS;
    } else if (span_eq(key, "total_rss")) {
        m->total_rss = v;
        m->have |= CGP_MEM_TOTAL_RSS;
    } else if (span_eq(key, "anon")) {
        m->anon = v;
        m->have |= CGP_MEM_ANON;
    } else if (span_eq(key, "inactive_file")) {
        m->inactive_file = v;
        m->have |= CGP_MEM_INACTIVE_FILE;
    } else if (span_eq(key, "total_inactive_file")) {
        m->total_inactive_file = v;
        m->have |= CGP_MEM_TOTAL_INACTIVE_FILE;
    }
}

int cgp_parse_memory_stat(const char *buf, size_t len, cgp_mem_stat *out, char *err,
                          size_t errlen) {
    memset(out, 0, sizeof *out);
    return parse_flat_keyed(buf, len, "memory.stat", mem_stat_kv, out, err, errlen);
}

int cgp_mem_rss(const cgp_mem_stat *m, uint64_t *out) {
    if (m->have & CGP_MEM_TOTAL_RSS)
        *out = m->total_rss;
    else if (m->have & CGP_MEM_RSS)
        *out = m->rss;
    else if (m->have & CGP_MEM_ANON)
        *out = m->anon;
    else
        return -ENOENT;
    return 0;
}

int cgp_mem_inactive_file(const cgp_mem_stat *m, uint64_t *out) {
    if (m->have & CGP_MEM_TOTAL_INACTIVE_FILE)
        *out = m->total_inactive_file;
    else if (m->have & CGP_MEM_INACTIVE_FILE)
        *out = m->inactive_file;
    else
        return -ENOENT;
    return 0;
}

uint64_t cgp_working_set(uint64_t usage, uint64_t inactive_file) {
    return usage > inactive_file ? usage - inactive_file : 0;
}

int cgp_parse_psi(const char *buf, size_t len, cgp_psi *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    line_iter it = {buf, buf + len, 0};
    span line, tok;
    while (next_line(&it, &line)) {
        if (!next_token(&line, &tok)) continue;
        int full;
        if (span_eq(tok, "some"))
            full = 0;
        else if (span_eq(tok, "full"))
            full = 1;
        else
            return errmsg(err, errlen, -EINVAL,
                          "pressure line %d: expected \"some\" or \"full\", got " TOKFMT, it.lineno,
                          TOKARG(tok));
        double a10 = 0, a60 = 0, a300 = 0;
        uint64_t total = 0;
        unsigned seen = 0;
        while (next_token(&line, &tok)) {
            const char *eq = memchr(tok.s, '=', tok.n);
            if (!eq)
                return errmsg(err, errlen, -EINVAL,
                              "pressure line %d: expected key=value, got " TOKFMT, it.lineno,
                              TOKARG(tok));
            span k = {tok.s, (size_t)(eq - tok.s)};
            span v = {eq + 1, tok.n - k.n - 1};
            int rc = 0;
            if (span_eq(k, "avg10")) {
                rc = span_double(v, &a10);
                seen |= 1;
            } else if (span_eq(k, "avg60")) {
                rc = span_double(v, &a60);
                seen |= 2;
            } else if (span_eq(k, "avg300")) {
                rc = span_double(v, &a300);
                seen |= 4;
            } else if (span_eq(k, "total")) {
                rc = span_u64(v, &total);
                seen |= 8;
            }
            if (rc < 0)
                return errmsg(err, errlen, -EINVAL,
                              "pressure line %d: bad value for " TOKFMT ": " TOKFMT, it.lineno,
                              TOKARG(k), TOKARG(v));
        }
        if ((seen & 9) != 9)
            return errmsg(err, errlen, -EINVAL, "pressure line %d: avg10 or total missing",
                          it.lineno);
        if (full) {
            out->has_full = 1;
            out->full_avg10 = a10;
            out->full_avg60 = a60;
            out->full_avg300 = a300;
            out->full_total_us = total;
        } else {
            out->has_some = 1;
            out->some_avg10 = a10;
            out->some_avg60 = a60;
            out->some_avg300 = a300;
            out->some_total_us = total;
        }
    }
    if (!out->has_some && !out->has_full)
        return errmsg(err, errlen, -EINVAL, "pressure: empty file");
    return 0;
}

int cgp_parse_proc_cgroup(const char *buf, size_t len, cgp_proc_cgroup_fn fn, void *ctx, char *err,
                          size_t errlen) {
    line_iter it = {buf, buf + len, 0};
    span line;
    char ctl[256], path[4096];
    int n = 0;
    while (next_line(&it, &line)) {
        if (line.n == 0) continue;
        const char *c1 = memchr(line.s, ':', line.n);
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(line.s + line.n - c1 - 1)) : NULL;
        if (!c2)
            return errmsg(err, errlen, -EINVAL, "cgroup line %d: expected id:controllers:path",
                          it.lineno);
        span id = {line.s, (size_t)(c1 - line.s)};
        span cs = {c1 + 1, (size_t)(c2 - c1 - 1)};
        span ps = {c2 + 1, (size_t)(line.s + line.n - c2 - 1)};
        uint64_t hid;
        if (span_u64(id, &hid) < 0 || hid > 1u << 20)
            return errmsg(err, errlen, -EINVAL, "cgroup line %d: bad hierarchy id " TOKFMT,
                          it.lineno, TOKARG(id));
        if (ps.n == 0 || ps.s[0] != '/')
            return errmsg(err, errlen, -EINVAL, "cgroup line %d: path must start with '/'",
                          it.lineno);
        if (cs.n >= sizeof ctl || ps.n >= sizeof path)
            return errmsg(err, errlen, -EINVAL, "cgroup line %d: too long", it.lineno);
        memcpy(ctl, cs.s, cs.n);
        ctl[cs.n] = '\0';
        memcpy(path, ps.s, ps.n);
        path[ps.n] = '\0';
        if (memchr(ctl, '\0', cs.n) || memchr(path, '\0', ps.n))
            return errmsg(err, errlen, -EINVAL, "cgroup line %d: NUL byte", it.lineno);
        n++;
        int rc = fn(ctx, (int)hid, ctl, path);
        if (rc != 0) return rc;
    }
    if (n == 0) return errmsg(err, errlen, -EINVAL, "cgroup: empty file");
    return 0;
}

typedef struct find_ctl {
    const char *want;
    char *out;
    size_t outlen;
    int found;
} find_ctl;

/* Is `want` one of the comma-separated names in `list`? ("" matches only the v2 line.) */
static int ctl_in_list(const char *list, const char *want) {
    if (want[0] == '\0') return list[0] == '\0';
    size_t n = strlen(want);
    const char *p = list;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == n && memcmp(p, want, n) == 0) return 1;
        if (!c) break;
        p = c + 1;
    }
    return 0;
}

static int find_ctl_fn(void *ctx, int hier_id, const char *controllers, const char *path) {
    find_ctl *f = ctx;
    (void)hier_id;
    if (!ctl_in_list(controllers, f->want)) return 0;
    if (strlen(path) >= f->outlen) return -ENAMETOOLONG;
    strcpy(f->out, path);
    f->found = 1;
    return 1;
}

int cgp_proc_cgroup_path(const char *buf, size_t len, const char *controller, char *out,
                         size_t outlen, char *err, size_t errlen) {
    find_ctl f = {controller, out, outlen, 0};
    int rc = cgp_parse_proc_cgroup(buf, len, find_ctl_fn, &f, err, errlen);
    if (rc < 0) return rc;
    return f.found ? 0 : -ENOENT;
}

int cgp_parse_proc_stat(const char *buf, size_t len, cgp_proc_stat *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    line_iter it = {buf, buf + len, 0};
    span line, tok;
    int have_cpu = 0;
    while (next_line(&it, &line)) {
        if (!next_token(&line, &tok)) continue;
        if (tok.n > 3 && memcmp(tok.s, "cpu", 3) == 0) {
            out->ncpu++;
            continue;
        }
        if (!span_eq(tok, "cpu")) continue;
        uint64_t *f[] = {&out->user,   &out->nice, &out->system,  &out->idle,
                         &out->iowait, &out->irq,  &out->softirq, &out->steal};
        size_t nf = 0;
        while (nf < sizeof f / sizeof f[0] && next_token(&line, &tok)) {
            if (span_u64(tok, f[nf]) < 0)
                return errmsg(err, errlen, -EINVAL,
                              "stat line %d: cpu field %zu is not a number: " TOKFMT, it.lineno,
                              nf + 1, TOKARG(tok));
            nf++;
        }
        if (nf < 4)
            return errmsg(err, errlen, -EINVAL,
                          "stat line %d: cpu line has %zu fields, need at least 4", it.lineno, nf);
        have_cpu = 1;
    }
    if (!have_cpu) return errmsg(err, errlen, -EINVAL, "stat: no aggregate \"cpu\" line");
    return 0;
}

uint64_t cgp_proc_stat_busy(const cgp_proc_stat *s) {
    return s->user + s->nice + s->system + s->irq + s->softirq + s->steal;
}

uint64_t cgp_proc_stat_total(const cgp_proc_stat *s) {
    return cgp_proc_stat_busy(s) + s->idle + s->iowait;
}

int cgp_parse_meminfo(const char *buf, size_t len, cgp_meminfo *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    line_iter it = {buf, buf + len, 0};
    span line, key, val, unit;
    static const struct {
        const char *name;
        unsigned bit;
        size_t off;
    } keys[] = {
        {"MemTotal:", CGP_MI_TOTAL, offsetof(cgp_meminfo, total)},
        {"MemFree:", CGP_MI_FREE, offsetof(cgp_meminfo, free)},
        {"MemAvailable:", CGP_MI_AVAILABLE, offsetof(cgp_meminfo, available)},
        {"Buffers:", CGP_MI_BUFFERS, offsetof(cgp_meminfo, buffers)},
        {"Cached:", CGP_MI_CACHED, offsetof(cgp_meminfo, cached)},
    };
    while (next_line(&it, &line)) {
        if (!next_token(&line, &key)) continue;
        if (key.n < 2 || key.s[key.n - 1] != ':')
            return errmsg(err, errlen, -EINVAL, "meminfo line %d: expected \"Key:\", got " TOKFMT,
                          it.lineno, TOKARG(key));
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            if (!span_eq(key, keys[i].name)) continue;
            uint64_t v;
            if (!next_token(&line, &val) || span_u64(val, &v) < 0)
                return errmsg(err, errlen, -EINVAL,
                              "meminfo line %d: value of " TOKFMT " is not a number", it.lineno,
                              TOKARG(key));
            if (next_token(&line, &unit)) {
                if (!span_eq(unit, "kB"))
                    return errmsg(err, errlen, -EINVAL, "meminfo line %d: unknown unit " TOKFMT,
                                  it.lineno, TOKARG(unit));
                if (v > UINT64_MAX / 1024)
                    return errmsg(err, errlen, -EINVAL, "meminfo line %d: value out of range",
                                  it.lineno);
                v *= 1024;
            }
            *(uint64_t *)((char *)out + keys[i].off) = v;
            out->have |= keys[i].bit;
        }
    }
    if (!(out->have & CGP_MI_TOTAL))
        return errmsg(err, errlen, -EINVAL, "meminfo: no MemTotal line");
    return 0;
}

int cgp_parse_loadavg(const char *buf, size_t len, cgp_loadavg *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    line_iter it = {buf, buf + len, 0};
    span line, tok;
    if (!next_line(&it, &line)) return errmsg(err, errlen, -EINVAL, "loadavg: empty file");
    double *l[] = {&out->load1, &out->load5, &out->load15};
    for (int i = 0; i < 3; i++) {
        if (!next_token(&line, &tok) || span_double(tok, l[i]) < 0)
            return errmsg(err, errlen, -EINVAL, "loadavg: field %d is not a load average", i + 1);
    }
    if (!next_token(&line, &tok)) return errmsg(err, errlen, -EINVAL, "loadavg: field 4 missing");
    const char *slash = memchr(tok.s, '/', tok.n);
    if (!slash)
        return errmsg(err, errlen, -EINVAL, "loadavg: field 4 is not running/total: " TOKFMT,
                      TOKARG(tok));
    span r = {tok.s, (size_t)(slash - tok.s)}, t = {slash + 1, tok.n - r.n - 1};
    if (span_u64(r, &out->running) < 0 || span_u64(t, &out->total) < 0)
        return errmsg(err, errlen, -EINVAL, "loadavg: field 4 is not running/total: " TOKFMT,
                      TOKARG(tok));
    return 0;
}
