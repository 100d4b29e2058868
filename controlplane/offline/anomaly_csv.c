/* anomaly_csv.c: the anomaly detector over a CSV file, one result per input row (see
 * anomaly_csv.h). */
#include "offline/anomaly_csv.h"
#include "offline/csv_time.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ANOM_CSV_MAX_FILE ((size_t)2 << 30)

/* Parses a timestamp field f[0..n): unix seconds (an integer or decimal, truncated) or an
 * ISO 8601 date-time (offline/csv_time.h; its fraction is dropped). 1 = seconds, 2 = date,
 * 0 = neither, -1 = a date-time that is not valid (why says what is wrong). */
static int parse_ts(const char *f, size_t n, int64_t *out, char *why, size_t whylen) {
    uint32_t ns;
    int dk = csv_time_parse(f, n, out, &ns, why, whylen);
    if (dk != 0) return dk > 0 ? 2 : -1;
    char tmp[64];
    if (n == 0 || n >= sizeof tmp) return 0;
    memcpy(tmp, f, n);
    tmp[n] = 0;
    char *end = NULL;
    errno = 0;
    double v = strtod(tmp, &end);
    if (errno || end != tmp + n || !isfinite(v) || v < -9.2e15 || v > 9.2e15) return 0;
    *out = (int64_t)v;
    return 1;
}

