/* http_guard.h: what the HTTP listener does against slow and greedy clients (
 * slowloris): every connection must deliver a whole request within a deadline (counted from
 * its start, or from the end of its previous response on a kept-alive connection), else a
 * reaper thread shuts its socket down. libmicrohttpd itself only has an inactivity timeout,
 * which one byte a second never trips. The per-address connection limit is libmicrohttpd's
 * MHD_OPTION_PER_IP_CONNECTION_LIMIT, set next to this guard's callbacks.
 *
 * Thread-safe: the callbacks run on libmicrohttpd's threads, the reaper on its own. */
#ifndef TIDE_HTTP_GUARD_H
#define TIDE_HTTP_GUARD_H

#include <microhttpd.h>
#include <stdint.h>

typedef struct http_guard http_guard;

/* Starts the reaper (name for its log lines). 0 or -errno. */
int http_guard_new(http_guard **out, const char *name, int64_t request_timeout_ms);
/* Stops the reaper and frees; call after MHD_stop_daemon() (which reports every connection
 * closed). Accepts NULL. */
void http_guard_free(http_guard *g);

/* MHD_OPTION_NOTIFY_CONNECTION callback; cls is the guard. */
void http_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                       enum MHD_ConnectionNotificationCode code);
/* The whole request (headers and body) has arrived: its deadline no longer runs. */
void http_guard_request_received(struct MHD_Connection *c);
/* The response was sent: a kept-alive connection's next request starts its deadline now. */
void http_guard_request_done(struct MHD_Connection *c);

/* Connections shut down for missing the deadline, since start. */
uint64_t http_guard_timeouts(const http_guard *g);

#endif
