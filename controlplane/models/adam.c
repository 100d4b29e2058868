/* adam.c: the Adam optimizer step, generic and AVX2/FMA (picked at run time). */
#include "models/adam.h"

#include <math.h>

fc_adam_k fc__adam_consts(long t, float lr) {
    fc_adam_k k = {0.9f, 0.999f, 1e-8f, 0};
    if (t < 1) t = 1;
    float c1 = 1.0f - powf(k.b1, (float)t), c2 = 1.0f - powf(k.b2, (float)t);
    k.step = lr * sqrtf(c2) / c1;
    return k;
}

static void adam_generic(float *restrict p, const float *restrict g, float *restrict m,
                         float *restrict v, size_t len, fc_adam_k k) {
    for (size_t i = 0; i < len; i++) {
        float gi = g[i];
        float mi = k.b1 * m[i] + (1 - k.b1) * gi;
        float vi = k.b2 * v[i] + (1 - k.b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= k.step * mi / (sqrtf(vi) + k.eps);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx2,fma"))) static void adam_avx2(float *restrict p,
                                                          const float *restrict g,
                                                          float *restrict m, float *restrict v,
                                                          size_t len, fc_adam_k k) {
    __m256 b1 = _mm256_set1_ps(k.b1), c1 = _mm256_set1_ps(1 - k.b1);
    __m256 b2 = _mm256_set1_ps(k.b2), c2 = _mm256_set1_ps(1 - k.b2);
    __m256 eps = _mm256_set1_ps(k.eps), st = _mm256_set1_ps(k.step);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        __m256 gi = _mm256_loadu_ps(g + i);
        __m256 mi = _mm256_fmadd_ps(b1, _mm256_loadu_ps(m + i), _mm256_mul_ps(c1, gi));
        __m256 vi =
            _mm256_fmadd_ps(b2, _mm256_loadu_ps(v + i), _mm256_mul_ps(c2, _mm256_mul_ps(gi, gi)));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        __m256 upd = _mm256_div_ps(_mm256_mul_ps(st, mi), _mm256_add_ps(_mm256_sqrt_ps(vi), eps));
        _mm256_storeu_ps(p + i, _mm256_sub_ps(_mm256_loadu_ps(p + i), upd));
    }
    adam_generic(p + i, g + i, m + i, v + i, len - i, k);
}
#endif

void fc__adam(float *p, const float *g, float *m, float *v, size_t len, fc_adam_k k) {
#if defined(__x86_64__) && defined(__GNUC__)
    /* no cached flag: fits may run on several threads, and the check only reads a word */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        adam_avx2(p, g, m, v, len, k);
        return;
    }
#endif
    adam_generic(p, g, m, v, len, k);
}
