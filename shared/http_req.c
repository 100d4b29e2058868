/* http_req.c: HTTP/1.x request head parser (http_req.h). */
#include "http_req.h"

#include <string.h>

/* Where the head ends (index just past the empty line), or 0 when it has not ended. */
static size_t head_end(const char *buf, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n') continue;
        if (i + 1 < len && buf[i + 1] == '\n') return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') return i + 3;
    }
    return 0;
}

int http_req_parse(const char *buf, size_t len, http_req *r) {
    memset(r, 0, sizeof *r);
    size_t end = head_end(buf, len);
    if (!end) {
        /* a request line that cannot be one is refused before the head ends */
        for (size_t i = 0; i < len && i < sizeof r->method; i++)
            if (buf[i] == ' ')
                break;
            else if (buf[i] < 'A' || buf[i] > 'Z')
                return -1;
        return len >= HTTP_REQ_MAX ? -1 : 0;
    }
    if (end > HTTP_REQ_MAX) return -1;
    size_t line = 0;
    while (line < end && buf[line] != '\n')
        line++;
    if (line > 0 && buf[line - 1] == '\r') line--;
    /* METHOD SP TARGET SP HTTP/1.x */
    size_t i = 0, m = 0;
    while (i < line && buf[i] >= 'A' && buf[i] <= 'Z') {
        if (m + 1 >= sizeof r->method) return -1;
        r->method[m++] = buf[i++];
    }
    if (m == 0 || i >= line || buf[i] != ' ') return -1;
    i++;
    if (i >= line || buf[i] != '/') return -1;
    size_t p = 0;
    int in_query = 0;
    while (i < line && buf[i] != ' ') {
        unsigned char c = (unsigned char)buf[i++];
        if (c <= 0x20 || c >= 0x7f) return -1;
        if (c == '?') in_query = 1;
        if (in_query) continue;
        if (p + 1 >= sizeof r->path) return -1;
        r->path[p++] = (char)c;
    }
    if (i >= line || buf[i] != ' ') return -1;
    i++;
    if (line - i != 8 || memcmp(buf + i, "HTTP/1.", 7) != 0) return -1;
    char d = buf[i + 7];
    if (d != '0' && d != '1') return -1;
    r->minor = d - '0';
    /* header lines: no NULs or bare control bytes other than CR/LF/TAB */
    for (size_t k = line; k < end; k++) {
        unsigned char c = (unsigned char)buf[k];
        if (c < 0x20 && c != '\r' && c != '\n' && c != '\t') return -1;
    }
    return 1;
}
