/* series_csv_test.c: CSV loading: errors name the line and problem; repairs are reported. */
#include "offline/csv_time.h"
#include "offline/series_csv.h"
#include "test.h"

#include <errno.h>
#include <math.h>

static int parse(const char *text, const series_csv_opts *o, series_csv *s, char *err) {
    return series_csv_parse(text, strlen(text), o, s, err, 256);
}

TEST(csv_regular_with_header) {
    series_csv s;
    char err[256] = "";
    T_EQ_INT(parse("timestamp,value\r\n600,1\r\n660,2.5\r\n720,3\r\n", NULL, &s, err), 0);
    T_EQ_INT(s.n, 3);
    T_EQ_INT(s.t0, 600);
    T_EQ_INT(s.step, 60);
    T_NEAR(s.y[1], 2.5, 1e-12);
    T_EQ_INT(s.stats.filled + s.stats.duplicates + s.stats.snapped, 0);
    series_csv_fini(&s);
}

/* Quoted fields, as spreadsheet and monitoring exports write them: a quoted header, quoted
 * timestamps, and rows whose timestamp and value are both quoted (the line then starts and ends
 * with a quote of two different fields), with CRLF line ends. */
TEST(csv_quoted_fields_each_unquoted) {
    series_csv s;
    char err[256] = "";
    T_EQ_INT(parse("\"TimeStamp\",\"Value\"\r\n"
                   "\"2018-04-25T00:00:00Z\",\"6034.5\"\r\n"
                   "\"2018-04-25T00:01:00Z\",17\r\n"
                   " \"2018-04-25T00:02:00Z\" , \"2.25\" \r\n"
                   "\"1524614580\",\"1\"\r\n",
                   NULL, &s, err),
             -EINVAL); /* one form per file still holds inside quotes */
    T_ASSERT(strstr(err, "line 5: timestamp \"1524614580\" is unix seconds") != NULL);
    T_EQ_INT(parse("\"TimeStamp\",\"Value\"\r\n"
                   "\"2018-04-25T00:00:00Z\",\"6034.5\"\r\n"
                   "\"2018-04-25T00:01:00Z\",17\r\n"
                   " \"2018-04-25T00:02:00Z\" , \"2.25\" \r\n",
                   NULL, &s, err),
             0);
    T_EQ_INT(s.t0, 1524614400);
    T_EQ_INT(s.step, 60);
    T_EQ_INT(s.n, 3);
    T_NEAR(s.y[0], 6034.5, 1e-12);
    T_NEAR(s.y[1], 17, 1e-12);
    T_NEAR(s.y[2], 2.25, 1e-12);
    series_csv_fini(&s);
    T_EQ_INT(parse("\"600\",\"1\"\n\"660\",\"2\"\n", NULL, &s, err), 0);
    T_EQ_INT(s.t0, 600);
    T_EQ_INT(s.n, 2);
    series_csv_fini(&s);
    /* a quote that does not close its own field is still an error naming the text */
    T_EQ_INT(parse("600,1\n\"660,2\"\n", NULL, &s, err), -EINVAL);
    T_ASSERT(strstr(err, "line 2: timestamp \"\"660\"") != NULL);
}

TEST(csv_unsorted_names_line) {
    series_csv s;
    char err[256] = "";
    T_EQ_INT(parse("timestamp,value\n600,1\n660,2\n630,3\n", NULL, &s, err), -EINVAL);
    T_ASSERT(strstr(err, "line 4") != NULL);
    T_ASSERT(strstr(err, "not sorted") != NULL);
}

/* --sort: rows out of order are sorted and reported; equal timestamps keep their file order
 * (so --duplicates mean/sum combine the same rows as in a sorted file); the repair summary names
 * the first row found out of order. */
