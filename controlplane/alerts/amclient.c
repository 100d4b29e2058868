/* amclient.c: Alertmanager v2 delivery thread (see amclient.h). */
#include "alerts/amclient.h"

#include "log.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000 /* an Alertmanager back after a minute's outage hears within 30 s */

typedef struct am_item {
    char *json;
    uint64_t seq;
} am_item;

typedef struct am_target {
    char url[256]; /* .../api/v2/alerts */
    char base[224];
    am_item *q; /* ring of queue_max */
    size_t head, n;
    uint64_t next_seq;
    int64_t next_try_ms; /* monotonic; 0 = now */
    int64_t backoff_ms;
    am_stats st;
} am_target;

struct am_client {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    int stop;
    am_target t[AM_MAX_URLS];
    int nt;
    size_t qmax;
    int64_t timeout_ms;
    char *bearer_file, *basic_user, *basic_pw_file;
};

static log_ratelimit am_rl = LOG_RATELIMIT_INIT(60000, 5);

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Splits the comma-separated list into out[][] (trimmed); -EINVAL with err for a bad one. */
static int split_urls(const char *urls, char out[][224], int *n, char *err, size_t errlen) {
    *n = 0;
    const char *p = urls ? urls : "";
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len) {
            if (*n == AM_MAX_URLS) {
                snprintf(err, errlen, "more than %d Alertmanager URLs", AM_MAX_URLS);
                return -EINVAL;
            }
            if (len >= 200 || (strncmp(p, "http://", 7) && strncmp(p, "https://", 8))) {
                snprintf(err, errlen, "'%.*s' is not an http:// or https:// URL (under 200 bytes)",
                         (int)(len > 120 ? 120 : len), p);
                return -EINVAL;
            }
            memcpy(out[*n], p, len);
            out[*n][len] = 0;
            while (len && out[*n][len - 1] == '/') /* base URL: "http://am:9093/" too */
                out[*n][--len] = 0;
            (*n)++;
        }
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

int am_urls_check(const char *urls, char *err, size_t errlen) {
    char tmp[AM_MAX_URLS][224];
    int n;
    return split_urls(urls, tmp, &n, err, errlen);
}

/* The first line of a small file (credentials), without its newline; "" when unreadable. */
static void read_secret(const char *path, char *out, size_t outlen) {
    out[0] = 0;
    if (!path || !path[0]) return;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (!fgets(out, (int)outlen, f)) out[0] = 0;
    fclose(f);
    out[strcspn(out, "\r\n")] = 0;
}

static size_t on_data(char *p, size_t size, size_t n, void *arg) {
    char *buf = arg; /* the first bytes of the answer: an error message */
    size_t have = strlen(buf), add = size * n;
    if (have < 160) {
        size_t take = add < 160 - have ? add : 160 - have;
        memcpy(buf + have, p, take);
        buf[have + take] = 0;
    }
    return add;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    am_client *cl = arg;
    pthread_mutex_lock(&cl->mu);
    int stop = cl->stop;
    pthread_mutex_unlock(&cl->mu);
    return stop; /* nonzero aborts the transfer */
}

/* POSTs body to t->url. Returns the HTTP status, or -1 with err for a transport failure. */
static long post(am_client *cl, CURL *c, const am_target *t, const char *body, char *err,
                 size_t errlen) {
    char tok[4096], user[512], pw[1024], answer[200] = "";
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    read_secret(cl->bearer_file, tok, sizeof tok);
    if (tok[0]) {
        char h[4200];
        snprintf(h, sizeof h, "Authorization: Bearer %s", tok);
        hdr = curl_slist_append(hdr, h);
    }
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, t->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)cl->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)cl->timeout_ms);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, answer);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, cl);
    if (cl->basic_user && cl->basic_user[0]) {
        read_secret(cl->basic_pw_file, pw, sizeof pw);
        snprintf(user, sizeof user, "%s", cl->basic_user);
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, pw);
    }
    CURLcode rc = curl_easy_perform(c);
    long status = -1;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200 || status > 299) snprintf(err, errlen, "HTTP %ld: %.150s", status, answer);
    } else {
        snprintf(err, errlen, "%s", curl_easy_strerror(rc));
    }
    curl_slist_free_all(hdr);
    memset(tok, 0, sizeof tok);
    memset(pw, 0, sizeof pw);
    return status;
}

