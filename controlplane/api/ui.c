/* ui.c: the read-only web page (ui.h). */
#include "api/ui.h"
#include "strbuf.h"

#include "cp.h"
#include "log.h"
#include "svgplot.h"
#include "utf8.h"
#include "workloads/workload_view.h"

#include <errno.h>
#include <ev.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define UI_WAIT_S 10

typedef struct ui_req {
    struct ui_req *next;
    int hours;
    char *page;
    int done;
    int refs; /* the asking thread and the loop */
} ui_req;

struct ui_server {
    struct controlplane *cp;
    ev_async async;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ui_req *pending;
};

/* ---- HTML text ---- */

/* Text as HTML (escaped, bytes that are not UTF-8 as U+FFFD). */
static void hesc(strbuf *b, const char *s) {
    char *clean = utf8_sanitize(s ? s : "");
    if (!clean) {
        b->oom = 1;
        return;
    }
    for (const char *p = clean; *p; p++) {
        switch (*p) {
        case '<':
            strbuf_printf(b, "&lt;");
            break;
        case '>':
            strbuf_printf(b, "&gt;");
            break;
        case '&':
            strbuf_printf(b, "&amp;");
            break;
        case '"':
            strbuf_printf(b, "&quot;");
            break;
        default:
            strbuf_printf(b, "%c", *p);
        }
    }
    free(clean);
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}
static const char *str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The doubles of a JSON array (malloc'd, *n set); NULL when empty. */
static double *doubles(const cJSON *arr, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(arr);
    if (*n == 0) return NULL;
    double *v = malloc(*n * sizeof *v);
    if (!v) return NULL;
    size_t i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, arr) v[i++] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
    return v;
}

static const char *decision_color(const char *kind) {
    if (!strcmp(kind, "scale-up")) return "#d62728";
    if (!strcmp(kind, "scale-down")) return "#1f77b4";
    if (!strcmp(kind, "rollback") || !strcmp(kind, "pause")) return "#9467bd";
    return "#7f7f7f";
}

/* One workload's chart: traffic with forecast and band, then replicas by state with the
 * decisions as marks, over [t0, t1]. */
static char *workload_svg(const cJSON *w, double t0, double t1, double now) {
    svg_series ts[3], rs[10];
    size_t nts = 0, nrs = 0;
    /* traffic history */
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(w, "traffic");
    size_t tn = 0, fn = 0, fn2 = 0, hn = 0;
    double *tv = doubles(cJSON_GetObjectItemCaseSensitive(tr, "values"), &tn), *tt = NULL;
    if (tv) {
        tt = malloc(tn * sizeof *tt);
        for (size_t i = 0; tt && i < tn; i++)
            tt[i] = num(tr, "t0") + (double)i * num(tr, "step");
        if (tt)
            ts[nts++] = (svg_series){"traffic (actual)", "#222222", SVG_LINE, tt, tv, NULL, tn, 0};
    }
    const cJSON *fo = cJSON_GetObjectItemCaseSensitive(w, "forecast");
    double *fm = doubles(cJSON_GetObjectItemCaseSensitive(fo, "median"), &fn);
    double *fu = doubles(cJSON_GetObjectItemCaseSensitive(fo, "upper"), &fn2);
    double *ft = NULL;
    char bandlab[64];
    if (fm && fu && fn == fn2) {
        ft = malloc(fn * sizeof *ft);
        for (size_t i = 0; ft && i < fn; i++)
            ft[i] = num(fo, "t0") + (double)i * num(fo, "step");
        snprintf(bandlab, sizeof bandlab, "forecast band (to p%.0f)", num(fo, "quantile") * 100);
        if (ft) {
            ts[nts++] = (svg_series){bandlab, "#ff7f0e", SVG_BAND, ft, fm, fu, fn, 0};
            ts[nts++] = (svg_series){"forecast (median)", "#ff7f0e", SVG_LINE, ft, fm, NULL, fn, 1};
        }
    }
    /* replicas by state: columns of the history rows */
    const cJSON *ha = cJSON_GetObjectItemCaseSensitive(w, "history");
    /* one more row at t1 with no values: the last state holds until now, not beyond */
    hn = (size_t)cJSON_GetArraySize(ha);
    hn = hn ? hn + 1 : 0;
    double *hcol = hn ? malloc(hn * 8 * sizeof *hcol) : NULL;
    if (hcol) {
        hcol[hn - 1] = now;
        for (int c = 1; c < 8; c++)
            hcol[c * hn + hn - 1] = NAN;
        size_t i = 0;
        const cJSON *row;
        cJSON_ArrayForEach(row, ha) {
            for (int c = 0; c < 8; c++) {
                const cJSON *x = cJSON_GetArrayItem(row, c);
                double v = cJSON_IsNumber(x) ? x->valuedouble : NAN;
                hcol[c * hn + i] = (c == 1 || c == 2) && v < 0 ? NAN : v;
            }
            i++;
        }
        static const struct {
            const char *label, *color;
            int col, dashed;
        } cols[] = {{"needed", "#d62728", 1, 1},     {"provisioned", "#ff7f0e", 2, 1},
                    {"online", "#1f5fcc", 3, 0},     {"starting", "#17becf", 4, 0},
                    {"activating", "#8c564b", 5, 0}, {"cutoff", "#e377c2", 6, 0},
                    {"standby", "#2a9a2a", 7, 0}};
        for (size_t k = 0; k < sizeof cols / sizeof cols[0]; k++)
            rs[nrs++] =
                (svg_series){cols[k].label,           cols[k].color, SVG_STEP, hcol,
                             hcol + cols[k].col * hn, NULL,          hn,       cols[k].dashed};
    }
    /* decisions as marks, one series per class */
    const cJSON *ea = cJSON_GetObjectItemCaseSensitive(w, "events");
    size_t en = (size_t)cJSON_GetArraySize(ea);
    double *et = en ? malloc(en * 3 * sizeof *et) : NULL;
    size_t ne[3] = {0, 0, 0};
    if (et) {
        const cJSON *e;
        cJSON_ArrayForEach(e, ea) {
            const char *k = str(e, "kind");
            int c = !strcmp(k, "scale-up") ? 0 : !strcmp(k, "scale-down") ? 1 : 2;
            et[c * en + ne[c]++] = num(e, "time");
        }
        static const char *const el[3] = {"decision: scale-up", "decision: scale-down",
                                          "decision: other"};
        static const char *const ek[3] = {"scale-up", "scale-down", "other"};
        for (int c = 0; c < 3; c++)
            if (ne[c])
                rs[nrs++] = (svg_series){
                    el[c], decision_color(ek[c]), SVG_MARKS, et + c * en, NULL, NULL, ne[c], 0};
    }
    svg_panel pan[2];
    size_t np = 0;
    char tlab[120];
    snprintf(tlab, sizeof tlab, "%.60s per minute",
             *str(w, "traffic_name") ? str(w, "traffic_name") : "traffic");
    if (nts) pan[np++] = (svg_panel){"traffic and forecast", tlab, ts, nts, 0, 0};
    pan[np++] = (svg_panel){"replicas by state, decisions", "replicas", rs, nrs, 1, 0};
    char title[200];
    snprintf(title, sizeof title, "%.80s/%.80s", str(w, "namespace"), str(w, "name"));
    char *svg = svg_chart(title, pan, np, t0, t1, 1200, 240);
    free(tv);
    free(tt);
    free(fm);
    free(fu);
    free(ft);
    free(hcol);
    free(et);
    return svg;
}