TEST(csv_sort_option_sorts_and_reports) {
    series_csv s;
    char err[256] = "";
    series_csv_opts o = {.sort = 1};
    T_EQ_INT(parse("timestamp,value\n600,1\n720,4\n660,2\n780,5\n660,3\n840,6\n", &o, &s, err), 0);
    T_EQ_INT(s.n, 5);
    T_EQ_INT(s.t0, 600);
    T_EQ_INT(s.step, 60);
    T_NEAR(s.y[0], 1, 1e-12);
    T_NEAR(s.y[1], 5, 1e-12); /* 2 + 3: the duplicate pair, summed */
    T_NEAR(s.y[2], 4, 1e-12);
    T_NEAR(s.y[4], 6, 1e-12);
    T_EQ_INT(s.stats.sorted, 2);
    T_EQ_INT(s.stats.first_sort_line, 4);
    T_EQ_INT(s.stats.duplicates, 1);
    char rep[256];
    series_csv_describe_repairs(&s.stats, rep, sizeof rep);
    T_ASSERT(strstr(rep, "2 rows out of timestamp order sorted (first on line 4)") != NULL);
    T_ASSERT(strstr(rep, "1 duplicate row combined") != NULL);
    series_csv_fini(&s);
    /* a sorted file is untouched by the option */
    T_EQ_INT(parse("600,1\n660,2\n720,3\n", &o, &s, err), 0);
    T_EQ_INT(s.stats.sorted, 0);
    series_csv_describe_repairs(&s.stats, rep, sizeof rep);
    T_ASSERT(strcmp(rep, "no repairs") == 0);
    series_csv_fini(&s);
    /* it is asked for explicitly, so --strict does not cancel it (strict still refuses gaps) */
    o.strict = 1;
    T_EQ_INT(parse("660,2\n600,1\n720,3\n", &o, &s, err), 0);
    T_NEAR(s.y[0], 1, 1e-12);
    T_EQ_INT(s.stats.sorted, 1);
    series_csv_fini(&s);
    T_EQ_INT(parse("660,2\n600,1\n840,3\n", &o, &s, err), -EINVAL);
    /* without the option the error is unchanged */
    T_EQ_INT(parse("600,1\n660,2\n630,3\n", NULL, &s, err), -EINVAL);
    T_ASSERT(strstr(err, "line 3: timestamps are not sorted (630 comes after 660 on line 2)") !=
             NULL);
}

TEST(csv_non_numeric_names_line) {
    series_csv s;
    char err[256] = "";
    T_EQ_INT(parse("timestamp,value\n600,1\n660,abc\n", NULL, &s, err), -EINVAL);
    T_ASSERT(strstr(err, "line 3") != NULL);
    T_ASSERT(strstr(err, "not a finite number") != NULL);
    T_EQ_INT(parse("600,1\n66x0,3\n", NULL, &s, err), -EINVAL);
    T_ASSERT(strstr(err, "line 2: timestamp") != NULL);
    T_EQ_INT(parse("600,1\n660,nan\n", NULL, &s, err), -EINVAL);
    T_ASSERT(strstr(err, "line 2") != NULL);
    T_EQ_INT(parse("600,1\n660\n", NULL, &s, err), -EINVAL);
    T_ASSERT(strstr(err, "line 2") != NULL);
}

TEST(csv_too_short) {
    series_csv s;
    char err[256] = "";
    series_csv_opts o = {.min_rows = 10};
    T_EQ_INT(parse("timestamp,value\n600,1\n660,2\n720,3\n", &o, &s, err), -EINVAL);
    T_ASSERT(strstr(err, "too short") != NULL);
    T_ASSERT(strstr(err, "line 4") != NULL);
    T_EQ_INT(parse("timestamp,value\n", NULL, &s, err), -EINVAL);
    T_ASSERT(strstr(err, "too short") != NULL);
}

