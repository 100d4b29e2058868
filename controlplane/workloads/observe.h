/* observe.h: what one sync of a workload reads: the latest utilization per pod and replica
 * count, the traffic history per minute (the predictive providers' input and training data) and
 * the capacity-model observations, from the store (on the loop) or from the store merged with
 * Prometheus and from Prometheus alone for other PromQL (on a worker thread); where each read
 * came from and what went wrong; a failed read filled from the last good observation. */
#ifndef TIDE_WORKLOADS_OBSERVE_H
#define TIDE_WORKLOADS_OBSERVE_H

#include "models/capacity.h"
#include "models/forecast.h"
#include "spec/workload.h"

#include <stddef.h>
#include <stdint.h>

struct tsdb;
struct prom;

/* Where one metric's last read came from: "store", "prometheus", "merged" (both put points
 * in), or "none"; its error ("" when it went well) and the controller time of the read. */
enum { OBSERVE_UTIL, OBSERVE_REPLICAS, OBSERVE_TRAFFIC, OBSERVE_N };
/* "utilization", "replicas", "traffic" */
extern const char *const observe_metric_keys[OBSERVE_N];

typedef struct observe_metric {
    char source[12];
    char error[240];
    int64_t at;
    int stale; /* the read failed: the values (and source) are the last good read's */
} observe_metric;

#define OBSERVE_PODS 512

/* The traffic history a sync read before (a copy owned by the next fetch): the next sync reads
 * only its last minutes again and keeps the rest (observe_read), instead of 7 days at every
 * sync. key: observe_history_key() of the spec it was read for. */
typedef struct observe_prev_hist {
    double *y;
    size_t n;
    int64_t src_t0; /* first minute, on the metrics' own clock */
    uint64_t key;
    char source[12];
} observe_prev_hist;

/* One sync's observations of a workload (read by observe_read()). */
typedef struct observe_result {
    int64_t now;                   /* controller time (wall clock, unix s) */
    int want_cap;                  /* read the capacity-model observations too */
    int full_history;              /* read the whole traffic history (a fit is due) */
    const observe_prev_hist *prev; /* the history read before (NULL: read it all) */
    int hist_incremental;          /* out: only the last minutes were read this time */
    int util_window_s;             /* the utilization query's longest range selector (s), 0 none */
    int util_rc, replicas_rc, hist_rc;  /* 0, or -errno of the read (-ENOENT: not configured) */
    double util[OBSERVE_PODS];          /* latest utilization percent per pod */
    uint64_t util_cgroup[OBSERVE_PODS]; /* observe_label_hash() of each pod series' cgroup
                                         * label (tells an executor's replicas apart), 0 none */
    uint64_t util_cgroup_base[OBSERVE_PODS]; /* the same of its last path component (a
                                              * replica's id, before its cgroup is known) */
    int npods;
    int replicas;
    double *y;           /* traffic per minute (hist.y) */
    fc_series hist;      /* times on the controller's clock */
    int64_t hist_src_t0; /* hist.t0 on the metrics' own clock (minus offsetSeconds) */
    int64_t util_at, replicas_at, hist_at; /* when the values used were read */
    cap_obs *cap;
    size_t ncap;
    char cap_err[160];
    observe_metric m[OBSERVE_N];
    char prom_err[256]; /* the first Prometheus failure of this read, "" none */
} observe_result;

/* Reads everything one sync of a workload needs, at controller time o->now (o zeroed but for
 * now, want_cap, full_history and prev): the latest utilization per pod and replicas (last two
 * minutes), the traffic history per minute over the last 7 days (summed over series, ending
 * with the last complete minute) when a predictive provider wants it, and the capacity-model
 * observations when o->want_cap. With o->prev (a history read for the same traffic source and
 * offset that still reaches into the 7 days) and not o->full_history, only the minutes from
 * OBSERVE_REREAD_S before prev's end on are read and the older ones are prev's: a 7-day range
 * from Prometheus costs far more than a sync period allows at a fast virtual clock, and the
 * past minutes do not change (late samples within OBSERVE_REREAD_S are read again; every fit
 * reads the whole range). Metrics are read spec.metrics.offsetSeconds in the past and their times
 * shifted forward by it. p NULL: the store only (memory, fit for the loop); else thread-safe,
 * for a worker thread (the store's reader lock, prom_query_range). */
/* FNV-1a of a label value, never 0 (0 = no label). */
uint64_t observe_label_hash(const char *v);

/* How the reactive provider (the HPA) counts a replica an executor runs, from its state
 * ("Online", "Starting", ...) and since when it is in it (ms on the daemon's clock, < 0
 * unknown), at now_ms. The HPA's pods are the replicas of the scaled set: online, starting and
 * activating ones. READY: its utilization sample counts. UNREADY: starting, activating, or
 * online for less than max(two sync periods, one sync period + window_s) (its newest sample
 * may still cover the start or the frozen standby; window_s is the utilization query's own
 * averaging window, observe_source_window_s: Kubernetes likewise sets aside a pod whose
 * metric window began before it was ready); 0% on a scale-up. LEFT_OUT: cut off, in standby or
 * gone, outside the scaled set (not in its current count): its series is neither a ready nor a
 * not-ready pod. */
typedef enum observe_pod_class {
    OBSERVE_POD_READY = 0,
    OBSERVE_POD_UNREADY,
    OBSERVE_POD_LEFT_OUT,
} observe_pod_class;
observe_pod_class observe_replica_pod(const char *state, int64_t since_ms, int64_t now_ms,
                                      int sync_seconds, int window_s);

void observe_read(struct tsdb *db, struct prom *p, const workload_spec *s, observe_result *o);
#define OBSERVE_REREAD_S 600

/* The key of a spec's traffic history: its first traffic source and metrics offset (a history
 * read for another query is never spliced onto). */
uint64_t observe_history_key(const workload_spec *s);

/* A copy of o's traffic history for the next read (NULL when o has none or out of memory);
 * observe_prev_free() frees it. */
observe_prev_hist *observe_prev_from(const observe_result *o, const workload_spec *s);
void observe_prev_free(observe_prev_hist *h);

/* The longest range selector of a source's query in seconds (avg_over_time(x[1m]): 60), 0
 * when it has none or does not parse locally. */
int observe_source_window_s(const wl_source *src);

/* Where a read of o failed, the last good observation's values stand in (a slow or dead
 * Prometheus must not blank the controller's view); the metric's error says since when. */
void observe_fill_from(observe_result *o, const observe_result *last);

void observe_free(observe_result *o);

/* Evaluates one metric source over [start, end] (unix seconds) every step seconds, as the
 * syncs read their metrics: a selector or subset query through the query engine (the store
 * merged with Prometheus when p is set), other PromQL from Prometheus. Thread-safe with p (for
 * worker threads); p NULL reads the store only. 0 with *r filled (query_result_fini), or
 * -errno with mr->error saying why; mr->source says where the points came from. */
struct query_result;
int observe_source_range(struct tsdb *db, struct prom *p, const wl_source *src, int64_t start,
                         int64_t end, int64_t step, struct query_result *r, observe_metric *mr);

/* The selector or query of a metric source, NULL when it has none. */
const char *observe_source_text(const wl_source *s);

#endif
