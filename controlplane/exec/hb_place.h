/* hb_place.h: where the HAProxyBackend executor puts a new replica: the allowed node with the
 * fewest replicas of the workload (spec order breaks ties; nodes whose agent is not connected
 * are skipped), the lowest port of the template's range that no replica uses on that node, and
 * the free server-template slot with the lowest number. Pure: the inventory (replicas from the
 * agents' `replicas`, slots from `haproxy-slots`) is passed in. */
#ifndef TIDE_HB_PLACE_H
#define TIDE_HB_PLACE_H

#include "spec/workload.h"

#include <stddef.h>

#define HB_SERVER_MAX 128 /* an HAProxy server name, with its NUL */

/* A replica of the workload as the inventory knows it (any state: starting, online, cutoff,
 * standby; each holds its port and slot). slot "" = none yet. */
typedef struct hb_replica_view {
    char node[WL_NAME_MAX];
    int port;
    char slot[HB_SERVER_MAX];
} hb_replica_view;

/* A slot of the backend: its server name ("r3") and whether something other than a replica of
 * this workload holds it (HAProxy shows it not in MAINT with no replica pointing at it). */
typedef struct hb_slot_view {
    char server[HB_SERVER_MAX];
    int busy;
} hb_slot_view;

typedef struct hb_placement {
    int node; /* index into target->nodes */
    int port;
    int slot; /* index into the slots given */
} hb_placement;

/* node_up[i]: is the agent of target->nodes[i] connected. Returns 0 with *out, or -ENOSPC with
 * why ("no connected node among app1, app2", "no free port in 8100-8119 on app1", "no free
 * slot r* in backend web (20 slots, 20 taken)"). Slots not named PREFIX + digits are ignored. */
int hb_place(const wl_target *t, const unsigned char *node_up, const hb_replica_view *reps,
             size_t n_reps, const hb_slot_view *slots, size_t n_slots, hb_placement *out, char *why,
             size_t whylen);

/* The two halves of hb_place, for a start that picks its node and port at once and its slot
 * when HAProxy's slots are in (while the replica starts): out->node and out->port, or
 * out->slot; -ENOSPC with why as above. */
int hb_place_node(const wl_target *t, const unsigned char *node_up, const hb_replica_view *reps,
                  size_t n_reps, hb_placement *out, char *why, size_t whylen);
int hb_place_slot(const wl_target *t, const hb_replica_view *reps, size_t n_reps,
                  const hb_slot_view *slots, size_t n_slots, hb_placement *out, char *why,
                  size_t whylen);

/* The slot number of server name s under prefix p ("r12" under "r" -> 12), or -1. */
long hb_slot_number(const char *prefix, const char *s);

#endif
