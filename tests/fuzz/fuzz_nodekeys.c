/* fuzz_nodekeys.c: libFuzzer target for the node key file parser (controlplane/agents/
 * nodekeys.c): any text is accepted or refused with a message naming the line, never a crash
 * or a leak; what is accepted formats back to text that parses to the same table. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agents/nodekeys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nodekeys k, back;
    char err[256];
    int rc = nodekeys_parse((const char *)data, size, &k, err, sizeof err);
    if (rc == 0) {
        char *text;
        size_t len;
        if (nodekeys_format(&k, &text, &len) == 0) {
            if (nodekeys_parse(text, len, &back, err, sizeof err) != 0 || back.n != k.n)
                __builtin_trap();
            for (size_t i = 0; i < k.n; i++)
                if (strcmp(back.v[i].node, k.v[i].node) || strcmp(back.v[i].key, k.v[i].key) ||
                    back.v[i].revoked != k.v[i].revoked ||
                    back.v[i].created_ms != k.v[i].created_ms)
                    __builtin_trap();
            nodekeys_fini(&back);
            free(text);
        }
    } else if (rc == -22 && !err[0]) {
        __builtin_trap(); /* every refusal says why */
    }
    nodekeys_fini(&k);
    return 0;
}