TEST(csv_duplicates_summed_or_averaged_or_refused) {
    series_csv s;
    char err[256] = "";
    const char *text = "t,v\n0,1\n60,2\n60,4\n120,3\n180,1\n";
    T_EQ_INT(parse(text, NULL, &s, err), 0);
    T_EQ_INT(s.n, 4);
    T_NEAR(s.y[1], 6, 1e-12);
    T_EQ_INT(s.stats.duplicates, 1);
    T_EQ_INT(s.stats.first_dup_line, 4);
    series_csv_fini(&s);
    series_csv_opts mean = {.dup = SERIES_DUP_MEAN};
    T_EQ_INT(parse(text, &mean, &s, err), 0);
    T_NEAR(s.y[1], 3, 1e-12);
    series_csv_fini(&s);
    series_csv_opts strict = {.strict = 1};
    T_EQ_INT(parse(text, &strict, &s, err), -EINVAL);
    T_ASSERT(strstr(err, "line 4: duplicate timestamp 60") != NULL);
}

TEST(csv_gaps_filled_and_reported) {
    series_csv s;
    char err[256] = "";
    const char *text = "t,v\n0,1\n60,2\n120,3\n300,6\n360,1\n420,1\n";
    T_EQ_INT(parse(text, NULL, &s, err), 0);
    T_EQ_INT(s.n, 8);
    T_NEAR(s.y[3], 4, 1e-12);
    T_NEAR(s.y[4], 5, 1e-12);
    T_EQ_INT(s.stats.filled, 2);
    T_EQ_INT(s.stats.gaps, 1);
    T_EQ_INT(s.stats.first_gap_line, 5);
    char desc[256];
    series_csv_describe_repairs(&s.stats, desc, sizeof desc);
    T_ASSERT(strstr(desc, "2 missing values filled") != NULL);
    series_csv_fini(&s);
    series_csv_opts strict = {.strict = 1};
    T_EQ_INT(parse(text, &strict, &s, err), -EINVAL);
    T_ASSERT(strstr(err, "line 5: 2 missing timestamps") != NULL);
}

TEST(csv_off_grid_snapped) {
    series_csv s;
    char err[256] = "";
    T_EQ_INT(parse("0,1\n300,2\n590,3\n900,4\n1200,5\n", NULL, &s, err), 0);
    T_EQ_INT(s.step, 300);
    T_EQ_INT(s.n, 5);
    T_NEAR(s.y[2], 3, 1e-12);
    T_EQ_INT(s.stats.snapped, 1);
    T_EQ_INT(s.stats.first_snap_line, 3);
    series_csv_fini(&s);
}

TEST(csv_huge_gap_refused) {
    series_csv s;
    char err[256] = "";
    T_EQ_INT(parse("0,1\n60,2\n6000000000,3\n", NULL, &s, err), -EINVAL);
    T_ASSERT(strstr(err, "line 3") != NULL);
}

TEST(csv_load_missing_file_names_path) {
    series_csv s;
    char err[256] = "";
    T_EQ_INT(series_csv_load("/nonexistent/x.csv", NULL, &s, err, sizeof err), -ENOENT);
    T_ASSERT(strstr(err, "/nonexistent/x.csv") != NULL);
}

TEST(csv_loads_nasa) {
    const char *p = test_shared_data("nasa_http_1m.csv");
    if (!p) {
        test_skip("no shared data");
        return;
    }
    series_csv s;
    char err[256] = "";
    T_EQ_INT(series_csv_load(p, NULL, &s, err, sizeof err), 0);
    T_EQ_INT(s.n, 84332);
    T_EQ_INT(s.step, 60);
    T_EQ_INT(s.t0, 804571200);
    series_csv_fini(&s);
}

TEST(csv_header_after_blank_lines_and_comments) {
    series_csv s;
    char err[256] = "";
    T_EQ_INT(parse("\n# exported\ntimestamp,value\n0,1\n60,2\n", NULL, &s, err), 0);
    T_EQ_INT(s.n, 2);
    series_csv_fini(&s);
    /* a second non-numeric line is not a header */
    T_EQ_INT(parse("timestamp,value\nts,v\n0,1\n60,2\n", NULL, &s, err), -EINVAL);
    T_ASSERT(strstr(err, "line 2") != NULL);
}

