/* warmup.c: ramped warm-up requests with libcurl multi on a libev loop, in a helper process.
 *
 * Loading libcurl maps it and its TLS/Kerberos/LDAP libraries and runs their initialisation:
 * +6 MB resident for the dlopen alone, ~+9 MB with the first transfer, more than the agent's
 * whole budget, and never given back. So each warm-up runs in a child forked from the agent:
 * the child loads libcurl (curl_lazy.h), reports "OK" or "ERR <why>" on a pipe (warmup_start
 * waits for that line, so a missing libcurl is still a synchronous error), runs the engine
 * below on its own loop, writes the result JSON and exits. The agent's loop reads the result
 * and calls done; warmup_cancel kills the child. */
#include "actions/warmup.h"

#include "actions/curl_lazy.h"
#include "log.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <errno.h>
#include <ev.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* ---- spec ------------------------------------------------------------------------------- */

static int get_num(const cJSON *o, const char *key, double def, double lo, double hi, double *out,
                   char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi)) {
        snprintf(err, errlen, "warm-up: \"%s\" must be a number in [%.15g, %.15g]", key, lo, hi);
        return -EINVAL;
    }
    *out = v->valuedouble;
    return 0;
}

static int get_str(const cJSON *o, const char *key, const char *def, char **out, char *err,
                   size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    const char *s = def;
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v)) {
            snprintf(err, errlen, "warm-up: \"%s\" must be a string", key);
            return -EINVAL;
        }
        s = v->valuestring;
    }
    *out = NULL;
    if (!s) return 0;
    *out = strdup(s);
    if (!*out) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static int header_ok(const char *h) {
    const char *colon = strchr(h, ':');
    if (!colon || colon == h) return 0;
    for (const char *p = h; *p; p++)
        if (*p == '\r' || *p == '\n') return 0;
    return 1;
}

/* Header lists are built here rather than with curl_slist_append (CURLOPT_HTTPHEADER reads
 * any struct curl_slist chain), so that parsing a spec does not need libcurl loaded. */
static int hdr_append(struct curl_slist **head, const char *line) {
    struct curl_slist *n = malloc(sizeof *n);
    char *d = strdup(line);
    if (!n || !d) {
        free(n);
        free(d);
        return -ENOMEM;
    }
    n->data = d;
    n->next = NULL;
    struct curl_slist **pp = head;
    while (*pp)
        pp = &(*pp)->next;
    *pp = n;
    return 0;
}

static void hdr_free_all(struct curl_slist *h) {
    while (h) {
        struct curl_slist *next = h->next;
        free(h->data);
        free(h);
        h = next;
    }
}