/* Under mu: drops the items of t up to and including seq (they were delivered or refused). */
static void pop_upto(am_target *t, size_t qmax, uint64_t seq) {
    while (t->n && t->q[t->head].seq <= seq) {
        free(t->q[t->head].json);
        t->q[t->head].json = NULL;
        t->head = (t->head + 1) % qmax;
        t->n--;
    }
}

static void *run(void *arg) {
    am_client *cl = arg;
    CURL *c = curl_easy_init();
    pthread_mutex_lock(&cl->mu);
    while (!cl->stop) {
        int64_t now = tide_now_mono_ms(), wait_ms = 60000;
        int did = 0;
        for (int i = 0; i < cl->nt && !cl->stop; i++) {
            am_target *t = &cl->t[i];
            if (!t->n) continue;
            if (t->next_try_ms > now) {
                if (t->next_try_ms - now < wait_ms) wait_ms = t->next_try_ms - now;
                continue;
            }
            /* a batch from the head: "[a,b,...]" */
            size_t k = t->n < AM_BATCH ? t->n : AM_BATCH, len = 3;
            for (size_t j = 0; j < k; j++)
                len += strlen(t->q[(t->head + j) % cl->qmax].json) + 1;
            char *body = malloc(len);
            if (!body) break;
            size_t off = 0;
            body[off++] = '[';
            for (size_t j = 0; j < k; j++) {
                const char *s = t->q[(t->head + j) % cl->qmax].json;
                if (j) body[off++] = ',';
                memcpy(body + off, s, strlen(s));
                off += strlen(s);
            }
            body[off++] = ']';
            body[off] = 0;
            uint64_t last = t->q[(t->head + k - 1) % cl->qmax].seq;
            pthread_mutex_unlock(&cl->mu);
            char err[200] = "";
            long status = c ? post(cl, c, t, body, err, sizeof err) : -1;
            if (!c) snprintf(err, sizeof err, "cannot create a curl handle");
            free(body);
            pthread_mutex_lock(&cl->mu);
            did = 1;
            t->st.requests++;
            now = tide_now_mono_ms();
            if (status >= 200 && status <= 299) {
                size_t before = t->n;
                pop_upto(t, cl->qmax, last);
                t->st.sent += before - t->n;
                t->st.up = 1;
                t->backoff_ms = 0;
                t->next_try_ms = 0;
            } else if (status >= 400 && status <= 499 && status != 408 && status != 429) {
                size_t before = t->n;
                pop_upto(t, cl->qmax, last);
                t->st.dropped += before - t->n;
                t->st.errors++;
                t->st.up = 0;
                snprintf(t->st.last_error, sizeof t->st.last_error, "%s", err);
                log_limited(&am_rl, LOG_WARN, "alerts", "alertmanager %s refused %zu alert(s): %s",
                            t->base, before - t->n, err);
            } else {
                if (cl->stop) break;
                t->st.errors++;
                t->st.up = 0;
                snprintf(t->st.last_error, sizeof t->st.last_error, "%s", err);
                t->backoff_ms = t->backoff_ms ? t->backoff_ms * 2 : BACKOFF_MIN_MS;
                if (t->backoff_ms > BACKOFF_MAX_MS) t->backoff_ms = BACKOFF_MAX_MS;
                t->next_try_ms = now + t->backoff_ms;
                log_limited(&am_rl, LOG_WARN, "alerts",
                            "alertmanager %s: %s; %zu alert(s) kept, retry in %lld ms", t->base,
                            err, t->n, (long long)t->backoff_ms);
            }
        }
        if (cl->stop) break;
        if (did) continue; /* look again at once: more may be queued */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&cl->cv, &cl->mu, &ts);
    }
    pthread_mutex_unlock(&cl->mu);
    if (c) curl_easy_cleanup(c);
    return NULL;
}