/* Values near DBL_MAX (found by fuzz_series_csv): interpolating a gap stays finite, and
 * duplicates whose sum overflows are refused with the line; their mean is still fine. */
TEST(csv_huge_values_stay_finite) {
    series_csv s;
    char err[256] = "";
    T_EQ_INT(parse("0,1\n60,2\n30690,125e306\n", NULL, &s, err), 0);
    for (size_t i = 0; i < s.n; i++)
        T_ASSERT(isfinite(s.y[i]));
    series_csv_fini(&s);
    const char *dup = "0,1\n60,1e308\n60,1e308\n120,3\n";
    T_EQ_INT(parse(dup, NULL, &s, err), -EINVAL);
    T_ASSERT(strstr(err, "line 3: duplicate timestamp 60: the values' sum is out of range") !=
             NULL);
    series_csv_opts mean = {.dup = SERIES_DUP_MEAN};
    T_EQ_INT(parse(dup, &mean, &s, err), 0);
    T_NEAR(s.y[1], 1e308, 1e295);
    series_csv_fini(&s);
}

/* Epoch milli-, micro- and nanoseconds (JavaScript, Java, InfluxDB exports) are told from
 * seconds by their size and read as such, one unit per file; the unit is kept for the report. */
TEST(csv_epoch_milliseconds_and_finer_read_by_size) {
    series_csv s;
    char err[256] = "";
    /* 2015-02-26 21:40:00 UTC every 5 minutes, in milliseconds; one row half a second off */
    T_EQ_INT(parse("ts,v\n1424986800000,1\n1424987100000,2\n1424987400499,3\n", NULL, &s, err), 0);
    T_EQ_INT(s.t0, 1424986800);
    T_EQ_INT(s.step, 300);
    T_EQ_INT(s.n, 3);
    T_EQ_INT(s.stats.time_unit, 1);
    T_ASSERT(strcmp(series_csv_time_unit(&s.stats), "milliseconds") == 0);
    T_EQ_INT(s.stats.snapped, 0); /* rounded to the second, as fractional seconds are */
    series_csv_fini(&s);
    T_EQ_INT(parse("1424986800000000,1\n1424986860000000,2\n", NULL, &s, err), 0);
    T_EQ_INT(s.step, 60);
    T_ASSERT(strcmp(series_csv_time_unit(&s.stats), "microseconds") == 0);
    series_csv_fini(&s);
    T_EQ_INT(parse("1424986800000000000,1\n1424986860000000000,2\n", NULL, &s, err), 0);
    T_EQ_INT(s.t0, 1424986800);
    T_EQ_INT(s.step, 60);
    T_ASSERT(strcmp(series_csv_time_unit(&s.stats), "nanoseconds") == 0);
    series_csv_fini(&s);
    /* seconds stay seconds, up to the year 5138 */
    T_EQ_INT(parse("1424986800,1\n1424986860,2\n", NULL, &s, err), 0);
    T_EQ_INT(s.stats.time_unit, 0);
    T_ASSERT(strcmp(series_csv_time_unit(&s.stats), "seconds") == 0);
    series_csv_fini(&s);
    /* one unit per file: a row in seconds among milliseconds is named, not misread */
    T_EQ_INT(parse("1424986800000,1\n1424987100000,2\n1424987400,3\n", NULL, &s, err), -EINVAL);
    T_ASSERT(strstr(err, "line 3: timestamp 1424987400 reads as seconds but line 1's as "
                         "milliseconds (one unit per file)") != NULL);
    /* unsorted milliseconds are named as date-times, not as seconds the file never held */
    T_EQ_INT(parse("1424987100000,1\n1424986800000,2\n", NULL, &s, err), -EINVAL);
    T_ASSERT(strstr(err, "line 2: timestamps are not sorted (2015-02-26") != NULL);
}

