/* workload.c: parses and validates workload specs (YAML via libyaml's document API). */
#include "spec/workload.h"
#include "spec/spec_yaml.h"

#include "query/query.h"

#include "actions.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <time.h>
#include <unicode/ucal.h>
#include <unicode/ustring.h>
#include <yaml.h>

/* snprintf for field paths: a path cut at 160 characters is still a useful path. */
static void pfmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pfmt(char *buf, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* ---- problems ------------------------------------------------------------------------- */

void wl_problems_init(wl_problems *p) {
    memset(p, 0, sizeof *p);
}

void wl_problems_fini(wl_problems *p) {
    if (!p) return;
    free(p->v);
    memset(p, 0, sizeof *p);
}

static void problems_add(wl_problems *p, const char *path, int line, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void problems_add(wl_problems *p, const char *path, int line, const char *fmt, va_list ap) {
    if (!p) return;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        wl_problem *v = realloc(p->v, cap * sizeof *v);
        if (!v) return; /* the verdict is kept by the caller's error count */
        p->v = v;
        p->cap = cap;
    }
    wl_problem *e = &p->v[p->n++];
    snprintf(e->path, sizeof e->path, "%s", path);
    e->line = line;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
}

char *wl_problems_format(const wl_problems *p) {
    size_t cap = 1 + p->n * (sizeof(wl_problem) + 32);
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t off = 0;
    s[0] = 0;
    for (size_t i = 0; i < p->n; i++) {
        const wl_problem *e = &p->v[i];
        int w;
        if (e->line > 0)
            w = snprintf(s + off, cap - off, "%s (line %d): %s\n", e->path, e->line, e->msg);
        else
            w = snprintf(s + off, cap - off, "%s: %s\n", e->path, e->msg);
        if (w > 0) off += (size_t)w < cap - off ? (size_t)w : cap - off - 1;
    }
    return s;
}

/* ---- names ---------------------------------------------------------------------------- */

static const char *const target_kinds[] = {"Deployment", "StatefulSet", "HAProxyBackend",
                                           "SystemdUnit", NULL};
static const char *const gray_states[] = {"Cutoff", "Standby", "Deleted", NULL};
static const char *const provider_types[] = {"static", "cron", "reactive", "predictive", NULL};
static const char *const modes[] = {"Auto", "Preview", NULL};
static const char *const selects[] = {"Max", "Min", "Disabled", NULL};
static const char *const policy_types[] = {"Pods", "Percent", NULL};
static const char *const check_actions[] = {"Pause", "Rollback", NULL};
static const char *const check_ops[] = {">", "<", NULL};

const char *wl_target_kind_name(wl_target_kind k) {
    return (unsigned)k < 4 ? target_kinds[k] : "?";
}
const char *wl_gray_state_name(wl_gray_state s) {
    return (unsigned)s < 3 ? gray_states[s] : "?";
}
const char *wl_provider_type_name(wl_provider_type t) {
    return (unsigned)t < 4 ? provider_types[t] : "?";
}

/* ---- defaults ------------------------------------------------------------------------- */

static void direction_defaults(wl_direction *d, int up) {
    memset(d, 0, sizeof *d);
    d->select = WL_SELECT_MAX;
    if (up) {
        /* Kubernetes: no stabilization; 100% or 4 pods per 15 s, whichever is more. */
        d->stabilization_seconds = 0;
        d->policies[0] = (wl_policy){WL_POLICY_PERCENT, 100, 15};
        d->policies[1] = (wl_policy){WL_POLICY_PODS, 4, 15};
        d->n_policies = 2;
    } else {
        /* Kubernetes: 300 s stabilization; down to minReplicas at once (100% per 15 s). */
        d->stabilization_seconds = 300;
        d->policies[0] = (wl_policy){WL_POLICY_PERCENT, 100, 15};
        d->n_policies = 1;
        d->state = WL_GRAY_STANDBY;
    }
    d->change_percent = 100;
}

void wl_defaults(workload_spec *s) {
    memset(s, 0, sizeof *s);
    snprintf(s->namespace_, sizeof s->namespace_, "default");
    s->min_replicas = 1;
    s->max_replicas = 10;
    s->mode = WL_MODE_AUTO;
    s->target_utilization = 60;
    snprintf(s->utilization.name, sizeof s->utilization.name, "cpu");
    direction_defaults(&s->up, 1);
    direction_defaults(&s->down, 0);
    s->scale_up_ahead_seconds = -1;
    s->keep_alive_seconds = 3600;
    s->sync_seconds = 15;
    s->tolerance = 0.1;
}

/* ---- cron ----------------------------------------------------------------------------- */

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static int cron_number(const char **p, int field, int *out) {
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s)) {
            v = v * 10 + (*s++ - '0');
            if (v > 1000) return -1;
        }
        *out = (int)v;
        *p = s;
        return 0;
    }
    const char *const *names = field == 3 ? month_names : field == 4 ? dow_names : NULL;
    int count = field == 3 ? 12 : 7, base = field == 3 ? 1 : 0;
    if (!names) return -1;
    for (int i = 0; i < count; i++)
        if (strncasecmp(s, names[i], 3) == 0) {
            *out = i + base;
            *p = s + 3;
            return 0;
        }
    return -1;
}

int wl_cron_parse(const char *expr, wl_cron *out, char *why, size_t whylen) {
    static const char *const fname[] = {"minute", "hour", "day-of-month", "month", "day-of-week"};
    static const int lo[] = {0, 0, 1, 1, 0}, hi[] = {59, 23, 31, 12, 7};
    uint64_t bits[5] = {0};
    int any[5] = {0};
    memset(out, 0, sizeof *out);
    const char *p = expr;
    for (int f = 0; f < 5; f++) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p) {
            snprintf(why, whylen,
                     "expected 5 fields (minute hour day-of-month month day-of-week), got %d", f);
            return -EINVAL;
        }
        for (;;) {
            int a, b, step = 1, star = 0;
            if (*p == '*') {
                star = 1;
                a = lo[f];
                b = hi[f] == 7 ? 6 : hi[f];
                p++;
            } else {
                if (cron_number(&p, f, &a) < 0) goto bad;
                b = a;
                if (*p == '-') {
                    p++;
                    if (cron_number(&p, f, &b) < 0) goto bad;
                }
            }
            if (*p == '/') {
                p++;
                if (!isdigit((unsigned char)*p)) goto bad;
                step = 0;
                while (isdigit((unsigned char)*p)) {
                    step = step * 10 + (*p++ - '0');
                    if (step > 1000) goto bad;
                }
                if (step == 0) {
                    snprintf(why, whylen, "field %d (%s): step 0", f + 1, fname[f]);
                    return -EINVAL;
                }
                if (!star && b == a) b = hi[f] == 7 ? 6 : hi[f];
            }
            if (a < lo[f] || a > hi[f] || b < lo[f] || b > hi[f]) {
                snprintf(why, whylen, "field %d (%s): value out of range %d-%d", f + 1, fname[f],
                         lo[f], hi[f]);
                return -EINVAL;
            }
            if (b < a) {
                snprintf(why, whylen, "field %d (%s): range %d-%d is reversed", f + 1, fname[f], a,
                         b);
                return -EINVAL;
            }
            if (star && step == 1) any[f] = 1;
            for (int v = a; v <= b; v += step)
                bits[f] |= 1ull << (f == 4 && v == 7 ? 0 : v);
            if (*p == ',') {
                p++;
                continue;
            }
            if (*p && *p != ' ' && *p != '\t') goto bad;
            break;
        }
        continue;
    bad:
        snprintf(why, whylen, "field %d (%s): cannot parse near \"%.16s\"", f + 1, fname[f], p);
        return -EINVAL;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p) {
        snprintf(why, whylen, "more than 5 fields (\"%.16s\")", p);
        return -EINVAL;
    }
    out->minute = bits[0];
    out->hour = (uint32_t)bits[1];
    out->dom = (uint32_t)bits[2];
    out->month = (uint16_t)bits[3];
    out->dow = (uint8_t)bits[4];
    out->dom_any = (uint8_t)any[2];
    out->dow_any = (uint8_t)any[4];
    return 0;
}

static int cron_day_match(const wl_cron *c, int mday, int mon, int wday) {
    if (!(c->month >> mon & 1)) return 0;
    int d = (int)(c->dom >> mday & 1), w = (int)(c->dow >> wday & 1);
    if (c->dom_any || c->dow_any) return d && w; /* one of them is "*": both must hold */
    return d || w;                               /* both restricted: cron's "either" rule */
}

int wl_cron_match(const wl_cron *c, int min, int hour, int mday, int mon, int wday) {
    return (int)(c->minute >> min & 1) && (int)(c->hour >> hour & 1) &&
           cron_day_match(c, mday, mon, wday);
}

/* ---- time zones ----------------------------------------------------------------------- */

/* Zones are read through ICU's calendar API (its own copy of the TZ database): each evaluation
 * opens a calendar object of its own, so threads never share or switch the process's TZ. */

int wl_zone_valid(const char *tz) {
    if (!tz || !*tz || strcmp(tz, "UTC") == 0) return 1;
    if (strlen(tz) > 48) return 0;
    for (const char *c = tz; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("/_-+", *c)) return 0;
    UChar id[64], canon[96];
    u_uastrncpy(id, tz, 63);
    id[63] = 0;
    UBool system = 0;
    UErrorCode st = U_ZERO_ERROR;
    ucal_getCanonicalTimeZoneID(id, -1, canon, 96, &system, &st);
    return U_SUCCESS(st) && system;
}

/* Opens a calendar in zone tz ("" and NULL mean UTC); NULL for a zone ICU does not know. */
static UCalendar *zone_open(const char *tz) {
    if (!wl_zone_valid(tz)) return NULL;
    UChar id[64];
    u_uastrncpy(id, tz && *tz ? tz : "UTC", 63);
    id[63] = 0;
    UErrorCode st = U_ZERO_ERROR;
    UCalendar *cal = ucal_open(id, -1, "en_US_POSIX", UCAL_GREGORIAN, &st);
    if (U_FAILURE(st)) {
        if (cal) ucal_close(cal);
        return NULL;
    }
    return cal;
}

