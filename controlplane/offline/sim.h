/* sim.h: replays a traffic trace through the scaling brain against a simulated fleet
 * (`tidectl simulate`). The decisions come from the same portrait engine, HPA code and
 * planner the live control plane runs; only the fleet is simulated:
 *   - a replica serves `capacity` traffic units per trace step at 100% utilization;
 *   - a started replica is online after the cold-start delay, an activated standby replica
 *     after the activation delay; drain, freeze and delete take effect at once;
 *   - utilization = demand / (online replicas x capacity), as the pods would report it
 *     (capped at 100%: a saturated pod cannot show more);
 *   - the clock advances in seconds, the controller runs every syncPeriodSeconds.
 * Policies: "tide" (the spec's providers, behavior and planner), "hpa" (the reactive provider
 * alone with the Kubernetes default behavior on the spec's target, bounds and sync period;
 * scaled-in pods are deleted), "static" (the replicas that cover the evaluated span's peak
 * at the target utilization). Predictive models are fitted first on the data before the
 * evaluated span, then again whenever the controller step says a fit is due (retrainSeconds
 * after the last one, 5 minutes after a failed one), on the whole trace before that moment, and
 * used from the next sync on (the daemon fits on a worker thread and installs the result when
 * it is done); they never see data before it happens. */
#ifndef TIDE_SIM_H
#define TIDE_SIM_H

#include "spec/workload.h"

#include <stddef.h>
#include <stdint.h>

typedef enum sim_policy { SIM_TIDE = 0, SIM_HPA, SIM_STATIC } sim_policy;

typedef struct sim_trace {
    const double *y; /* demand per step (e.g. requests per minute) */
    size_t n;
    int64_t t0, step;
} sim_trace;

typedef struct sim_config {
    int eval_days;       /* the last this many days are evaluated (default 7) */
    double capacity;     /* traffic per replica per step at 100%; 0 = from peak_replicas */
    int peak_replicas;   /* capacity so the evaluated peak needs this many at the target */
    int cold_start;      /* seconds (default 120) */
    int activation;      /* seconds (default 1) */
    double standby_cost; /* a standby replica-minute counts this much (default 0.1) */
    int record;          /* keep per-step series for the plot */
    int verbose;         /* progress on stderr */
} sim_config;

typedef struct sim_result {
    sim_policy policy;
    double overload_minutes;     /* demand above the online capacity */
    double above_target_minutes; /* utilization above the target */
    double replica_minutes;      /* running replicas (online, starting, activating, cutoff) +
                                    standby x standby_cost */
    double online_minutes, standby_minutes;
    long scale_actions;   /* controller decisions that changed the fleet */
    long replica_actions; /* per-replica actions (start, activate, cutoff, ...) */
    int peak_online;
    double mean_utilization; /* over the evaluated span, percent */
    double evaluated_minutes;
    double capacity;
    int static_replicas;
    long fallback_syncs; /* syncs where the predictive provider fell back to reactive */
    double fit_seconds;  /* all fits together */
    int fits;            /* the first fit and the refits after retrainSeconds */
    char model[64];      /* the forecaster used ("" when none) */
    /* per trace step of the evaluated span (when record): */
    size_t npts;
    int64_t t0, step;
    double *demand, *forecast; /* forecast: NaN when none */
    float *online, *standby;   /* averages over the step */
} sim_result;

void sim_config_defaults(sim_config *c);

/* Runs one policy. Returns 0, or -EINVAL (err says why: trace shorter than the evaluated
 * span plus a day of training, bad capacity, ...) or -ENOMEM. */
int sim_run(const sim_config *cfg, const workload_spec *spec, const sim_trace *tr,
            sim_policy policy, sim_result *res, char *err, size_t errlen);
void sim_result_fini(sim_result *r);

const char *sim_policy_name(sim_policy p);
/* "tide", "hpa", "static" -> policy; -EINVAL otherwise. */
int sim_policy_parse(const char *name, sim_policy *out);

/* Writes an SVG plot of demand, forecast and the online/standby replicas of each result
 * (all from the same span). Returns 0 or -errno (err names the path). */
int sim_plot_svg(const char *path, const sim_result *res, size_t nres, char *err, size_t errlen);

#endif