/* The calendar arithmetic against known day numbers (no mktime, no TZ). */
TEST(csv_days_from_civil_known_days) {
    T_EQ_INT(csv_days_from_civil(1970, 1, 1), 0);
    T_EQ_INT(csv_days_from_civil(1969, 12, 31), -1);
    T_EQ_INT(csv_days_from_civil(2000, 3, 1), 11017);
    T_EQ_INT(csv_days_from_civil(1900, 3, 1), -25508);
    T_EQ_INT(csv_days_from_civil(1, 1, 1), -719162);
    T_EQ_INT(csv_days_from_civil(0, 3, 1), -719468);
    T_EQ_INT(csv_days_from_civil(9999, 12, 31), 2932896);
    /* every day of 1999-2001 follows the one before */
    int64_t prev = csv_days_from_civil(1998, 12, 31);
    for (unsigned y = 1999; y <= 2001; y++)
        for (unsigned m = 1; m <= 12; m++)
            for (unsigned d = 1; d <= 31; d++) {
                char f[16];
                int64_t t;
                uint32_t ns;
                char why[192];
                snprintf(f, sizeof f, "%04u-%02u-%02u", y, m, d);
                int k = csv_time_parse(f, strlen(f), &t, &ns, why, sizeof why);
                if (k != 1) continue; /* a day past the month's end */
                T_EQ_INT(t, (prev + 1) * 86400);
                prev++;
            }
    T_EQ_INT(prev, csv_days_from_civil(2001, 12, 31));
    /* written back: every 7th day of 0000-9999 and both ends, through parse and format */
    char buf[32];
    for (int64_t day = csv_days_from_civil(0, 1, 1); day <= csv_days_from_civil(9999, 12, 31);
         day += 7) {
        int64_t t = day * 86400 + 86399, back;
        uint32_t ns;
        char why[192];
        csv_time_format(t, buf, sizeof buf);
        T_EQ_INT(csv_time_parse(buf, strlen(buf), &back, &ns, why, sizeof why), 1);
        T_EQ_INT(back, t);
    }
    csv_time_format(0, buf, sizeof buf);
    T_EQ_STR(buf, "1970-01-01 00:00:00");
    csv_time_format(-1, buf, sizeof buf);
    T_EQ_STR(buf, "1969-12-31 23:59:59");
    csv_time_format(csv_days_from_civil(10000, 1, 1) * 86400, buf, sizeof buf);
    T_EQ_STR(buf, "253402300800");
}

/* Real exports load as they come: NAB's "YYYY-MM-DD HH:MM:SS" (UTC, on a grid 53 s past the
 * minute), and the ISO 8601 forms; every form names the same instant. */
