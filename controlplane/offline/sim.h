/* sim.h: replays a traffic trace through the scaling brain against a simulated fleet
 * (`tidectl simulate`). The decisions come from the same portrait engine, HPA code and
 * planner the live control plane runs; only the fleet is simulated:
 *   - a replica serves `capacity` traffic units per trace step at 100% utilization;
 *   - a started replica is online after the cold-start delay, an activated standby replica
 *     after the activation delay; drain, freeze and delete take effect at once;
 *   - utilization = demand / (online replicas x capacity), as the pods would report it
 *     (capped at 100%: a saturated pod cannot show more), or with a metric window, the share
 *     of the online capacity the pods served (100% while a queue waits), averaged over it;
 *   - a fluid queue in front of the fleet (a load balancer's queue): each second, the demand
 *     that the online capacity cannot serve waits (the backlog, carried across seconds) and is
 *     served first-come first-served when capacity allows; traffic arriving when the backlog
 *     is B waits B / (online capacity per second) seconds; with no replica online, arrivals
 *     fail at once (a load balancer with no server up answers an error); with a queue timeout,
 *     traffic that would wait longer fails instead of waiting;
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
    int eval_days;           /* the last this many days are evaluated (default 7) */
    double capacity;         /* traffic per replica per step at 100%; 0 = from peak_replicas */
    double service_capacity; /* what a replica really serves per step when busy (the queue's
                                rate, the utilization's denominator), when it differs from the
                                capacity the policies size with (0 = the same) */
    int peak_replicas;       /* capacity so the evaluated peak needs this many at the target */
    int static_replicas;     /* the static policy's fleet (0 = what covers the evaluated peak) */
    int cold_start;          /* seconds (default 120) */
    int activation;          /* seconds (default 1) */
    double standby_cost;     /* a standby replica-minute counts this much (default 0.1) */
    double slo_delay;        /* seconds of trace time: a minute violates the SLO when more than 1%
                                of its answered traffic waits longer (0 = not assessed) */
    double queue_timeout;    /* seconds of trace time: traffic that would wait longer in the queue
                                fails (0 = it waits however long) */
    int metric_window;       /* seconds: the utilization the controller sees is the pods' busy
                                share averaged over this trailing window, as a metric query's
                                range averages it (0 = the current second's demand) */
    int settle_seconds;      /* a replica that came online less than this ago is a not-ready pod
                                (left out of the utilization; 0% on a scale-up), as Tide's
                                executor-managed workloads count it (0 = ready at once) */
    int record;              /* keep per-step series (plot), per-minute figures */
    int verbose;             /* progress on stderr */
} sim_config;

/* The per-minute figures (sim_result.minutes): traffic arrived, of it answered after the
 * SLO's delay, failed, served, online replicas (mean), the longest wait (s), 1 when the minute
 * violates the SLO (always 0 without slo_delay). */
enum {
    SIM_M_TRAFFIC,
    SIM_M_LATE,
    SIM_M_FAILED,
    SIM_M_SERVED,
    SIM_M_ONLINE,
    SIM_M_WAIT,
    SIM_M_VIOLATION,
    SIM_MINUTE_FIELDS
};

