/* curl_lazy.h: libcurl loaded on first use with dlopen("libcurl.so.4").
 *
 * Only warm-ups (warmup.c) need HTTP in the agent. Linking libcurl would map it and its TLS,
 * Kerberos, LDAP, SSH and IDN dependencies into every agent, and GnuTLS/p11-kit initialise
 * themselves at load time: ~4 MB of resident memory in an agent that never warms anything up.
 * So the agent binary does not link libcurl (it is not DT_NEEDED); the warm-up helper process
 * (warmup.c) loads it, resolves exactly the functions below and runs curl_global_init once.
 *
 * The function pointers have libcurl's own prototypes (from <curl/curl.h>, which is only
 * needed for the types and constants). */
#ifndef TIDE_CURL_LAZY_H
#define TIDE_CURL_LAZY_H

#include <curl/curl.h>
#include <stddef.h>

typedef struct curl_lazy_api {
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *e, CURLoption opt, ...);
    CURLcode (*easy_getinfo)(CURL *e, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *e);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
    CURLMcode (*multi_add_handle)(CURLM *m, CURL *e);
    CURLMcode (*multi_remove_handle)(CURLM *m, CURL *e);
    CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t fd, int ev_bitmask, int *running);
    CURLMcode (*multi_assign)(CURLM *m, curl_socket_t fd, void *p);
    CURLMsg *(*multi_info_read)(CURLM *m, int *msgs_in_queue);
    CURLMcode (*multi_cleanup)(CURLM *m);
} curl_lazy_api;

/* Loads libcurl and initialises it (once per process; later calls are cheap). Returns the
 * function table, or NULL with err saying what failed (library not installed, a function
 * missing from an old libcurl, curl_global_init failing). Not thread-safe: call from the
 * agent's loop thread. */
const curl_lazy_api *curl_lazy_get(char *err, size_t errlen);

#endif