int warmup_spec_from_json(const cJSON *o, const char *endpoint, warmup_spec *spec, char *err,
                          size_t errlen) {
    memset(spec, 0, sizeof *spec);
    if (o && !cJSON_IsObject(o)) {
        snprintf(err, errlen, "warm-up: spec must be a JSON object");
        return -EINVAL;
    }
    char *path = NULL;
    double rate, start_rate, duration, ramp, inflight, rto;
    int rc;
    if ((rc = get_str(o, "method", "GET", &spec->method, err, errlen)) ||
        (rc = get_str(o, "body", NULL, &spec->body, err, errlen)) ||
        (rc = get_str(o, "url", NULL, &spec->url, err, errlen)) ||
        (rc = get_str(o, "path", "/", &path, err, errlen)))
        goto out;
    for (const char *m = spec->method; *m; m++) {
        if (!((*m >= 'A' && *m <= 'Z') || *m == '-')) {
            snprintf(err, errlen, "warm-up: \"method\" '%s' is not an HTTP method", spec->method);
            rc = -EINVAL;
            goto out;
        }
    }
    if (!spec->method[0]) {
        snprintf(err, errlen, "warm-up: \"method\" is empty");
        rc = -EINVAL;
        goto out;
    }
    if (!spec->url) {
        if (!endpoint || !*endpoint) {
            snprintf(err, errlen, "warm-up needs an endpoint (ADDR:PORT) or a \"url\"");
            rc = -EINVAL;
            goto out;
        }
        if (path[0] != '/') {
            snprintf(err, errlen, "warm-up: \"path\" '%s' must start with '/'", path);
            rc = -EINVAL;
            goto out;
        }
        size_t n = strlen(endpoint) + strlen(path) + 8;
        spec->url = malloc(n);
        if (!spec->url) {
            rc = -ENOMEM;
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        snprintf(spec->url, n, "http://%s%s", endpoint, path);
    } else if (strncmp(spec->url, "http://", 7) != 0 && strncmp(spec->url, "https://", 8) != 0) {
        snprintf(err, errlen, "warm-up: \"url\" '%s' is not http:// or https://", spec->url);
        rc = -EINVAL;
        goto out;
    }
    if ((rc = get_num(o, "rate", 20, 0.1, 100000, &rate, err, errlen)) ||
        (rc = get_num(o, "start_rate", rate / 10, 0.1, 100000, &start_rate, err, errlen)) ||
        (rc = get_num(o, "duration_ms", 2000, 1, 3600000, &duration, err, errlen)) ||
        (rc = get_num(o, "ramp_ms", floor(duration / 2), 0, 3600000, &ramp, err, errlen)) ||
        (rc = get_num(o, "max_inflight", 16, 1, 10000, &inflight, err, errlen)) ||
        (rc = get_num(o, "request_timeout_ms", 2000, 1, 600000, &rto, err, errlen)))
        goto out;
    spec->rate = rate;
    spec->start_rate = start_rate > rate ? rate : start_rate;
    spec->duration_ms = (int)duration;
    spec->ramp_ms = ramp > duration ? (int)duration : (int)ramp;
    spec->max_inflight = (int)inflight;
    spec->request_timeout_ms = (int)rto;
    const cJSON *h = o ? cJSON_GetObjectItemCaseSensitive(o, "headers") : NULL;
    if (h && !cJSON_IsNull(h)) {
        const cJSON *it;
        if (!cJSON_IsArray(h) && !cJSON_IsObject(h)) {
            snprintf(err, errlen,
                     "warm-up: \"headers\" must be an array of \"Name: value\" or an object");
            rc = -EINVAL;
            goto out;
        }
        cJSON_ArrayForEach(it, h) {
            char line[1024];
            if (cJSON_IsObject(h) && cJSON_IsString(it))
                snprintf(line, sizeof line, "%s: %s", it->string, it->valuestring);
            else if (cJSON_IsArray(h) && cJSON_IsString(it))
                snprintf(line, sizeof line, "%s", it->valuestring);
            else
                line[0] = '\0';
            if (!header_ok(line)) {
                snprintf(err, errlen, "warm-up: header '%.100s' is not \"Name: value\"", line);
                rc = -EINVAL;
                goto out;
            }
            if (hdr_append(&spec->headers, line) < 0) {
                rc = -ENOMEM;
                snprintf(err, errlen, "out of memory");
                goto out;
            }
        }
    }
out:
    free(path);
    return rc;
}

void warmup_spec_fini(warmup_spec *spec) {
    if (!spec) return;
    free(spec->url);
    free(spec->method);
    free(spec->body);
    hdr_free_all(spec->headers);
    memset(spec, 0, sizeof *spec);
}

/* ---- engine (runs in the helper process) ---------------------------------------------- */

typedef struct wengine wengine;
static void engine_cancel(wengine *w);

typedef struct sample {
    double start_ms; /* since warm-up start */
    double latency_ms;
    int error;
} sample;

typedef struct wsock {
    ev_io io;
    wengine *w;
    curl_socket_t fd;
    struct wsock *prev, *next; /* every socket libcurl told us about, for cancel */
} wsock;

typedef struct wreq {
    CURL *easy;
    double start_ms;
    wengine *w;
    struct wreq *prev, *next; /* requests in flight */
} wreq;

struct wengine {
    struct ev_loop *loop;
    const curl_lazy_api *curl; /* libcurl, loaded by the first warm-up */
    CURLM *multi;
    ev_timer curl_timer; /* libcurl's own timeouts */
    ev_timer tick;       /* launches requests per the rate schedule */
    ev_timer finish;     /* reports on the next loop turn, outside libcurl's callbacks */
    wsock *socks;        /* watched sockets: libcurl's cleanup does not report them */
    warmup_spec spec;    /* own copy */
    double t0;           /* ev_now at start, seconds */
    long launched, inflight;
    wreq *active; /* in-flight list, for cancel */
    sample *samples;
    size_t nsamples, cap;
    int sending_done;
    warmup_done_fn done;
    void *arg;
};

static double now_ms(wengine *w) {
    ev_now_update(w->loop);
    return (ev_now(w->loop) - w->t0) * 1000.0;
}

/* Requests due by t ms: integral of the linear ramp from start_rate to rate over ramp_ms, then
 * the flat rate. */
static double due_by(const warmup_spec *s, double t) {
    if (t > s->duration_ms) t = s->duration_ms;
    double r = s->ramp_ms > 0 ? s->ramp_ms : 0;
    if (t <= r) {
        double slope = (s->rate - s->start_rate) / r;
        return (s->start_rate * t + 0.5 * slope * t * t) / 1000.0;
    }
    return (s->start_rate * r + 0.5 * (s->rate - s->start_rate) * r) / 1000.0 +
           s->rate * (t - r) / 1000.0;
}

static size_t discard_cb(char *p, size_t size, size_t n, void *u) {
    (void)p;
    (void)u;
    return size * n;
}

static void record(wengine *w, double start, double lat, int error) {
    if (w->nsamples == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        sample *s = realloc(w->samples, cap * sizeof *s);
        if (!s) return; /* the sample is lost, the counts in the result stay consistent */
        w->samples = s;
        w->cap = cap;
    }
    w->samples[w->nsamples++] = (sample){start, lat, error};
}

static void check_done(wengine *w);

static void unlink_req(wengine *w, wreq *r) {
    if (r->prev)
        r->prev->next = r->next;
    else
        w->active = r->next;
    if (r->next) r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void check_multi_info(wengine *w) {
    CURLMsg *m;
    int left;
    while ((m = w->curl->multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        CURL *e = m->easy_handle;
        wreq *r = NULL;
        w->curl->easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
        long status = 0;
        w->curl->easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        int error = m->data.result != CURLE_OK || status >= 400 || status == 0;
        record(w, r->start_ms, now_ms(w) - r->start_ms, error);
        unlink_req(w, r);
        w->curl->multi_remove_handle(w->multi, e);
        w->curl->easy_cleanup(e);
        free(r);
        w->inflight--;
    }
    check_done(w);
}

static void launch(wengine *w) {
    wreq *r = calloc(1, sizeof *r);
    CURL *e = r ? w->curl->easy_init() : NULL;
    if (!e) {
        free(r);
        record(w, now_ms(w), 0, 1);
        w->launched++;
        return;
    }
    r->easy = e;
    r->w = w;
    r->start_ms = now_ms(w);
    w->curl->easy_setopt(e, CURLOPT_URL, w->spec.url);
    w->curl->easy_setopt(e, CURLOPT_PRIVATE, r);
    w->curl->easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_cb);
    w->curl->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    w->curl->easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)w->spec.request_timeout_ms);
    w->curl->easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (w->spec.headers) w->curl->easy_setopt(e, CURLOPT_HTTPHEADER, w->spec.headers);
    if (w->spec.body) {
        w->curl->easy_setopt(e, CURLOPT_POSTFIELDS, w->spec.body);
        w->curl->easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(w->spec.body));
    }
    if (strcmp(w->spec.method, "GET") != 0 &&
        !(w->spec.body && strcmp(w->spec.method, "POST") == 0))
        w->curl->easy_setopt(e, CURLOPT_CUSTOMREQUEST, w->spec.method);
    if (strcmp(w->spec.method, "HEAD") == 0) w->curl->easy_setopt(e, CURLOPT_NOBODY, 1L);
    w->launched++;
    if (w->curl->multi_add_handle(w->multi, e) != CURLM_OK) {
        record(w, r->start_ms, 0, 1);
        w->curl->easy_cleanup(e);
        free(r);
        return;
    }
    r->next = w->active;
    if (w->active) w->active->prev = r;
    w->active = r;
    w->inflight++;
}

