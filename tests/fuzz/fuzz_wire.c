/* fuzz_wire.c: libFuzzer target for the wire frame decoder (shared/wire.c): the input is
 * streamed in uneven chunks into one decoder; every decoded frame is taken apart with the
 * accessors the daemons use (samples runs, series labels, command args to JSON). */
#include "wire.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void use_frame(const wire_msg *m) {
    static int64_t ts[4096];
    static double v[4096];
    uint32_t id;
    size_t n;
    switch (m->t) {
    case WIRE_SAMPLES:
        for (uint32_t i = 0; i < m->u.samples.nruns; i++)
            (void)wire_samples_run(m, i, &id, ts, v, 4096, &n);
        break;
    case WIRE_SERIES_DEF:
        for (uint32_t i = 0; i < m->u.series_def.n; i++) {
            const msgpack_object *l;
            (void)wire_series_def_get(m, i, &id, &l);
        }
        break;
    case WIRE_COMMAND:
        if (m->u.command.args) cJSON_Delete(wire_object_to_json(m->u.command.args));
        /* a fence that decoded is a valid one (PROTOCOL.md "Fencing") */
        if (m->u.command.workload.len &&
            !wire_workload_valid(m->u.command.workload.p, m->u.command.workload.len))
            abort();
        if (!m->u.command.workload.len && m->u.command.fence) abort();
        break;
    case WIRE_COMMAND_RESULT:
        if (m->u.command_result.result)
            cJSON_Delete(wire_object_to_json(m->u.command_result.result));
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    wire_decoder d;
    if (wire_decoder_init(&d, 64 * 1024) < 0) return 0;
    /* first byte chooses the chunk size so that frame boundaries fall everywhere */
    size_t chunk = size ? (size_t)(data[0] % 61) + 1 : 1;
    size_t off = size ? 1 : 0;
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk;
        if (wire_decoder_feed(&d, data + off, n) < 0) break;
        off += n;
        wire_msg m;
        int r;
        while ((r = wire_decoder_next(&d, &m)) == WIRE_FRAME)
            use_frame(&m);
        if (r == WIRE_ERROR) break;
    }
    wire_decoder_fini(&d);
    return 0;
}
