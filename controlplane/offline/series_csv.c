/* series_csv.c: `timestamp,value` CSV to a regular series, with reported repairs. */
#include "offline/series_csv.h"
#include "errmsg.h"
#include "offline/csv_time.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A series longer than this (after filling gaps) is refused: 64 M points is 512 MB. */
#define SERIES_MAX_POINTS ((size_t)1 << 26)

typedef struct row {
    int64_t ts;
    double v;
    size_t line;
} row;

/* Trims spaces, tabs and a carriage return from both ends of [*b, *e). */
static void trim_blanks(const char **b, const char **e) {
    while (*b < *e && (**b == ' ' || **b == '\t'))
        (*b)++;
    while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r'))
        (*e)--;
}

/* Trims blanks and then one pair of double quotes from a field [*b, *e). A whole line is
 * trimmed with trim_blanks only: `"ts","value"` starts and ends with a quote that belongs to
 * two different fields. */
static void trim_field(const char **b, const char **e) {
    trim_blanks(b, e);
    if (*e - *b >= 2 && **b == '"' && (*e)[-1] == '"') {
        (*b)++;
        (*e)--;
    }
}

/* Parses a whole field as a finite double. Returns 0 or -1. */
static int parse_num(const char *b, const char *e, double *out) {
    char tmp[64];
    size_t len = (size_t)(e - b);
    if (len == 0 || len >= sizeof tmp) return -1;
    memcpy(tmp, b, len);
    tmp[len] = '\0';
    char *end = NULL;
    errno = 0;
    double v = strtod(tmp, &end);
    if (end == tmp || *end != '\0' || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The most common positive difference between consecutive timestamps (0 when none). */
static int64_t infer_step(const row *r, size_t n) {
    if (n < 2) return 0;
    int64_t *d = malloc((n - 1) * sizeof *d);
    if (!d) return -1;
    size_t m = 0;
    for (size_t i = 1; i < n; i++)
        if (r[i].ts > r[i - 1].ts) d[m++] = r[i].ts - r[i - 1].ts;
    int64_t best = 0;
    size_t best_count = 0;
    qsort(d, m, sizeof *d, cmp_i64);
    for (size_t i = 0; i < m;) {
        size_t j = i;
        while (j < m && d[j] == d[i])
            j++;
        if (j - i > best_count) {
            best_count = j - i;
            best = d[i];
        }
        i = j;
    }
    free(d);
    return best;
}

/* Timestamp order, file order among equal timestamps (qsort is not stable by itself). */
static int cmp_row(const void *a, const void *b) {
    const row *x = a, *y = b;
    if (x->ts != y->ts) return (x->ts > y->ts) - (x->ts < y->ts);
    return (x->line > y->line) - (x->line < y->line);
}

/* Units of numeric timestamps, told apart by size: seconds below 1e11 (the year 5138),
 * milliseconds below 1e14, microseconds below 1e17, nanoseconds above (exports of
 * JavaScript, Java, InfluxDB and Go tools). */
static const struct {
    const char *name;
    double per_second;
} time_units[] = {
    {"seconds", 1.0},
    {"milliseconds", 1e3},
    {"microseconds", 1e6},
    {"nanoseconds", 1e9},
};

static int time_unit_of(double ts) {
    double a = fabs(ts);
    return a < 1e11 ? 0 : a < 1e14 ? 1 : a < 1e17 ? 2 : 3;
}

/* Reads the rows. Returns 0, -EINVAL (err set) or -ENOMEM; *rows_out owned by the caller.
 * With sort, rows out of order are counted in *st and sorted afterwards. */
static int read_rows(const char *buf, size_t len, int sort, series_csv_stats *st, row **rows_out,
                     size_t *n_out, char *err, size_t errlen) {
    row *rows = NULL;
    size_t n = 0, cap = 0, line = 0;
    const char *p = buf, *end = buf + len;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) p += 3; /* a UTF-8 byte order mark */
    int rc = 0, first_content = 1; /* a header may only be the first non-blank line */
    int file_kind = 0;             /* 1 = unix seconds, 2 = date-times (from kind_line on) */
    size_t kind_line = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        line++;
        const char *b = p, *e = le;
        p = nl ? nl + 1 : end;
        trim_blanks(&b, &e);
        if (b == e || *b == '#') continue;
        int may_be_header = first_content;
        first_content = 0;
        const char *comma = memchr(b, ',', (size_t)(e - b));
        if (!comma) {
            if (may_be_header) continue; /* a one-column header */
            errmsg(err, errlen, 0, "line %zu: expected `timestamp,value`, found no comma", line);
            rc = -EINVAL;
            goto fail;
        }
        const char *tb = b, *te = comma, *vb = comma + 1, *ve = e;
        if (memchr(vb, ',', (size_t)(ve - vb))) {
            errmsg(err, errlen, 0, "line %zu: more than two fields (expected `timestamp,value`)",
                   line);
            rc = -EINVAL;
            goto fail;
        }
        trim_field(&tb, &te);
        trim_field(&vb, &ve);
        /* The timestamp: an ISO 8601 date-time (csv_time.h) or unix seconds, one form per
         * file. A first line whose timestamp is neither is a header. */
        int64_t t;
        int kind;
        char why[192];
        uint32_t ns;
        int dk = csv_time_parse(tb, (size_t)(te - tb), &t, &ns, why, sizeof why);
        if (dk < 0) {
            errmsg(err, errlen, 0, "line %zu: timestamp \"%.*s\" is not a valid date-time: %s",
                   line, (int)((te - tb) > 40 ? 40 : (te - tb)), tb, why);
            rc = -EINVAL;
            goto fail;
        }
        if (dk == 1) {
            kind = 2;
            if (ns >= 500000000u) t++; /* to the nearest second, as unix seconds are */
        } else {
            double ts;
            if (parse_num(tb, te, &ts) != 0) {
                if (may_be_header) continue; /* header */
                errmsg(err, errlen, 0,
                       "line %zu: timestamp \"%.*s\" is neither unix seconds nor a date-time "
                       "(YYYY-MM-DD HH:MM:SS, ISO 8601)",
                       line, (int)((te - tb) > 40 ? 40 : (te - tb)), tb);
                rc = -EINVAL;
                goto fail;
            }
            /* Seconds, or (from the number's size) milli-, micro- or nanoseconds since the
             * epoch, one unit per file: unix seconds reach 1e11 only in the year 5138. */
            int u = time_unit_of(ts);
            if (file_kind == 1 && (unsigned)u != st->time_unit) {
                errmsg(err, errlen, 0,
                       "line %zu: timestamp %.17g reads as %s but line %zu's as %s (one unit "
                       "per file)",
                       line, ts, time_units[u].name, kind_line, time_units[st->time_unit].name);
                rc = -EINVAL;
                goto fail;
            }
            ts /= time_units[u].per_second;
            if (ts < -9.0e15 || ts > 9.0e15) {
                errmsg(err, errlen, 0, "line %zu: timestamp %.17g is out of range", line, ts);
                rc = -EINVAL;
                goto fail;
            }
            st->time_unit = (unsigned)u;
            kind = 1;
            t = (int64_t)llround(ts);
        }
        if (file_kind && kind != file_kind) {
            errmsg(err, errlen, 0,
                   "line %zu: timestamp \"%.*s\" is %s but line %zu's is %s (one form per file)",
                   line, (int)((te - tb) > 40 ? 40 : (te - tb)), tb,
                   kind == 2 ? "a date-time" : "unix seconds", kind_line,
                   file_kind == 2 ? "a date-time" : "unix seconds");
            rc = -EINVAL;
            goto fail;
        }
        if (!file_kind) {
            file_kind = kind;
            kind_line = line;
        }
        double v;
        if (parse_num(vb, ve, &v) != 0) {
            errmsg(err, errlen, 0, "line %zu: value \"%.*s\" is not a finite number", line,
                   (int)((ve - vb) > 40 ? 40 : (ve - vb)), vb);
            rc = -EINVAL;
            goto fail;
        }
        if (n > 0 && t < rows[n - 1].ts && sort) {
            if (st->sorted++ == 0) st->first_sort_line = line;
        } else if (n > 0 && t < rows[n - 1].ts) {
            char a[32], b2[32];                    /* written back in the file's own form */
            if (file_kind == 2 || st->time_unit) { /* not as seconds when the file is not */
                csv_time_format(t, a, sizeof a);
                csv_time_format(rows[n - 1].ts, b2, sizeof b2);
            } else {
                snprintf(a, sizeof a, "%lld", (long long)t);
                snprintf(b2, sizeof b2, "%lld", (long long)rows[n - 1].ts);
            }
            errmsg(err, errlen, 0,
                   "line %zu: timestamps are not sorted (%s comes after %s on line %zu)", line, a,
                   b2, rows[n - 1].line);
            rc = -EINVAL;
            goto fail;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 1024;
            row *nr = realloc(rows, ncap * sizeof *nr);
            if (!nr) {
                rc = -ENOMEM;
                errmsg(err, errlen, 0, "out of memory at line %zu", line);
                goto fail;
            }
            rows = nr;
            cap = ncap;
        }
        rows[n++] = (row){.ts = t, .v = v, .line = line};
    }
    if (st->sorted) qsort(rows, n, sizeof *rows, cmp_row);
    *rows_out = rows;
    *n_out = n;
    return 0;
fail:
    free(rows);
    return rc;
}

