/* strbuf_test.c: shared/strbuf.c: appends across many doublings keep every byte in order,
 * the text stays NUL-terminated, take hands it over and resets, empty buffers. */
#include "strbuf.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

TEST(strbuf_appends_grow_and_keep_order) {
    strbuf b = STRBUF_INIT;
    for (int i = 0; i < 20000; i++)
        strbuf_printf(&b, "%d,", i);
    strbuf_append(&b, "end", 3);
    T_ASSERT(!b.oom);
    T_EQ_INT((int)strlen(b.p), (int)b.n);
    char *s = strbuf_take(&b, 0);
    T_ASSERT(s != NULL);
    T_ASSERT(b.p == NULL && b.n == 0);
    char *q = s;
    for (int i = 0; i < 20000; i++) {
        char want[16];
        int w = snprintf(want, sizeof want, "%d,", i);
        T_ASSERT(strncmp(q, want, (size_t)w) == 0);
        q += w;
    }
    T_EQ_STR(q, "end");
    free(s);
}

TEST(strbuf_empty_and_long_single_append) {
    strbuf b = STRBUF_INIT;
    T_ASSERT(strbuf_take(&b, 0) == NULL);
    char *e = strbuf_take(&b, 1);
    T_EQ_STR(e, "");
    free(e);
    char big[10000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    strbuf_printf(&b, "%s|%s", big, big);
    T_EQ_INT((int)b.n, 2 * 9999 + 1);
    T_ASSERT(b.p[9999] == '|' && b.p[b.n] == 0);
    strbuf_fini(&b);
    T_ASSERT(b.p == NULL);
}
