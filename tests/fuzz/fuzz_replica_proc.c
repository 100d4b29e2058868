/* fuzz_replica_proc.c: libFuzzer target for what the replica process code parses: replica
 * records read back from the node's replica directory, HTTP status lines of readiness checks,
 * placeholder templates and node action arguments (shared/actions.h). The first byte picks the
 * parser; the rest is its input (not NUL-terminated where the parser takes a length). */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "actions/replica_proc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned which = data[0] % 4;
    size_t n = size - 1;
    char *buf = malloc(n + 1);
    if (!buf) return 0;
    memcpy(buf, data + 1, n);
    char err[512], out[256];
    replica_record r;
    switch (which) {
    case 0:
        replica_record_parse(buf, n, &r, err, sizeof err);
        replica_record_fini(&r);
        break;
    case 1:
        replica_http_status(buf, n);
        break;
    case 2:
        buf[n] = 0;
        tide_template_expand(buf, "r1", 8080, "n1", out, sizeof out, err, sizeof err);
        break;
    default: {
        cJSON *o = cJSON_ParseWithLength(buf, n);
        for (int a = 0; a < TIDE_ACT_COUNT; a++) {
            tide_action_args_check(a, o, err, sizeof err);
            tide_action_timeout_ms(a, o);
        }
        cJSON_Delete(o);
        break;
    }
    }
    free(buf);
    return 0;
}