int series_csv_parse(const char *buf, size_t len, const series_csv_opts *opts, series_csv *out,
                     char *err, size_t errlen) {
    series_csv_opts def = {0};
    if (!opts) opts = &def;
    memset(out, 0, sizeof *out);
    size_t min_rows = opts->min_rows ? opts->min_rows : 2;
    row *rows = NULL;
    size_t nrows = 0;
    double *y = NULL;
    unsigned *cnt = NULL;
    series_csv_stats st = {0};
    int rc = read_rows(buf, len, opts->sort, &st, &rows, &nrows, err, errlen);
    if (rc != 0) return rc;
    st.rows = nrows;
    if (nrows < 2) {
        errmsg(err, errlen, 0, "line %zu: too short: %zu data rows, need at least %zu",
               nrows ? rows[nrows - 1].line : (size_t)1, nrows, min_rows);
        rc = -EINVAL;
        goto out;
    }
    int64_t step = opts->step ? opts->step : infer_step(rows, nrows);
    if (step < 0) {
        rc = -ENOMEM;
        errmsg(err, errlen, 0, "out of memory");
        goto out;
    }
    if (step == 0) {
        errmsg(err, errlen, 0, "line %zu: every row has the same timestamp; no step", rows[1].line);
        rc = -EINVAL;
        goto out;
    }
    int64_t t0 = rows[0].ts;
    /* Grid index of every row (rounded to the nearest step). */
    int64_t last_k = -1;
    size_t npts = 0;
    for (size_t i = 0; i < nrows; i++) {
        int64_t off = rows[i].ts - t0;
        int64_t k = (off + step / 2) / step;
        if (off % step != 0) {
            if (opts->strict) {
                errmsg(err, errlen, 0,
                       "line %zu: timestamp %lld is not on the %llds grid from %lld", rows[i].line,
                       (long long)rows[i].ts, (long long)step, (long long)t0);
                rc = -EINVAL;
                goto out;
            }
            if (st.snapped++ == 0) st.first_snap_line = rows[i].line;
        }
        if (k == last_k) {
            if (opts->strict) {
                errmsg(err, errlen, 0, "line %zu: duplicate timestamp %lld", rows[i].line,
                       (long long)rows[i].ts);
                rc = -EINVAL;
                goto out;
            }
        } else if (last_k >= 0 && k > last_k + 1) {
            int64_t gap = k - last_k - 1;
            if (opts->strict) {
                errmsg(err, errlen, 0, "line %zu: %lld missing timestamp%s before %lld",
                       rows[i].line, (long long)gap, gap == 1 ? "" : "s", (long long)rows[i].ts);
                rc = -EINVAL;
                goto out;
            }
            if ((uint64_t)k >= SERIES_MAX_POINTS || (size_t)gap > 100 * nrows + 10000) {
                errmsg(err, errlen, 0, "line %zu: gap of %lld missing steps is too large to fill",
                       rows[i].line, (long long)gap);
                rc = -EINVAL;
                goto out;
            }
        }
        last_k = k;
    }
    npts = (size_t)last_k + 1;
    if (npts < min_rows) {
        errmsg(err, errlen, 0, "line %zu: too short: %zu points at step %llds, need at least %zu",
               rows[nrows - 1].line, npts, (long long)step, min_rows);
        rc = -EINVAL;
        goto out;
    }
    y = malloc(npts * sizeof *y);
    cnt = calloc(npts, sizeof *cnt);
    if (!y || !cnt) {
        rc = -ENOMEM;
        errmsg(err, errlen, 0, "out of memory for %zu points", npts);
        goto out;
    }
    for (size_t i = 0; i < npts; i++)
        y[i] = 0.0;
    for (size_t i = 0; i < nrows; i++) {
        size_t k = (size_t)((rows[i].ts - t0 + step / 2) / step);
        if (cnt[k]++ > 0 && st.duplicates++ == 0) st.first_dup_line = rows[i].line;
        /* a running mean cannot overflow; a sum of huge values can, and is refused */
        if (opts->dup == SERIES_DUP_MEAN)
            y[k] += (rows[i].v - y[k]) / cnt[k];
        else
            y[k] += rows[i].v;
        if (!isfinite(y[k])) {
            errmsg(err, errlen, 0,
                   "line %zu: duplicate timestamp %lld: the values' sum is out of "
                   "range",
                   rows[i].line, (long long)rows[i].ts);
            rc = -EINVAL;
            goto out;
        }
    }
    /* Fill gaps by linear interpolation between the neighbours (both exist: the first and
     * last grid points hold rows). */
    for (size_t k = 0; k < npts;) {
        if (cnt[k]) {
            k++;
            continue;
        }
        size_t a = k - 1, b = k;
        while (cnt[b] == 0)
            b++;
        size_t gap = b - a - 1;
        if (st.gaps++ == 0) {
            int64_t tb = t0 + (int64_t)b * step;
            for (size_t i = 0; i < nrows; i++)
                if (rows[i].ts + step / 2 >= tb) {
                    st.first_gap_line = rows[i].line;
                    break;
                }
        }
        st.filled += gap;
        if (gap > st.largest_gap) st.largest_gap = gap;
        for (size_t j = a + 1; j < b;
             j++) { /* weights, not a difference: no overflow near DBL_MAX */
            double f = (double)(j - a) / (double)(b - a);
            y[j] = (1 - f) * y[a] + f * y[b];
        }
        k = b;
    }
    out->y = y;
    y = NULL;
    out->n = npts;
    out->t0 = t0;
    out->step = step;
    out->stats = st;
out:
    free(cnt);
    free(y);
    free(rows);
    return rc;
}

