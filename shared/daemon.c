/* daemon.c: signal and systemd-watchdog watchers shared by tide-agent and tide-controlplane
 * (daemon.h). */
#include "daemon.h"

#include <signal.h>
#include <stddef.h>
#include <string.h>

#include "log.h"
#include "notify.h"

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents) {
    (void)revents;
    const daemon_watchers *dw = w->data;
    log_info(dw->who, "%s received: shutting down", strsignal(w->signum));
    notify_stopping();
    ev_break(loop, EVBREAK_ALL);
}

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop;
    (void)w;
    (void)revents;
    notify_watchdog();
}

void daemon_watchers_start(daemon_watchers *dw, struct ev_loop *loop, const char *who,
                           daemon_signal_fn on_reload) {
    dw->who = who;
    ev_signal_init(&dw->term, on_stop, SIGTERM);
    ev_signal_init(&dw->intr, on_stop, SIGINT);
    dw->term.data = dw->intr.data = dw;
    ev_signal_init(&dw->hup, on_reload, SIGHUP);
    ev_signal_start(loop, &dw->term);
    ev_signal_start(loop, &dw->intr);
    ev_signal_start(loop, &dw->hup);
    int64_t wd = notify_watchdog_interval_ms();
    ev_timer_init(&dw->watchdog, on_watchdog, wd / 1000.0, wd / 1000.0);
    if (wd > 0) ev_timer_start(loop, &dw->watchdog);
}

void daemon_watchers_stop(daemon_watchers *dw, struct ev_loop *loop) {
    ev_timer_stop(loop, &dw->watchdog);
    ev_signal_stop(loop, &dw->term);
    ev_signal_stop(loop, &dw->intr);
    ev_signal_stop(loop, &dw->hup);
}