/* The zone's offset from UTC at unix time t, in seconds (standard + daylight). */
static int zone_offset(UCalendar *cal, int64_t t, long *off, int *dst) {
    UErrorCode st = U_ZERO_ERROR;
    ucal_setMillis(cal, (UDate)t * 1000.0, &st);
    int32_t zone = ucal_get(cal, UCAL_ZONE_OFFSET, &st);
    int32_t day = ucal_get(cal, UCAL_DST_OFFSET, &st);
    if (U_FAILURE(st)) return -EINVAL;
    *off = (long)(zone + day) / 1000;
    if (dst) *dst = day != 0;
    return 0;
}

int wl_localtime(const char *tz, int64_t t, struct tm *out) {
    UCalendar *cal = zone_open(tz);
    if (!cal) return -EINVAL;
    long off;
    int dst, rc = zone_offset(cal, t, &off, &dst);
    ucal_close(cal);
    if (rc < 0) return rc;
    time_t lt = (time_t)(t + off);
    gmtime_r(&lt, out);
    out->tm_gmtoff = off;
    out->tm_isdst = dst;
    out->tm_zone = NULL;
    return 0;
}

/* Cron window state over a grid: see wl_cron_eval in workload.h. */
struct ce_arg {
    const wl_provider *p;
    int64_t t0, step;
    int n;
    int *out;
    wl_cron_state *st;
};

/* Local fields of minute t using an offset refreshed every 15 minutes of scan (zone changes
 * happen on quarter hours). */
typedef struct lclock {
    UCalendar *cal;
    int64_t off_valid_from, off_valid_to;
    long off;
} lclock;
static void lclock_fields(lclock *lc, int64_t t, struct tm *tmv) {
    if (t < lc->off_valid_from || t >= lc->off_valid_to) {
        lc->off_valid_from = t - (t % 900 + 900) % 900;
        lc->off_valid_to = lc->off_valid_from + 900;
        if (zone_offset(lc->cal, lc->off_valid_from, &lc->off, NULL) < 0) lc->off = 0;
    }
    time_t lt = (time_t)(t + lc->off);
    gmtime_r(&lt, tmv);
}

/* Applies one window's events of local minute tmv to *active: an end wins over a start. */
static void cron_step_one(const wl_cron_window *cw, const struct tm *tmv, int *active) {
    int mon = tmv->tm_mon + 1;
    if (wl_cron_match(&cw->end, tmv->tm_min, tmv->tm_hour, tmv->tm_mday, mon, tmv->tm_wday))
        *active = 0;
    else if (wl_cron_match(&cw->start, tmv->tm_min, tmv->tm_hour, tmv->tm_mday, mon, tmv->tm_wday))
        *active = 1;
}

static void cron_step(const wl_provider *p, const struct tm *tmv, int *active) {
    for (int w = 0; w < p->n_windows; w++)
        cron_step_one(&p->windows[w], tmv, &active[w]);
}

static void ce_fn(struct ce_arg *x, UCalendar *cal) {
    const wl_provider *p = x->p;
    int active[WL_MAX_WINDOWS] = {0}, known[WL_MAX_WINDOWS] = {0}, nknown = 0;
    lclock lc = {cal, 1, 0, 0};
    int64_t m0 = x->t0 - ((x->t0 % 60) + 60) % 60;
    if (x->st && x->st->t && x->st->t <= m0 && m0 - x->st->t <= 7 * 86400) {
        /* forward from the kept state */
        for (int w = 0; w < p->n_windows; w++)
            active[w] = x->st->active[w];
        for (int64_t m = x->st->t + 60; m <= m0; m += 60) {
            struct tm tmv;
            lclock_fields(&lc, m, &tmv);
            cron_step(p, &tmv, active);
        }
        nknown = p->n_windows;
    }
    /* backwards from the first grid minute: the latest event of each window decides */
    for (int64_t t = m0; t > m0 - 400LL * 86400 && nknown < p->n_windows; t -= 60) {
        struct tm tmv;
        lclock_fields(&lc, t, &tmv);
        int mon = tmv.tm_mon + 1;
        for (int w = 0; w < p->n_windows; w++) {
            if (known[w]) continue;
            const wl_cron_window *cw = &p->windows[w];
            if (wl_cron_match(&cw->end, tmv.tm_min, tmv.tm_hour, tmv.tm_mday, mon, tmv.tm_wday)) {
                known[w] = 1;
                active[w] = 0;
                nknown++;
            } else if (wl_cron_match(&cw->start, tmv.tm_min, tmv.tm_hour, tmv.tm_mday, mon,
                                     tmv.tm_wday)) {
                known[w] = 1;
                active[w] = 1;
                nknown++;
            }
        }
    }
    if (x->st) {
        x->st->t = m0;
        for (int w = 0; w < p->n_windows; w++)
            x->st->active[w] = (unsigned char)active[w];
    }
    int64_t cur = m0; /* minute already applied */
    for (int i = 0; i < x->n; i++) {
        int64_t t = x->t0 + (int64_t)i * x->step;
        for (int64_t m = cur + 60; m <= t; m += 60) {
            struct tm tmv;
            lclock_fields(&lc, m, &tmv);
            cron_step(p, &tmv, active);
            cur = m;
        }
        int best = -1;
        for (int w = 0; w < p->n_windows; w++)
            if (active[w] && p->windows[w].replicas > best) best = p->windows[w].replicas;
        x->out[i] = best;
    }
}

int wl_cron_eval_from(const wl_provider *p, int64_t t0, int64_t step, int n, int *out,
                      wl_cron_state *st) {
    if (step <= 0 || n < 0) return -EINVAL;
    struct ce_arg a = {p, t0, step, n, out, st};
    UCalendar *cal = zone_open(p->time_zone);
    if (!cal) return -EINVAL;
    ce_fn(&a, cal);
    ucal_close(cal);
    return 0;
}

int wl_cron_eval(const wl_provider *p, int64_t t0, int64_t step, int n, int *out) {
    return wl_cron_eval_from(p, t0, step, n, out, NULL);
}

/* Scans two calendar years of local minutes (2027-2028: one leap year, every weekday on
 * every date) for windows of one provider that are active at the same time, and windows
 * that never open. Calendar arithmetic only, so no time zone is involved. */
static void cron_overlaps(const wl_provider *p, void (*report)(void *, int, int, int), void *arg) {
    int active[WL_MAX_WINDOWS] = {0}, opened[WL_MAX_WINDOWS] = {0};
    uint8_t reported[WL_MAX_WINDOWS][WL_MAX_WINDOWS];
    memset(reported, 0, sizeof reported);
    int64_t day0 = 1798761600; /* 2027-01-01T00:00:00Z */
    for (int d = 0; d < 731; d++) {
        time_t tt = (time_t)(day0 + (int64_t)d * 86400);
        struct tm tmv;
        gmtime_r(&tt, &tmv);
        int mon = tmv.tm_mon + 1;
        uint32_t hours = 0;
        for (int w = 0; w < p->n_windows; w++) {
            const wl_cron_window *cw = &p->windows[w];
            if (cron_day_match(&cw->start, tmv.tm_mday, mon, tmv.tm_wday)) hours |= cw->start.hour;
            if (cron_day_match(&cw->end, tmv.tm_mday, mon, tmv.tm_wday)) hours |= cw->end.hour;
        }
        for (int h = 0; h < 24; h++) {
            if (!(hours >> h & 1)) continue;
            for (int m = 0; m < 60; m++) {
                tmv.tm_hour = h;
                tmv.tm_min = m;
                int changed = 0;
                for (int w = 0; w < p->n_windows; w++) {
                    int before = active[w];
                    cron_step_one(&p->windows[w], &tmv, &active[w]);
                    if (active[w] != before) changed = 1;
                    if (active[w]) opened[w] = 1;
                }
                if (!changed) continue;
                for (int a = 0; a < p->n_windows; a++)
                    for (int b = a + 1; b < p->n_windows; b++)
                        if (active[a] && active[b] && !reported[a][b]) {
                            reported[a][b] = 1;
                            report(arg, a, b, 0);
                        }
            }
        }
    }
    for (int w = 0; w < p->n_windows; w++)
        if (!opened[w]) report(arg, w, w, 1);
}

/* ---- YAML walking --------------------------------------------------------------------- */

typedef wl_yctx pctx; /* spec_yaml.h */

