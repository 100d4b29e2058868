/* ui.h: the control plane's small read-only web page on its HTTP listener: GET / (or /ui)
 * lists the workloads and, for each, plots on one time axis the traffic the controller read,
 * the forecast with its band, replicas by state and the decisions (server-rendered SVG from
 * shared/svgplot.c; no script, nothing fetched from elsewhere). ?hours=N (1..168, default 6)
 * sets the window before now.
 *
 * The workloads live on the loop: an HTTP thread asks with ui_page(), the loop renders in an
 * ev_async callback and hands the page back. */
#ifndef TIDE_UI_H
#define TIDE_UI_H

struct controlplane;
typedef struct ui_server ui_server;

/* On the loop at start. NULL when out of memory. */
ui_server *ui_new(struct controlplane *cp);
/* From an HTTP thread: the page (malloc'd HTML) for the last `hours` hours, or NULL when the
 * loop did not answer within 10 s or memory ran out. */
char *ui_page(ui_server *u, int hours);
/* On the loop, after the HTTP threads are gone. */
void ui_free(ui_server *u);

#endif
