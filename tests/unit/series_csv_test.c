/* series_csv_test.c: CSV loading: errors name the line and problem; repairs are reported. */
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
