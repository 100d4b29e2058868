/* alerting.c: threshold crossings and the alert state machine (see alerting.h). */
#include "models/alerting.h"

#include <math.h>

int alert_crossing(const double *f, int n, double threshold, int below) {
    for (int i = 0; i < n; i++) {
        if (isnan(f[i])) continue;
        if (below ? f[i] < threshold : f[i] > threshold) return i;
    }
    return -1;
}

alert_change alert_step(alert_state *s, int active, int64_t now, int64_t for_s, int64_t keep_s) {
    if (active) {
        s->last_active = now;
        switch (s->phase) {
        case ALERT_INACTIVE:
            s->active_at = now;
            if (for_s <= 0) {
                s->phase = ALERT_FIRING;
                s->fired_at = now;
                return ALERT_FIRED;
            }
            s->phase = ALERT_PENDING;
            return ALERT_PENDED;
        case ALERT_PENDING:
            if (now - s->active_at >= for_s) {
                s->phase = ALERT_FIRING;
                s->fired_at = now;
                return ALERT_FIRED;
            }
            return ALERT_NONE;
        case ALERT_FIRING:
            return ALERT_NONE;
        }
        return ALERT_NONE;
    }
    switch (s->phase) {
    case ALERT_INACTIVE:
        return ALERT_NONE;
    case ALERT_PENDING:
        s->phase = ALERT_INACTIVE;
        return ALERT_DROPPED;
    case ALERT_FIRING:
        if (now - s->last_active < keep_s) return ALERT_NONE;
        s->phase = ALERT_INACTIVE;
        s->resolved_at = now;
        return ALERT_RESOLVED;
    }
    return ALERT_NONE;
}

const char *alert_phase_name(alert_phase p) {
    return p == ALERT_FIRING ? "firing" : p == ALERT_PENDING ? "pending" : "inactive";
}