static void prob(pctx *c, const char *path, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void prob(pctx *c, const char *path, const yaml_node_t *n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    problems_add(c->probs, path, n ? (int)n->start_mark.line + 1 : 0, fmt, ap);
    va_end(ap);
    c->nprob++;
}

static void probl(pctx *c, const char *path, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void probl(pctx *c, const char *path, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    problems_add(c->probs, path, line, fmt, ap);
    va_end(ap);
    c->nprob++;
}

static const char *scalar(const yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *node(pctx *c, int idx) {
    if (c->budget-- <= 0) return NULL;
    return yaml_document_get_node(c->doc, idx);
}

/* Matches the keys of mapping n against known[] (NULL-terminated), storing each value node in
 * vals[i]; unknown and duplicate keys are problems. Returns 0 when n is a mapping. */
static int fields(pctx *c, const char *path, yaml_node_t *n, const char *const *known,
                  yaml_node_t **vals) {
    int nk = 0;
    while (known[nk])
        vals[nk++] = NULL;
    if (!n || n->type != YAML_MAPPING_NODE) {
        prob(c, path, n, "must be a mapping");
        return -1;
    }
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node(c, pr->key), *v = node(c, pr->value);
        const char *key = scalar(k);
        if (!key) {
            prob(c, path, k, "keys must be plain strings");
            continue;
        }
        int i;
        for (i = 0; i < nk; i++)
            if (strcmp(known[i], key) == 0) break;
        char sub[160];
        pfmt(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key);
        if (i == nk) {
            prob(c, sub, k, "unknown field \"%s\"", key);
            continue;
        }
        if (vals[i]) {
            prob(c, sub, k, "duplicate field");
            continue;
        }
        vals[i] = v ? v : k;
    }
    return 0;
}

static void subpath(char *buf, size_t len, const char *path, const char *key) {
    pfmt(buf, len, "%s.%s", path, key);
}

static int get_str(pctx *c, const char *path, yaml_node_t *n, char *out, size_t outlen) {
    const char *s = scalar(n);
    if (!s) {
        prob(c, path, n, "must be a string");
        return -1;
    }
    if (strlen(s) >= outlen) {
        prob(c, path, n, "too long (at most %zu characters)", outlen - 1);
        return -1;
    }
    snprintf(out, outlen, "%s", s);
    return 0;
}

static int get_int(pctx *c, const char *path, yaml_node_t *n, long lo, long hi, int *out) {
    const char *s = scalar(n);
    char *end;
    if (!s || !*s) {
        prob(c, path, n, "must be an integer");
        return -1;
    }
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno) {
        prob(c, path, n, "must be an integer, got \"%.40s\"", s);
        return -1;
    }
    if (v < lo || v > hi) {
        prob(c, path, n, "must be in %ld..%ld, got %ld", lo, hi, v);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int get_num(pctx *c, const char *path, yaml_node_t *n, double lo, double hi, int open_lo,
                   double *out) {
    const char *s = scalar(n);
    char *end;
    if (!s || !*s) {
        prob(c, path, n, "must be a number");
        return -1;
    }
    double v = strtod(s, &end);
    if (*end || !isfinite(v)) {
        prob(c, path, n, "must be a number, got \"%.40s\"", s);
        return -1;
    }
    if (v < lo || v > hi || (open_lo && v <= lo)) {
        prob(c, path, n, "must be in %s%g..%g, got %g", open_lo ? "(exclusive) " : "", lo, hi, v);
        return -1;
    }
    *out = v;
    return 0;
}

static int get_bool(pctx *c, const char *path, yaml_node_t *n, int *out) {
    const char *s = scalar(n);
    if (s && (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "yes")))
        *out = 1;
    else if (s && (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "no")))
        *out = 0;
    else {
        prob(c, path, n, "must be true or false");
        return -1;
    }
    return 0;
}

static int get_enum(pctx *c, const char *path, yaml_node_t *n, const char *const *names, int *out) {
    const char *s = scalar(n);
    for (int i = 0; s && names[i]; i++)
        if (strcmp(names[i], s) == 0) {
            *out = i;
            return 0;
        }
    char list[160] = "";
    for (int i = 0; names[i]; i++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", names[i]);
    }
    prob(c, path, n, "must be one of %s%s%.40s%s", list, s ? ", got \"" : "", s ? s : "",
         s ? "\"" : "");
    return -1;
}

/* A PromQL expression's brackets and quotes must pair up (the rest is Prometheus's to judge
 * when the expression runs). 0, or 1 with why filled. */
static int promql_unbalanced(const char *s, char *why, size_t len) {
    char stack[64];
    int depth = 0;
    for (const char *p = s; *p; p++) {
        char ch = *p;
        if (ch == '"' || ch == '\'' || ch == '`') {
            const char *q = p + 1;
            while (*q && *q != ch)
                q += (*q == '\\' && ch != '`' && q[1]) ? 2 : 1;
            if (!*q) {
                snprintf(why, len, "unterminated %c string at column %d", ch, (int)(p - s) + 1);
                return 1;
            }
            p = q;
        } else if (ch == '(' || ch == '[' || ch == '{') {
            if (depth == (int)sizeof stack) {
                snprintf(why, len, "brackets nested more than %d deep", (int)sizeof stack);
                return 1;
            }
            stack[depth++] = ch == '(' ? ')' : ch == '[' ? ']' : '}';
        } else if (ch == ')' || ch == ']' || ch == '}') {
            if (depth == 0 || stack[depth - 1] != ch) {
                snprintf(why, len, "unexpected '%c' at column %d", ch, (int)(p - s) + 1);
                return 1;
            }
            depth--;
        }
    }
    if (depth) {
        snprintf(why, len, "missing '%c' at the end", stack[depth - 1]);
        return 1;
    }
    if (strspn(s, " \t\n") == strlen(s)) {
        snprintf(why, len, "empty expression");
        return 1;
    }
    return 0;
}

/* {name?, selector | query} or a plain string (a name). */
static void get_source(pctx *c, const char *path, yaml_node_t *n, wl_source *src, int need_expr,
                       const char *const *extra, yaml_node_t **extra_vals) {
    static const char *const base[] = {"name", "selector", "query"};
    const char *known[12];
    int nb = 3, ne = 0;
    for (int i = 0; i < nb; i++)
        known[i] = base[i];
    while (extra && extra[ne] && nb + ne < 11) {
        known[nb + ne] = extra[ne];
        ne++;
    }
    known[nb + ne] = NULL;
    yaml_node_t *v[12];
    char sp[160];
    if (scalar(n) && !need_expr && !extra) {
        get_str(c, path, n, src->name, sizeof src->name);
        return;
    }
    if (fields(c, path, n, known, v) < 0) return;
    for (int i = 0; i < ne; i++)
        extra_vals[i] = v[nb + i];
    if (v[0]) {
        subpath(sp, sizeof sp, path, "name");
        get_str(c, sp, v[0], src->name, sizeof src->name);
    }
    if (v[1]) {
        subpath(sp, sizeof sp, path, "selector");
        get_str(c, sp, v[1], src->selector, sizeof src->selector);
    }
    if (v[2]) {
        subpath(sp, sizeof sp, path, "query");
        get_str(c, sp, v[2], src->query, sizeof src->query);
    }
    if (v[1] && v[2])
        prob(c, path, n, "give either selector or query, not both");
    else if (need_expr && !v[1] && !v[2])
        prob(c, path, n, "needs a selector or a query");
    /* both are evaluated by the query engine: check them with its parser now */
    for (int i = 1; i <= 2; i++) {
        const char *text = i == 1 ? src->selector : src->query;
        if (!v[i] || !text[0]) continue;
        query_expr *qe = NULL;
        char why[160];
        pfmt(sp, sizeof sp, "%s.%s", path, i == 1 ? "selector" : "query");
        if (query_parse(text, &qe, why, sizeof why) < 0) {
            /* a query outside the selector subset is PromQL for Prometheus */
            if (i == 1 || promql_unbalanced(text, why, sizeof why)) prob(c, sp, v[i], "%s", why);
        } else if (i == 1 && qe->agg != QUERY_AGG_NONE)
            prob(c, sp, v[i], "a selector cannot aggregate; use query");
        query_expr_free(qe);
    }
}

static int name_ok(const char *s);

/* A word of the replica template: a string that expands within the agent's bounds even with
 * the longest id (TIDE_REPLICA_ID_MAX) and node name a replica can have. *expanded (when not
 * NULL) gets that worst-case length. */
static int get_template(pctx *c, const char *path, yaml_node_t *n, char *out, size_t outlen,
                        size_t *expanded) {
    if (get_str(c, path, n, out, outlen) < 0) return -1;
    char id[TIDE_REPLICA_ID_MAX + 1], nodename[WL_NAME_MAX];
    memset(id, 'x', sizeof id - 1);
    id[sizeof id - 1] = 0;
    memset(nodename, 'n', sizeof nodename - 1);
    nodename[sizeof nodename - 1] = 0;
    char buf[TIDE_REPLICA_STR_MAX], why[160];
    int len = tide_template_expand(out, id, 65535, nodename, buf, sizeof buf, why, sizeof why);
    if (len < 0) {
        prob(c, path, n, "%s%s", why, len == -E2BIG ? " (with a 253-byte replica id)" : "");
        return -1;
    }
    if (expanded) *expanded = (size_t)len;
    return 0;
}

static int env_name_ok(const char *s) {
    if (!isalpha((unsigned char)*s) && *s != '_') return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_') return 0;
    return 1;
}

/* "512Mi", "1Gi", "1G", "1048576": bytes. 0, or -1 with why. */
static int parse_bytes(const char *s, long long *out, char *why, size_t wl) {
    static const struct {
        const char *suffix;
        long long mult;
    } units[] = {{"", 1},
                 {"K", 1000LL},
                 {"M", 1000000LL},
                 {"G", 1000000000LL},
                 {"T", 1000000000000LL},
                 {"Ki", 1LL << 10},
                 {"Mi", 1LL << 20},
                 {"Gi", 1LL << 30},
                 {"Ti", 1LL << 40}};
    char *end;
    if (!isdigit((unsigned char)*s)) goto bad;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !isfinite(v)) goto bad;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(end, units[i].suffix)) {
            double b = v * (double)units[i].mult;
            if (b < (double)(1 << 20) || b > (double)(1LL << 50)) {
                snprintf(why, wl, "must be between 1Mi and 1Pi, got \"%.40s\"", s);
                return -1;
            }
            *out = (long long)b;
            return 0;
        }
bad:
    snprintf(why, wl,
             "must be bytes with an optional suffix (K, M, G, T, Ki, Mi, Gi, Ti), got "
             "\"%.40s\"",
             s);
    return -1;
}

/* Seconds with millisecond resolution, in lo..hi seconds, into *ms. */
static int get_secs_ms(pctx *c, const char *path, yaml_node_t *n, double lo, double hi, int *ms) {
    double v;
    if (get_num(c, path, n, lo, hi, 0, &v) < 0) return -1;
    *ms = (int)llround(v * 1000);
    if (lo > 0 && *ms < 1) *ms = 1;
    return 0;
}

