/* amclient.h: delivery of alerts to one or more Alertmanagers through their v2 API
 * (POST /api/v2/alerts, a JSON array of {labels, annotations, startsAt, endsAt, generatorURL}).
 *
 * One thread of its own (the event loop never waits for HTTP) and one bounded FIFO per
 * Alertmanager: an alert is queued to every Alertmanager and stays queued until that one has
 * answered 2xx, so an Alertmanager that is down loses nothing while its queue has room; when a
 * queue is full its oldest alert is dropped and counted. Failed requests are retried with a
 * doubling delay (1 s up to 30 s); an answer 4xx other than 408/429 means the batch itself is
 * refused, and it is dropped (counted, logged) rather than retried for ever. Up to 64 alerts
 * go in one request. Credentials (bearer token file, or basic auth user and password file) are
 * read at every request, so they may rotate. */
#ifndef TIDE_ALERTS_AMCLIENT_H
#define TIDE_ALERTS_AMCLIENT_H

#include <stddef.h>
#include <stdint.h>

#define AM_MAX_URLS 8
#define AM_BATCH 64

typedef struct am_options {
    const char *urls;                /* comma-separated base URLs (http:// or https://) */
    int64_t timeout_ms;              /* one request */
    const char *bearer_token_file;   /* "" or NULL: none */
    const char *basic_user;          /* "" or NULL: no basic auth */
    const char *basic_password_file; /* with basic_user */
    int64_t queue_max;               /* alerts queued per Alertmanager */
} am_options;

typedef struct am_client am_client;

typedef struct am_stats {
    char url[256];
    uint64_t sent;     /* alerts delivered (answered 2xx) */
    uint64_t requests; /* requests made */
    uint64_t errors;   /* requests that failed (retried, or refused) */
    uint64_t dropped;  /* alerts dropped: queue full, or refused by a 4xx */
    size_t queued;     /* alerts waiting now */
    int up;            /* the last request succeeded (1 before any) */
    char last_error[200];
} am_stats;

/* Checks the URL list: 0, or -EINVAL with err naming the bad entry. "" is a valid empty list. */
int am_urls_check(const char *urls, char *err, size_t errlen);

/* Starts the delivery thread. opt->urls must hold at least one URL. 0, or -errno with err. */
int am_new(am_client **out, const am_options *opt, char *err, size_t errlen);
/* Queues one alert (a JSON object's text, copied) to every Alertmanager. Thread-safe. */
void am_enqueue(am_client *c, const char *alert_json);
/* Number of Alertmanagers, and the figures of the i-th. */
int am_count(const am_client *c);
void am_get_stats(am_client *c, int i, am_stats *st);
/* Stops the thread (a request under way is aborted) and frees everything. Accepts NULL. */
void am_free(am_client *c);

#endif
