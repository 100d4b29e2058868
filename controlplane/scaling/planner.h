/* planner.h: turns a workload's portrait into staged, idempotent replica actions.
 *
 * Replica states: Starting -> Online; Online -> Cutoff (drained, still running) -> Standby
 * (frozen, memory reclaimed, kept alive) -> Deleted after the keep-alive time; Standby ->
 * Activating -> Online (milliseconds to a second instead of a cold start).
 *
 * Each step (every syncPeriodSeconds) the planner compares the portrait with the fleet:
 *   - online short of needed[now]: bring back Cutoff replicas, activate Standby ones, and only
 *     then start new replicas;
 *   - all replicas short of replicas[now] (the need within the scale-up-ahead time): start new
 *     replicas now so that they exist when the demand arrives. Such a replica is started
 *     *ahead*: it is not part of the online count the current load needs (controller.c leaves
 *     it out of the reactive provider's current replicas), and when its start completes before
 *     the load needs it, it is cut off at once and parked in Standby (warm, activated in about a
 *     second) instead of serving as a surplus online replica. A scale-up for the current load
 *     claims such replicas first when they are already online, after Cutoff and Standby ones
 *     when they are still starting;
 *   - online above needed[now]: scale down in gray steps of changePercent of the change
 *     every changeIntervalSeconds, each watched for observationSeconds by the stability checkers
 *     (Pause: no further steps for the cooldown; Rollback: the step is undone); Cutoff
 *     replicas move on to the configured end state after their observation; Standby replicas
 *     are deleted after keepAliveSeconds unless the portrait needs them.
 * Actions are idempotent (a replica id and a target state): re-sending one does no harm, and
 * the planner never re-emits an action that is still pending. Every decision is an event with
 * its inputs and reason. In Preview mode the planner records what it would do and emits no
 * action. A paused workload plans nothing. */
#ifndef TIDE_PLANNER_H
#define TIDE_PLANNER_H

#include "actions.h"
#include "scaling/portrait.h"
#include "spec/workload.h"

#include <stddef.h>
#include <stdint.h>

typedef enum planner_state {
    REPLICA_STARTING = 0,
    REPLICA_ONLINE,
    REPLICA_CUTOFF,
    REPLICA_STANDBY,
    REPLICA_ACTIVATING,
    REPLICA_DELETED,
} planner_state;

typedef enum planner_action_kind {
    ACT_START = 0, /* create a new replica (cold start) */
    ACT_ACTIVATE,  /* standby -> online (thaw, warm up, readiness on) */
    ACT_RESTORE,   /* cutoff -> online (readiness back on) */
    ACT_CUTOFF,    /* online -> cutoff (drain) */
    ACT_STANDBY,   /* cutoff -> standby (freeze, reclaim memory) */
    ACT_DELETE,    /* cutoff/standby -> deleted */
} planner_action_kind;

typedef struct planner_action {
    uint64_t seq; /* unique per planner */
    planner_action_kind kind;
    char replica[TIDE_REPLICA_ID_MAX + 1]; /* replica id, e.g. "web-17" (shared/actions.h) */
    char reason[160];
} planner_action;

typedef struct planner_replica {
    char id[TIDE_REPLICA_ID_MAX + 1];
    planner_state state;
    int64_t since;      /* time of the last state change */
    int64_t started;    /* time its START was issued (start-up time measurement) */
    int step_id;        /* the scale-down step that moved it (for rollback), 0 none */
    planner_state prev; /* its state before the last action (a failed delete or standby
                         * returns it there: the executor still holds it) */
    int ahead;          /* started ahead of demand and not claimed by the current load yet
                         * (Starting or Online; kept through its cutoff until Standby) */
} planner_replica;

#define PLANNER_EVENT_TEXT 320
typedef struct planner_event {
    int64_t t;
    char kind[16]; /* "scale-up", "scale-down", "hold", "rollback", "pause", "delete", ... */
    char text[PLANNER_EVENT_TEXT]; /* inputs and reason */
} planner_event;

/* A metric value for the stability checkers (name as in the spec's checker metric). */
typedef struct planner_metric {
    const char *name;
    double value;
} planner_metric;

typedef struct planner_input {
    int64_t now;
    const portrait *portrait;
    const planner_metric *metrics;
    size_t n_metrics;
} planner_input;

typedef struct planner_counts {
    int starting, online, cutoff, standby, activating;
    /* of starting and online: replicas started ahead of demand that the current load has not
     * claimed (outside the online count the reactive provider sizes) */
    int starting_ahead, online_ahead;
} planner_counts;

typedef struct planner planner;

/* Creates a planner for a validated spec (copied); replica ids are "<name>-<n>". */
int planner_new(planner **out, const workload_spec *spec);
void planner_free(planner *p);

/* Adds an existing replica in the given state (inventory at start-up). 0, -EEXIST, -ENOMEM.
 * An id of the form "<name>-<n>" makes the replicas started later number above n. */
int planner_add_replica(planner *p, const char *id, planner_state state, int64_t now);
/* Sets a replica's state as the executor found it (adopted, lost, moved by an action of an
 * older spec generation); adds it when unknown (unless Deleted). 0, -ENOMEM. */
int planner_set_state(planner *p, const char *id, planner_state state, int64_t now);

/* Plans one step. Appends the actions to emit to *acts (*nacts of them; the array is owned by
 * the planner and valid until the next call). Returns 0 or -ENOMEM. */
int planner_step(planner *p, const planner_input *in, const planner_action **acts, size_t *nacts);

/* An executor reports an action's outcome. A START or ACTIVATE that succeeds makes the replica
 * Online; one that fails returns it to Deleted/Standby. Unknown ids are ignored (idempotent). */
void planner_action_done(planner *p, const char *replica, planner_action_kind kind, int ok,
                         int64_t now);

/* The scale-up-ahead time in effect: fixed, or (auto) the longest of the recent measured
 * start-up times plus one sync period (300 s until one has been measured). */
int planner_scale_up_ahead(const planner *p);

void planner_counts_get(const planner *p, planner_counts *c);
/* Whether replica id was started ahead of demand and is not claimed by the current load yet
 * (0 for an unknown id). The HPA's pods leave such a replica out while it starts. */
int planner_is_ahead(const planner *p, const char *id);
/* Replicas (including Deleted ones not yet forgotten); valid until the next planner call. */
const planner_replica *planner_replicas(const planner *p, size_t *n);
#define PLANNER_MAX_EVENTS 256
/* Records an event from the caller (e.g. a provider falling back), with the same dedup. */
void planner_note(planner *p, int64_t now, const char *kind, const char *text);

/* Total events ever recorded (monotonic: lets a reader ask for new ones). */
uint64_t planner_event_count(const planner *p);
/* Copies event number i (counting from the first ever, 0-based) into *ev: -ENOENT when it is
 * not kept any more (only the last PLANNER_MAX_EVENTS are) or not recorded yet. */
int planner_event_at(const planner *p, uint64_t i, planner_event *ev);

const char *planner_state_name(planner_state s);
const char *planner_action_name(planner_action_kind k);

#endif
