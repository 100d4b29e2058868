/* controller.h: the per-sync step of one workload's controller, the same for the live control
 * plane (workloads/sync.c) and `tidectl simulate` (offline/sim.c):
 *
 *   observations -> HPA pods -> portrait inputs -> portrait -> planner input -> actions
 *
 * A controller owns the workload's portrait engine, its planner (unless made without one) and
 * the last portrait. Each sync the caller reads its observations (per-pod usage, the replica
 * count it sees, the mean utilization, the traffic history) and calls controller_step, which
 *   - adopts the replicas that run today as Online on the first observation that shows any
 *     (the inventory), unless the caller adopted them itself (controller_adopt);
 *   - turns the per-pod usage into HPA pods (ready pods with their usage, starting ones
 *     without a trusted sample) for the reactive provider;
 *   - counts the current replicas (the planner's online + starting + activating once it has an
 *     inventory, else what the observation shows) and updates the portrait;
 *   - records a decision event when a predictive provider falls back to the reactive
 *     recommendation or returns from it;
 *   - steps the planner on the portrait with the mean utilization for the stability checkers
 *     and returns the actions it emits.
 * The caller carries the actions out and reports each outcome (planner_action_done on
 * controller_planner). Training is the caller's too (the daemon fits on a worker thread, the
 * simulator in line): the step says when a fit is due and the observation has a history.
 *
 * Pure decision code: no event loop, threads, clock or logging; time is passed in. */
#ifndef TIDE_CONTROLLER_H
#define TIDE_CONTROLLER_H

#include "scaling/planner.h"
#include "scaling/portrait.h"
#include "spec/workload.h"

#include <stddef.h>
#include <stdint.h>

/* One sync's observations. */
typedef struct controller_obs {
    int64_t now;              /* unix seconds */
    const double *pod_usage;  /* usage of each ready pod reporting utilization (n_ready) */
    int n_ready;              /* pods with a sample (0: no utilization this sync) */
    int n_unready;            /* pods starting or activating: counted, no trusted sample */
    double pod_request;       /* the request usage is measured against (utilization = u/req) */
    double mean_utilization;  /* percent, for the stability checkers; NaN: none this sync */
    int replicas;             /* replicas the workload runs as observed; < 0: unknown (then
                                 the ready pods count) */
    const fc_series *traffic; /* traffic history, last value = the last complete step; NULL */
} controller_obs;

/* What one step did. */
typedef struct controller_out {
    const portrait *portrait;      /* the portrait planned on (NULL: none yet) */
    const planner_action *actions; /* to carry out (owned by the planner, valid until its
                                      next call) */
    size_t n_actions;
    int current;  /* replicas the reactive provider counted */
    int fallback; /* a predictive provider fell back to the reactive recommendation */
    const char *fallback_reason; /* the first such provider's reason (valid until the next
                                    step; NULL: none) */
    int guard; /* of those, one fell back by the live guard: its forecasts scored worse than
                  the one-day seasonal naive forecast over the last day (portrait_live_mase) */
    int train; /* a fit of the predictive models is due and the observation has a history */
} controller_out;

typedef struct controller controller;

/* Flags of controller_new. */
#define CONTROLLER_NO_PLANNER 1 /* portrait only: the caller scales to its needed[0] */

/* Creates the controller for a validated spec (copied). 0, -ENOMEM. */
int controller_new(controller **out, const workload_spec *spec, unsigned flags);
void controller_free(controller *c);

/* Adopts n running replicas as Online at now ("<name>-live-<i>"), as the first observation
 * would; later observations adopt nothing. 0 or -ENOMEM. */
int controller_adopt(controller *c, int n, int64_t now);

/* One sync. Returns 0, or -ENOMEM (the portrait or the plan could not be computed; *out
 * still says what was done). */
int controller_step(controller *c, const controller_obs *obs, controller_out *out);

/* The parts, for reports, training and action outcomes. The planner is NULL with
 * CONTROLLER_NO_PLANNER; the portrait NULL until the first successful update. */
/* The parts (c may be NULL: NULL then). */
portrait_engine *controller_engine(const controller *c);
planner *controller_planner(const controller *c);
const portrait *controller_portrait(const controller *c);
const workload_spec *controller_spec(const controller *c);

#endif