static void tick_cb(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)loop;
    (void)revents;
    wengine *w = container_of(t, wengine, tick);
    double now = now_ms(w);
    long due = (long)floor(due_by(&w->spec, now) + 1e-9);
    if (w->launched == 0 && due < 1) due = 1; /* the first request goes out at once */
    while (w->launched < due && w->inflight < w->spec.max_inflight)
        launch(w);
    if (now >= w->spec.duration_ms) {
        ev_timer_stop(w->loop, &w->tick);
        w->sending_done = 1;
    }
    check_done(w);
}

static void sock_event_cb(struct ev_loop *loop, ev_io *io, int revents) {
    (void)loop;
    wsock *s = container_of(io, wsock, io);
    wengine *w = s->w;
    int running;
    int flags =
        (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
    w->curl->multi_socket_action(w->multi, s->fd, flags, &running);
    check_multi_info(w);
}

static void sock_unlink(wengine *w, wsock *s) {
    if (s->prev)
        s->prev->next = s->next;
    else
        w->socks = s->next;
    if (s->next) s->next->prev = s->prev;
}

static int socket_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp) {
    (void)e;
    wengine *w = userp;
    wsock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            ev_io_stop(w->loop, &s->io);
            w->curl->multi_assign(w->multi, fd, NULL);
            sock_unlink(w, s);
            free(s);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return -1;
        s->w = w;
        s->fd = fd;
        s->next = w->socks;
        if (w->socks) w->socks->prev = s;
        w->socks = s;
        w->curl->multi_assign(w->multi, fd, s);
    } else {
        ev_io_stop(w->loop, &s->io);
    }
    int ev = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    ev_io_init(&s->io, sock_event_cb, fd, ev);
    ev_io_start(w->loop, &s->io);
    return 0;
}

