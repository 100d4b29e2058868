/* prom_module.h: the daemon's Prometheus client as a module of its own ("prometheus"): made
 * from the prometheus* config keys at start (cp->prom, NULL without --prometheus) and freed at
 * stop. The modules whose threads query it (http, workloads) name it in their after= lists
 * (cp.h), so it starts before them and is freed only after they have stopped and joined their
 * threads. Users call prom_cancel(cp->prom) in their own stop to end requests under way. */
#ifndef TIDE_PROM_MODULE_H
#define TIDE_PROM_MODULE_H

/* The module's name, for after= lists. */
#define PROM_MODULE_NAME "prometheus"

#endif
