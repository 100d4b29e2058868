/* rate.h: turns successive readings of a monotonic counter into a per-second rate.
 *
 * Pure and allocation-free (collectd's value_to_rate): the caller keeps one rate_counter per
 * counter, feeds it (value, monotonic time in ns) at every sample and gets a rate once two
 * readings are known. A counter that goes backwards is either a wrap (when the counter has a
 * known width and the wrapped delta is plausible) or a reset (the cgroup was recreated, the
 * kernel restarted the counter): a reset yields no rate for that sample and the new reading
 * becomes the base, so a reset never shows up as a huge or negative spike. */
#ifndef TIDE_RATE_H
#define TIDE_RATE_H

#include <stdint.h>

typedef struct rate_counter {
    uint64_t last;   /* previous reading */
    int64_t last_ns; /* when it was taken (monotonic ns) */
    int primed;      /* a previous reading exists */
} rate_counter;

enum rate_result {
    RATE_FIRST = 0,    /* first reading (or first after rate_reset): no rate yet */
    RATE_OK = 1,       /* *rate holds units per second */
    RATE_WRAP = 2,     /* the counter wrapped at its width; *rate holds the corrected rate */
    RATE_RESET = 3,    /* the counter went backwards (reset): no rate, re-based on this reading */
    RATE_BADTIME = -1, /* time did not advance (now_ns <= previous): reading ignored */
};

/* width_max: the counter's largest value before it wraps to 0 (UINT32_MAX for 32-bit
 * counters, UINT64_MAX for 64-bit ones), or 0 when the counter never wraps (every decrease is
 * a reset). A decrease counts as a wrap only when the wrapped delta is under half the width. */
enum rate_result rate_update(rate_counter *rc, uint64_t value, int64_t now_ns, uint64_t width_max,
                             double *rate);

/* Forgets the base: the next rate_update is a RATE_FIRST. */
void rate_reset(rate_counter *rc);

#endif
