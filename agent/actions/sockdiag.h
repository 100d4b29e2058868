/* sockdiag.h: counts the established TCP connections a local endpoint (ADDR:PORT) is serving,
 * read through the kernel: NETLINK_SOCK_DIAG (inet_diag dump of ESTABLISHED sockets), falling
 * back to parsing /proc/net/tcp and /proc/net/tcp6 when netlink is unavailable.
 *
 * A connection counts when its local side is the endpoint (the server's accepted sockets); an
 * endpoint address of 0.0.0.0 / :: / * matches any local address on that port, and an IPv4
 * endpoint also matches IPv4-mapped IPv6 sockets (servers bound to ::). Both reads are local
 * kernel queries that answer at once, so calling them from the loop does not block it. */
#ifndef TIDE_SOCKDIAG_H
#define TIDE_SOCKDIAG_H

#include <stddef.h>
#include <stdint.h>

typedef struct sockdiag_endpoint {
    int family;       /* AF_INET or AF_INET6 */
    int any_addr;     /* 1: match any local address on port */
    uint8_t addr[16]; /* network byte order: 4 bytes for AF_INET */
    uint16_t port;    /* host byte order */
} sockdiag_endpoint;

/* Parses "ADDR:PORT", "[V6ADDR]:PORT" or "*:PORT". Returns 0, or -EINVAL with err naming what
 * was wrong (no port, port out of range, address not numeric). */
int sockdiag_parse_endpoint(const char *s, sockdiag_endpoint *ep, char *err, size_t errlen);

/* Formats ep as "ADDR:PORT" into buf. */
void sockdiag_format_endpoint(const sockdiag_endpoint *ep, char *buf, size_t cap);

/* Pure parser of /proc/net/tcp (family AF_INET) or /proc/net/tcp6 (AF_INET6) text: adds the
 * number of ESTABLISHED rows whose local address matches ep to *count. Returns 0, or -EINVAL
 * with err naming the line when a row is malformed (the count then covers the rows before). */
int sockdiag_proc_count(const char *text, size_t len, int family, const sockdiag_endpoint *ep,
                        int *count, char *err, size_t errlen);

enum sockdiag_method { SOCKDIAG_NETLINK = 1, SOCKDIAG_PROC = 2 };

/* Counts established connections to ep: netlink first, /proc on failure. Returns 0 with *count
 * and *method set, or -errno with err when neither source could be read. */
int sockdiag_count_established(const sockdiag_endpoint *ep, int *count, int *method, char *err,
                               size_t errlen);

/* The two sources separately (tests compare them). Same returns. */
int sockdiag_netlink_count(const sockdiag_endpoint *ep, int *count, char *err, size_t errlen);
int sockdiag_procfs_count(const sockdiag_endpoint *ep, int *count, char *err, size_t errlen);

#endif