static char *render(struct controlplane *cp, int hours) {
    int64_t now = tide_now_wall_ms() / 1000, since = now - (int64_t)hours * 3600;
    cJSON *wls = workload_ui_json(cp, since);
    strbuf b = {0};
    char stamp[40];
    struct tm tm;
    time_t tn = (time_t)now;
    gmtime_r(&tn, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S UTC", &tm);
    strbuf_printf(
        &b,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"refresh\" content=\"30\"><title>Tide workloads</title>"
        "<style>body{font-family:sans-serif;margin:16px 24px;color:#222}"
        "table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #ddd;"
        "text-align:left}th{background:#f3f3f3}td.n{text-align:right}"
        ".small{color:#666;font-size:13px}svg{display:block;margin:8px 0 24px}"
        "</style></head><body>\n<h1>Tide workloads</h1>\n<p class=\"small\">control plane %s "
        "&middot; %s &middot; last %d h &middot; window: "
        "<a href=\"?hours=1\">1 h</a> <a href=\"?hours=6\">6 h</a> "
        "<a href=\"?hours=24\">24 h</a> <a href=\"?hours=168\">7 d</a> &middot; "
        "<a href=\"/metrics\">/metrics</a></p>\n",
        TIDE_VERSION, stamp, hours);
    int n = cJSON_GetArraySize(wls);
    if (n == 0)
        strbuf_printf(&b, "<p>No workload applied yet (<code>tidectl apply -f FILE</code>).</p>\n");
    else {
        strbuf_printf(&b, "<table><tr><th>workload</th><th>namespace</th><th>mode</th><th>min</th>"
                          "<th>max</th><th>needed</th><th>provisioned</th><th>online</th>"
                          "<th>starting</th><th>cutoff</th><th>standby</th></tr>\n");
        const cJSON *w;
        cJSON_ArrayForEach(w, wls) {
            strbuf_printf(&b, "<tr><td><a href=\"#wl-");
            hesc(&b, str(w, "name"));
            strbuf_printf(&b, "\">");
            hesc(&b, str(w, "name"));
            strbuf_printf(&b, "</a></td><td>");
            hesc(&b, str(w, "namespace"));
            strbuf_printf(&b, "</td><td>");
            hesc(&b, str(w, "effective_mode"));
            double need = num(w, "need"), prov = num(w, "provisioned");
            strbuf_printf(&b,
                          "</td><td class=n>%.0f</td><td class=n>%.0f</td><td class=n>%s%.0f</td>"
                          "<td class=n>%s%.0f</td><td class=n>%.0f</td><td class=n>%.0f</td>"
                          "<td class=n>%.0f</td><td class=n>%.0f</td></tr>\n",
                          num(w, "min"), num(w, "max"), isnan(need) ? "-" : "",
                          isnan(need) ? 0 : need, isnan(prov) ? "-" : "", isnan(prov) ? 0 : prov,
                          num(w, "online"), num(w, "starting"), num(w, "cutoff"),
                          num(w, "standby"));
        }
        strbuf_printf(&b, "</table>\n");
        cJSON_ArrayForEach(w, wls) {
            strbuf_printf(&b, "<h2 id=\"wl-");
            hesc(&b, str(w, "name"));
            strbuf_printf(&b, "\">");
            hesc(&b, str(w, "namespace"));
            strbuf_printf(&b, "/");
            hesc(&b, str(w, "name"));
            strbuf_printf(&b, "</h2>\n<p class=\"small\">");
            hesc(&b, str(w, "observation"));
            strbuf_printf(&b, "</p>\n");
            const cJSON *fo = cJSON_GetObjectItemCaseSensitive(w, "forecast");
            double t1 = (double)now;
            if (fo) {
                int fn = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(fo, "median"));
                double fe = num(fo, "t0") + (double)(fn > 0 ? fn - 1 : 0) * num(fo, "step");
                if (fe > t1 && fe - t1 < 7 * 86400.0) t1 = fe;
            }
            char *svg = workload_svg(w, (double)since, t1, (double)now);
            if (svg) strbuf_printf(&b, "%s", svg);
            free(svg);
            const cJSON *ea = cJSON_GetObjectItemCaseSensitive(w, "events");
            int ne = cJSON_GetArraySize(ea);
            if (ne > 0) {
                strbuf_printf(&b,
                              "<details><summary>decisions (%d in the window)</summary><table>"
                              "<tr><th>time (UTC)</th><th>kind</th><th>reason</th></tr>\n",
                              ne);
                for (int i = ne - 1; i >= 0 && i >= ne - 50; i--) {
                    const cJSON *e = cJSON_GetArrayItem(ea, i);
                    char ts[32];
                    time_t et = (time_t)num(e, "time");
                    gmtime_r(&et, &tm);
                    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
                    strbuf_printf(&b, "<tr><td>%s</td><td>", ts);
                    hesc(&b, str(e, "kind"));
                    strbuf_printf(&b, "</td><td>");
                    hesc(&b, str(e, "text"));
                    strbuf_printf(&b, "</td></tr>\n");
                }
                strbuf_printf(&b, "</table></details>\n");
            }
        }
    }
    strbuf_printf(&b, "</body></html>\n");
    cJSON_Delete(wls);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ---- loop hand-off ---- */

static void req_release(ui_req *r) { /* caller holds mu */
    if (--r->refs == 0) {
        free(r->page);
        free(r);
    }
}

static void on_async(struct ev_loop *loop, ev_async *a, int revents) {
    (void)loop;
    (void)revents;
    ui_server *u = (ui_server *)((char *)a - offsetof(ui_server, async));
    pthread_mutex_lock(&u->mu);
    ui_req *list = u->pending;
    u->pending = NULL;
    pthread_mutex_unlock(&u->mu);
    while (list) {
        ui_req *r = list;
        list = r->next;
        char *page = render(u->cp, r->hours);
        pthread_mutex_lock(&u->mu);
        r->page = page;
        r->done = 1;
        req_release(r);
        pthread_cond_broadcast(&u->cv);
        pthread_mutex_unlock(&u->mu);
    }
}

ui_server *ui_new(struct controlplane *cp) {
    ui_server *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    u->cp = cp;
    pthread_mutex_init(&u->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&u->cv, &ca);
    pthread_condattr_destroy(&ca);
    ev_async_init(&u->async, on_async);
    ev_async_start(cp->loop, &u->async);
    ev_unref(cp->loop);
    return u;
}

char *ui_page(ui_server *u, int hours) {
    ui_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->hours = hours;
    r->refs = 2;
    pthread_mutex_lock(&u->mu);
    r->next = u->pending;
    u->pending = r;
    pthread_mutex_unlock(&u->mu);
    ev_async_send(u->cp->loop, &u->async);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += UI_WAIT_S;
    char *page = NULL;
    pthread_mutex_lock(&u->mu);
    while (!r->done)
        if (pthread_cond_timedwait(&u->cv, &u->mu, &until) == ETIMEDOUT) break;
    if (r->done) {
        page = r->page;
        r->page = NULL;
    }
    req_release(r);
    pthread_mutex_unlock(&u->mu);
    return page;
}

void ui_free(ui_server *u) {
    if (!u) return;
    ev_ref(u->cp->loop);
    ev_async_stop(u->cp->loop, &u->async);
    while (u->pending) { /* no thread waits any more: the loop's reference is the last */
        ui_req *r = u->pending;
        u->pending = r->next;
        free(r->page);
        free(r);
    }
    pthread_cond_destroy(&u->cv);
    pthread_mutex_destroy(&u->mu);
    free(u);
}
