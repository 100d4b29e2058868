/* daemon.h: the libev watchers both daemons run their loop with: SIGTERM and SIGINT (stop:
 * logged, STOPPING=1 to systemd, the loop broken so main() tears down in order), SIGHUP
 * (reload, the daemon's callback) and the systemd watchdog timer. Never exits. */
#ifndef TIDE_DAEMON_H
#define TIDE_DAEMON_H

#include <ev.h>

typedef void (*daemon_signal_fn)(struct ev_loop *loop, ev_signal *w, int revents);

typedef struct daemon_watchers {
    const char *who; /* log tag of the stop message */
    ev_signal term, intr, hup;
    ev_timer watchdog; /* started only when systemd enabled the watchdog for this process */
} daemon_watchers;

/* Starts on loop: the stop handler for SIGTERM and SIGINT (logs "<signal> received: shutting
 * down" under tag who, a static string), on_reload for SIGHUP, and, when systemd asked for a
 * watchdog ($WATCHDOG_USEC), a timer that sends WATCHDOG=1 at half its timeout. */
void daemon_watchers_start(daemon_watchers *dw, struct ev_loop *loop, const char *who,
                           daemon_signal_fn on_reload);
/* Stops every watcher daemon_watchers_start started (before the loop is destroyed). */
void daemon_watchers_stop(daemon_watchers *dw, struct ev_loop *loop);

#endif