static void curl_timer_cb(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)loop;
    (void)revents;
    wengine *w = container_of(t, wengine, curl_timer);
    int running;
    w->curl->multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(w);
}

static int timer_func(CURLM *multi, long timeout_ms, void *userp) {
    (void)multi;
    wengine *w = userp;
    ev_timer_stop(w->loop, &w->curl_timer);
    if (timeout_ms >= 0) {
        /* never call back into libcurl from here: a 0 timeout runs on the next loop turn */
        ev_timer_set(&w->curl_timer, timeout_ms / 1000.0, 0.);
        ev_timer_start(w->loop, &w->curl_timer);
    }
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* {"requests","errors","mean_ms","p50_ms","p99_ms","max_ms"} over samples started in [a, b). */
static cJSON *second_json(const wengine *w, double a, double b) {
    cJSON *o = cJSON_CreateObject();
    double *lat = malloc((w->nsamples ? w->nsamples : 1) * sizeof *lat);
    size_t n = 0;
    long errors = 0, requests = 0;
    double sum = 0;
    for (size_t i = 0; lat && i < w->nsamples; i++) {
        const sample *s = &w->samples[i];
        if (s->start_ms < a || s->start_ms >= b) continue;
        requests++;
        if (s->error) {
            errors++;
            continue;
        }
        lat[n++] = s->latency_ms;
        sum += s->latency_ms;
    }
    cJSON_AddNumberToObject(o, "requests", (double)requests);
    cJSON_AddNumberToObject(o, "errors", (double)errors);
    if (n > 0) {
        qsort(lat, n, sizeof *lat, cmp_double);
        cJSON_AddNumberToObject(o, "mean_ms", round(sum / (double)n * 1000) / 1000);
        cJSON_AddNumberToObject(o, "p50_ms", round(lat[(n - 1) / 2] * 1000) / 1000);
        cJSON_AddNumberToObject(o, "p99_ms",
                                round(lat[(size_t)ceil(0.99 * (double)n) - 1] * 1000) / 1000);
        cJSON_AddNumberToObject(o, "max_ms", round(lat[n - 1] * 1000) / 1000);
    } else {
        cJSON_AddNullToObject(o, "mean_ms");
        cJSON_AddNullToObject(o, "p50_ms");
        cJSON_AddNullToObject(o, "p99_ms");
        cJSON_AddNullToObject(o, "max_ms");
    }
    free(lat);
    return o;
}

static void finish_cb(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)loop;
    (void)revents;
    wengine *w = container_of(t, wengine, finish);
    double elapsed = now_ms(w);
    long errors = 0;
    for (size_t k = 0; k < w->nsamples; k++)
        errors += w->samples[k].error;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "requests", (double)w->launched);
    cJSON_AddNumberToObject(r, "errors", (double)errors);
    cJSON_AddNumberToObject(r, "duration_ms", round(elapsed * 1000) / 1000);
    cJSON_AddNumberToObject(r, "target_rate", w->spec.rate);
    double d = w->spec.duration_ms;
    double first_end = d < 1000 ? d : 1000;
    cJSON_AddItemToObject(r, "first_second", second_json(w, 0, first_end));
    cJSON_AddItemToObject(r, "last_second", second_json(w, d > 1000 ? d - 1000 : 0, d + 1));
    warmup_done_fn done = w->done;
    void *arg = w->arg;
    engine_cancel(w);
    done(arg, r);
}