static int parse_value(const char *f, size_t n, double *out) {
    char tmp[128];
    while (n && (*f == ' ' || *f == '\t')) {
        f++;
        n--;
    }
    while (n && (f[n - 1] == ' ' || f[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= sizeof tmp) return -1;
    memcpy(tmp, f, n);
    tmp[n] = 0;
    char *end = NULL;
    errno = 0;
    double v = strtod(tmp, &end);
    if (end != tmp + n || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

void anom_rows_fini(anom_rows *r) {
    if (!r) return;
    free(r->t);
    free(r->v);
    memset(r, 0, sizeof *r);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The most common positive difference between consecutive timestamps (0 when none). */
static int64_t common_step(const anom_rows *r) {
    int64_t *d = malloc(r->n * sizeof *d);
    if (!d) return -ENOMEM;
    size_t m = 0;
    for (size_t i = 1; i < r->n; i++)
        if (r->t[i] > r->t[i - 1]) d[m++] = r->t[i] - r->t[i - 1];
    qsort(d, m, sizeof *d, cmp_i64);
    int64_t best = 0;
    size_t bestc = 0;
    for (size_t i = 0; i < m;) {
        size_t j = i;
        while (j < m && d[j] == d[i])
            j++;
        if (j - i > bestc) {
            bestc = j - i;
            best = d[i];
        }
        i = j;
    }
    free(d);
    return best;
}

int anom_rows_parse(const char *buf, size_t len, anom_rows *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    size_t cap = 0, line = 0, pos = 0;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) pos = 3; /* a UTF-8 byte order mark */
    int kind = 0, first = 1;
    while (pos < len) {
        const char *ln = buf + pos;
        const char *nl = memchr(ln, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - ln) : len - pos;
        pos += n + (nl != NULL);
        line++;
        if (n && ln[n - 1] == '\r') n--;
        if (n == 0 || ln[0] == '#') continue;
        const char *comma = memchr(ln, ',', n);
        size_t tn = comma ? (size_t)(comma - ln) : n;
        int64_t t = 0;
        char why[192];
        int k = parse_ts(ln, tn, &t, why, sizeof why);
        if (k < 0) {
            snprintf(err, errlen, "line %zu: bad timestamp \"%.*s\": %s", line,
                     (int)(tn > 40 ? 40 : tn), ln, why);
            goto bad;
        }
        if (first) {
            first = 0;
            if (k == 0) continue; /* header */
        }
        if (!comma) {
            snprintf(err, errlen, "line %zu: expected timestamp,value", line);
            goto bad;
        }
        if (k == 0) {
            snprintf(err, errlen, "line %zu: bad timestamp \"%.*s\"", line,
                     (int)(tn > 40 ? 40 : tn), ln);
            goto bad;
        }
        if (kind && k != kind) {
            snprintf(err, errlen, "line %zu: timestamp written differently from the first row's",
                     line);
            goto bad;
        }
        kind = k;
        const char *vf = comma + 1;
        size_t vn = n - tn - 1;
        const char *c2 = memchr(vf, ',', vn);
        if (c2) vn = (size_t)(c2 - vf);
        double v;
        if (parse_value(vf, vn, &v)) {
            snprintf(err, errlen, "line %zu: bad value \"%.*s\" (a finite number is needed)", line,
                     (int)(vn > 40 ? 40 : vn), vf);
            goto bad;
        }
        if (out->n && t < out->t[out->n - 1]) {
            snprintf(err, errlen, "line %zu: timestamp goes back in time (rows must be sorted)",
                     line);
            goto bad;
        }
        if (out->n == ANOM_CSV_MAX_ROWS) {
            snprintf(err, errlen, "line %zu: more than %zu rows", line, ANOM_CSV_MAX_ROWS);
            goto bad;
        }
        if (out->n == cap) {
            size_t nc = cap ? cap * 2 : 1024;
            int64_t *nt = realloc(out->t, nc * sizeof *nt);
            if (!nt) goto nomem;
            out->t = nt;
            double *nv = realloc(out->v, nc * sizeof *nv);
            if (!nv) goto nomem;
            out->v = nv;
            cap = nc;
        }
        out->t[out->n] = t;
        out->v[out->n] = v;
        out->n++;
    }
    if (out->n < 2) {
        snprintf(err, errlen, "fewer than 2 rows");
        goto bad;
    }
    out->datetime = kind == 2;
    out->step = common_step(out);
    if (out->step < 0) goto nomem;
    if (out->step == 0) {
        snprintf(err, errlen, "every row has the same timestamp: no step");
        goto bad;
    }
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
    anom_rows_fini(out);
    return -ENOMEM;
bad:
    anom_rows_fini(out);
    return -EINVAL;
}

int anom_rows_load(const char *path, anom_rows *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > ANOM_CSV_MAX_FILE) {
        snprintf(err, errlen, "%s: not a regular file of at most 2 GiB", path);
        close(fd);
        return -EINVAL;
    }
    size_t len = (size_t)st.st_size;
    char *buf = malloc(len ? len : 1);
    if (!buf) {
        close(fd);
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            snprintf(err, errlen, "%s: read: %s", path, strerror(e));
            free(buf);
            close(fd);
            return -e;
        }
        got += (size_t)r;
    }
    close(fd);
    char perr[256] = "";
    int rc = anom_rows_parse(buf, len, out, perr, sizeof perr);
    free(buf);
    if (rc) snprintf(err, errlen, "%s: %s", path, perr);
    return rc;
}

int anom_rows_run(const anom_rows *rows, const anom_opts *opts, anom_result *res, char *err,
                  size_t errlen) {
    anom_opts o = *opts;
    if (o.step == 0) o.step = rows->step;
    anom_detector *d;
    int rc = anom_new(&d, &o, err, errlen);
    if (rc) return rc;
    for (size_t i = 0; i < rows->n; i++) {
        if (i > 0 && rows->t[i] - rows->t[i - 1] > o.step) {
            double k = floor((double)(rows->t[i] - rows->t[i - 1]) / (double)o.step + 0.5) - 1;
            for (double j = 0; j < k && j < ANOM_CSV_MAX_GAP; j++)
                anom_step(d, NAN);
        }
        res[i] = anom_step(d, rows->v[i]);
    }
    anom_free(d);
    return 0;
}

void anom_rows_format_ts(const anom_rows *rows, size_t i, char *buf, size_t len) {
    int64_t t = rows->t[i];
    if (!rows->datetime) {
        snprintf(buf, len, "%lld", (long long)t);
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        snprintf(buf, len, "%lld", (long long)t);
        return;
    }
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}