TEST(csv_dates_load_as_unix_seconds) {
    series_csv s;
    char err[256] = "";
    T_EQ_INT(parse("timestamp,value\n2015-02-26 21:42:53,5\n2015-02-26 21:47:53,7\n"
                   "2015-02-26 21:52:53,9\n",
                   NULL, &s, err),
             0);
    T_EQ_INT(s.t0, 1424986973);
    T_EQ_INT(s.step, 300);
    T_EQ_INT(s.n, 3);
    T_EQ_INT(s.stats.snapped + s.stats.filled + s.stats.duplicates, 0);
    T_NEAR(s.y[2], 9, 1e-12);
    series_csv_fini(&s);
    static const char *same[] = {
        "2015-02-26 21:42:53",           "2015-02-26T21:42:53",       "2015-02-26t21:42:53z",
        "2015-02-26T21:42:53Z",          "2015-02-26T21:42:53.4Z",    "2015-02-26T21:42:52.5",
        "2015-02-26T21:42:52.500000001", "2015-02-26T22:42:53+01:00", "2015-02-26 21:42:53+00:00",
        "2015-02-27T03:12:53+0530",      "2015-02-26T20:42:53-01",    "2015-02-26 21:42:53 +0000",
        "\"2015-02-26 21:42:53\"",       "2015-02-26T21:42:53-00:00",
    };
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        char text[160];
        snprintf(text, sizeof text, "%s,1\n2015-02-26T21:47:53Z,2\n", same[i]);
        T_EQ_INT(parse(text, NULL, &s, err), 0);
        T_EQ_INT(s.t0, 1424986973);
        T_EQ_INT(s.n, 2);
        series_csv_fini(&s);
    }
    /* a UTF-8 byte order mark (spreadsheet exports) before the first row, with no header */
    T_EQ_INT(parse("\xEF\xBB\xBF"
                   "2015-02-26 21:42:53,1\n2015-02-26 21:47:53,2\n",
                   NULL, &s, err),
             0);
    T_EQ_INT(s.t0, 1424986973);
    T_EQ_INT(s.n, 2);
    series_csv_fini(&s);
    /* minutes without seconds, a date alone (midnight UTC), a leap day, a leap second */
    T_EQ_INT(parse("2015-02-26 21:42,1\n2015-02-26 21:47,2\n", NULL, &s, err), 0);
    T_EQ_INT(s.t0, 1424986920);
    series_csv_fini(&s);
    T_EQ_INT(parse("2016-02-28,1\n2016-02-29,2\n2016-03-01,3\n", NULL, &s, err), 0);
    T_EQ_INT(s.t0, 1456617600);
    T_EQ_INT(s.step, 86400);
    T_EQ_INT(s.n, 3);
    series_csv_fini(&s);
    T_EQ_INT(parse("2016-12-31 23:59:00,1\n2016-12-31 23:59:60,2\n", NULL, &s, err), 0);
    T_EQ_INT(s.t0 + s.step, csv_days_from_civil(2017, 1, 1) * 86400);
    series_csv_fini(&s);
    /* before 1970 and at the ends of the range */
    T_EQ_INT(parse("1969-12-31 23:58:59,1\n1969-12-31 23:59:59,2\n", NULL, &s, err), 0);
    T_EQ_INT(s.t0, -61);
    series_csv_fini(&s);
    T_EQ_INT(parse("0000-01-01,1\n9999-12-31T23:59:59Z,2\n", NULL, &s, err), 0);
    T_EQ_INT(s.t0, csv_days_from_civil(0, 1, 1) * 86400);
    T_EQ_INT(s.t0 + s.step, (int64_t)253402300799);
    series_csv_fini(&s);
}

/* Anything else is an error naming the line, the text and what is wrong; a first line that
 * starts like a date is data, not a header. */
