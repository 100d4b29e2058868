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

/* Case-insensitive match of a header name at buf[0..len) followed by ':'; returns the index of
 * the value (spaces skipped) or 0. */
static size_t header_value(const char *buf, size_t len, const char *name) {
    size_t n = strlen(name);
    if (len <= n || buf[n] != ':') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != name[i]) return 0;
    }
    size_t v = n + 1;
    while (v < len && (buf[v] == ' ' || buf[v] == '\t'))
        v++;
    return v;
}

/* Whether the value buf[0..len) holds the token (comma-separated, case-insensitive). */
static int has_token(const char *buf, size_t len, const char *tok) {
    size_t n = strlen(tok);
    for (size_t i = 0; i + n <= len; i++) {
        size_t k = 0;
        while (k < n) {
            char c = buf[i + k];
            if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
            if (c != tok[k]) break;
            k++;
        }
        if (k == n && (i == 0 || buf[i - 1] == ' ' || buf[i - 1] == ',') &&
            (i + n == len || buf[i + n] == ' ' || buf[i + n] == ',' || buf[i + n] == '\r'))
            return 1;
    }
    return 0;
}

int http_resp_parse(const char *buf, size_t len, http_resp *r) {
    memset(r, 0, sizeof *r);
    r->content_len = -1;
    size_t end = head_end(buf, len);
    if (len >= 5 && memcmp(buf, "HTTP/", 5) != 0) return -1;
    if (!end) return len >= HTTP_REQ_MAX ? -1 : 0;
    if (end > HTTP_REQ_MAX) return -1;
    for (size_t k = 0; k < end; k++) {
        unsigned char c = (unsigned char)buf[k];
        if (c < 0x20 && c != '\r' && c != '\n' && c != '\t') return -1;
    }
    /* HTTP/1.x SP DDD [SP reason] */
    if (end < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
        buf[8] != ' ')
        return -1;
    r->minor = buf[7] - '0';
    for (int i = 9; i < 12; i++)
        if (buf[i] < '0' || buf[i] > '9') return -1;
    r->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (r->status < 100 || (buf[12] != ' ' && buf[12] != '\r' && buf[12] != '\n')) return -1;
    int keep_alive = 0;
    size_t i = 0;
    while (i < end && buf[i] != '\n')
        i++;
    i++;
    while (i < end) {
        size_t e = i;
        while (e < end && buf[e] != '\n')
            e++;
        size_t l = e - i;
        if (l > 0 && buf[i + l - 1] == '\r') l--;
        const char *h = buf + i;
        size_t v;
        if ((v = header_value(h, l, "content-length"))) {
            long long n = 0;
            size_t k = v, digits = 0;
            while (k < l && h[k] >= '0' && h[k] <= '9') {
                if (++digits > 12) return -1; /* 2^40 is 13 digits: bounded before overflow */
                n = n * 10 + (h[k++] - '0');
            }
            while (k < l && (h[k] == ' ' || h[k] == '\t'))
                k++;
            if (digits == 0 || k != l || n >= (1LL << 40)) return -1;
            if (r->content_len >= 0 && r->content_len != n) return -1;
            r->content_len = n;
        } else if ((v = header_value(h, l, "transfer-encoding"))) {
            if (has_token(h + v, l - v, "chunked")) r->chunked = 1;
        } else if ((v = header_value(h, l, "connection"))) {
            if (has_token(h + v, l - v, "close")) r->close = 1;
            if (has_token(h + v, l - v, "keep-alive")) keep_alive = 1;
        }
        i = e + 1;
    }
    if (r->minor == 0 && !keep_alive) r->close = 1;
    r->head_len = end;
    return 1;
}
