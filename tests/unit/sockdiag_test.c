/* sockdiag_test.c: endpoint parsing, /proc/net/tcp{,6} parsing on captured output, and the
 * netlink and /proc counts agreeing on a live loopback connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "actions/sockdiag.h"
#include "fixture.h"
#include "test.h"

TEST(sockdiag_endpoint_parse) {
    sockdiag_endpoint ep;
    char err[256], buf[80];
    T_EQ_INT(sockdiag_parse_endpoint("127.0.0.1:8080", &ep, err, sizeof err), 0);
    T_EQ_INT(ep.port, 8080);
    T_EQ_INT(ep.family, AF_INET);
    sockdiag_format_endpoint(&ep, buf, sizeof buf);
    T_EQ_STR(buf, "127.0.0.1:8080");
    T_EQ_INT(sockdiag_parse_endpoint("[::1]:443", &ep, err, sizeof err), 0);
    T_EQ_INT(ep.family, AF_INET6);
    T_EQ_INT(sockdiag_parse_endpoint("*:80", &ep, err, sizeof err), 0);
    T_ASSERT(ep.any_addr);
    T_EQ_INT(sockdiag_parse_endpoint("127.0.0.1", &ep, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "endpoint '127.0.0.1' has no port (want ADDR:PORT)");
    T_EQ_INT(sockdiag_parse_endpoint("127.0.0.1:70000", &ep, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "endpoint '127.0.0.1:70000': port '70000' is not 1-65535");
    T_EQ_INT(sockdiag_parse_endpoint("localhost:80", &ep, err, sizeof err), -EINVAL);
    T_EQ_INT(sockdiag_parse_endpoint("[::1:80", &ep, err, sizeof err), -EINVAL);
}

TEST(sockdiag_proc_tcp_real_output) {
    /* captured with 3 connections to 127.0.0.1:50237 (and a listener on it) */
    size_t len;
    char *t = fixture_slurp("node_actions/proc_net_tcp.txt", &len), err[256];
    T_ASSERT(t);
    sockdiag_endpoint ep;
    T_EQ_INT(sockdiag_parse_endpoint("127.0.0.1:50237", &ep, err, sizeof err), 0);
    int n = 0;
    T_EQ_INT(sockdiag_proc_count(t, len, AF_INET, &ep, &n, err, sizeof err), 0);
    T_EQ_INT(n, 3);
    n = 0;
    T_EQ_INT(sockdiag_parse_endpoint("*:50237", &ep, err, sizeof err), 0);
    T_EQ_INT(sockdiag_proc_count(t, len, AF_INET, &ep, &n, err, sizeof err), 0);
    T_EQ_INT(n, 3);
    n = 0;
    T_EQ_INT(sockdiag_parse_endpoint("127.0.0.2:50237", &ep, err, sizeof err), 0);
    T_EQ_INT(sockdiag_proc_count(t, len, AF_INET, &ep, &n, err, sizeof err), 0);
    T_EQ_INT(n, 0);
}

TEST(sockdiag_proc_tcp6_real_output) {
    /* one [::1]:57787 connection: the server side counts, the client side does not */
    size_t len;
    char *t = fixture_slurp("node_actions/proc_net_tcp6.txt", &len), err[256];
    T_ASSERT(t);
    sockdiag_endpoint ep;
    T_EQ_INT(sockdiag_parse_endpoint("[::1]:57787", &ep, err, sizeof err), 0);
    int n = 0;
    T_EQ_INT(sockdiag_proc_count(t, len, AF_INET6, &ep, &n, err, sizeof err), 0);
    T_EQ_INT(n, 1);
}

TEST(sockdiag_proc_malformed) {
    sockdiag_endpoint ep;
    char err[256];
    int n = 0;
    sockdiag_parse_endpoint("127.0.0.1:80", &ep, err, sizeof err);
    const char *bad = "  sl  local_address rem_address   st\n   0: 0100007F:0050 0100007F\n";
    T_EQ_INT(sockdiag_proc_count(bad, strlen(bad), AF_INET, &ep, &n, err, sizeof err), -EINVAL);
    T_EQ_STR(err, "/proc/net/tcp line 2 is malformed");
    const char *v4mapped =
        "   0: 0000000000000000FFFF00000100007F:0050 0000000000000000FFFF00000100007F:D000 01 0\n";
    T_EQ_INT(sockdiag_proc_count(v4mapped, strlen(v4mapped), AF_INET6, &ep, &n, err, sizeof err),
             0);
    T_EQ_INT(n, 1);
}

TEST(sockdiag_live_netlink_matches_proc) {
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    T_ASSERT(ls >= 0 && bind(ls, (struct sockaddr *)&a, sizeof a) == 0 && listen(ls, 8) == 0);
    getsockname(ls, (struct sockaddr *)&a, &al);
    int c[3], s[3];
    for (int i = 0; i < 3; i++) {
        c[i] = socket(AF_INET, SOCK_STREAM, 0);
        T_ASSERT(connect(c[i], (struct sockaddr *)&a, sizeof a) == 0);
        s[i] = accept(ls, NULL, NULL);
    }
    char epbuf[64], err[256];
    snprintf(epbuf, sizeof epbuf, "127.0.0.1:%u", ntohs(a.sin_port));
    sockdiag_endpoint ep;
    T_EQ_INT(sockdiag_parse_endpoint(epbuf, &ep, err, sizeof err), 0);
    int nl = -1, pr = -1, method = 0;
    T_EQ_INT(sockdiag_netlink_count(&ep, &nl, err, sizeof err), 0);
    T_EQ_INT(sockdiag_procfs_count(&ep, &pr, err, sizeof err), 0);
    T_EQ_INT(nl, 3);
    T_EQ_INT(pr, 3);
    close(s[0]);
    close(c[0]);
    T_EQ_INT(sockdiag_count_established(&ep, &nl, &method, err, sizeof err), 0);
    T_EQ_INT(method, SOCKDIAG_NETLINK);
    T_EQ_INT(nl, 2);
    for (int i = 1; i < 3; i++) {
        close(s[i]);
        close(c[i]);
    }
    close(ls);
}
