/* sockdiag.c: established-connection counts for an endpoint via sock_diag netlink or /proc. */
#include "actions/sockdiag.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TCP_STATE_ESTABLISHED 1

int sockdiag_parse_endpoint(const char *s, sockdiag_endpoint *ep, char *err, size_t errlen) {
    char host[64];
    const char *port_s;
    memset(ep, 0, sizeof *ep);
    if (!s || !*s) {
        snprintf(err, errlen, "endpoint is empty (want ADDR:PORT)");
        return -EINVAL;
    }
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "endpoint '%s': want [IPV6]:PORT", s);
            return -EINVAL;
        }
        size_t n = (size_t)(close - s - 1);
        if (n >= sizeof host) goto bad_addr;
        memcpy(host, s + 1, n);
        host[n] = '\0';
        port_s = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon) {
            snprintf(err, errlen, "endpoint '%s' has no port (want ADDR:PORT)", s);
            return -EINVAL;
        }
        size_t n = (size_t)(colon - s);
        if (n >= sizeof host) goto bad_addr;
        memcpy(host, s, n);
        host[n] = '\0';
        port_s = colon + 1;
    }
    char *end;
    errno = 0;
    long port = strtol(port_s, &end, 10);
    if (!*port_s || *end || errno || port < 1 || port > 65535) {
        snprintf(err, errlen, "endpoint '%s': port '%s' is not 1-65535", s, port_s);
        return -EINVAL;
    }
    ep->port = (uint16_t)port;
    if (strcmp(host, "*") == 0 || host[0] == '\0') {
        ep->family = AF_INET;
        ep->any_addr = 1;
        return 0;
    }
    if (inet_pton(AF_INET, host, ep->addr) == 1) {
        ep->family = AF_INET;
        ep->any_addr = memcmp(ep->addr, "\0\0\0\0", 4) == 0;
        return 0;
    }
    if (inet_pton(AF_INET6, host, ep->addr) == 1) {
        static const uint8_t zero[16];
        ep->family = AF_INET6;
        ep->any_addr = memcmp(ep->addr, zero, 16) == 0;
        return 0;
    }
bad_addr:
    snprintf(err, errlen, "endpoint '%s': address is not a numeric IPv4/IPv6 address", s);
    return -EINVAL;
}

void sockdiag_format_endpoint(const sockdiag_endpoint *ep, char *buf, size_t cap) {
    char a[INET6_ADDRSTRLEN];
    if (ep->any_addr) {
        snprintf(buf, cap, "*:%u", ep->port);
    } else if (ep->family == AF_INET6) {
        inet_ntop(AF_INET6, ep->addr, a, sizeof a);
        snprintf(buf, cap, "[%s]:%u", a, ep->port);
    } else {
        inet_ntop(AF_INET, ep->addr, a, sizeof a);
        snprintf(buf, cap, "%s:%u", a, ep->port);
    }
}

