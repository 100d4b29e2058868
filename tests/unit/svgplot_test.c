/* svgplot_test.c: round ticks on both axes, real dates on the time axis, the legend outside
 * the data area, escaping, and NaN gaps. */
#include "svgplot.h"
#include "test.h"

#include <stdlib.h>

TEST(svgplot_nice_steps) {
    T_NEAR(svg_nice_step(136, 5, 0), 50, 0);
    T_NEAR(svg_nice_step(9, 5, 0), 2, 0);
    T_NEAR(svg_nice_step(0.7, 5, 0), 0.2, 1e-12);
    T_NEAR(svg_nice_step(3, 5, 1), 1, 0);
    T_EQ_INT(svg_time_step(6 * 3600, 10), 3600);
    T_EQ_INT(svg_time_step(7 * 86400, 10), 86400);
    T_EQ_INT(svg_time_step(3 * 86400, 10), 43200);
    T_EQ_INT(svg_time_step(20 * 60, 10), 300);
}

TEST(svgplot_dates_labels_legend) {
    double t[5], y[5], y2[5];
    for (int i = 0; i < 5; i++) {
        t[i] = 1796601600.0 + i * 3600; /* 2026-12-07 00:00 UTC onwards */
        y[i] = i == 2 ? NAN : 40 + i * 24;
        y2[i] = y[i] * 1.2;
    }
    svg_series s[2] = {{"actual <traffic>", "#222222", SVG_LINE, t, y, NULL, 5, 0},
                       {"p90 band", "#ff7f0e", SVG_BAND, t, y, y2, 5, 0}};
    svg_panel p = {"panel & title", "requests per minute", s, 2, 0, 0};
    char *svg = svg_chart("chart", &p, 1, t[0], t[4], 900, 300);
    T_ASSERT(svg != NULL);
    T_ASSERT(strstr(svg, ">Dec 07 00:00<") != NULL);        /* a real date */
    T_ASSERT(strstr(svg, ">01:00<") != NULL);               /* then times */
    T_ASSERT(strstr(svg, ">requests per minute<") != NULL); /* axis label with unit */
    T_ASSERT(strstr(svg, ">time (UTC)<") != NULL);
    T_ASSERT(strstr(svg, "actual &lt;traffic&gt;") != NULL); /* escaped */
    T_ASSERT(strstr(svg, "panel &amp; title") != NULL);
    T_ASSERT(strstr(svg, ">50<") != NULL && strstr(svg, ">150<") != NULL); /* round ticks */
    /* the NaN splits the actual line in two polylines */
    int lines = 0;
    for (const char *p2 = svg; (p2 = strstr(p2, "<polyline")); p2++)
        lines++;
    T_EQ_INT(lines, 2);
    /* the legend's text starts right of the data area (x1 = 900 - 190 = 710) */
    const char *lg = strstr(svg, "actual &lt;");
    const char *tx = lg;
    while (tx > svg && strncmp(tx, "<text x=\"", 9) != 0)
        tx--;
    T_ASSERT(atof(tx + 9) > 710);
    free(svg);
}
