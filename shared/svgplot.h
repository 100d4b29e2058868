/* svgplot.h: time-series charts as SVG text, shared by `tidectl backtest --plot`,
 * `tidectl simulate --plot` and the control plane's web page (/ui): a UTC time axis with real
 * dates and round steps (minutes .. weeks), one or more stacked panels with a labelled value
 * axis (name and unit) on round 1/2/5 x 10^k ticks, and the legend to the right of the data,
 * never over it. No scripts, no external resources: the text stands alone. */
#ifndef TIDE_SVGPLOT_H
#define TIDE_SVGPLOT_H

#include <stddef.h>

typedef enum svg_kind {
    SVG_LINE,  /* y over t; NaN breaks the line */
    SVG_STEP,  /* y holds from t[i] to t[i+1] (replica counts) */
    SVG_BAND,  /* filled between y (lower) and y2 (upper); NaN breaks it */
    SVG_MARKS, /* a vertical mark at each t (decisions); y unused */
} svg_kind;

typedef struct svg_series {
    const char *label; /* legend text; NULL = not in the legend */
    const char *color; /* "#rrggbb" */
    svg_kind kind;
    const double *t; /* unix seconds, ascending */
    const double *y, *y2;
    size_t n;
    int dashed;
} svg_series;

typedef struct svg_panel {
    const char *title;  /* above the panel (may be NULL) */
    const char *ylabel; /* value axis, with its unit: "replicas", "requests per minute" */
    const svg_series *series;
    size_t nseries;
    int integer; /* ticks on whole numbers only (counts) */
    double ymin; /* the value axis starts at or below this (0 for counts and rates) */
} svg_panel;

/* Renders the chart over [t0, t1] (unix seconds; points outside are clipped) and returns it as
 * a malloc'd NUL-terminated SVG document (NULL when out of memory). width in pixels (the
 * legend takes 190 of them); each panel is panel_height high. Text is XML-escaped. */
char *svg_chart(const char *title, const svg_panel *panels, size_t npanels, double t0, double t1,
                int width, int panel_height);

/* The round tick step for a value range (1, 2 or 5 x 10^k giving about `target` ticks); with
 * integer, at least 1. Exposed for tests. */
double svg_nice_step(double range, int target, int integer);
/* The time tick step in seconds for a span: 1, 5, 15, 30 min, 1, 3, 6, 12 h, 1, 2, 7 days,
 * giving at most `max_ticks` ticks. */
long svg_time_step(double span_seconds, int max_ticks);

#endif