/* Does a socket's local (family, 4 or 16 address bytes, port) match ep? */
static int local_matches(const sockdiag_endpoint *ep, int family, const uint8_t *addr,
                         unsigned port) {
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (port != ep->port) return 0;
    if (ep->any_addr) return 1;
    if (family == ep->family) return memcmp(addr, ep->addr, family == AF_INET ? 4 : 16) == 0;
    if (family == AF_INET6 && ep->family == AF_INET)
        return memcmp(addr, v4mapped, 12) == 0 && memcmp(addr + 12, ep->addr, 4) == 0;
    return 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Parses `ndig` hex digits at p into *v. Returns 0 or -1. */
static int hex_n(const char *p, size_t avail, int ndig, uint32_t *v) {
    if (avail < (size_t)ndig) return -1;
    uint32_t x = 0;
    for (int i = 0; i < ndig; i++) {
        int h = hexval(p[i]);
        if (h < 0) return -1;
        x = (x << 4) | (uint32_t)h;
    }
    *v = x;
    return 0;
}

int sockdiag_proc_count(const char *text, size_t len, int family, const sockdiag_endpoint *ep,
                        int *count, char *err, size_t errlen) {
    int addr_words = family == AF_INET6 ? 4 : 1;
    size_t pos = 0;
    int lineno = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        lineno++;
        size_t i = 0;
        while (i < n && line[i] == ' ')
            i++;
        if (i == n) continue;
        if (lineno == 1 && n - i >= 2 && line[i] == 's' && line[i + 1] == 'l')
            continue; /* header */
        /* "N: LOCAL:PORT REMOTE:PORT ST ..." */
        while (i < n && line[i] >= '0' && line[i] <= '9')
            i++;
        if (i >= n || line[i] != ':') goto bad;
        i++;
        while (i < n && line[i] == ' ')
            i++;
        uint8_t addr[16];
        for (int w = 0; w < addr_words; w++) {
            uint32_t word;
            if (hex_n(line + i, n - i, 8, &word) != 0) goto bad;
            /* The kernel prints each 32-bit word of the network-order address as a host-order
             * integer; storing it back in host order restores the network-order bytes. */
            memcpy(addr + 4 * w, &word, 4);
            i += 8;
        }
        uint32_t lport, st;
        if (i >= n || line[i] != ':') goto bad;
        i++;
        if (hex_n(line + i, n - i, 4, &lport) != 0) goto bad;
        i += 4;
        if (i >= n || line[i] != ' ') goto bad;
        i++;
        i += (size_t)(8 * addr_words); /* remote address */
        if (i >= n || line[i] != ':') goto bad;
        i += 1 + 4;
        if (i >= n || line[i] != ' ') goto bad;
        i++;
        if (hex_n(line + i, n - i, 2, &st) != 0) goto bad;
        if (st == TCP_STATE_ESTABLISHED && local_matches(ep, family, addr, lport)) (*count)++;
        continue;
    bad:
        snprintf(err, errlen, "%s line %d is malformed",
                 family == AF_INET6 ? "/proc/net/tcp6" : "/proc/net/tcp", lineno);
        return -EINVAL;
    }
    return 0;
}

