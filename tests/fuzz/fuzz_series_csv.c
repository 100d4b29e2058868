/* fuzz_series_csv.c: libFuzzer target for the CSV series loader
 * (controlplane/offline/series_csv.c): every input is parsed in the default (repairing), strict,
 * averaging and sorting modes; a parsed series is checked to be regular and finite, and its repairs
 * are described. The whole input is also read as one timestamp field by the ISO 8601 date-time
 * parser (offline/csv_time.c, which the CSV timestamps go through too): a date-time it accepts
 * must lie within the calendar range it documents and read back the same when written out. Seeds
 * with date-times are in the corpus. */
#include "offline/csv_time.h"
#include "offline/series_csv.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const series_csv_opts modes[5] = {{0},
                                             {.strict = 1},
                                             {.dup = SERIES_DUP_MEAN, .min_rows = 3},
                                             {.sort = 1},
                                             {.sort = 1, .strict = 1, .dup = SERIES_DUP_MEAN}};
    int64_t secs;
    uint32_t ns;
    char why[192];
    if (csv_time_parse((const char *)data, size, &secs, &ns, why, sizeof why) == 1) {
        /* 0000-01-01 00:00 +23:59 .. 9999-12-31 23:59:60 -23:59 */
        if (ns > 999999999u || secs < csv_days_from_civil(0, 1, 1) * 86400 - 86400 ||
            secs > csv_days_from_civil(9999, 12, 31) * 86400 + 2 * 86400)
            abort();
        /* written back (UTC) and read again: the same second, or a number when the offset
         * moved it out of 0000-9999 */
        char buf[32];
        int64_t back;
        csv_time_format(secs, buf, sizeof buf);
        int k = csv_time_parse(buf, strlen(buf), &back, &ns, why, sizeof why);
        if (k == 1 ? back != secs || ns != 0
                   : k != 0 || (secs >= csv_days_from_civil(0, 1, 1) * 86400 &&
                                secs < csv_days_from_civil(10000, 1, 1) * 86400))
            abort();
    }
    for (int k = 0; k < 5; k++) {
        series_csv s;
        char err[256];
        if (series_csv_parse((const char *)data, size, &modes[k], &s, err, sizeof err) != 0)
            continue;
        if (s.n < 2 || s.step <= 0) abort();
        for (size_t i = 0; i < s.n; i++)
            if (!isfinite(s.y[i])) abort();
        char desc[512];
        series_csv_describe_repairs(&s.stats, desc, sizeof desc);
        if (s.stats.time_unit > 3 || !series_csv_time_unit(&s.stats)[0]) abort();
        series_csv_fini(&s);
    }
    return 0;
}
