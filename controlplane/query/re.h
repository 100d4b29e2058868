/* re.h: regular expressions with RE2 syntax and RE2's linear-time guarantee (a thin C shim
 * over the RE2 C++ library, re.cc), as Prometheus matches labels: fully anchored, `.` matching
 * a newline too ("^(?s:PATTERN)$"). Matching time is linear in the subject's length whatever
 * the pattern (no backtracking), and a compiled program's memory is capped (TIDE_RE_MAX_MEM),
 * so a hostile pattern cannot stall a thread or exhaust memory.
 *
 * Thread-safe: a compiled tide_re may be matched from several threads at once. */
#ifndef TIDE_RE_H
#define TIDE_RE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TIDE_RE_MAX_PATTERN 4096   /* bytes of pattern accepted */
#define TIDE_RE_MAX_MEM (8u << 20) /* RE2's budget for one compiled program */
#define TIDE_RE_MAX_GROUPS 64      /* capture groups usable by tide_re_match_groups */

typedef struct tide_re tide_re;

/* Compiles pattern (NUL-terminated) fully anchored. NULL with err saying why RE2 refused it
 * ("missing closing ): ...", "pattern too large - compile failed", ...), or "out of memory". */
tide_re *tide_re_new(const char *pattern, char *err, size_t errlen);
void tide_re_free(tide_re *re);
/* 1 when the whole of s[0..len) matches, else 0. */
int tide_re_match(const tide_re *re, const char *s, size_t len);
/* Number of capture groups in the pattern. */
int tide_re_groups(const tide_re *re);
/* Index of the named group (?P<name>...), or -1. */
int tide_re_group_index(const tide_re *re, const char *name);
/* Whole-string match filling start[i]/len[i] for groups 0..n-1 (group 0 = the whole match;
 * start[i] = -1 for a group that did not take part). n <= TIDE_RE_MAX_GROUPS + 1. 1 or 0. */
int tide_re_match_groups(const tide_re *re, const char *s, size_t slen, int n, long *start,
                         long *len);

#ifdef __cplusplus
}
#endif

#endif
