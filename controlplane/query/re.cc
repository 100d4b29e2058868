// re.cc: the C shim over RE2 (see re.h). Compiled as C++; exceptions never cross into C
// (RE2 reports errors through error(), and allocation failures are caught here).
#include "query/re.h"

#include <re2/re2.h>

#include <cstdio>
#include <cstring>
#include <new>
#include <string>

struct tide_re {
    RE2 *re;
};

extern "C" tide_re *tide_re_new(const char *pattern, char *err, size_t errlen) {
    try {
        size_t n = std::strlen(pattern);
        if (n > TIDE_RE_MAX_PATTERN) {
            std::snprintf(err, errlen, "pattern longer than %d bytes", TIDE_RE_MAX_PATTERN);
            return nullptr;
        }
        RE2::Options o;
        o.set_log_errors(false);
        o.set_max_mem(TIDE_RE_MAX_MEM);
        o.set_encoding(RE2::Options::EncodingUTF8);
        std::string anchored = "^(?s:";
        anchored.append(pattern, n);
        anchored += ")$";
        tide_re *r = new tide_re;
        r->re = new (std::nothrow) RE2(anchored, o);
        if (!r->re || !r->re->ok()) {
            std::snprintf(err, errlen, "%s", r->re ? r->re->error().c_str() : "out of memory");
            delete r->re;
            delete r;
            return nullptr;
        }
        return r;
    } catch (...) {
        std::snprintf(err, errlen, "out of memory");
        return nullptr;
    }
}

extern "C" void tide_re_free(tide_re *re) {
    if (!re) return;
    delete re->re;
    delete re;
}

extern "C" int tide_re_match(const tide_re *re, const char *s, size_t len) {
    try {
        return RE2::FullMatchN(re2::StringPiece(s, len), *re->re, nullptr, 0) ? 1 : 0;
    } catch (...) {
        return 0;
    }
}

extern "C" int tide_re_groups(const tide_re *re) {
    return re->re->NumberOfCapturingGroups();
}

extern "C" int tide_re_group_index(const tide_re *re, const char *name) {
    const auto &m = re->re->NamedCapturingGroups();
    auto it = m.find(name);
    return it == m.end() ? -1 : it->second;
}

extern "C" int tide_re_match_groups(const tide_re *re, const char *s, size_t slen, int n,
                                    long *start, long *len) {
    if (n < 1 || n > TIDE_RE_MAX_GROUPS + 1) return 0;
    try {
        re2::StringPiece sub[TIDE_RE_MAX_GROUPS + 1];
        re2::StringPiece text(s, slen);
        int ng = re->re->NumberOfCapturingGroups() + 1;
        int want = n < ng ? n : ng;
        if (!re->re->Match(text, 0, slen, RE2::ANCHOR_BOTH, sub, want)) return 0;
        for (int i = 0; i < n; i++) {
            if (i < want && sub[i].data()) {
                start[i] = (long)(sub[i].data() - s);
                len[i] = (long)sub[i].size();
            } else {
                start[i] = -1;
                len[i] = 0;
            }
        }
        return 1;
    } catch (...) {
        return 0;
    }
}