static void check_done(wengine *w) {
    if (w->sending_done && w->inflight == 0 && !ev_is_active(&w->finish))
        ev_timer_start(w->loop, &w->finish);
}

static int engine_start(struct ev_loop *loop, const warmup_spec *spec, warmup_done_fn done,
                        void *arg, wengine **out, char *err, size_t errlen) {
    const curl_lazy_api *api = curl_lazy_get(err, errlen);
    if (!api) return -ELIBACC;
    wengine *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    w->curl = api;
    w->loop = loop;
    w->done = done;
    w->arg = arg;
    w->spec = *spec;
    w->spec.url = strdup(spec->url);
    w->spec.method = strdup(spec->method);
    w->spec.body = spec->body ? strdup(spec->body) : NULL;
    w->spec.headers = NULL;
    int hdr_rc = 0;
    for (struct curl_slist *h = spec->headers; h && hdr_rc == 0; h = h->next)
        hdr_rc = hdr_append(&w->spec.headers, h->data);
    w->multi = w->curl->multi_init();
    if (!w->multi || !w->spec.url || !w->spec.method || (spec->body && !w->spec.body) || hdr_rc) {
        snprintf(err, errlen, "warm-up: out of memory");
        engine_cancel(w);
        return -ENOMEM;
    }
    w->curl->multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    w->curl->multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    w->curl->multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, timer_func);
    w->curl->multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
    ev_timer_init(&w->curl_timer, curl_timer_cb, 0., 0.);
    ev_timer_init(&w->finish, finish_cb, 0., 0.);
    ev_now_update(loop);
    w->t0 = ev_now(loop);
    /* 5 ms ticks keep the schedule within a few ms at any rate this is meant for */
    ev_timer_init(&w->tick, tick_cb, 0., 0.005);
    ev_timer_start(loop, &w->tick);
    if (out) *out = w;
    return 0;
}

