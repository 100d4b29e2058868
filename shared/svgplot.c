/* svgplot.c: time-series charts as SVG (svgplot.h). */
#include "svgplot.h"
#include "strbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEFT 78      /* value labels and the rotated axis name */
#define RIGHT 190    /* the legend column */
#define TOP 44       /* the chart title */
#define PANEL_GAP 64 /* time labels and the next panel's title */

static void put_text(strbuf *b, const char *s) {
    for (; s && *s; s++) {
        if (*s == '<')
            strbuf_printf(b, "&lt;");
        else if (*s == '>')
            strbuf_printf(b, "&gt;");
        else if (*s == '&')
            strbuf_printf(b, "&amp;");
        else if (*s == '"')
            strbuf_printf(b, "&quot;");
        else if ((unsigned char)*s >= 0x20 || *s == '\t')
            strbuf_printf(b, "%c", *s);
    }
}

double svg_nice_step(double range, int target, int integer) {
    if (!(range > 0) || target < 1) return 1;
    double raw = range / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    if (integer && step < 1) step = 1;
    return step;
}

long svg_time_step(double span, int max_ticks) {
    static const long steps[] = {60,    300,   900,   1800,   3600,   10800,
                                 21600, 43200, 86400, 172800, 604800, 2419200};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (span / (double)steps[i] <= max_ticks) return steps[i];
    return (long)ceil(span / max_ticks / 86400) * 86400;
}

/* A value label without float noise: 0.25, 1.5k, 2M... */
static void fmt_value(char *out, size_t len, double v, double step) {
    double a = fabs(v);
    if (a >= 1e6 && step >= 1e5)
        snprintf(out, len, "%gM", v / 1e6);
    else if (a >= 1e4 && step >= 1e3)
        snprintf(out, len, "%gk", v / 1e3);
    else {
        int dec = step >= 1 ? 0 : (int)ceil(-log10(step));
        if (dec > 6) dec = 6;
        snprintf(out, len, "%.*f", dec, v);
    }
}

typedef struct frame {
    double x0, x1, y0, y1; /* pixels of the data area (y0 top) */
    double t0, t1, v0, v1;
} frame;

static double fx(const frame *f, double t) {
    return f->x0 + (t - f->t0) / (f->t1 - f->t0) * (f->x1 - f->x0);
}
static double fy(const frame *f, double v) {
    if (v < f->v0) v = f->v0;
    if (v > f->v1) v = f->v1;
    return f->y1 - (v - f->v0) / (f->v1 - f->v0) * (f->y1 - f->y0);
}

static const char *dash(const svg_series *s) {
    return s->dashed ? " stroke-dasharray=\"5,3\"" : "";
}

static void draw_line(strbuf *b, const frame *f, const svg_series *s) {
    int open = 0;
    for (size_t i = 0; i < s->n; i++) {
        double t = s->t[i], v = s->y[i];
        int ok = !isnan(v) && t >= f->t0 && t <= f->t1;
        if (s->kind == SVG_STEP && ok && i + 1 < s->n && s->t[i + 1] < f->t0) ok = 0;
        if (!ok) {
            if (open) strbuf_printf(b, "\"/>\n");
            open = 0;
            continue;
        }
        if (!open)
            strbuf_printf(b,
                          "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.4\"%s points=\"",
                          s->color, dash(s));
        open = 1;
        strbuf_printf(b, "%.1f,%.1f ", fx(f, t), fy(f, v));
        if (s->kind == SVG_STEP) { /* hold the value until the next point (or the end) */
            double tn = i + 1 < s->n ? s->t[i + 1] : f->t1;
            if (tn > f->t1) tn = f->t1;
            strbuf_printf(b, "%.1f,%.1f ", fx(f, tn), fy(f, v));
        }
    }
    if (open) strbuf_printf(b, "\"/>\n");
}

