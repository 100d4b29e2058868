/* cli_table.c: JSON accessors, option parsing, usage errors and the call-or-print-JSON step
 * shared by the tidectl commands (cli_table.h). */
#include "cli_table.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query/query.h"
#include "utf8.h"

double cli_num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

int cli_has_num(const cJSON *o, const char *k) {
    return cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, k));
}

const char *cli_str(const cJSON *o, const char *k, const char *missing) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : missing;
}

int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tidectl %s: ", cmd->name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nusage: tidectl %s\n", cmd->usage);
    va_end(ap);
    return 2;
}

int cli_getopt(const cli_cmd *cmd, int argc, char **argv, const struct option *longopts, int *json,
               int *status) {
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, "", longopts, NULL);
        switch (c) {
        case 'j':
            *json = 1;
            continue;
        case 'h':
            printf("usage: tidectl %s\n", cmd->usage);
            *status = 0;
            return CLI_OPT_EXIT;
        case '?':
            *status = cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
            return CLI_OPT_EXIT;
        default:
            return c;
        }
    }
}

int cli_call(const tidectl_ctx *ctx, const char *cmd, cJSON *args, int json, cJSON **data) {
    *data = NULL;
    cJSON *d = NULL;
    int rc = tidectl_call(ctx, cmd, args, &d);
    if (rc != 0) return rc;
    if (json) {
        tidectl_print_json(d);
        cJSON_Delete(d);
        return 0;
    }
    *data = d;
    return 0;
}

/* ---- tables ---- */

struct cli_tab {
    char align[CLI_TAB_MAX_COLS + 1];
    size_t ncols;
    char **cells; /* row-major, sanitized */
    size_t n, cap;
};

cli_tab *cli_tab_new(const char *align) {
    cli_tab *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    snprintf(t->align, sizeof t->align, "%s", align);
    t->ncols = strlen(t->align);
    return t;
}

void cli_tab_add(cli_tab *t, const char *fmt, ...) {
    if (!t || t->ncols == 0) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 64;
        char **np = realloc(t->cells, nc * sizeof *np);
        if (!np) return;
        t->cells = np;
        t->cap = nc;
    }
    t->cells[t->n++] = utf8_sanitize(buf); /* NULL (out of memory) prints as empty */
}

void cli_tab_print(cli_tab *t, FILE *f) {
    if (!t) return;
    size_t w[CLI_TAB_MAX_COLS] = {0};
    for (size_t i = 0; i < t->n; i++) {
        size_t cw = t->cells[i] ? utf8_width(t->cells[i]) : 0;
        if (cw > w[i % t->ncols]) w[i % t->ncols] = cw;
    }
    for (size_t i = 0; i < t->n; i++) {
        size_t c = i % t->ncols;
        const char *cell = t->cells[i] ? t->cells[i] : "";
        size_t pad = w[c] - utf8_width(cell);
        int last = c == t->ncols - 1 || i == t->n - 1;
        if (t->align[c] == 'r')
            for (size_t k = 0; k < pad; k++)
                fputc(' ', f);
        fputs(cell, f);
        if (t->align[c] != 'r' && !last)
            for (size_t k = 0; k < pad; k++)
                fputc(' ', f);
        fputs(last ? "\n" : "  ", f);
        free(t->cells[i]);
    }
    free(t->cells);
    free(t);
}

/* ---- times ---- */

int cli_parse_time(const char *s, int64_t now_ms, int64_t *ms) {
    if (!s || !*s) return -EINVAL;
    int64_t d;
    if (!strcmp(s, "now")) {
        *ms = now_ms;
        return 0;
    }
    if (!strncmp(s, "now-", 4) || !strncmp(s, "now+", 4)) {
        if (query_parse_duration(s + 4, &d)) return -EINVAL;
        *ms = s[3] == '-' ? now_ms - d : now_ms + d;
        return 0;
    }
    /* "-1h" is relative; "-1" (no unit) stays unix seconds */
    if (s[0] == '-' && s[strspn(s + 1, "0123456789.") + 1] != 0) {
        if (query_parse_duration(s + 1, &d)) return -EINVAL;
        *ms = now_ms - d;
        return 0;
    }
    return query_parse_time(s, ms) ? -EINVAL : 0;
}

/* ---- progress ---- */

struct cli_progress {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    char what[64];
    char text[256];
    struct timespec since;
};

static double elapsed_s(const struct timespec *since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) + (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

/* Redraws the live line; the caller holds mu. */
static void progress_draw(cli_progress *p) {
    fprintf(stderr, "\r\033[K%s: %s (%.0f s)", p->what, p->text, elapsed_s(&p->since));
    fflush(stderr);
}

static void *progress_main(void *arg) {
    cli_progress *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        progress_draw(p);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&p->cv, &p->mu, &until);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

cli_progress *cli_progress_start(const tidectl_ctx *ctx, const char *what) {
    if (!ctx || !tidectl_progress_wanted(ctx)) return NULL;
    cli_progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    snprintf(p->what, sizeof p->what, "%s", what);
    snprintf(p->text, sizeof p->text, "starting");
    clock_gettime(CLOCK_MONOTONIC, &p->since);
    if (pthread_create(&p->th, NULL, progress_main, p) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    return p;
}

void cli_progress_set(cli_progress *p, const char *fmt, ...) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->text, sizeof p->text, fmt, ap);
    va_end(ap);
    clock_gettime(CLOCK_MONOTONIC, &p->since);
    progress_draw(p);
    pthread_mutex_unlock(&p->mu);
}

void cli_progress_note(cli_progress *p, const char *fmt, ...) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\r\033[K%s: %s\n", p->what, line);
    progress_draw(p);
    pthread_mutex_unlock(&p->mu);
}

void cli_progress_stop(cli_progress *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
