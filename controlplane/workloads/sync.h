/* sync.h: the workloads' sync loop: every syncPeriodSeconds per workload, its observations
 * (read on the loop from the store, or with --prometheus on a worker thread per sync so that
 * the loop never waits for HTTP; a failed read is replaced by the last good values, a fetch
 * that overruns a sync leaves that sync to the last good observation, and both are reported as
 * status and `prometheus` events), the controller step (scaling/controller.h), fits of the
 * predictive and capacity models on worker threads, and the actions handed to the executors. */
#ifndef TIDE_WORKLOADS_SYNC_H
#define TIDE_WORKLOADS_SYNC_H

#include <stddef.h>

struct cp_workloads;

/* Starts the tick on cp's loop (w->sync). 0 or -errno with err. */
int sync_start(struct cp_workloads *w, char *err, size_t errlen);
/* Stops the tick, ends fetches under way (prom_cancel) and joins every worker thread. */
void sync_stop(struct cp_workloads *w);

#endif
