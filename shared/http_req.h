/* http_req.h: the request head of a minimal HTTP/1.x server (the agent's /healthz and
 * /metrics, the benchmark replica): request line and end of headers, nothing else; and the
 * response head a minimal client needs (status, length, connection). Bounded: callers hold at most
 * HTTP_REQ_MAX bytes of head. */
#ifndef TIDE_HTTP_REQ_H
#define TIDE_HTTP_REQ_H

#include <stddef.h>

#define HTTP_REQ_MAX 4096

typedef struct http_req {
    char method[8]; /* "GET", "HEAD", ... */
    char path[256]; /* the target without its query string */
    int minor;      /* HTTP/1.<minor> */
} http_req;

/* Parses the first len bytes received. Returns 1 with *r filled when the head is complete
 * (request line + headers + empty line, CRLF or LF), 0 when more bytes are needed (and len <
 * HTTP_REQ_MAX), or -1 when it is not a valid HTTP/1.x request head (or larger than
 * HTTP_REQ_MAX without ending). */
int http_req_parse(const char *buf, size_t len, http_req *r);

/* A response head (the load generator's view of a server it measures). */
typedef struct http_resp {
    int status;            /* 100-999 */
    int minor;             /* HTTP/1.<minor> */
    size_t head_len;       /* bytes of the head, empty line included */
    long long content_len; /* Content-Length, -1 when absent */
    int chunked;           /* Transfer-Encoding: chunked (not supported by the caller) */
    int close;             /* Connection: close, or HTTP/1.0 without keep-alive */
} http_resp;

/* Parses the first len bytes of a response. Returns 1 with *r filled when the head is
 * complete, 0 when more bytes are needed (and len < HTTP_REQ_MAX), -1 when it is not a valid
 * HTTP/1.x response head (bad status line, a Content-Length that is not a number below 2^40
 * or given twice with different values, a control byte, or no end within HTTP_REQ_MAX). */
int http_resp_parse(const char *buf, size_t len, http_resp *r);

#endif
