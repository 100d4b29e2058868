/* fuzz_ops_request.c: libFuzzer target for the ops socket's request parsing (the JSON of one
 * frame: object, "cmd" string, "args" object, no NUL). Input is the frame's payload. */
#include "api/ops.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    cJSON *root;
    const char *cmd;
    const cJSON *args;
    char err[200];
    if (ops_parse_request(buf, size, &root, &cmd, &args, err, sizeof err) == 0) {
        if (strlen(cmd) > size) abort(); /* points into the parsed copy */
        if (args && !cJSON_IsObject(args)) abort();
        cJSON_Delete(root);
    } else if (!err[0]) {
        abort(); /* a refusal always says why */
    }
    free(buf);
    return 0;
}