static void engine_cancel(wengine *w) {
    if (!w) return;
    ev_timer_stop(w->loop, &w->tick);
    ev_timer_stop(w->loop, &w->finish);
    if (w->multi) {
        while (w->active) {
            wreq *r = w->active;
            unlink_req(w, r);
            w->curl->multi_remove_handle(w->multi, r->easy);
            w->curl->easy_cleanup(r->easy);
            free(r);
        }
        w->curl->multi_cleanup(w->multi);
    }
    /* kept-alive connections closed by the cleanup are not reported through socket_cb */
    while (w->socks) {
        wsock *s = w->socks;
        ev_io_stop(w->loop, &s->io);
        sock_unlink(w, s);
        free(s);
    }
    ev_timer_stop(w->loop, &w->curl_timer);
    warmup_spec_fini(&w->spec);
    free(w->samples);
    free(w);
}

/* ---- the helper process ----------------------------------------------------------------- */

struct warmup {
    struct ev_loop *loop;
    pid_t pid;
    int fd; /* read end of the result pipe */
    ev_io io;
    char *buf; /* result JSON as it arrives */
    size_t len, cap;
    double target_rate;
    warmup_done_fn done;
    void *arg;
};

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

typedef struct child_ctx {
    int fd;
    struct ev_loop *loop;
    int ok;
} child_ctx;

static void child_done(void *arg, cJSON *res) {
    child_ctx *c = arg;
    char *s = cJSON_PrintUnformatted(res);
    cJSON_Delete(res);
    c->ok = s && write_all(c->fd, s, strlen(s)) == 0;
    free(s);
    ev_break(c->loop, EVBREAK_ALL);
}

/* In the forked child: never returns. */
static void child_main(int fd, const warmup_spec *spec) {
    /* the agent's handlers and mask are not ours; SIGKILL ends us on cancel */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    /* keep only the pipe: the agent's sockets and cgroup files are not the child's business
     * (a held control-plane socket would hide the agent's reconnects from the peer) */
    if (fd != 3) {
        if (dup2(fd, 3) < 0) _exit(2);
        fd = 3;
    }
    if (close_range(4, ~0U, 0) < 0)
        for (int i = 4; i < 65536; i++)
            close(i);
    char err[512] = "";
    child_ctx c = {.fd = fd};
    c.loop = ev_loop_new(EVFLAG_AUTO);
    if (!c.loop) {
        dprintf(fd, "ERR warm-up: cannot create an event loop\n");
        _exit(1);
    }
    if (engine_start(c.loop, spec, child_done, &c, NULL, err, sizeof err) < 0) {
        dprintf(fd, "ERR %s\n", err);
        _exit(1);
    }
    if (write_all(fd, "OK\n", 3) < 0) _exit(1);
    ev_run(c.loop, 0);
    _exit(c.ok ? 0 : 1);
}

/* The result when the helper died without one. */
static cJSON *failed_result(const warmup *w, const char *why) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "requests", 0);
    cJSON_AddNumberToObject(r, "errors", 0);
    cJSON_AddNumberToObject(r, "duration_ms", 0);
    cJSON_AddNumberToObject(r, "target_rate", w->target_rate);
    cJSON_AddNullToObject(r, "first_second");
    cJSON_AddNullToObject(r, "last_second");
    cJSON_AddStringToObject(r, "error", why);
    return r;
}

static void reap(warmup *w, int *status) {
    *status = -1;
    if (w->pid <= 0) return;
    while (waitpid(w->pid, status, 0) < 0 && errno == EINTR) {
    }
    w->pid = -1;
}

