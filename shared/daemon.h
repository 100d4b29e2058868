/* daemon.h: the libev watchers both daemons run their loop with: SIGTERM and SIGINT (stop),
 * SIGHUP (reload) and the systemd watchdog timer. Plumbing only: never logs or exits; the
 * callbacks are the daemon's. */
#ifndef TIDE_DAEMON_H
#define TIDE_DAEMON_H

#include <ev.h>

typedef void (*daemon_signal_fn)(struct ev_loop *loop, ev_signal *w, int revents);

typedef struct daemon_watchers {
    ev_signal term, intr, hup;
    ev_timer watchdog; /* started only when systemd enabled the watchdog for this process */
} daemon_watchers;

/* Starts on loop: on_stop for SIGTERM and SIGINT, on_reload for SIGHUP, and, when systemd
 * asked for a watchdog ($WATCHDOG_USEC), a timer that sends WATCHDOG=1 at half its timeout. */
void daemon_watchers_start(daemon_watchers *dw, struct ev_loop *loop, daemon_signal_fn on_stop,
                           daemon_signal_fn on_reload);
/* Stops every watcher daemon_watchers_start started (before the loop is destroyed). */
void daemon_watchers_stop(daemon_watchers *dw, struct ev_loop *loop);

#endif
