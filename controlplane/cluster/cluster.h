/* cluster.h: several control planes sharing the workloads through etcd (the "cluster"
 * module, cp->cluster; off without etcd_endpoints: Tide then runs alone as before).
 *
 * In etcd, under etcd_prefix:
 *   members/NAME   one per live control plane, on its lease (TTL etcd_lease_ttl, kept alive
 *                  every third of it): {"name","http","listen","pid","started"}
 *   specs/NAME     the applied Workload specs (YAML); tidectl apply/delete on any control
 *                  plane writes here and every control plane watches them
 *   owners/NAME    the owner of workload NAME: the member's name, on the owner's lease,
 *                  created by a txn only when absent. Its create revision is the fencing token
 *                  of every action the owner takes for NAME
 * Ownership: rendezvous hashing (ring.h) over the members; a join or leave moves ~1/N of the
 * workloads. Only the owner trains, decides and acts; the others serve queries and point to it.
 *
 * A control plane acts for a workload only while it can prove its lease: a keep-alive
 * confirmed less than TTL - etcd_clock_skew_margin ago (measured from when it was sent, on a
 * clock that runs through suspends). It stops before etcd could expire the lease, also when
 * etcd cannot be reached at all; it resumes when a keep-alive succeeds again, or takes
 * ownership anew (new tokens) after its lease was lost.
 *
 * Threads: the keep-alive thread (lease, member key), the watch thread (a paged range of the
 * prefix, then one watch stream; events go to the loop), and a one-thread work pool for the
 * ownership txns. The loop keeps the mirror of members, owners and specs. */
#ifndef TIDE_CLUSTER_H
#define TIDE_CLUSTER_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

struct controlplane;

#define CLUSTER_MODULE_NAME "cluster"
#define CLUSTER_NAME_MAX 128

/* Where the workloads module hears about the specs in etcd (calls on the loop thread). */
typedef struct cluster_spec_sink {
    void *ctx;
    /* a spec appeared or changed: rev is its mod_revision (the generation to apply it as) */
    void (*put)(void *ctx, const char *name, const char *yaml, size_t len, int64_t rev);
    /* a spec was deleted */
    void (*del)(void *ctx, const char *name);
} cluster_spec_sink;

/* Is etcd configured (the module runs)? */
int cluster_enabled(const struct controlplane *cp);
/* Sets the sink (s borrowed, NULL to unset) and replays the specs known so far to it. */
void cluster_set_spec_sink(struct controlplane *cp, const cluster_spec_sink *s);

/* May this control plane act for workload now? 1 with *fence = its ownership token (the
 * owner key's create revision), or 0 with why filled ("owned by cp-b", "lease not proven for
 * 8.2 s: etcd unreachable?"). Loop thread. */
int cluster_may_act(struct controlplane *cp, const char *workload, uint64_t *fence, char *why,
                    size_t whylen);
/* This control plane's member name (etcd_member_name), NULL without etcd. */
const char *cluster_member(const struct controlplane *cp);
/* Should the alert of a stopped owner fire (README "High availability on etcd": the built-in
 * alert TideLeaseNotProven)? 1 when this control plane acts for no workload because it cannot
 * prove its lease (after a step-down; at start, once joining took longer than the TTL), with
 * *since_ms (wall ms the proof lapsed) and summary filled; 0 when it acts, or without etcd.
 * Loop thread. */
int cluster_lease_alert(struct controlplane *cp, int64_t *since_ms, char *summary, size_t len);
/* Does this control plane hold workload's owner key in etcd on its current lease (or is a txn
 * about it under way)? Whether the lease can be proven now is not asked: a lease that is only
 * unproven for a while may still be ours (cluster_may_act says whether to act). 1 without
 * etcd. Loop thread. */
int cluster_owns(struct controlplane *cp, const char *workload);
/* The owner of workload as etcd says: 0 with name (and http, its HTTP listener; *self 1 when
 * it is this control plane), or -ENOENT when none holds it now. Loop thread. */
int cluster_owner(struct controlplane *cp, const char *workload, char *name, size_t namelen,
                  char *http, size_t httplen, int *self);

/* Stores a spec in etcd (blocking: call from a worker thread, never the loop): *changed 0 when
 * etcd held exactly this text already; *rev its mod_revision. 0 or -errno with err. */
int cluster_spec_store(struct controlplane *cp, const char *name, const char *yaml, size_t len,
                       int *changed, int64_t *rev, char *err, size_t errlen);
/* Deletes a spec from etcd (blocking, worker thread): *deleted 0 when there was none. */
int cluster_spec_remove(struct controlplane *cp, const char *name, int *deleted, char *err,
                        size_t errlen);

/* tidectl status's "cluster" object (NULL when not enabled), and the tide_cluster_* series of
 * /metrics (nothing when not enabled). Loop thread. */
cJSON *cluster_status_json(struct controlplane *cp);
void cluster_metrics(struct controlplane *cp, strbuf *b);

#endif
