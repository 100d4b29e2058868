/* fuzz_anomaly_csv.c: libFuzzer target for the anomaly CSV runner
 * (controlplane/offline/anomaly_csv.c): every input is parsed; parsed rows must be sorted with
 * a positive step, and (up to 3000 rows) are run through the detector, whose scores must lie in
 * [0,1]. */
#include "models/anomaly.h"
#include "offline/anomaly_csv.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    anom_rows r;
    char err[256];
    if (anom_rows_parse((const char *)data, size, &r, err, sizeof err) != 0) return 0;
    if (r.n < 2 || r.step <= 0) abort();
    for (size_t i = 1; i < r.n; i++)
        if (r.t[i] < r.t[i - 1] || !isfinite(r.v[i])) abort();
    if (r.n <= 3000) {
        anom_result *res = calloc(r.n, sizeof *res);
        anom_opts o = {0};
        if (res && anom_rows_run(&r, &o, res, err, sizeof err) == 0)
            for (size_t i = 0; i < r.n; i++)
                if (!(res[i].score >= 0 && res[i].score <= 1)) abort();
        free(res);
        char ts[64];
        anom_rows_format_ts(&r, r.n - 1, ts, sizeof ts);
    }
    anom_rows_fini(&r);
    return 0;
}
