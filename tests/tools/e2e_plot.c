/* e2e_plot.c: tide-e2e_plot, the chart of tests/bench/e2e.sh: traffic, replicas by state and
 * p99 latency of each policy on one time axis (shared/svgplot).
 *
 *   tide-e2e_plot OUT.svg T0 T1 POLICY=DIR...
 *
 * DIR holds the run's minutes.csv (tide-loadgen's rows: minute,offered,served,failed,p50_ms,
 * p99_ms,max_ms) and fleet.csv (the harness's samples: trace_s,online,starting,cutoff,standby,
 * ...). Both are the harness's own files; rows that do not parse are skipped, at most
 * ROWS_MAX rows are read from each. Exit 0, 1 on a write error, 2 on bad arguments. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svgplot.h"

#define POL_MAX 4
#define ROWS_MAX 200000

typedef struct run {
    const char *name;
    double *mt, *offered, *failed, *p99; /* per minute */
    size_t nm;
    double *ft, *active, *standby; /* per fleet sample */
    size_t nf;
} run;

/* Reads up to ROWS_MAX rows of up to `cols` numbers (header and bad rows skipped). */
static size_t read_rows(const char *path, int cols, double **out) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = 0, cap = 0;
    char line[512];
    while (n < ROWS_MAX && fgets(line, sizeof line, f)) {
        double v[8];
        int k = 0;
        char *p = line, *end;
        while (k < cols) {
            errno = 0;
            v[k] = strtod(p, &end);
            if (end == p || errno || !isfinite(v[k])) break;
            k++;
            if (*end != ',') break;
            p = end + 1;
        }
        if (k < cols) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            for (int c = 0; c < cols; c++) {
                double *x = realloc(out[c], cap * sizeof *x);
                if (!x) {
                    fclose(f);
                    return n;
                }
                out[c] = x;
            }
        }
        for (int c = 0; c < cols; c++)
            out[c][n] = v[c];
        n++;
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv) {
    if (argc < 5 || argc - 4 > POL_MAX) {
        fprintf(stderr, "usage: tide-e2e_plot OUT.svg T0 T1 POLICY=DIR... (1 to %d policies)\n",
                POL_MAX);
        return 2;
    }
    double t0 = strtod(argv[2], NULL), t1 = strtod(argv[3], NULL);
    if (!(t1 > t0)) {
        fprintf(stderr, "tide-e2e_plot: T1 must be after T0\n");
        return 2;
    }
    static const char *colors[POL_MAX] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
    run runs[POL_MAX];
    memset(runs, 0, sizeof runs);
    int np = argc - 4;
    svg_series traffic[2 * POL_MAX], reps[2 * POL_MAX], lat[POL_MAX];
    size_t ntr = 0, nrep = 0, nlat = 0;
    char labels[POL_MAX][4][96];
    for (int i = 0; i < np; i++) {
        char *eq = strchr(argv[i + 4], '=');
        if (!eq) {
            fprintf(stderr, "tide-e2e_plot: '%s': expected POLICY=DIR\n", argv[i + 4]);
            return 2;
        }
        *eq = '\0';
        run *r = &runs[i];
        r->name = argv[i + 4];
        char path[4096];
        double *m[7] = {0};
        snprintf(path, sizeof path, "%s/minutes.csv", eq + 1);
        r->nm = read_rows(path, 7, m);
        r->mt = m[0];
        r->offered = m[1];
        r->failed = m[3];
        r->p99 = m[5];
        free(m[2]);
        free(m[4]);
        free(m[6]);
        for (size_t k = 0; k < r->nm; k++)
            if (r->p99[k] < 0) r->p99[k] = NAN; /* no request served: a gap */
        double *f[5] = {0};
        snprintf(path, sizeof path, "%s/fleet.csv", eq + 1);
        r->nf = read_rows(path, 5, f);
        r->ft = f[0];
        r->active = f[1];
        r->standby = f[4];
        for (size_t k = 0; k < r->nf; k++) /* online + starting + cutoff: replicas that cost */
            r->active[k] += f[2][k] + f[3][k];
        free(f[2]);
        free(f[3]);
        snprintf(labels[i][0], sizeof labels[i][0], "%s: offered", r->name);
        snprintf(labels[i][1], sizeof labels[i][1], "%s: failed", r->name);
        snprintf(labels[i][2], sizeof labels[i][2], "%s: online+starting", r->name);
        snprintf(labels[i][3], sizeof labels[i][3], "%s: standby", r->name);
        traffic[ntr++] =
            (svg_series){labels[i][0], colors[i], SVG_STEP, r->mt, r->offered, NULL, r->nm, 0};
        traffic[ntr++] =
            (svg_series){labels[i][1], colors[i], SVG_STEP, r->mt, r->failed, NULL, r->nm, 1};
        reps[nrep++] =
            (svg_series){labels[i][2], colors[i], SVG_STEP, r->ft, r->active, NULL, r->nf, 0};
        reps[nrep++] =
            (svg_series){labels[i][3], colors[i], SVG_STEP, r->ft, r->standby, NULL, r->nf, 1};
        lat[nlat++] = (svg_series){r->name, colors[i], SVG_LINE, r->mt, r->p99, NULL, r->nm, 0};
    }
    svg_panel panels[3] = {
        {"Traffic", "requests per trace minute", traffic, ntr, 1, 0},
        {"Replicas by state", "replicas", reps, nrep, 1, 0},
        {"p99 latency", "ms", lat, nlat, 0, 0},
    };
    char *svg = svg_chart("Tide end-to-end benchmark", panels, 3, t0, t1, 1100, 220);
    int rc = 0;
    FILE *o = svg ? fopen(argv[1], "w") : NULL;
    if (!o || fputs(svg, o) < 0 || fclose(o) != 0) {
        fprintf(stderr, "tide-e2e_plot: %s: %s\n", argv[1],
                svg ? strerror(errno) : "out of memory");
        rc = 1;
    }
    free(svg);
    for (int i = 0; i < np; i++) {
        free(runs[i].mt);
        free(runs[i].offered);
        free(runs[i].failed);
        free(runs[i].p99);
        free(runs[i].ft);
        free(runs[i].active);
        free(runs[i].standby);
    }
    return rc;
}
