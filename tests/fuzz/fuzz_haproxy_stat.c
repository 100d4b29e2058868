/* fuzz_haproxy_stat.c: libFuzzer target for the HAProxy runtime API reply parsers (`show stat`
 * CSV of one server or of every proxy, `show servers state` of one server or a whole backend,
 * `set server` replies, alone or split from a reply to two commands) and the BACKEND/SERVER
 * reference parser. The first byte picks the parser; the rest is the reply (not
 * NUL-terminated, so ASan catches a read past the end). */
#include "actions/haproxy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned which = data[0] % 4;
    size_t n = size - 1;
    char *buf = malloc(n ? n : 1);
    if (!buf) return 0;
    memcpy(buf, data + 1, n);
    char err[256];
    haproxy_server_stat st;
    haproxy_server_state ss;
    switch (which) {
    case 0:
        haproxy_stat_find(buf, n, "be", "s1", &st, err, sizeof err);
        {
            haproxy_proxy_stat ps[4];
            int np, seen;
            haproxy_stat_proxies(buf, n, ps, 4, &np, &seen, err, sizeof err);
        }
        break;
    case 1:
        haproxy_servers_state_find(buf, n, "be", "s1", &ss, err, sizeof err);
        {
            haproxy_slot slots[8];
            int ns;
            haproxy_servers_state_list(buf, n, "be", slots, 8, &ns, err, sizeof err);
        }
        break;
    case 2:
        haproxy_set_reply_check(buf, n, err, sizeof err);
        { /* two commands' replies at once: the parts stay inside the reply */
            size_t first, rest;
            if (haproxy_reply_split(buf, n, &first, &rest) == 0) {
                if (first > n || rest > n || rest < first) abort();
                haproxy_set_reply_check(buf, first, err, sizeof err);
                haproxy_stat_find(buf + rest, n - rest, "be", "s1", &st, err, sizeof err);
            }
        }
        break;
    default: {
        char *ref = malloc(n + 1), be[HAPROXY_NAME_MAX], srv[HAPROXY_NAME_MAX];
        if (ref) {
            memcpy(ref, buf, n);
            ref[n] = '\0';
            haproxy_parse_server_ref(ref, be, srv, err, sizeof err);
            free(ref);
        }
    }
    }
    free(buf);
    return 0;
}
