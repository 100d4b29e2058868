/* http_req_test.c: the agent's HTTP request-head parser: complete, partial and bad heads. */
#include "http_req.h"
#include "test.h"

TEST(http_req_complete_heads) {
    http_req r;
    const char *a = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: kubelet\r\n\r\n";
    T_EQ_INT(http_req_parse(a, strlen(a), &r), 1);
    T_EQ_STR(r.method, "GET");
    T_EQ_STR(r.path, "/healthz");
    T_EQ_INT(r.minor, 1);
    const char *b = "HEAD /metrics?x=1 HTTP/1.0\n\n";
    T_EQ_INT(http_req_parse(b, strlen(b), &r), 1);
    T_EQ_STR(r.method, "HEAD");
    T_EQ_STR(r.path, "/metrics");
    T_EQ_INT(r.minor, 0);
}

TEST(http_req_partial_head_needs_more) {
    http_req r;
    const char *a = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    T_EQ_INT(http_req_parse(a, strlen(a), &r), 0);
    T_EQ_INT(http_req_parse("GE", 2, &r), 0);
    T_EQ_INT(http_req_parse("", 0, &r), 0);
}

TEST(http_req_bad_heads) {
    http_req r;
    const char *bad[] = {"get / HTTP/1.1\r\n\r\n",           "GET healthz HTTP/1.1\r\n\r\n",
                         "GET / HTTP/2.0\r\n\r\n",           "GET /\r\n\r\n",
                         "GET  / HTTP/1.1\r\n\r\n",          "GET /a\x01 HTTP/1.1\r\n\r\n",
                         "TOOLONGMETHOD / HTTP/1.1\r\n\r\n", "\x16\x03\x01\x02\x00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (http_req_parse(bad[i], strlen(bad[i]), &r) != -1) T_FAIL("accepted: %s", bad[i]);
    char big[HTTP_REQ_MAX + 10];
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    memset(big + 19, 'a', sizeof big - 19);
    T_EQ_INT(http_req_parse(big, sizeof big, &r), -1); /* never ends: refused at the bound */
    char path[400] = "GET /";
    memset(path + 5, 'p', 300);
    memcpy(path + 305, " HTTP/1.1\r\n\r\n", 14);
    T_EQ_INT(http_req_parse(path, strlen(path), &r), -1); /* target longer than kept */
}

TEST(http_resp_heads) {
    http_resp r;
    const char *a = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX: y\r\n\r\nok\n";
    T_EQ_INT(http_resp_parse(a, strlen(a), &r), 1);
    T_EQ_INT(r.status, 200);
    T_EQ_INT(r.content_len, 3);
    T_EQ_INT(r.close, 0);
    T_EQ_INT((int)r.head_len, (int)(strlen(a) - 3));
    const char *b = "HTTP/1.0 503 Service Unavailable\ncontent-length:  107 \n\n";
    T_EQ_INT(http_resp_parse(b, strlen(b), &r), 1);
    T_EQ_INT(r.status, 503);
    T_EQ_INT(r.content_len, 107);
    T_EQ_INT(r.close, 1); /* HTTP/1.0 without keep-alive */
    const char *c =
        "HTTP/1.1 200\r\nConnection: Keep-Alive, close\r\nTransfer-Encoding: chunked\r\n\r\n";
    T_EQ_INT(http_resp_parse(c, strlen(c), &r), 1);
    T_EQ_INT(r.close, 1);
    T_EQ_INT(r.chunked, 1);
    T_EQ_INT(r.content_len, -1);
    T_EQ_INT(http_resp_parse("HTTP/1.1 200 OK\r\n", 17, &r), 0);
    T_EQ_INT(http_resp_parse("HTT", 3, &r), 0);
    const char *bad[] = {"HTTP/2.0 200 OK\r\n\r\n",
                         "HTTP/1.1 20 OK\r\n\r\n",
                         "HTTP/1.1 099 x\r\n\r\n",
                         "SSH-2.0-OpenSSH\r\n\r\n",
                         "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                         "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\n",
                         "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                         "HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\n",
                         "HTTP/1.1 200 OK\r\nA: \001\r\n\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (http_resp_parse(bad[i], strlen(bad[i]), &r) != -1) T_FAIL("accepted: %s", bad[i]);
}