int series_csv_load(const char *path, const series_csv_opts *opts, series_csv *out, char *err,
                    size_t errlen) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return errmsg(err, errlen, -e, "%s: %s", path, strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return errmsg(err, errlen, -e, "%s: %s", path, strerror(e));
    }
    size_t cap = sb.st_size > 0 ? (size_t)sb.st_size + 1 : 65536, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return errmsg(err, errlen, -ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (len == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                close(fd);
                return errmsg(err, errlen, -ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(buf);
            close(fd);
            return errmsg(err, errlen, -e, "%s: %s", path, strerror(e));
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    close(fd);
    char msg[256] = "";
    int rc = series_csv_parse(buf, len, opts, out, msg, sizeof msg);
    free(buf);
    if (rc != 0) errmsg(err, errlen, 0, "%s: %s", path, msg);
    return rc;
}

void series_csv_describe_repairs(const series_csv_stats *st, char *buf, size_t len) {
    if (!buf || len == 0) return;
    buf[0] = '\0';
    size_t off = 0;
    if (st->sorted)
        off += (size_t)snprintf(buf + off, len - off,
                                "%zu row%s out of timestamp order sorted (first on line %zu)",
                                st->sorted, st->sorted == 1 ? "" : "s", st->first_sort_line);
    if (off < len && st->snapped)
        off += (size_t)snprintf(buf + off, len - off,
                                "%s%zu off-grid timestamp%s moved to the grid (first on line %zu)",
                                off ? "; " : "", st->snapped, st->snapped == 1 ? "" : "s",
                                st->first_snap_line);
    if (off < len && st->duplicates)
        off += (size_t)snprintf(
            buf + off, len - off, "%s%zu duplicate row%s combined (first on line %zu)",
            off ? "; " : "", st->duplicates, st->duplicates == 1 ? "" : "s", st->first_dup_line);
    if (off < len && st->filled)
        off += (size_t)snprintf(
            buf + off, len - off,
            "%s%zu missing value%s filled by interpolation in %zu gap%s (longest %zu, first "
            "before line %zu)",
            off ? "; " : "", st->filled, st->filled == 1 ? "" : "s", st->gaps,
            st->gaps == 1 ? "" : "s", st->largest_gap, st->first_gap_line);
    if (off == 0) snprintf(buf, len, "no repairs");
}

void series_csv_report(FILE *f, const char *who, const char *path, const series_csv_stats *st) {
    if (st->filled || st->duplicates || st->snapped || st->sorted) {
        char repairs[512];
        series_csv_describe_repairs(st, repairs, sizeof repairs);
        fprintf(f, "%s: %s: repaired: %s\n", who, path, repairs);
    }
    if (st->time_unit)
        fprintf(f, "%s: %s: timestamps read as %s since the epoch\n", who, path,
                series_csv_time_unit(st));
}

const char *series_csv_time_unit(const series_csv_stats *st) {
    return st->time_unit < sizeof time_units / sizeof time_units[0] ? time_units[st->time_unit].name
                                                                    : "seconds";
}

void series_csv_fini(series_csv *s) {
    if (!s) return;
    free(s->y);
    memset(s, 0, sizeof *s);
}
