/* notify.c: sd_notify wrappers for Type=notify units (see notify.h). */
#include "notify.h"

#include <stdio.h>
#include <systemd/sd-daemon.h>

int notify_ready(const char *status) {
    if (status) return sd_notifyf(0, "READY=1\nSTATUS=%s", status);
    return sd_notify(0, "READY=1");
}

int notify_stopping(void) {
    return sd_notify(0, "STOPPING=1");
}

int notify_status(const char *status) {
    return sd_notifyf(0, "STATUS=%s", status);
}

int notify_watchdog(void) {
    return sd_notify(0, "WATCHDOG=1");
}

int64_t notify_watchdog_interval_ms(void) {
    uint64_t usec = 0;
    /* > 0 only when the watchdog is on and meant for this pid (WATCHDOG_PID checked). */
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return 0;
    return (int64_t)(usec / 2000);
}
