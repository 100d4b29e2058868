/* notify.h: systemd service notification (Type=notify readiness, watchdog, status, stopping)
 * through libsystemd's sd_notify. Every call is a no-op returning 0 when the daemon does not
 * run under systemd (no $NOTIFY_SOCKET). */
#ifndef TIDE_NOTIFY_H
#define TIDE_NOTIFY_H

#include <stdint.h>

/* READY=1 plus a STATUS= line. Returns 1 if sent, 0 if not under systemd, -errno on error. */
int notify_ready(const char *status);
/* STOPPING=1. Same returns. */
int notify_stopping(void);
/* STATUS=... only. Same returns. */
int notify_status(const char *status);
/* WATCHDOG=1. Same returns. */
int notify_watchdog(void);
/* How often to send WATCHDOG=1: half of $WATCHDOG_USEC in milliseconds, or 0 when systemd
 * did not enable the watchdog for this process. */
int64_t notify_watchdog_interval_ms(void);

#endif
