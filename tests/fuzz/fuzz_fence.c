/* fuzz_fence.c: libFuzzer target for the agent's fencing-token file decoder (agent/fence.c):
 * any input is accepted or refused with a message, never read out of bounds; what is accepted
 * holds valid entries within the bound, and encodes to a text that decodes to the same table. */
#include "fence.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fence_table t, u;
    fence_init(&t, 16, 1000000);
    fence_init(&u, 16, 1000000);
    char err[256];
    int64_t now = 2000000;
    if (fence_decode(&t, (const char *)data, size, now, err, sizeof err) == 0) {
        if (t.n > t.max) abort();
        for (size_t i = 0; i < t.n; i++) {
            if (t.e[i].token == 0) abort();
            if (!wire_workload_valid(t.e[i].workload, strlen(t.e[i].workload))) abort();
        }
        char *text = NULL;
        size_t len = 0;
        if (fence_encode(&t, &text, &len) == 0) {
            if (fence_decode(&u, text, len, now, err, sizeof err) != 0) abort();
            if (u.n != t.n) abort();
            for (size_t i = 0; i < t.n; i++)
                if (fence_get(&u, t.e[i].workload) != t.e[i].token) abort();
            free(text);
        }
        /* the table keeps working after a decode */
        uint64_t seen;
        if (t.n && fence_check(&t, t.e[0].workload, 0, &seen) != FENCE_STALE) abort();
        fence_record(&t, "w", 1, now);
    } else if (t.n != 0) {
        abort();
    }
    fence_fini(&t);
    fence_fini(&u);
    return 0;
}