TEST(csv_dates_refused_with_line_and_reason) {
    series_csv s;
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"t,v\n2015-02-26 21:42:53,1\n2015-02-30 00:00:00,2\n",
         "line 3: timestamp \"2015-02-30 00:00:00\" is not a valid date-time: day 30 is not in "
         "2015-02 (28 days)"},
        {"2015-02-29,1\n2015-03-01,2\n",
         "line 1: timestamp \"2015-02-29\" is not a valid date-time"},
        {"2015-13-01 00:00:00,1\n", "month 13 is not 01-12"},
        {"2015-02-26 24:00:00,1\n", "hour 24 is not 00-23"},
        {"2015-02-26 21:60:00,1\n", "minute 60 is not 00-59"},
        {"2015-02-26 21:42:61,1\n", "second 61 is not 00-60"},
        {"2015-02-26 21:42:53.1234567891,1\n", "more than 9 fractional digits"},
        {"2015-02-26 21:42:53.,1\n", "expected a digit after '.'"},
        {"2015-02-26 21:42:53 PST,1\n", "'P' at character 21, expected 'Z', an offset"},
        {"2015-02-26 21:42:53+24:00,1\n", "offset hour 24 is not 00-23"},
        {"2015-02-26 21:42:53+01:60,1\n", "offset minute 60 is not 00-59"},
        {"2015-02-26 21:42:53+1,1\n", "expected a 2-digit offset hour"},
        {"2015-02-26 21:42:53Zx,1\n", "'x' at character 21, expected the end"},
        {"2015-02-26  21:42:53,1\n", "expected a 2-digit hour"},
        {"2015-02-26_21:42:53,1\n", "'_' at character 11, expected 'T' or a space"},
        {"2015-2-26,1\n", "expected a 2-digit month"},
        {"2015-02-26 21,1\n", "ends after 13 characters, expected ':'"},
        {"2015-02-26 21:42:5,1\n", "expected 2-digit seconds"},
        {"2015-02-26 21:42:53\x01,1\n", "byte 0x01 at character 20"},
        {"t,v\n0,1\n02/26/2015 21:42:53,2\n",
         "line 3: timestamp \"02/26/2015 21:42:53\" is neither unix seconds nor a date-time"},
        {"2015-02-26 21:42:53,1\n1424987273,2\n",
         "line 2: timestamp \"1424987273\" is unix seconds but line 1's is a date-time (one form "
         "per file)"},
        {"1424986973,1\n2015-02-26 21:47:53,2\n", "is a date-time but line 1's is unix seconds"},
        {"2015-02-26 21:47:53,1\n2015-02-26T22:42:53+01:00,2\n",
         "line 2: timestamps are not sorted (2015-02-26 21:42:53 comes after 2015-02-26 21:47:53 "
         "on line 1)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char err[256] = "";
        T_EQ_INT(parse(bad[i].text, NULL, &s, err), -EINVAL);
        if (!strstr(err, bad[i].want)) fprintf(stderr, "case %zu: %s\n", i, err);
        T_ASSERT(strstr(err, bad[i].want) != NULL);
    }
}

/* A NAB-style export with its real defects (file order broken by an hour written twice,
 * several rows at one off-grid instant, a missing stretch) loads with the documented options
 * --sort --duplicates mean, every repair reported. */
TEST(csv_nab_style_export_loads_with_documented_repairs) {
    const char *text = "timestamp,value\n"
                       "2014-03-09 01:01:00,10\n"
                       "2014-03-09 01:06:00,12\n"
                       "2014-03-09 01:11:00,14\n"
                       "2014-03-09 01:06:00,20\n" /* the hour written again */
                       "2014-03-09 01:11:00,22\n"
                       "2014-03-09 01:16:00,16\n"
                       "2014-03-09 01:20:00,30\n" /* off the :01/:06 grid, twice */
                       "2014-03-09 01:20:00,40\n"
                       "2014-03-09 01:36:00,18\n"; /* 01:26 and 01:31 missing */
    series_csv s;
    char err[256] = "";
    T_EQ_INT(parse(text, NULL, &s, err), -EINVAL);
    T_ASSERT(strstr(err, "line 5: timestamps are not sorted") != NULL);
    series_csv_opts o = {.sort = 1, .dup = SERIES_DUP_MEAN};
    T_EQ_INT(parse(text, &o, &s, err), 0);
    T_EQ_INT(s.step, 300);
    T_EQ_INT(s.t0, 1394326860);
    T_EQ_INT(s.n, 8);
    T_NEAR(s.y[1], 16, 1e-12); /* (12 + 20) / 2 */
    T_NEAR(s.y[2], 18, 1e-12);
    T_NEAR(s.y[4], 35, 1e-12); /* the two 01:20 rows, moved to 01:21 */
    T_NEAR(s.y[5], 35 + (18 - 35) / 3.0, 1e-9);
    char rep[512];
    series_csv_describe_repairs(&s.stats, rep, sizeof rep);
    T_ASSERT(strstr(rep, "1 row out of timestamp order sorted (first on line 5)") != NULL);
    T_ASSERT(strstr(rep, "2 off-grid timestamps moved to the grid (first on line 8)") != NULL);
    T_ASSERT(strstr(rep, "3 duplicate rows combined") != NULL);
    T_ASSERT(strstr(rep, "2 missing values filled by interpolation in 1 gap") != NULL);
    series_csv_fini(&s);
}