static int http_token_char(int ch) {
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* spec.warmup (Deployment, StatefulSet) or spec.target.replica.warmup (HAProxyBackend): the
 * agent's warm-up spec (agent/actions/warmup.h) with its bounds, durations in seconds. */
static void parse_warmup(pctx *c, const char *path, yaml_node_t *n, wl_warmup *w) {
    static const char *const k[] = {"method",
                                    "path",
                                    "body",
                                    "headers",
                                    "rate",
                                    "startRate",
                                    "durationSeconds",
                                    "rampSeconds",
                                    "maxInflight",
                                    "requestTimeoutSeconds",
                                    NULL};
    yaml_node_t *v[10];
    char sp[200];
    memset(w, 0, sizeof *w);
    w->enabled = 1;
    snprintf(w->method, sizeof w->method, "GET");
    snprintf(w->path, sizeof w->path, "/");
    w->rate = 20;
    w->duration_ms = 2000;
    w->ramp_ms = -1;
    w->max_inflight = 16;
    w->request_timeout_ms = 2000;
    if (fields(c, path, n, k, v) < 0) return;
    if (v[0]) {
        pfmt(sp, sizeof sp, "%s.method", path);
        if (get_str(c, sp, v[0], w->method, sizeof w->method) == 0) {
            int bad = !w->method[0];
            for (const char *m = w->method; *m; m++)
                if (!((*m >= 'A' && *m <= 'Z') || *m == '-')) bad = 1;
            if (bad) prob(c, sp, v[0], "must be an HTTP method such as GET or POST");
        }
    }
    if (v[1]) {
        pfmt(sp, sizeof sp, "%s.path", path);
        if (get_str(c, sp, v[1], w->path, sizeof w->path) == 0) {
            if (w->path[0] != '/') prob(c, sp, v[1], "must start with '/'");
            for (const char *q = w->path; *q; q++)
                if ((unsigned char)*q <= ' ' || *q == 0x7f) {
                    prob(c, sp, v[1], "must not contain spaces or control characters");
                    break;
                }
        }
    }
    if (v[2]) {
        pfmt(sp, sizeof sp, "%s.body", path);
        if (get_str(c, sp, v[2], w->body, sizeof w->body) == 0) w->has_body = 1;
    }
    if (v[3]) {
        pfmt(sp, sizeof sp, "%s.headers", path);
        if (v[3]->type != YAML_MAPPING_NODE) {
            prob(c, sp, v[3], "must be a mapping of Name: value");
        } else {
            for (yaml_node_pair_t *pr = v[3]->data.mapping.pairs.start;
                 pr < v[3]->data.mapping.pairs.top; pr++) {
                yaml_node_t *kn = node(c, pr->key), *vn = node(c, pr->value);
                const char *name = scalar(kn), *val = scalar(vn);
                if (!name || !*name) {
                    prob(c, sp, kn, "header names must be non-empty strings");
                    continue;
                }
                char hp[260];
                pfmt(hp, sizeof hp, "%s.%.50s", sp, name);
                if (w->n_headers == WL_WARMUP_HEADERS_MAX) {
                    prob(c, sp, kn, "at most %d headers", WL_WARMUP_HEADERS_MAX);
                    break;
                }
                int bad = 0;
                for (const char *q = name; *q; q++)
                    if (!http_token_char((unsigned char)*q)) bad = 1;
                if (bad) {
                    prob(c, hp, kn, "is not an HTTP header name");
                    continue;
                }
                if (!val) {
                    prob(c, hp, vn, "must be a string");
                    continue;
                }
                for (const char *q = val; *q; q++)
                    if (*q == '\r' || *q == '\n') bad = 1;
                if (bad) {
                    prob(c, hp, vn, "must not contain line breaks");
                    continue;
                }
                if (strlen(name) + 2 + strlen(val) >= WL_REPLICA_WORD_MAX) {
                    prob(c, hp, vn, "too long (name and value at most %d characters)",
                         WL_REPLICA_WORD_MAX - 3);
                    continue;
                }
                pfmt(w->headers[w->n_headers++], WL_REPLICA_WORD_MAX, "%s: %s", name, val);
            }
        }
    }
#define WP(key) (pfmt(sp, sizeof sp, "%s." key, path), sp)
    if (v[4]) get_num(c, WP("rate"), v[4], 0.1, 100000, 0, &w->rate);
    if (v[5] && get_num(c, WP("startRate"), v[5], 0.1, 100000, 0, &w->start_rate) == 0 &&
        w->start_rate > w->rate)
        prob(c, sp, v[5], "must not exceed rate (%g), got %g", w->rate, w->start_rate);
    if (v[6]) get_secs_ms(c, WP("durationSeconds"), v[6], 0.001, 3600, &w->duration_ms);
    if (v[7] && get_secs_ms(c, WP("rampSeconds"), v[7], 0, 3600, &w->ramp_ms) == 0 &&
        w->ramp_ms > w->duration_ms)
        prob(c, sp, v[7], "must not exceed durationSeconds (%g)", w->duration_ms / 1000.0);
    if (v[8]) get_int(c, WP("maxInflight"), v[8], 1, 10000, &w->max_inflight);
    if (v[9]) get_secs_ms(c, WP("requestTimeoutSeconds"), v[9], 0.001, 600, &w->request_timeout_ms);
#undef WP
}

static void parse_replica(pctx *c, yaml_node_t *n, wl_replica_template *r, wl_warmup *w) {
    static const char *const k[] = {"command",   "env",        "cwd",
                                    "user",      "cpu",        "memory",
                                    "readiness", "stopSignal", "gracePeriodSeconds",
                                    "ports",     "warmup",     NULL};
    yaml_node_t *v[11];
    const char *path = "spec.target.replica";
    char sp[160];
    /* the agent's bound on the expanded command and environment, less its own 5 variables
     * (PATH, HOME, TIDE_REPLICA_ID, TIDE_NODE, TIDE_REPLICA_PORT: at most 3000 bytes) */
    size_t total = 0, xl = 0, budget = TIDE_REPLICA_CMDLINE_MAX - 3000;
    r->readiness_timeout_seconds = 30;
    r->grace_seconds = 10;
    snprintf(r->stop_signal, sizeof r->stop_signal, "TERM");
    if (fields(c, path, n, k, v) < 0) return;
    if (!v[0])
        prob(c, path, n, "missing field \"command\"");
    else if (v[0]->type != YAML_SEQUENCE_NODE)
        prob(c, "spec.target.replica.command", v[0], "must be a list of words");
    else {
        for (yaml_node_item_t *it = v[0]->data.sequence.items.start;
             it < v[0]->data.sequence.items.top; it++) {
            pfmt(sp, sizeof sp, "spec.target.replica.command[%d]",
                 (int)(it - v[0]->data.sequence.items.start));
            if (r->n_command == WL_REPLICA_ARGS_MAX) {
                prob(c, sp, v[0], "at most %d words", WL_REPLICA_ARGS_MAX);
                break;
            }
            if (get_template(c, sp, node(c, *it), r->command[r->n_command], WL_REPLICA_WORD_MAX,
                             &xl) == 0) {
                r->n_command++;
                total += xl + 1;
            }
        }
        if (v[0]->data.sequence.items.start == v[0]->data.sequence.items.top)
            prob(c, "spec.target.replica.command", v[0], "must not be empty");
    }
    if (v[1]) {
        if (v[1]->type != YAML_MAPPING_NODE)
            prob(c, "spec.target.replica.env", v[1], "must be a mapping of NAME: value");
        else
            for (yaml_node_pair_t *pr = v[1]->data.mapping.pairs.start;
                 pr < v[1]->data.mapping.pairs.top; pr++) {
                yaml_node_t *kn = node(c, pr->key), *vn = node(c, pr->value);
                const char *name = scalar(kn);
                if (r->n_env == WL_REPLICA_ENV_MAX) {
                    prob(c, "spec.target.replica.env", kn, "at most %d variables",
                         WL_REPLICA_ENV_MAX);
                    break;
                }
                if (!name || !env_name_ok(name) || strlen(name) >= WL_NAME_MAX) {
                    prob(c, "spec.target.replica.env", kn,
                         "variable names are [A-Za-z_][A-Za-z0-9_]*, at most %d characters",
                         WL_NAME_MAX - 1);
                    continue;
                }
                int dup = 0;
                for (int i = 0; i < r->n_env; i++)
                    dup |= !strcmp(r->env[i].name, name);
                pfmt(sp, sizeof sp, "spec.target.replica.env.%s", name);
                if (dup) {
                    prob(c, sp, kn, "duplicate variable");
                    continue;
                }
                wl_env *e = &r->env[r->n_env];
                snprintf(e->name, sizeof e->name, "%s", name);
                if (get_template(c, sp, vn, e->value, sizeof e->value, &xl) == 0) {
                    r->n_env++;
                    total += strlen(name) + 1 + xl + 1;
                }
            }
    }
    if (total > budget)
        prob(c, path, n,
             "command and env expand to up to %zu bytes with the longest replica id (at most %zu)",
             total, budget);
    if (v[2] &&
        get_template(c, "spec.target.replica.cwd", v[2], r->cwd, sizeof r->cwd, NULL) == 0 &&
        r->cwd[0] != '/')
        prob(c, "spec.target.replica.cwd", v[2], "must be an absolute path");
    if (v[3] && get_str(c, "spec.target.replica.user", v[3], r->user, sizeof r->user) == 0 &&
        !name_ok(r->user))
        prob(c, "spec.target.replica.user", v[3], "must be a user name");
    if (v[4]) get_num(c, "spec.target.replica.cpu", v[4], 0.001, 1024, 0, &r->cpu_cores);
    if (v[5]) {
        const char *m = scalar(v[5]);
        char why[160];
        if (!m)
            prob(c, "spec.target.replica.memory", v[5], "must be a size such as 512Mi");
        else if (parse_bytes(m, &r->memory_bytes, why, sizeof why) < 0)
            prob(c, "spec.target.replica.memory", v[5], "%s", why);
    }
    if (v[6]) {
        static const char *const rk[] = {"path", "timeoutSeconds", NULL};
        yaml_node_t *rv[2];
        if (fields(c, "spec.target.replica.readiness", v[6], rk, rv) == 0) {
            if (rv[0] &&
                get_str(c, "spec.target.replica.readiness.path", rv[0], r->readiness_path,
                        sizeof r->readiness_path) == 0 &&
                r->readiness_path[0] != '/')
                prob(c, "spec.target.replica.readiness.path", rv[0], "must start with '/'");
            for (const char *p = r->readiness_path; *p; p++)
                if ((unsigned char)*p <= ' ' || *p == 0x7f) {
                    prob(c, "spec.target.replica.readiness.path", rv[0],
                         "must not hold spaces or control characters");
                    break;
                }
            if (rv[1])
                get_int(c, "spec.target.replica.readiness.timeoutSeconds", rv[1], 1, 3600,
                        &r->readiness_timeout_seconds);
        }
    }
    if (v[7]) {
        static const char *const sigs[] = {"TERM", "INT",  "QUIT", "HUP",
                                           "USR1", "USR2", "KILL", NULL};
        const char *sg = scalar(v[7]);
        if (sg && !strncmp(sg, "SIG", 3)) sg += 3;
        int i;
        for (i = 0; sg && sigs[i]; i++)
            if (!strcmp(sg, sigs[i])) break;
        if (!sg || !sigs[i])
            prob(c, "spec.target.replica.stopSignal", v[7],
                 "must be one of TERM, INT, QUIT, HUP, USR1, USR2, KILL");
        else
            snprintf(r->stop_signal, sizeof r->stop_signal, "%s", sigs[i]);
    }
    if (v[8])
        get_int(c, "spec.target.replica.gracePeriodSeconds", v[8], 0, 3600, &r->grace_seconds);
    if (!v[9])
        prob(c, path, n, "missing field \"ports\" ({first, last}: the ports replicas listen on)");
    else {
        static const char *const pk[] = {"first", "last", NULL};
        yaml_node_t *pv[2];
        if (fields(c, "spec.target.replica.ports", v[9], pk, pv) == 0) {
            int ok = 1;
            if (!pv[0] || !pv[1]) {
                prob(c, "spec.target.replica.ports", v[9], "needs \"first\" and \"last\"");
                ok = 0;
            }
            if (pv[0])
                ok &= get_int(c, "spec.target.replica.ports.first", pv[0], 1, 65535,
                              &r->port_first) == 0;
            if (pv[1])
                ok &= get_int(c, "spec.target.replica.ports.last", pv[1], 1, 65535,
                              &r->port_last) == 0;
            if (ok && r->port_last < r->port_first)
                prob(c, "spec.target.replica.ports.last", pv[1], "is below first (%d)",
                     r->port_first);
        }
    }
    if (v[10]) parse_warmup(c, "spec.target.replica.warmup", v[10], w);
}

static void parse_haproxy(pctx *c, yaml_node_t *n, wl_target *t) {
    static const char *const k[] = {"node", "socket", "serverPrefix", NULL};
    yaml_node_t *v[3];
    const char *path = "spec.target.haproxy";
    if (fields(c, path, n, k, v) < 0) return;
    for (int i = 0; i < 3; i++)
        if (!v[i]) prob(c, path, n, "missing field \"%s\"", k[i]);
    if (v[0] &&
        get_str(c, "spec.target.haproxy.node", v[0], t->haproxy_node, sizeof t->haproxy_node) ==
            0 &&
        !name_ok(t->haproxy_node))
        prob(c, "spec.target.haproxy.node", v[0], "must be a node name");
    if (v[1] &&
        get_str(c, "spec.target.haproxy.socket", v[1], t->haproxy_socket,
                sizeof t->haproxy_socket) == 0 &&
        t->haproxy_socket[0] != '/')
        prob(c, "spec.target.haproxy.socket", v[1], "must be an absolute path");
    if (v[2] &&
        get_str(c, "spec.target.haproxy.serverPrefix", v[2], t->haproxy_prefix,
                sizeof t->haproxy_prefix) == 0 &&
        !name_ok(t->haproxy_prefix))
        prob(c, "spec.target.haproxy.serverPrefix", v[2],
             "use letters, digits, '-', '_' and '.' only (the server-template prefix)");
}

/* A node entry: "name", or {name, address} (HAProxyBackend only). */
static int parse_node(pctx *c, const char *path, yaml_node_t *e, wl_target *t, int allow_addr) {
    int i = t->n_nodes;
    t->node_addr[i][0] = 0;
    if (e && e->type == YAML_MAPPING_NODE) {
        static const char *const k[] = {"name", "address", NULL};
        yaml_node_t *v[2];
        char sp[160];
        if (fields(c, path, e, k, v) < 0) return -1;
        if (!allow_addr) {
            prob(c, path, e, "must be a node name (an address is only for HAProxyBackend)");
            return -1;
        }
        if (!v[0]) {
            prob(c, path, e, "missing field \"name\"");
            return -1;
        }
        subpath(sp, sizeof sp, path, "name");
        if (get_str(c, sp, v[0], t->nodes[i], WL_NAME_MAX) < 0) return -1;
        if (v[1]) {
            subpath(sp, sizeof sp, path, "address");
            if (get_str(c, sp, v[1], t->node_addr[i], WL_ADDR_MAX) < 0) return -1;
            unsigned char a[16];
            if (inet_pton(AF_INET, t->node_addr[i], a) != 1 &&
                inet_pton(AF_INET6, t->node_addr[i], a) != 1) {
                prob(c, sp, v[1], "must be an IPv4 or IPv6 address");
                return -1;
            }
        }
    } else if (get_str(c, path, e, t->nodes[i], WL_NAME_MAX) < 0)
        return -1;
    for (int j = 0; j < i; j++)
        if (!strcmp(t->nodes[j], t->nodes[i])) {
            prob(c, path, e, "node \"%s\" is listed twice", t->nodes[i]);
            return -1;
        }
    return 0;
}

static void parse_target(pctx *c, yaml_node_t *n, workload_spec *s) {
    static const char *const k[] = {"kind",  "namespace", "name",    "unit",
                                    "nodes", "haproxy",   "replica", NULL};
    yaml_node_t *v[7];
    const char *path = "spec.target";
    if (fields(c, path, n, k, v) < 0) return;
    int kind = -1;
    char sp[160];
    if (!v[0])
        prob(c, path, n, "missing field \"kind\"");
    else
        get_enum(c, "spec.target.kind", v[0], target_kinds, &kind);
    if (kind >= 0) s->target.kind = (wl_target_kind)kind;
    if (v[1])
        get_str(c, "spec.target.namespace", v[1], s->target.namespace_,
                sizeof s->target.namespace_);
    if (v[2]) get_str(c, "spec.target.name", v[2], s->target.name, sizeof s->target.name);
    if (v[3]) get_str(c, "spec.target.unit", v[3], s->target.unit, sizeof s->target.unit);
    if (v[4]) {
        if (v[4]->type != YAML_SEQUENCE_NODE)
            prob(c, "spec.target.nodes", v[4], "must be a list of node names");
        else
            for (yaml_node_item_t *it = v[4]->data.sequence.items.start;
                 it < v[4]->data.sequence.items.top; it++) {
                pfmt(sp, sizeof sp, "spec.target.nodes[%d]",
                     (int)(it - v[4]->data.sequence.items.start));
                if (s->target.n_nodes == WL_MAX_NODES) {
                    prob(c, sp, v[4], "at most %d nodes", WL_MAX_NODES);
                    break;
                }
                yaml_node_t *e = node(c, *it);
                if (parse_node(c, sp, e, &s->target, kind == WL_TARGET_HAPROXY_BACKEND) == 0)
                    s->target.n_nodes++;
            }
    }
    if (kind == WL_TARGET_DEPLOYMENT || kind == WL_TARGET_STATEFULSET) {
        if (!v[2]) prob(c, path, n, "a %s target needs \"name\"", target_kinds[kind]);
        if (v[3]) prob(c, "spec.target.unit", v[3], "only for kind SystemdUnit");
        if (v[4]) prob(c, "spec.target.nodes", v[4], "only for kind SystemdUnit");
    } else if (kind == WL_TARGET_HAPROXY_BACKEND) {
        if (!v[2]) prob(c, path, n, "an HAProxyBackend target needs \"name\" (the backend)");
        if (v[1]) prob(c, "spec.target.namespace", v[1], "only for Kubernetes kinds");
        if (v[3]) prob(c, "spec.target.unit", v[3], "only for kind SystemdUnit");
        if (v[5]) parse_haproxy(c, v[5], &s->target);
        if (v[6]) parse_replica(c, v[6], &s->target.replica, &s->target.warmup);
        if (v[5] && !v[6]) prob(c, path, n, "\"haproxy\" needs \"replica\" (the replica template)");
        if (v[6] && !v[5])
            prob(c, path, n, "\"replica\" needs \"haproxy\" (node, socket, serverPrefix)");
        if (v[5] && v[6]) {
            s->target.has_executor = 1;
            if (!v[4] || s->target.n_nodes == 0)
                prob(c, path, n,
                     "an HAProxyBackend with a replica template needs \"nodes\" "
                     "(the agents that may run replicas)");
        }
    }
    if (kind != WL_TARGET_HAPROXY_BACKEND) {
        if (v[5]) prob(c, "spec.target.haproxy", v[5], "only for kind HAProxyBackend");
        if (v[6]) prob(c, "spec.target.replica", v[6], "only for kind HAProxyBackend");
    }
    if (kind == WL_TARGET_SYSTEMD_UNIT) {
        if (!v[3])
            prob(c, path, n, "a SystemdUnit target needs \"unit\" (a template, e.g. web@.service)");
        else if (!strstr(s->target.unit, "@."))
            prob(c, "spec.target.unit", v[3], "must be a template unit such as web@.service");
        if (!v[4] || s->target.n_nodes == 0)
            prob(c, path, n, "a SystemdUnit target needs \"nodes\"");
        if (v[1]) prob(c, "spec.target.namespace", v[1], "only for Kubernetes kinds");
    }
}

static void parse_metrics(pctx *c, yaml_node_t *n, workload_spec *s) {
    static const char *const k[] = {"utilization", "traffic", "replicas", "offsetSeconds", NULL};
    yaml_node_t *v[4];
    if (fields(c, "spec.metrics", n, k, v) < 0) return;
    if (v[3])
        get_int(c, "spec.metrics.offsetSeconds", v[3], 0, 2000000000, &s->metrics_offset_seconds);
    if (v[0]) {
        static const char *const extra[] = {"target", NULL};
        yaml_node_t *ev[1] = {NULL};
        get_source(c, "spec.metrics.utilization", v[0], &s->utilization, 0, extra, ev);
        if (ev[0])
            get_num(c, "spec.metrics.utilization.target", ev[0], 0, 100, 1, &s->target_utilization);
        if (!s->utilization.name[0])
            snprintf(s->utilization.name, sizeof s->utilization.name, "cpu");
    }
    if (v[1]) {
        if (v[1]->type != YAML_SEQUENCE_NODE)
            prob(c, "spec.metrics.traffic", v[1], "must be a list");
        else
            for (yaml_node_item_t *it = v[1]->data.sequence.items.start;
                 it < v[1]->data.sequence.items.top; it++) {
                char sp[160];
                pfmt(sp, sizeof sp, "spec.metrics.traffic[%d]", s->n_traffic);
                if (s->n_traffic == WL_MAX_TRAFFIC) {
                    prob(c, sp, v[1], "at most %d traffic metrics", WL_MAX_TRAFFIC);
                    break;
                }
                wl_source *src = &s->traffic[s->n_traffic++];
                get_source(c, sp, node(c, *it), src, 1, NULL, NULL);
                if (!src->name[0])
                    snprintf(src->name, sizeof src->name, "traffic%d", s->n_traffic - 1);
            }
    }
    if (v[2]) {
        get_source(c, "spec.metrics.replicas", v[2], &s->replicas_metric, 1, NULL, NULL);
        s->has_replicas_metric = 1;
    }
}

static void parse_window(pctx *c, const char *path, yaml_node_t *n, wl_cron_window *w) {
    static const char *const k[] = {"start", "end", "replicas", NULL};
    yaml_node_t *v[3];
    char sp[160], why[160];
    w->line = n ? (int)n->start_mark.line + 1 : 0;
    if (fields(c, path, n, k, v) < 0) return;
    const char *names[] = {"start", "end"};
    wl_cron *cr[] = {&w->start, &w->end};
    char *txt[] = {w->start_text, w->end_text};
    for (int i = 0; i < 2; i++) {
        subpath(sp, sizeof sp, path, names[i]);
        if (!v[i]) {
            prob(c, path, n, "missing field \"%s\" (a 5-field cron expression)", names[i]);
            continue;
        }
        if (get_str(c, sp, v[i], txt[i], WL_NAME_MAX) < 0) continue;
        if (wl_cron_parse(txt[i], cr[i], why, sizeof why) < 0) prob(c, sp, v[i], "%s", why);
    }
    subpath(sp, sizeof sp, path, "replicas");
    if (!v[2])
        prob(c, path, n, "missing field \"replicas\"");
    else
        get_int(c, sp, v[2], 0, 100000, &w->replicas);
}

struct overlap_ctx {
    pctx *c;
    const char *path;
    yaml_node_t *n;
    const wl_provider *p;
};
static void overlap_report(void *arg, int a, int b, int never) {
    struct overlap_ctx *o = arg;
    char sp[160];
    pfmt(sp, sizeof sp, "%s.windows[%d]", o->path, a);
    if (never) {
        probl(o->c, sp, o->p->windows[a].line, "window never opens: \"%s\" .. \"%s\"",
              o->p->windows[a].start_text, o->p->windows[a].end_text);
        return;
    }
    probl(o->c, sp, o->p->windows[a].line, "window overlaps windows[%d] (line %d)", b,
          o->p->windows[b].line);
}

static void parse_provider(pctx *c, const char *path, yaml_node_t *n, wl_provider *p) {
    static const char *const k[] = {"type",
                                    "name",
                                    "priority",
                                    "replicas",
                                    "timeZone",
                                    "windows",
                                    "model",
                                    "quantile",
                                    "horizonSeconds",
                                    "retrainSeconds",
                                    "reforecastSeconds",
                                    "maxModelAgeSeconds",
                                    "capacityPerReplica",
                                    NULL};
    /* which fields each type takes (bit i = k[i]) */
    static const unsigned allowed[] = {
        [WL_PROV_STATIC] = 1u << 0 | 1u << 1 | 1u << 2 | 1u << 3,
        [WL_PROV_CRON] = 1u << 0 | 1u << 1 | 1u << 2 | 1u << 4 | 1u << 5,
        [WL_PROV_REACTIVE] = 1u << 0 | 1u << 1 | 1u << 2,
        [WL_PROV_PREDICTIVE] = 0x1fffu & ~(1u << 3 | 1u << 4 | 1u << 5),
    };
    yaml_node_t *v[13];
    char sp[160];
    if (fields(c, path, n, k, v) < 0) return;
    int type = -1;
    if (!v[0]) {
        prob(c, path, n, "missing field \"type\" (static, cron, reactive or predictive)");
        return;
    }
    subpath(sp, sizeof sp, path, "type");
    if (get_enum(c, sp, v[0], provider_types, &type) < 0) return;
    p->type = (wl_provider_type)type;
    snprintf(p->name, sizeof p->name, "%s", provider_types[type]);
    snprintf(p->time_zone, sizeof p->time_zone, "UTC");
    snprintf(p->model, sizeof p->model, "auto");
    p->quantile = 0.9;
    p->horizon_seconds = 3600;
    p->retrain_seconds = 86400;
    p->reforecast_seconds = 300;
    p->max_age_seconds = 7 * 86400;
    for (int i = 1; k[i]; i++) {
        if (!v[i] || (allowed[type] >> i & 1)) continue;
        subpath(sp, sizeof sp, path, k[i]);
        prob(c, sp, v[i], "does not apply to a %s provider", provider_types[type]);
        v[i] = NULL;
    }
#define SP(key) (subpath(sp, sizeof sp, path, key), sp)
    if (v[1]) get_str(c, SP("name"), v[1], p->name, sizeof p->name);
    if (v[2]) get_int(c, SP("priority"), v[2], -1000000, 1000000, &p->priority);
    if (type == WL_PROV_STATIC) {
        if (!v[3])
            prob(c, path, n, "a static provider needs \"replicas\"");
        else
            get_int(c, SP("replicas"), v[3], 0, 100000, &p->replicas);
    }
    if (type == WL_PROV_CRON) {
        if (v[4]) {
            if (get_str(c, SP("timeZone"), v[4], p->time_zone, sizeof p->time_zone) == 0 &&
                !wl_zone_valid(p->time_zone))
                prob(c, sp, v[4],
                     "unknown time zone \"%s\" (a TZ database name such as Europe/Berlin)",
                     p->time_zone);
        }
        if (!v[5] || v[5]->type != YAML_SEQUENCE_NODE ||
            v[5]->data.sequence.items.start == v[5]->data.sequence.items.top) {
            prob(c, v[5] ? SP("windows") : path, v[5] ? v[5] : n,
                 "a cron provider needs a non-empty list \"windows\"");
        } else {
            int before = c->nprob;
            for (yaml_node_item_t *it = v[5]->data.sequence.items.start;
                 it < v[5]->data.sequence.items.top; it++) {
                pfmt(sp, sizeof sp, "%s.windows[%d]", path, p->n_windows);
                if (p->n_windows == WL_MAX_WINDOWS) {
                    prob(c, sp, v[5], "at most %d windows", WL_MAX_WINDOWS);
                    break;
                }
                parse_window(c, sp, node(c, *it), &p->windows[p->n_windows++]);
            }
            if (c->nprob == before) {
                struct overlap_ctx o = {c, path, n, p};
                cron_overlaps(p, overlap_report, &o);
            }
        }
    }
    if (type == WL_PROV_PREDICTIVE) {
        if (v[6] && get_str(c, SP("model"), v[6], p->model, sizeof p->model) == 0 && !p->model[0])
            prob(c, sp, v[6], "must name a model");
        if (v[7]) {
            get_num(c, SP("quantile"), v[7], 0, 1, 1, &p->quantile);
            if (p->quantile >= 1) prob(c, sp, v[7], "must be below 1");
        }
        if (v[8]) get_int(c, SP("horizonSeconds"), v[8], 60, 7 * 86400, &p->horizon_seconds);
        if (v[9]) get_int(c, SP("retrainSeconds"), v[9], 60, 365 * 86400, &p->retrain_seconds);
        if (v[10]) get_int(c, SP("reforecastSeconds"), v[10], 1, 86400, &p->reforecast_seconds);
        if (v[11])
            get_int(c, SP("maxModelAgeSeconds"), v[11], 60, 365 * 86400, &p->max_age_seconds);
        if (v[12])
            get_num(c, SP("capacityPerReplica"), v[12], 0, 1e15, 1, &p->capacity_per_replica);
        if (p->reforecast_seconds > p->horizon_seconds)
            prob(c, path, n, "reforecastSeconds (%d) must not exceed horizonSeconds (%d)",
                 p->reforecast_seconds, p->horizon_seconds);
    }
#undef SP
}

static void parse_providers(pctx *c, yaml_node_t *n, workload_spec *s) {
    if (n->type != YAML_SEQUENCE_NODE) {
        prob(c, "spec.providers", n, "must be a list of providers");
        return;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        char sp[160];
        pfmt(sp, sizeof sp, "spec.providers[%d]", s->n_providers);
        if (s->n_providers == WL_MAX_PROVIDERS) {
            prob(c, sp, n, "at most %d providers", WL_MAX_PROVIDERS);
            break;
        }
        parse_provider(c, sp, node(c, *it), &s->providers[s->n_providers++]);
    }
    if (s->n_providers == 0) prob(c, "spec.providers", n, "must not be empty");
    for (int a = 0; a < s->n_providers; a++)
        for (int b = a + 1; b < s->n_providers; b++)
            if (strcmp(s->providers[a].name, s->providers[b].name) == 0) {
                char sp[160];
                pfmt(sp, sizeof sp, "spec.providers[%d].name", b);
                prob(c, sp, NULL, "duplicate provider name \"%s\" (also providers[%d])",
                     s->providers[b].name, a);
            }
}

static void parse_direction(pctx *c, const char *path, yaml_node_t *n, wl_direction *d, int up) {
    static const char *const k[] = {"stabilizationWindowSeconds", "selectPolicy", "policies",
                                    "gray", NULL};
    yaml_node_t *v[4];
    char sp[160];
    if (fields(c, path, n, k, v) < 0) return;
#define SP(key) (subpath(sp, sizeof sp, path, key), sp)
    if (v[0])
        get_int(c, SP("stabilizationWindowSeconds"), v[0], 0, 3600, &d->stabilization_seconds);
    if (v[1]) {
        int sel;
        if (get_enum(c, SP("selectPolicy"), v[1], selects, &sel) == 0) d->select = (wl_select)sel;
    }
    if (v[2]) {
        if (v[2]->type != YAML_SEQUENCE_NODE)
            prob(c, SP("policies"), v[2], "must be a list");
        else {
            d->n_policies = 0;
            for (yaml_node_item_t *it = v[2]->data.sequence.items.start;
                 it < v[2]->data.sequence.items.top; it++) {
                char pp[160];
                pfmt(pp, sizeof pp, "%s.policies[%d]", path, d->n_policies);
                if (d->n_policies == WL_MAX_POLICIES) {
                    prob(c, pp, v[2], "at most %d policies", WL_MAX_POLICIES);
                    break;
                }
                static const char *const pk[] = {"type", "value", "periodSeconds", NULL};
                yaml_node_t *pv[3], *pn = node(c, *it);
                wl_policy *pol = &d->policies[d->n_policies++];
                if (fields(c, pp, pn, pk, pv) < 0) continue;
                char q[180];
                int t;
                if (!pv[0] || !pv[1] || !pv[2]) {
                    prob(c, pp, pn, "a policy needs type, value and periodSeconds");
                    continue;
                }
                pfmt(q, sizeof q, "%s.type", pp);
                if (get_enum(c, q, pv[0], policy_types, &t) == 0) pol->type = (wl_policy_type)t;
                pfmt(q, sizeof q, "%s.value", pp);
                get_int(c, q, pv[1], 1, 1000000, &pol->value);
                pfmt(q, sizeof q, "%s.periodSeconds", pp);
                get_int(c, q, pv[2], 1, 1800, &pol->period_seconds);
            }
            if (d->n_policies == 0) prob(c, sp, v[2], "needs at least one policy");
        }
    }
    if (v[3]) {
        static const char *const gk[] = {"state", "changePercent", "changeIntervalSeconds",
                                         "observationSeconds", NULL};
        yaml_node_t *gv[4];
        char gp[160];
        pfmt(gp, sizeof gp, "%s.gray", path);
        if (fields(c, gp, v[3], gk, gv) == 0) {
#define GP(key) (subpath(sp, sizeof sp, gp, key), sp)
            if (gv[0]) {
                int st;
                if (up)
                    prob(c, GP("state"), gv[0],
                         "applies to scaleDown only (scale-up always ends Online)");
                else if (get_enum(c, GP("state"), gv[0], gray_states, &st) == 0)
                    d->state = (wl_gray_state)st;
            }
            if (gv[1]) get_int(c, GP("changePercent"), gv[1], 1, 100, &d->change_percent);
            if (gv[2])
                get_int(c, GP("changeIntervalSeconds"), gv[2], 0, 86400,
                        &d->change_interval_seconds);
            if (gv[3])
                get_int(c, GP("observationSeconds"), gv[3], 0, 86400, &d->observation_seconds);
#undef GP
        }
    }
#undef SP
}

static void parse_behavior(pctx *c, yaml_node_t *n, workload_spec *s) {
    static const char *const k[] = {
        "scaleUp",   "scaleDown", "scaleUpAhead", "keepAliveSeconds", "syncPeriodSeconds",
        "tolerance", NULL};
    yaml_node_t *v[6];
    if (fields(c, "spec.behavior", n, k, v) < 0) return;
    if (v[0]) parse_direction(c, "spec.behavior.scaleUp", v[0], &s->up, 1);
    if (v[1]) parse_direction(c, "spec.behavior.scaleDown", v[1], &s->down, 0);
    if (v[2]) {
        const char *t = scalar(v[2]);
        char *end = NULL;
        long secs = t ? strtol(t, &end, 10) : -1;
        if (t && strcmp(t, "auto") == 0)
            s->scale_up_ahead_seconds = -1;
        else if (t && *t && end && !*end && secs >= 0 && secs <= 86400)
            s->scale_up_ahead_seconds = (int)secs;
        else
            prob(c, "spec.behavior.scaleUpAhead", v[2], "must be \"auto\" or seconds in 0..86400");
    }
    if (v[3])
        get_int(c, "spec.behavior.keepAliveSeconds", v[3], 0, 30 * 86400, &s->keep_alive_seconds);
    if (v[4]) get_int(c, "spec.behavior.syncPeriodSeconds", v[4], 1, 3600, &s->sync_seconds);
    if (v[5]) get_num(c, "spec.behavior.tolerance", v[5], 0, 1, 0, &s->tolerance);
}

static void parse_checkers(pctx *c, yaml_node_t *n, workload_spec *s) {
    if (n->type != YAML_SEQUENCE_NODE) {
        prob(c, "spec.stabilityCheckers", n, "must be a list");
        return;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        char path[160], sp[160];
        pfmt(path, sizeof path, "spec.stabilityCheckers[%d]", s->n_checkers);
        if (s->n_checkers == WL_MAX_CHECKERS) {
            prob(c, path, n, "at most %d checkers", WL_MAX_CHECKERS);
            break;
        }
        wl_checker *ck = &s->checkers[s->n_checkers++];
        static const char *const k[] = {"name",   "metric",          "operator", "threshold",
                                        "action", "cooldownSeconds", NULL};
        yaml_node_t *v[6], *cn = node(c, *it);
        if (fields(c, path, cn, k, v) < 0) continue;
        ck->cooldown_seconds = 300;
        snprintf(ck->name, sizeof ck->name, "checker%d", s->n_checkers - 1);
#define SP(key) (subpath(sp, sizeof sp, path, key), sp)
        if (v[0]) get_str(c, SP("name"), v[0], ck->name, sizeof ck->name);
        if (!v[1])
            prob(c, path, cn, "missing field \"metric\"");
        else {
            get_source(c, SP("metric"), v[1], &ck->metric, 0, NULL, NULL);
            if (!ck->metric.name[0] && !ck->metric.selector[0] && !ck->metric.query[0])
                prob(c, sp, v[1], "needs a name, selector or query");
        }
        int e;
        if (v[2] && get_enum(c, SP("operator"), v[2], check_ops, &e) == 0) ck->op = (wl_check_op)e;
        if (!v[3])
            prob(c, path, cn, "missing field \"threshold\"");
        else
            get_num(c, SP("threshold"), v[3], -1e15, 1e15, 0, &ck->threshold);
        if (!v[4])
            prob(c, path, cn, "missing field \"action\" (Pause or Rollback)");
        else if (get_enum(c, SP("action"), v[4], check_actions, &e) == 0)
            ck->action = (wl_check_action)e;
        if (v[5]) get_int(c, SP("cooldownSeconds"), v[5], 0, 86400, &ck->cooldown_seconds);
#undef SP
    }
}

static int name_ok(const char *s) {
    if (!isalnum((unsigned char)*s)) return 0; /* also: never "", "." or ".." (a file name) */
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') return 0;
    return 1;
}

/* HPA v2's form of the target: scaleTargetRef {apiVersion, kind, name}, in the Workload's own
 * namespace (metadata.namespace). */
static void parse_scale_target_ref(pctx *c, yaml_node_t *n, workload_spec *s) {
    static const char *const k[] = {"apiVersion", "kind", "name", NULL};
    yaml_node_t *v[3];
    const char *path = "spec.scaleTargetRef";
    if (fields(c, path, n, k, v) < 0) return;
    if (v[0] && (!scalar(v[0]) || strcmp(scalar(v[0]), "apps/v1") != 0))
        prob(c, "spec.scaleTargetRef.apiVersion", v[0],
             "must be apps/v1 (Deployments and StatefulSets)");
    int kind = -1;
    if (!v[1])
        prob(c, path, n, "missing field \"kind\" (Deployment or StatefulSet)");
    else if (get_enum(c, "spec.scaleTargetRef.kind", v[1], target_kinds, &kind) == 0 &&
             kind != WL_TARGET_DEPLOYMENT && kind != WL_TARGET_STATEFULSET) {
        prob(c, "spec.scaleTargetRef.kind", v[1],
             "must be Deployment or StatefulSet (use spec.target for %s)", target_kinds[kind]);
        kind = -1;
    }
    if (kind >= 0) s->target.kind = (wl_target_kind)kind;
    if (!v[2])
        prob(c, path, n, "missing field \"name\"");
    else
        get_str(c, "spec.scaleTargetRef.name", v[2], s->target.name, sizeof s->target.name);
    s->target.scale_target_ref = 1;
}

static void parse_spec(pctx *c, yaml_node_t *n, workload_spec *s, int has_meta_ns) {
    static const char *const k[] = {
        "target",    "minReplicas", "maxReplicas",       "mode",           "paused", "metrics",
        "providers", "behavior",    "stabilityCheckers", "scaleTargetRef", "warmup", NULL};
    yaml_node_t *v[11];
    if (fields(c, "spec", n, k, v) < 0) return;
    if (v[0] && v[9])
        prob(c, "spec.scaleTargetRef", v[9], "give either target or scaleTargetRef, not both");
    else if (v[9])
        parse_scale_target_ref(c, v[9], s);
    else if (!v[0])
        prob(c, "spec", n, "missing field \"scaleTargetRef\" (or \"target\")");
    else
        parse_target(c, v[0], s);
    /* one namespace: the Workload's; target.namespace may repeat it, not contradict it */
    if (s->target.kind == WL_TARGET_DEPLOYMENT || s->target.kind == WL_TARGET_STATEFULSET) {
        if (!s->target.namespace_[0] || s->target.scale_target_ref)
            snprintf(s->target.namespace_, sizeof s->target.namespace_, "%s", s->namespace_);
        else if (has_meta_ns && strcmp(s->target.namespace_, s->namespace_) != 0)
            prob(c, "spec.target.namespace", v[0],
                 "\"%s\" disagrees with metadata.namespace \"%s\" (the target lives in the "
                 "Workload's namespace; omit one)",
                 s->target.namespace_, s->namespace_);
        else if (!has_meta_ns)
            snprintf(s->namespace_, sizeof s->namespace_, "%s", s->target.namespace_);
    }
    if (v[10]) { /* Kubernetes kinds; HAProxyBackend has it in its replica template */
        if (s->target.kind == WL_TARGET_DEPLOYMENT || s->target.kind == WL_TARGET_STATEFULSET)
            parse_warmup(c, "spec.warmup", v[10], &s->target.warmup);
        else if (s->target.kind == WL_TARGET_HAPROXY_BACKEND)
            prob(c, "spec.warmup", v[10],
                 "for kind HAProxyBackend it goes in the replica template "
                 "(spec.target.replica.warmup)");
        else
            prob(c, "spec.warmup", v[10],
                 "only for kinds Deployment, StatefulSet and (in "
                 "spec.target.replica) HAProxyBackend");
    }
    int okmin = 1, okmax = 1;
    if (v[1]) okmin = get_int(c, "spec.minReplicas", v[1], 0, 100000, &s->min_replicas) == 0;
    if (!v[2]) {
        prob(c, "spec", n, "missing field \"maxReplicas\"");
        okmax = 0;
    } else
        okmax = get_int(c, "spec.maxReplicas", v[2], 1, 100000, &s->max_replicas) == 0;
    if (okmin && okmax && s->min_replicas > s->max_replicas)
        prob(c, "spec.minReplicas", v[1], "minReplicas (%d) is above maxReplicas (%d)",
             s->min_replicas, s->max_replicas);
    int e;
    if (v[3] && get_enum(c, "spec.mode", v[3], modes, &e) == 0) s->mode = (wl_mode)e;
    if (v[4]) get_bool(c, "spec.paused", v[4], &s->paused);
    if (v[5]) parse_metrics(c, v[5], s);
    if (v[6])
        parse_providers(c, v[6], s);
    else {
        s->n_providers = 1;
        s->providers[0].type = WL_PROV_REACTIVE;
        snprintf(s->providers[0].name, sizeof s->providers[0].name, "reactive");
    }
    if (v[7]) parse_behavior(c, v[7], s);
    if (v[8]) parse_checkers(c, v[8], s);
    /* cross-field checks */
    if (okmax && s->target.has_executor && s->target.n_nodes > 0 &&
        s->target.replica.port_last >= s->target.replica.port_first &&
        s->target.replica.port_first > 0) {
        long ports = (long)(s->target.replica.port_last - s->target.replica.port_first + 1);
        if (ports * s->target.n_nodes < s->max_replicas)
            prob(c, "spec.target.replica.ports", NULL,
                 "%ld port(s) on %d node(s) cannot hold maxReplicas (%d)", ports, s->target.n_nodes,
                 s->max_replicas);
    }
    for (int i = 0; i < s->n_providers; i++) {
        const wl_provider *p = &s->providers[i];
        if (p->type == WL_PROV_PREDICTIVE && s->n_traffic == 0)
            prob(c, "spec.metrics.traffic", v[5],
                 "a predictive provider (providers[%d]) needs a traffic metric", i);
    }
    for (int i = 0; i < s->n_checkers; i++) {
        const wl_checker *ck = &s->checkers[i];
        if (ck->metric.selector[0] || ck->metric.query[0]) continue;
        int found = !strcmp(ck->metric.name, "utilization") ||
                    !strcmp(ck->metric.name, s->utilization.name);
        for (int t = 0; t < s->n_traffic; t++)
            found |= !strcmp(ck->metric.name, s->traffic[t].name);
        if (!found) {
            char sp[160];
            pfmt(sp, sizeof sp, "spec.stabilityCheckers[%d].metric", i);
            prob(c, sp, NULL,
                 "\"%s\" is neither \"utilization\" nor a metric of spec.metrics; give a selector "
                 "or query",
                 ck->metric.name);
        }
    }
}

/* Nesting deeper than any spec needs (a spec nests about 6 levels). */
#define WL_MAX_DEPTH 64

/* Walks the YAML as events and stops at the first collection nested deeper than WL_MAX_DEPTH.
 * libyaml keeps per-level state that it scans again for every token, so deep nesting costs
 * time quadratic in the input (a 200 KB spec of brackets took 31 s); this pass stops after
 * WL_MAX_DEPTH levels, before the document is built. 1 ok (or a syntax error, left for the
 * loader to report), 0 too deep (*line set), -ENOMEM. */
static int depth_ok(const char *buf, size_t len, int *line) {
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) return -ENOMEM;
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    int depth = 0, rc = 1;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) break; /* the loader reports it */
        yaml_event_type_t t = ev.type;
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
            if (++depth > WL_MAX_DEPTH) {
                *line = (int)ev.start_mark.line + 1;
                rc = 0;
            }
        } else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
            depth--;
        }
        yaml_event_delete(&ev);
        if (!rc || t == YAML_STREAM_END_EVENT) break;
    }
    yaml_parser_delete(&p);
    return rc;
}

