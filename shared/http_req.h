/* http_req.h: the request head of a minimal HTTP/1.x server (the agent's /healthz and
 * /metrics): request line and end of headers, nothing else. Bounded: callers hold at most
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

#endif