int am_new(am_client **out, const am_options *opt, char *err, size_t errlen) {
    *out = NULL;
    char urls[AM_MAX_URLS][224]; /* each under 200 bytes (split_urls) */
    int n = 0;
    if (split_urls(opt->urls, urls, &n, err, errlen) < 0) return -EINVAL;
    if (n == 0) {
        snprintf(err, errlen, "no Alertmanager URL");
        return -EINVAL;
    }
    if (opt->queue_max < 1) {
        snprintf(err, errlen, "queue size must be at least 1");
        return -EINVAL;
    }
    pthread_once(&curl_once, curl_init_once);
    am_client *cl = calloc(1, sizeof *cl);
    if (!cl) return -ENOMEM;
    cl->qmax = (size_t)opt->queue_max;
    cl->timeout_ms = opt->timeout_ms;
    cl->nt = n;
    int rc = -ENOMEM;
    if ((opt->bearer_token_file && !(cl->bearer_file = strdup(opt->bearer_token_file))) ||
        (opt->basic_user && !(cl->basic_user = strdup(opt->basic_user))) ||
        (opt->basic_password_file && !(cl->basic_pw_file = strdup(opt->basic_password_file))))
        goto fail;
    for (int i = 0; i < n; i++) {
        am_target *t = &cl->t[i];
        snprintf(t->base, sizeof t->base, "%.200s", urls[i]);
        snprintf(t->url, sizeof t->url, "%.200s/api/v2/alerts", urls[i]);
        snprintf(t->st.url, sizeof t->st.url, "%.200s", urls[i]);
        t->st.up = 1;
        if (!(t->q = calloc(cl->qmax, sizeof *t->q))) goto fail;
    }
    pthread_mutex_init(&cl->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cl->cv, &ca);
    pthread_condattr_destroy(&ca);
    rc = -pthread_create(&cl->th, NULL, run, cl);
    if (rc) {
        pthread_cond_destroy(&cl->cv);
        pthread_mutex_destroy(&cl->mu);
        snprintf(err, errlen, "cannot start the Alertmanager thread: %s", strerror(-rc));
        goto fail;
    }
    *out = cl;
    return 0;
fail:
    for (int i = 0; i < n; i++)
        free(cl->t[i].q);
    free(cl->bearer_file);
    free(cl->basic_user);
    free(cl->basic_pw_file);
    free(cl);
    if (rc == -ENOMEM) snprintf(err, errlen, "out of memory");
    return rc;
}

void am_enqueue(am_client *cl, const char *alert_json) {
    if (!cl) return;
    pthread_mutex_lock(&cl->mu);
    for (int i = 0; i < cl->nt; i++) {
        am_target *t = &cl->t[i];
        char *copy = strdup(alert_json);
        if (!copy) {
            t->st.dropped++;
            continue;
        }
        if (t->n == cl->qmax) { /* full: the oldest goes */
            free(t->q[t->head].json);
            t->q[t->head].json = NULL;
            t->head = (t->head + 1) % cl->qmax;
            t->n--;
            t->st.dropped++;
            log_limited(&am_rl, LOG_WARN, "alerts",
                        "alertmanager %s: queue full (%zu alerts), dropped the oldest", t->base,
                        cl->qmax);
        }
        size_t at = (t->head + t->n) % cl->qmax;
        t->q[at].json = copy;
        t->q[at].seq = ++t->next_seq;
        t->n++;
    }
    pthread_cond_signal(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
}

int am_count(const am_client *cl) {
    return cl ? cl->nt : 0;
}

void am_get_stats(am_client *cl, int i, am_stats *st) {
    memset(st, 0, sizeof *st);
    if (!cl || i < 0 || i >= cl->nt) return;
    pthread_mutex_lock(&cl->mu);
    *st = cl->t[i].st;
    st->queued = cl->t[i].n;
    pthread_mutex_unlock(&cl->mu);
}

void am_free(am_client *cl) {
    if (!cl) return;
    pthread_mutex_lock(&cl->mu);
    cl->stop = 1;
    pthread_cond_signal(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
    pthread_join(cl->th, NULL);
    for (int i = 0; i < cl->nt; i++) {
        am_target *t = &cl->t[i];
        for (size_t j = 0; j < t->n; j++)
            free(t->q[(t->head + j) % cl->qmax].json);
        free(t->q);
    }
    pthread_cond_destroy(&cl->cv);
    pthread_mutex_destroy(&cl->mu);
    free(cl->bearer_file);
    free(cl->basic_user);
    free(cl->basic_pw_file);
    free(cl);
}