int wl_parse(const char *buf, size_t len, workload_spec *out, wl_problems *probs) {
    yaml_parser_t parser;
    yaml_document_t doc;
    wl_defaults(out);
    pctx c = {&doc, probs, 0, 200000};
    int line = 0, dok = depth_ok(buf, len, &line);
    if (dok < 0) return dok;
    if (!dok) {
        prob(&c, "(document)", NULL, "nested deeper than %d levels at line %d", WL_MAX_DEPTH, line);
        return -EINVAL;
    }
    if (!yaml_parser_initialize(&parser)) return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        prob(&c, "(document)", NULL, "YAML syntax at line %d column %d: %s%s%s",
             (int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1,
             parser.problem ? parser.problem : "error", parser.context ? " " : "",
             parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return -EINVAL;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        prob(&c, "(document)", NULL, "empty document");
        goto done;
    }
    /* apiVersion tide/v1 (tidectl apply) or tide.io/v1alpha1 (the custom resource, as kubectl
     * shows it: its object metadata and status are accepted and ignored) */
    static const char *const k[] = {"apiVersion", "kind", "metadata", "spec", "status", NULL};
    yaml_node_t *v[5];
    if (fields(&c, "", root, k, v) < 0) goto done;
    int cr = v[0] && scalar(v[0]) && strcmp(scalar(v[0]), "tide.io/v1alpha1") == 0;
    if (!v[0])
        prob(&c, "apiVersion", root, "missing (use tide/v1)");
    else if (!scalar(v[0]) || (strcmp(scalar(v[0]), "tide/v1") != 0 && !cr))
        prob(&c, "apiVersion", v[0], "must be tide/v1 (or tide.io/v1alpha1, the custom resource)");
    if (v[4] && !cr) prob(&c, "status", v[4], "only in a tide.io/v1alpha1 object");
    if (!v[1])
        prob(&c, "kind", root, "missing (use Workload)");
    else if (!scalar(v[1]) || strcmp(scalar(v[1]), "Workload") != 0)
        prob(&c, "kind", v[1], "must be Workload");
    int has_meta_ns = 0;
    if (!v[2])
        prob(&c, "metadata", root, "missing (needs metadata.name)");
    else {
        static const char *const mk[] = {"name", "namespace", NULL};
        static const char *const mk_cr[] = {"name",
                                            "namespace",
                                            "labels",
                                            "annotations",
                                            "uid",
                                            "resourceVersion",
                                            "generation",
                                            "creationTimestamp",
                                            "managedFields",
                                            "finalizers",
                                            "ownerReferences",
                                            "deletionTimestamp",
                                            "deletionGracePeriodSeconds",
                                            "generateName",
                                            "selfLink",
                                            NULL};
        yaml_node_t *mv[15];
        if (fields(&c, "metadata", v[2], cr ? mk_cr : mk, mv) == 0) {
            if (!mv[0])
                prob(&c, "metadata", v[2], "missing field \"name\"");
            else if (get_str(&c, "metadata.name", mv[0], out->name, sizeof out->name) == 0 &&
                     !name_ok(out->name))
                prob(&c, "metadata.name", mv[0],
                     "use letters, digits, '-', '_' and '.' only, starting with a letter or digit");
            if (mv[1] &&
                get_str(&c, "metadata.namespace", mv[1], out->namespace_, sizeof out->namespace_) ==
                    0 &&
                !name_ok(out->namespace_))
                prob(&c, "metadata.namespace", mv[1], "use letters, digits, '-', '_' and '.' only");
            has_meta_ns = mv[1] != NULL;
        }
    }
    if (!v[3])
        prob(&c, "spec", root, "missing");
    else
        parse_spec(&c, v[3], out, has_meta_ns);
    if (c.budget <= 0) prob(&c, "(document)", NULL, "too many nodes (aliases expanding?)");
    /* a second document is not allowed */
    yaml_document_t extra;
    if (yaml_parser_load(&parser, &extra)) {
        if (yaml_document_get_root_node(&extra))
            prob(&c, "(document)", yaml_document_get_root_node(&extra),
                 "only one YAML document is allowed");
        yaml_document_delete(&extra);
    }
done:
    wl__problems_sort(probs); /* in document order; problems without a line last */
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return c.nprob ? -EINVAL : 0;
}

int wl_load(const char *path, workload_spec *out, wl_problems *probs) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int err = 0;
    if (!f) {
        err = -errno;
        goto fail;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= (8u << 20)) {
                err = -EFBIG;
                break;
            }
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                err = -ENOMEM;
                break;
            }
            buf = nb;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) {
            if (ferror(f)) err = -EIO;
            break;
        }
    }
    fclose(f);
    if (err) goto fail;
    err = wl_parse(buf, len, out, probs);
    free(buf);
    return err;