static void draw_band(strbuf *b, const frame *f, const svg_series *s) {
    size_t i = 0;
    while (i < s->n) {
        while (i < s->n &&
               (isnan(s->y[i]) || isnan(s->y2[i]) || s->t[i] < f->t0 || s->t[i] > f->t1))
            i++;
        size_t a = i;
        while (i < s->n && !isnan(s->y[i]) && !isnan(s->y2[i]) && s->t[i] >= f->t0 &&
               s->t[i] <= f->t1)
            i++;
        if (i - a < 2) continue;
        strbuf_printf(b, "<polygon fill=\"%s\" fill-opacity=\"0.22\" stroke=\"none\" points=\"",
                      s->color);
        for (size_t k = a; k < i; k++)
            strbuf_printf(b, "%.1f,%.1f ", fx(f, s->t[k]), fy(f, s->y2[k]));
        for (size_t k = i; k-- > a;)
            strbuf_printf(b, "%.1f,%.1f ", fx(f, s->t[k]), fy(f, s->y[k]));
        strbuf_printf(b, "\"/>\n");
    }
}

static void draw_marks(strbuf *b, const frame *f, const svg_series *s) {
    for (size_t i = 0; i < s->n; i++) {
        if (s->t[i] < f->t0 || s->t[i] > f->t1) continue;
        double x = fx(f, s->t[i]);
        strbuf_printf(b,
                      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                      "stroke-width=\"1\" stroke-opacity=\"0.7\"%s/>"
                      "<path d=\"M%.1f %.1f l-4 -7 h8 z\" fill=\"%s\"/>\n",
                      x, f->y0, x, f->y1, s->color, dash(s), x, f->y0, s->color);
    }
}

static void legend_item(strbuf *b, double x, double y, const svg_series *s) {
    if (s->kind == SVG_BAND)
        strbuf_printf(b,
                      "<rect x=\"%.0f\" y=\"%.0f\" width=\"22\" height=\"10\" fill=\"%s\" "
                      "fill-opacity=\"0.3\"/>",
                      x, y - 9, s->color);
    else if (s->kind == SVG_MARKS)
        strbuf_printf(b, "<path d=\"M%.0f %.0f l-4 -7 h8 z\" fill=\"%s\"/>", x + 11, y, s->color);
    else
        strbuf_printf(b,
                      "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" "
                      "stroke-width=\"2\"%s/>",
                      x, y - 4, x + 22, y - 4, s->color, dash(s));
    /* the column holds about 26 characters: a longer label is cut (at a character start) */
    char lab[40];
    snprintf(lab, sizeof lab, "%s", s->label);
    if (strlen(s->label) > 26) {
        size_t k = 25;
        while (k > 0 && ((unsigned char)lab[k] & 0xC0) == 0x80)
            k--;
        memcpy(lab + k, "\xE2\x80\xA6", 4); /* U+2026 */
    }
    strbuf_printf(b, "<text x=\"%.0f\" y=\"%.0f\"><title>", x + 28, y);
    put_text(b, s->label);
    strbuf_printf(b, "</title>");
    put_text(b, lab);
    strbuf_printf(b, "</text>\n");
}

