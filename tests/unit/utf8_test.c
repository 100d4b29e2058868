/* utf8_test.c: UTF-8 validation, U+FFFD repair and display width. */
#include "test.h"
#include "utf8.h"

#include <stdlib.h>

TEST(utf8_valid_text_is_kept) {
    const char *s = "plain caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80";
    char *o = utf8_sanitize(s);
    T_EQ_STR(o, s);
    free(o);
    T_EQ_INT(utf8_width(s), 14);
}

TEST(utf8_invalid_bytes_become_replacement) {
    /* a Latin-1 e-acute (0xE9), a lone continuation, an overlong '/', a surrogate, a truncated
     * 3-byte sequence at the end */
    char *o = utf8_sanitize("a\xE9"
                            "b\x80"
                            "c\xC0\xAF"
                            "d\xED\xA0\x80"
                            "e\xE2\x82");
    T_EQ_STR(o, "a\xEF\xBF\xBD"
                "b\xEF\xBF\xBD"
                "c\xEF\xBF\xBD\xEF\xBF\xBD"
                "d\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                "e\xEF\xBF\xBD\xEF\xBF\xBD");
    free(o);
    T_EQ_INT(utf8_width("a\xE9z"), 3);
}

TEST(utf8_seq_len_bounds) {
    T_EQ_INT(utf8_seq_len((const unsigned char *)"\xF4\x8F\xBF\xBF", 4), 4); /* U+10FFFF */
    T_EQ_INT(utf8_seq_len((const unsigned char *)"\xF4\x90\x80\x80", 4), 0); /* above */
    T_EQ_INT(utf8_seq_len((const unsigned char *)"\xE0\x80\x80", 3), 0);     /* overlong */
    T_EQ_INT(utf8_seq_len((const unsigned char *)"\xC3\xA9", 1), 0);         /* truncated */
    T_EQ_INT(utf8_seq_len((const unsigned char *)"", 0), 0);
}