fail:
    free(buf);
    pctx c = {NULL, probs, 0, 0};
    prob(&c, path, NULL, "cannot read: %s", strerror(-err));
    return err;
}

/* ---- the helpers other spec parsers share (spec_yaml.h) -------------------------------- */

void wl__problems_sort(wl_problems *probs) {
    if (!probs || probs->n < 2) return;
    for (size_t i = 1; i < probs->n; i++) { /* insertion sort: stable, problems are few */
        wl_problem e = probs->v[i];
        unsigned ke = e.line > 0 ? (unsigned)e.line : UINT_MAX;
        size_t j = i;
        while (j > 0 &&
               (probs->v[j - 1].line > 0 ? (unsigned)probs->v[j - 1].line : UINT_MAX) > ke) {
            probs->v[j] = probs->v[j - 1];
            j--;
        }
        probs->v[j] = e;
    }
}

void wl__prob(wl_yctx *c, const char *path, const yaml_node_t *n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    problems_add(c->probs, path, n ? (int)n->start_mark.line + 1 : 0, fmt, ap);
    va_end(ap);
    c->nprob++;
}

const char *wl__scalar(const yaml_node_t *n) {
    return scalar(n);
}

yaml_node_t *wl__node(wl_yctx *c, int idx) {
    return node(c, idx);
}