char *svg_chart(const char *title, const svg_panel *panels, size_t np, double t0, double t1,
                int width, int ph) {
    strbuf b = {0};
    if (width < RIGHT + LEFT + 200) width = RIGHT + LEFT + 200;
    if (ph < 120) ph = 120;
    if (!(t1 > t0)) t1 = t0 + 60;
    int height = TOP + (int)np * (ph + PANEL_GAP);
    strbuf_printf(
        &b,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d "
        "%d\" font-family=\"sans-serif\" font-size=\"12\">\n"
        "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<text x=\"%d\" y=\"22\" "
        "font-size=\"15\" font-weight=\"bold\">",
        width, height, width, height, LEFT);
    put_text(&b, title);
    strbuf_printf(&b, "</text>\n");
    long tstep = svg_time_step(t1 - t0, (width - LEFT - RIGHT) / 110);
    for (size_t p = 0; p < np; p++) {
        const svg_panel *pn = &panels[p];
        frame f = {LEFT, width - RIGHT, TOP + (double)p * (ph + PANEL_GAP) + 16, 0, t0, t1, 0, 0};
        f.y1 = f.y0 + ph - 16;
        /* value range over what is visible */
        double lo = pn->ymin, hi = -INFINITY;
        for (size_t k = 0; k < pn->nseries; k++) {
            const svg_series *s = &pn->series[k];
            if (s->kind == SVG_MARKS) continue;
            for (size_t i = 0; i < s->n; i++) {
                if (s->t[i] < t0 || s->t[i] > t1) continue;
                const double *ys[2] = {s->y, s->kind == SVG_BAND ? s->y2 : NULL};
                for (int j = 0; j < 2; j++)
                    if (ys[j] && isfinite(ys[j][i])) {
                        if (ys[j][i] > hi) hi = ys[j][i];
                        if (ys[j][i] < lo) lo = ys[j][i];
                    }
            }
        }
        if (!isfinite(hi) || hi <= lo) hi = lo + (pn->integer ? 2 : 1);
        double step = svg_nice_step(hi - lo, 5, pn->integer);
        f.v0 = floor(lo / step) * step;
        f.v1 = ceil(hi * 1.0001 / step) * step;
        if (f.v1 <= f.v0) f.v1 = f.v0 + step;
        if (pn->title) {
            strbuf_printf(&b, "<text x=\"%.0f\" y=\"%.0f\" font-weight=\"bold\">", f.x0, f.y0 - 6);
            put_text(&b, pn->title);
            strbuf_printf(&b, "</text>\n");
        }
        strbuf_printf(&b,
                      "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
                      "stroke=\"#888\"/>\n",
                      f.x0, f.y0, f.x1 - f.x0, f.y1 - f.y0);
        for (double v = f.v0; v <= f.v1 + step / 2; v += step) {
            char lab[32];
            fmt_value(lab, sizeof lab, fabs(v) < step / 1e6 ? 0 : v, step);
            strbuf_printf(
                &b,
                "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                f.x0, fy(&f, v), f.x1, fy(&f, v), f.x0 - 6, fy(&f, v) + 4, lab);
        }
        double ymid = (f.y0 + f.y1) / 2;
        strbuf_printf(
            &b,
            "<text x=\"16\" y=\"%.0f\" text-anchor=\"middle\" transform=\"rotate(-90 16 %.0f)\">",
            ymid, ymid);
        put_text(&b, pn->ylabel);
        strbuf_printf(&b, "</text>\n");
        /* time ticks on round UTC times; a date wherever the day changes */
        int last_day = -1;
        for (double t = ceil(t0 / tstep) * tstep; t <= t1; t += tstep) {
            time_t tt = (time_t)t;
            struct tm tm;
            gmtime_r(&tt, &tm);
            char lab[40];
            if (tstep >= 86400)
                strftime(lab, sizeof lab, "%a %b %d", &tm);
            else if (tm.tm_yday != last_day)
                strftime(lab, sizeof lab, "%b %d %H:%M", &tm);
            else
                strftime(lab, sizeof lab, "%H:%M", &tm);
            last_day = tm.tm_yday;
            double x = fx(&f, t);
            strbuf_printf(
                &b,
                "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#e4e4e4\"/>"
                "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%s</text>\n",
                x, f.y0, x, f.y1 + 5, x, f.y1 + 18, lab);
        }
        strbuf_printf(
            &b,
            "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\" fill=\"#555\">time (UTC)</text>\n",
            (f.x0 + f.x1) / 2, f.y1 + 34);
        /* bands first, then lines and marks; the legend to the right */
        for (int pass = 0; pass < 2; pass++)
            for (size_t k = 0; k < pn->nseries; k++) {
                const svg_series *s = &pn->series[k];
                if ((s->kind == SVG_BAND) != (pass == 0)) continue;
                if (s->kind == SVG_BAND && s->y2)
                    draw_band(&b, &f, s);
                else if (s->kind == SVG_MARKS)
                    draw_marks(&b, &f, s);
                else if (s->kind != SVG_BAND)
                    draw_line(&b, &f, s);
            }
        double ly = f.y0 + 12;
        for (size_t k = 0; k < pn->nseries; k++) {
            if (!pn->series[k].label) continue;
            legend_item(&b, f.x1 + 14, ly, &pn->series[k]);
            ly += 18;
        }
    }
    strbuf_printf(&b, "</svg>\n");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
