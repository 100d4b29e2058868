/* prom_module.c: the Prometheus client module (see prom_module.h). */
#include "query/prom_module.h"

#include "cp.h"
#include "log.h"
#include "query/prom.h"

#include <stdio.h>

static int prom_module_start(struct controlplane *cp, char *err, size_t errlen) {
    const struct cp_config *c = &cp->cfg;
    if (!c->prometheus || !c->prometheus[0]) return 0;
    prom_options po = {
        .url = c->prometheus,
        .bearer_token_file = c->prometheus_bearer_token_file,
        .ca_file =
            (c->prometheus_ca_file && c->prometheus_ca_file[0]) ? c->prometheus_ca_file : NULL,
        .insecure_skip_verify = c->prometheus_insecure_skip_verify,
        .timeout_ms = c->prometheus_timeout_ms,
        .max_points = c->prometheus_max_points,
    };
    int rc = prom_new(&cp->prom, &po, err, errlen);
    if (rc) {
        cp->prom = NULL;
        return rc;
    }
    log_info("prometheus", "history from prometheus %s", c->prometheus);
    return 0;
}

static void prom_module_stop(struct controlplane *cp) {
    prom_free(cp->prom);
    cp->prom = NULL;
}

CP_MODULE(prometheus, PROM_MODULE_NAME, prom_module_start, prom_module_stop)
