/* bench_auto_fleet.c: what retraining `auto` costs for a fleet of workloads. Each workload is 8
 * weeks of 1-minute history (80,640 points, the unit: "8 weeks of 1-minute history"),
 * fit once and forecast once at the median and at p90 (what a sync reads), horizon 60 (1 h),
 * on one thread. The series are cut from the real traces in ../shared/data: the NASA HTTP
 * trace (58.6 days at 1 minute) at a different rotation per workload (so every fit sees a
 * different last week and a different validation week), scaled by a per-workload factor;
 * every third workload is a 5-minute NAB trace held at each value for 5 minutes and tiled to 8
 * weeks. Default 12 workloads (TIDE_BENCH_WORKLOADS=N for more, 1000 for the whole fleet):
 * the total for 1,000 workloads is extrapolated from the mean CPU time per workload, and
 * printed as such; the largest single workload is printed too. Goals (issue 15): at most 5 s
 * of CPU per workload, and 1,000 workloads in under 1.5 h of one core. Judged on this thread's
 * CPU time (the machine is shared). Exits 1 when a goal is missed; 0 and "skipped" without
 * ../shared/data. */
#include "models/forecast.h"
#include "offline/series_csv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WEEKS 8
#define POINTS (WEEKS * 7 * 1440)
#define FLEET 1000
#define GOAL_PER_SERIES_S 5.0
#define GOAL_FLEET_S 5400.0

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *const nab[] = {"nab_elb_request_count_8c0756.csv",
                                  "nab_ec2_cpu_utilization_825cc2.csv",
                                  "nab_cpu_utilization_asg_misconfiguration.csv"};

int main(void) {
    const char *src = getenv("TIDE_SRC");
    char path[1024];
    snprintf(path, sizeof path, "%s/../shared/data/nasa_http_1m.csv", src ? src : ".");
    series_csv nasa;
    char err[512];
    if (series_csv_load(path, NULL, &nasa, err, sizeof err) != 0) {
        printf("bench_auto_fleet: skipped (%s)\n", err);
        return 0;
    }
    series_csv other[3];
    int nother = 0;
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/../shared/data/%s", src ? src : ".", nab[i]);
        if (series_csv_load(path, NULL, &other[nother], err, sizeof err) == 0) nother++;
    }
    const char *env = getenv("TIDE_BENCH_WORKLOADS");
    int nw = env ? atoi(env) : 12;
    if (nw < 1 || nw > 100000) nw = 12;
    double *y = malloc(POINTS * sizeof *y);
    if (!y) return 1;
    double total = 0, worst = 0;
    int failed = 0;
    for (int w = 0; w < nw; w++) {
        const char *what;
        if (w % 3 == 2 && nother > 0) {
            const series_csv *o = &other[(w / 3) % nother];
            size_t per = (size_t)(o->step / 60 > 0 ? o->step / 60 : 1);
            for (size_t i = 0; i < POINTS; i++)
                y[i] = o->y[(i / per + (size_t)w * 101) % o->n];
            what = nab[(w / 3) % nother];
        } else {
            size_t rot = (size_t)w * 1009 * 7 % nasa.n;
            double scale = 0.5 + 0.25 * (w % 7);
            for (size_t i = 0; i < POINTS; i++)
                y[i] = scale * nasa.y[(i + rot) % nasa.n];
            what = "nasa_http_1m.csv";
        }
        fc_series s = {.y = y, .n = POINTS, .t0 = 1500000000 - 1500000000 % 86400, .step = 60};
        fc_options opt = {.horizon = 60, .seed = 1, .threads = 1};
        forecaster *f = NULL;
        double out[60], med[60];
        double c0 = cpu_s();
        int rc = fc_new(&f, "auto", &opt, err, sizeof err);
        if (rc == 0) rc = fc_fit(f, &s, err, sizeof err);
        if (rc == 0) rc = fc_predict(f, &s, 60, 0.5, med, err, sizeof err);
        if (rc == 0) rc = fc_predict(f, &s, 60, 0.9, out, err, sizeof err);
        double c = cpu_s() - c0;
        if (rc != 0) {
            printf("workload %d (%s): failed: %s\n", w, what, err);
            failed = 1;
        } else {
            printf("workload %3d (%-44s) fit + forecasts %.2f s CPU, chose %s\n", w, what, c,
                   fc_name(f));
        }
        fc_free(f);
        total += c;
        if (c > worst) worst = c;
    }
    double mean = total / nw, fleet = nw >= FLEET ? total * FLEET / nw : mean * FLEET;
    printf("auto fleet: %d workloads of %d weeks at 1 minute: %.1f s CPU in all, mean %.2f s, "
           "largest %.2f s (goal <= %.0f s each)\n",
           nw, WEEKS, total, mean, worst, GOAL_PER_SERIES_S);
    printf("auto fleet: 1,000 workloads %s %.0f s = %.2f h of one core (goal < 1.5 h)\n",
           nw >= FLEET ? "measured:" : "extrapolated from the mean:", fleet, fleet / 3600);
    int missed = failed;
    if (worst > GOAL_PER_SERIES_S)
        printf("GOAL MISSED: a workload took more than %.0f s\n", GOAL_PER_SERIES_S), missed = 1;
    if (fleet >= GOAL_FLEET_S)
        printf("GOAL MISSED: 1,000 workloads take 1.5 h or more\n"), missed = 1;
    free(y);
    for (int i = 0; i < nother; i++)
        series_csv_fini(&other[i]);
    series_csv_fini(&nasa);
    return missed;
}
