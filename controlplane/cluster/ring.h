/* ring.h: which control plane owns a workload: rendezvous (highest random weight) hashing over
 * the live members. Every member computes the same owner from the same member set; when a
 * member joins or leaves, only the workloads whose highest score moves to or from it change
 * owner (~W/N of W workloads over N members). Pure. */
#ifndef TIDE_RING_H
#define TIDE_RING_H

#include <stdint.h>

/* The score of member for workload (a 64-bit hash of both). */
uint64_t ring_score(const char *member, const char *workload);
/* The index of the member of members[0..n-1] with the highest score for workload (ties: the
 * smaller name), or -1 when n is 0. */
int ring_owner(const char *const *members, int n, const char *workload);

#endif