static void result_cb(struct ev_loop *loop, ev_io *io, int revents) {
    (void)loop;
    (void)revents;
    warmup *w = container_of(io, warmup, io);
    for (;;) {
        if (w->cap - w->len < 4096) {
            size_t cap = w->cap ? w->cap * 2 : 8192;
            char *b = realloc(w->buf, cap);
            if (!b) break; /* read the rest later */
            w->buf = b;
            w->cap = cap;
        }
        ssize_t n = read(w->fd, w->buf + w->len, w->cap - w->len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n > 0) {
            w->len += (size_t)n;
            continue;
        }
        break; /* EOF (or an error): the child is done */
    }
    ev_io_stop(w->loop, &w->io);
    int status;
    reap(w, &status);
    cJSON *res = NULL;
    if (w->buf) {
        w->buf[w->len] = '\0';
        res = cJSON_Parse(w->buf);
    }
    if (!res) {
        char why[128];
        if (status >= 0 && WIFSIGNALED(status))
            snprintf(why, sizeof why, "warm-up helper killed by signal %d", WTERMSIG(status));
        else
            snprintf(why, sizeof why, "warm-up helper exited with status %d and no result",
                     status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        res = failed_result(w, why);
    }
    warmup_done_fn done = w->done;
    void *arg = w->arg;
    warmup_cancel(w);
    done(arg, res);
}

/* Reads the child's first line ("OK" or "ERR why"), waiting at most timeout_ms. */
static int read_status(int fd, char *line, size_t cap, int timeout_ms) {
    size_t n = 0;
    int64_t deadline = tide_now_mono_ms() + timeout_ms;
    while (n + 1 < cap) {
        int left = (int)(deadline - tide_now_mono_ms());
        if (left <= 0) return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r < 0 ? -errno : -ETIMEDOUT;
        ssize_t k = read(fd, line + n, 1);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        if (line[n] == '\n') break;
        n++;
    }
    line[n] = '\0';
    return 0;
}

int warmup_start(struct ev_loop *loop, const warmup_spec *spec, warmup_done_fn done, void *arg,
                 warmup **out, char *err, size_t errlen) {
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        int e = errno;
        snprintf(err, errlen, "warm-up: pipe: %s", strerror(e));
        return -e;
    }
    fflush(NULL); /* buffered log output is not written twice */
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pfd[0]);
        close(pfd[1]);
        snprintf(err, errlen, "warm-up: fork: %s", strerror(e));
        return -e;
    }
    if (pid == 0) {
        close(pfd[0]);
        child_main(pfd[1], spec);
    }
    close(pfd[1]);
    /* allocated after the fork: the child holds nothing of the agent's side */
    warmup *w = calloc(1, sizeof *w);
    if (!w) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        close(pfd[0]);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    w->loop = loop;
    w->pid = pid;
    w->fd = pfd[0];
    w->target_rate = spec->rate;
    w->done = done;
    w->arg = arg;
    char line[600];
    /* loading libcurl takes tens of ms; a wedged child must not hold the agent's loop */
    int rc = read_status(w->fd, line, sizeof line, 10000);
    if (rc < 0 || strcmp(line, "OK") != 0) {
        if (rc < 0)
            snprintf(err, errlen, "warm-up helper did not start: %s", strerror(-rc));
        else if (strncmp(line, "ERR ", 4) == 0)
            snprintf(err, errlen, "%s", line + 4);
        else
            snprintf(err, errlen, "warm-up helper failed before starting");
        warmup_cancel(w);
        return rc == -ETIMEDOUT ? -ETIMEDOUT : -ELIBACC;
    }
    fcntl(w->fd, F_SETFL, fcntl(w->fd, F_GETFL) | O_NONBLOCK);
    ev_io_init(&w->io, result_cb, w->fd, EV_READ);
    ev_io_start(loop, &w->io);
    if (out) *out = w;
    return 0;
}

void warmup_cancel(warmup *w) {
    if (!w) return;
    ev_io_stop(w->loop, &w->io);
    if (w->pid > 0) {
        kill(w->pid, SIGKILL);
        int status;
        reap(w, &status);
    }
    if (w->fd >= 0) close(w->fd);
    free(w->buf);
    free(w);
}
