/* fuzz_sockdiag_proc.c: libFuzzer target for the /proc/net/tcp and /proc/net/tcp6 parser and
 * the ADDR:PORT endpoint parser. The first byte picks the input kind; the rest is the text (not
 * NUL-terminated for the table parser). */
#include "actions/sockdiag.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned which = data[0] % 3;
    size_t n = size - 1;
    char *buf = malloc(n + 1);
    if (!buf) return 0;
    memcpy(buf, data + 1, n);
    char err[256];
    sockdiag_endpoint ep;
    int count = 0;
    if (which == 2) {
        buf[n] = '\0';
        if (sockdiag_parse_endpoint(buf, &ep, err, sizeof err) == 0) {
            char out[80];
            sockdiag_format_endpoint(&ep, out, sizeof out);
        }
    } else {
        char *t = malloc(n ? n : 1); /* exact size: no terminator to lean on */
        if (t) {
            memcpy(t, buf, n);
            sockdiag_parse_endpoint(which ? "[::1]:8080" : "127.0.0.1:8080", &ep, err, sizeof err);
            sockdiag_proc_count(t, n, which ? AF_INET6 : AF_INET, &ep, &count, err, sizeof err);
            free(t);
        }
    }
    free(buf);
    return 0;
}
