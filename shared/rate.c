/* rate.c: counter readings -> per-second rates, with wrap and reset handling (see rate.h). */
#include "rate.h"

void rate_reset(rate_counter *rc) {
    rc->last = 0;
    rc->last_ns = 0;
    rc->primed = 0;
}

enum rate_result rate_update(rate_counter *rc, uint64_t value, int64_t now_ns, uint64_t width_max,
                             double *rate) {
    if (!rc->primed) {
        rc->last = value;
        rc->last_ns = now_ns;
        rc->primed = 1;
        return RATE_FIRST;
    }
    if (now_ns <= rc->last_ns) return RATE_BADTIME;
    double secs = (double)(now_ns - rc->last_ns) / 1e9;
    enum rate_result res = RATE_OK;
    uint64_t delta;
    if (value >= rc->last) {
        delta = value - rc->last;
    } else {
        /* Wrapped delta: from last up to width_max, one step to 0, then up to value. */
        uint64_t wrapped = width_max - rc->last + value + 1;
        if (width_max != 0 && rc->last <= width_max && wrapped <= width_max / 2) {
            delta = wrapped;
            res = RATE_WRAP;
        } else {
            rc->last = value;
            rc->last_ns = now_ns;
            return RATE_RESET;
        }
    }
    rc->last = value;
    rc->last_ns = now_ns;
    *rate = (double)delta / secs;
    return res;
}