int wl__fields(wl_yctx *c, const char *path, yaml_node_t *n, const char *const *known,
               yaml_node_t **vals) {
    return fields(c, path, n, known, vals);
}

int wl__get_str(wl_yctx *c, const char *path, yaml_node_t *n, char *out, size_t outlen) {
    return get_str(c, path, n, out, outlen);
}

int wl__get_int(wl_yctx *c, const char *path, yaml_node_t *n, long lo, long hi, int *out) {
    return get_int(c, path, n, lo, hi, out);
}

int wl__get_num(wl_yctx *c, const char *path, yaml_node_t *n, double lo, double hi, int open_lo,
                double *out) {
    return get_num(c, path, n, lo, hi, open_lo, out);
}

int wl__get_bool(wl_yctx *c, const char *path, yaml_node_t *n, int *out) {
    return get_bool(c, path, n, out);
}

int wl__get_enum(wl_yctx *c, const char *path, yaml_node_t *n, const char *const *names, int *out) {
    return get_enum(c, path, n, names, out);
}

void wl__get_source(wl_yctx *c, const char *path, yaml_node_t *n, wl_source *src) {
    get_source(c, path, n, src, 1, NULL, NULL);
}

int wl__name_ok(const char *s) {
    return name_ok(s);
}

int wl__depth_ok(const char *buf, size_t len, int *line) {
    return depth_ok(buf, len, line);
}
