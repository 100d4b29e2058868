/* curl_lazy.c: dlopen'ed libcurl for warm-ups (see curl_lazy.h). */
#include "actions/curl_lazy.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#define CURL_LAZY_SONAME "libcurl.so.4"

static curl_lazy_api api;
static int loaded;           /* 1: api is complete and curl_global_init succeeded */
static char load_error[256]; /* a failure is remembered: dlopen is not retried per warm-up */

/* Resolves one symbol into a function pointer (object and function pointers are converted
 * through memcpy, as POSIX dlsym users must in ISO C). */
static int resolve(void *lib, const char *name, void *slot, size_t size) {
    void *sym = dlsym(lib, name);
    if (!sym) {
        snprintf(load_error, sizeof load_error, "warm-up: %s has no %s (libcurl too old?)",
                 CURL_LAZY_SONAME, name);
        return -1;
    }
    memcpy(slot, &sym, size);
    return 0;
}

#define RESOLVE(lib, field, name) resolve((lib), (name), &api.field, sizeof api.field)

static void load(void) {
    void *lib = dlopen(CURL_LAZY_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error, "warm-up: cannot load %s (install libcurl4): %s",
                 CURL_LAZY_SONAME, why ? why : "unknown error");
        return;
    }
    CURLcode (*global_init)(long flags) = NULL;
    if (RESOLVE(lib, easy_init, "curl_easy_init") ||
        RESOLVE(lib, easy_setopt, "curl_easy_setopt") ||
        RESOLVE(lib, easy_getinfo, "curl_easy_getinfo") ||
        RESOLVE(lib, easy_cleanup, "curl_easy_cleanup") ||
        RESOLVE(lib, multi_init, "curl_multi_init") ||
        RESOLVE(lib, multi_setopt, "curl_multi_setopt") ||
        RESOLVE(lib, multi_add_handle, "curl_multi_add_handle") ||
        RESOLVE(lib, multi_remove_handle, "curl_multi_remove_handle") ||
        RESOLVE(lib, multi_socket_action, "curl_multi_socket_action") ||
        RESOLVE(lib, multi_assign, "curl_multi_assign") ||
        RESOLVE(lib, multi_info_read, "curl_multi_info_read") ||
        RESOLVE(lib, multi_cleanup, "curl_multi_cleanup") ||
        resolve(lib, "curl_global_init", &global_init, sizeof global_init)) {
        dlclose(lib);
        return;
    }
    if (global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(load_error, sizeof load_error, "warm-up: curl_global_init failed");
        return; /* the library stays loaded: libcurl may have half-initialised itself */
    }
    /* Kept loaded for the life of the process: libcurl's global state cannot be unloaded. */
    loaded = 1;
}

const curl_lazy_api *curl_lazy_get(char *err, size_t errlen) {
    if (!loaded && !load_error[0]) load();
    if (loaded) return &api;
    if (err && errlen) snprintf(err, errlen, "%s", load_error);
    return NULL;
}