static int read_file(const char *path, char **buf, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    size_t cap = 65536, n = 0;
    char *b = malloc(cap);
    if (!b) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        if (cap - n < 4096) {
            char *nb = cap < (64u << 20) ? realloc(b, cap * 2) : NULL;
            if (!nb) {
                free(b);
                close(fd);
                return -ENOMEM;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(b);
            close(fd);
            return -e;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    *buf = b;
    *len = n;
    return 0;
}

int sockdiag_procfs_count(const sockdiag_endpoint *ep, int *count, char *err, size_t errlen) {
    static const struct {
        const char *path;
        int family;
    } files[] = {{"/proc/net/tcp", AF_INET}, {"/proc/net/tcp6", AF_INET6}};
    int total = 0, read_any = 0;
    for (size_t f = 0; f < 2; f++) {
        if (files[f].family == AF_INET && ep->family == AF_INET6 && !ep->any_addr) continue;
        char *buf = NULL;
        size_t len = 0;
        int rc = read_file(files[f].path, &buf, &len);
        if (rc == -ENOENT) continue; /* no IPv6 on this host */
        if (rc < 0) {
            snprintf(err, errlen, "%s: %s", files[f].path, strerror(-rc));
            return rc;
        }
        rc = sockdiag_proc_count(buf, len, files[f].family, ep, &total, err, errlen);
        free(buf);
        if (rc < 0) return rc;
        read_any = 1;
    }
    if (!read_any) {
        snprintf(err, errlen, "/proc/net/tcp: not available");
        return -ENOENT;
    }
    *count = total;
    return 0;
}

/* One inet_diag dump of ESTABLISHED TCP sockets of `family`; adds matches to *count. */
static int netlink_dump(int fd, int family, const sockdiag_endpoint *ep, int *count, char *err,
                        size_t errlen) {
    /* The kernel filters on the local port itself (sport >= P && sport <= P), so a host with
     * many connections answers with only the endpoint's; the address is checked below. */
    struct {
        struct nlmsghdr nh;
        struct inet_diag_req_v2 req;
        struct rtattr rta;
        struct inet_diag_bc_op bc[4];
    } msg;
    memset(&msg, 0, sizeof msg);
    msg.nh.nlmsg_len = sizeof msg;
    msg.rta.rta_type = INET_DIAG_REQ_BYTECODE;
    msg.rta.rta_len = (unsigned short)RTA_LENGTH(sizeof msg.bc);
    msg.bc[0] = (struct inet_diag_bc_op){.code = INET_DIAG_BC_S_GE, .yes = 8, .no = 20};
    msg.bc[1] = (struct inet_diag_bc_op){.no = ep->port};
    msg.bc[2] = (struct inet_diag_bc_op){.code = INET_DIAG_BC_S_LE, .yes = 8, .no = 12};
    msg.bc[3] = (struct inet_diag_bc_op){.no = ep->port};
    msg.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.nh.nlmsg_seq = (uint32_t)family;
    msg.req.sdiag_family = (uint8_t)family;
    msg.req.sdiag_protocol = IPPROTO_TCP;
    msg.req.idiag_states = 1u << TCP_STATE_ESTABLISHED;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    if (sendto(fd, &msg, sizeof msg, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
        snprintf(err, errlen, "sock_diag: send: %s", strerror(errno));
        return -errno;
    }
    static __thread char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            snprintf(err, errlen, "sock_diag: recv: %s", strerror(errno));
            return -errno;
        }
        if (n == 0) {
            snprintf(err, errlen, "sock_diag: socket closed mid-dump");
            return -EIO;
        }
        int len = (int)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)len);
             h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_type == NLMSG_DONE) return 0;
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = NLMSG_DATA(h);
                int code = h->nlmsg_len >= NLMSG_LENGTH(sizeof *e) && e->error ? e->error : -EIO;
                snprintf(err, errlen, "sock_diag: kernel answered: %s", strerror(-code));
                return code;
            }
            if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
                h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
                continue;
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            if (m->idiag_state != TCP_STATE_ESTABLISHED) continue;
            if (local_matches(ep, m->idiag_family, (const uint8_t *)m->id.idiag_src,
                              ntohs(m->id.idiag_sport)))
                (*count)++;
        }
    }
}

int sockdiag_netlink_count(const sockdiag_endpoint *ep, int *count, char *err, size_t errlen) {
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) {
        snprintf(err, errlen, "sock_diag: socket: %s", strerror(errno));
        return -errno;
    }
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv); /* never hang on a broken kernel */
    int total = 0, rc = 0;
    if (ep->family == AF_INET || ep->any_addr)
        rc = netlink_dump(fd, AF_INET, ep, &total, err, errlen);
    if (rc == 0) {
        int rc6 = netlink_dump(fd, AF_INET6, ep, &total, err, errlen);
        /* a host without IPv6 answers the AF_INET6 dump with an error: IPv4 alone is fine then */
        if (rc6 < 0 && ep->family == AF_INET6) rc = rc6;
    }
    close(fd);
    if (rc == 0) *count = total;
    return rc;
}

int sockdiag_count_established(const sockdiag_endpoint *ep, int *count, int *method, char *err,
                               size_t errlen) {
    char nlerr[200];
    if (sockdiag_netlink_count(ep, count, nlerr, sizeof nlerr) == 0) {
        *method = SOCKDIAG_NETLINK;
        return 0;
    }
    int rc = sockdiag_procfs_count(ep, count, err, errlen);
    if (rc == 0) {
        *method = SOCKDIAG_PROC;
        return 0;
    }
    size_t l = strlen(err);
    snprintf(err + l, errlen > l ? errlen - l : 0, " (after %s)", nlerr);
    return rc;
}
