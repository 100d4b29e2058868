/* fuzz_config.c: libFuzzer target for the daemons' config file parser (shared/config.c) with
 * the real tables of tide-controlplane and tide-agent: any input is accepted or refused with a
 * message, never a crash or a leak. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "config.h"
#include "cp.h"

static void one(const cfg_key *tab, void *cfg, const uint8_t *data, size_t size) {
    char err[1024];
    if (cfg_defaults(tab, cfg, err, sizeof err) < 0) __builtin_trap();
    FILE *f = fmemopen((void *)data, size, "r");
    if (f) {
        if (cfg_load_stream(tab, cfg, f, "fuzz.conf", err, sizeof err) < 0 &&
            strncmp(err, "fuzz.conf", 9) != 0)
            __builtin_trap(); /* every refusal names the file */
        fclose(f);
    }
    cfg_free(tab, cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    struct cp_config cc;
    struct agent_config ac;
    memset(&cc, 0, sizeof cc);
    memset(&ac, 0, sizeof ac);
    one(cp_config_table, &cc, data, size);
    one(agent_config_table, &ac, data, size);
    return 0;
}