typedef struct sim_result {
    sim_policy policy;
    double overload_minutes;     /* demand above the online capacity */
    double above_target_minutes; /* utilization above the target */
    double replica_minutes;      /* running replicas (online, starting, activating, cutoff) +
                                    standby x standby_cost */
    double online_minutes, standby_minutes;
    /* the queue: */
    double backlog_max_s;   /* the longest wait (trace seconds) of any arriving traffic */
    double queue_minutes;   /* time with traffic waiting (backlog above 0) */
    double traffic, failed; /* traffic arrived, and failed (no replica online, queue timeout) */
    int slo_assessed;       /* slo_delay was given: the three below are set */
    double slo_violation_minutes; /* minutes (60 s of trace time) violating the SLO: more than 1%
                                     of the minute's answered traffic waited above slo_delay, or
                                     more than 0.1% of its traffic failed */
    int64_t *slo_minutes;         /* their starts (unix seconds), ascending */
    size_t n_slo_minutes;
    /* per minute of the evaluated span from t0 (when record): SIM_MINUTE_FIELDS values each */
    double *minutes;
    size_t nminutes;
    long scale_actions;   /* controller decisions that changed the fleet */
    long replica_actions; /* per-replica actions (start, activate, cutoff, ...) */
    int peak_online;
    double mean_utilization; /* over the evaluated span, percent */
    double evaluated_minutes;
    double capacity;
    double service_capacity;
    int static_replicas;
    long fallback_syncs;      /* syncs where the predictive provider fell back to reactive */
    long guard_syncs;         /* of which the live guard's (forecast worse than naive) */
    char first_fallback[200]; /* the reason of the first fallback ("" = none) */
    double fit_seconds;       /* all fits together */
    int fits;                 /* the first fit and the refits after retrainSeconds */
    char model[64];           /* the forecaster used ("" when none) */
    /* per trace step of the evaluated span (when record): */
    size_t npts;
    int64_t t0, step;
    double *demand, *forecast; /* forecast: NaN when none */
    float *online, *standby;   /* averages over the step */
} sim_result;

void sim_config_defaults(sim_config *c);

/* The fluid queue of the world model, one second at a time (pure; tested on its own). */
typedef struct sim_queue {
    double backlog; /* traffic waiting at the end of the last second */
} sim_queue;

typedef struct sim_second {
    double served;   /* traffic served in the second (at most the capacity) */
    double accepted; /* of the arrivals, the traffic that joined the queue or was served */
    double failed;   /* arrivals refused, plus waiting traffic past the timeout */
    double dropped;  /* of failed, the waiting traffic past the timeout (it leaves the queue) */
    double wait;     /* seconds the second's accepted arrivals wait: backlog / capacity at its
                        end (0 when nothing waits) */
} sim_second;

/* One second: `arrivals` traffic arrives, `capacity` can be served (both per second). With no
 * capacity the arrivals fail and the backlog waits. With timeout > 0, arrivals that would wait
 * longer than timeout fail, and so does the waiting traffic beyond timeout x capacity when
 * the capacity fell (the load balancer's `timeout queue`). */
void sim_queue_second(sim_queue *q, double arrivals, double capacity, double timeout,
                      sim_second *out);

/* The first-come-first-served wait of each second's arrivals given what the queue served
 * after them, streamed: the arrivals of second t leave when the departures (served plus
 * dropped) since the start reach the arrivals up to t's end; their wait is that time minus t's
 * end (interpolated within a second). A capacity that grows while traffic waits shortens the
 * wait of what is already queued, which the estimate at arrival (backlog / capacity then)
 * cannot see. Memory: one entry per second whose arrivals still wait, at most `max` (beyond
 * it, and at the end, the oldest take the estimate made at arrival). */
typedef struct sim_fifo_entry {
    int64_t t;
    double target, amount, est;
} sim_fifo_entry;

typedef void (*sim_fifo_emit)(void *ctx, int64_t t, double amount, double wait);

typedef struct sim_fifo {
    sim_fifo_entry *e;
    size_t head, n, cap, max;
    double cum_a, cum_d;
    sim_fifo_emit emit;
    void *ctx;
} sim_fifo;

void sim_fifo_init(sim_fifo *f, size_t max, sim_fifo_emit emit, void *ctx);
/* Second t: `accepted` arrived (waiting or served); `dropped` waiting traffic timed out at the
 * second's start, then `served` left at the rate `capacity` (per second); `backlog` waits at its
 * end; `est` is the wait estimated at arrival. Emits every arrival that left by now. Returns 0
 * or -ENOMEM. */
int sim_fifo_second(sim_fifo *f, int64_t t, double accepted, double dropped, double served,
                    double capacity, double backlog, double est);
/* Emits what still waits with its estimate, and frees. */
void sim_fifo_finish(sim_fifo *f);

/* A minute with `traffic` arrived, `late` of it answered after the SLO's delay and `failed`
 * violates the SLO: failed > 0.1% of the traffic, or late > 1% of the answered traffic (the
 * minute's p99 above the bound). */
int sim_minute_violates(double traffic, double late, double failed);

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
