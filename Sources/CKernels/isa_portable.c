// The portable kernels: the same element-wise code compiled for the target's baseline (SSE2 on
// x86-64, so a 16-lane vector is four XMM registers). No matrix products of its own: callers use
// BLAS, which picks its own kernels for old CPUs.
#include "kernel_table.h"

typedef float vf16 __attribute__((ext_vector_type(16)));

static inline __attribute__((always_inline)) vf16 load_partial(const float *p, int n) {
    vf16 v = 0.0f;
    for (int i = 0; i < n && i < 16; i++) v[i] = p[i];
    return v;
}

static inline void store_partial(vf16 v, float *p, int n) {
    for (int i = 0; i < n && i < 16; i++) p[i] = v[i];
}

#include "elementwise.inc"

static void transpose(int rows, int cols, const float *src, int lds, float *dst, int ldd) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) dst[(long)j * ldd + i] = src[(long)i * lds + j];
}

/// Defines `static double name(double seconds)`: `chains` independent chains of a separate
/// multiply and add (contraction off: the baseline has no FMA; 2 flops per lane) on `vector`
/// values of `lanes` floats, registers only, timed for at least `seconds`.
#define MULTIPLY_ADD_PEAK(name, target_attribute, vector, chains, lanes)                        \
    target_attribute static double name(double seconds) {                                       \
        vector acc[chains];                                                                       \
        for (int i = 0; i < chains; i++) acc[i] = (float)i;                                       \
        const vector x = 0.999999f, y = 1e-7f;                                                    \
        long iterations = 0, batch = 1 << 16;                                                     \
        const double t0 = bsvi_seconds_now();                                                     \
        double elapsed;                                                                           \
        do {                                                                                      \
            for (long it = 0; it < batch; it++) {                                                 \
                _Pragma("clang fp contract(off)")                                                 \
                for (int i = 0; i < chains; i++) acc[i] = acc[i] * x + y;                         \
            }                                                                                     \
            iterations += batch;                                                                  \
            elapsed = bsvi_seconds_now() - t0;                                                    \
        } while (elapsed < seconds);                                                              \
        float sink = 0;                                                                           \
        for (int i = 0; i < chains; i++)                                                          \
            for (int j = 0; j < lanes; j++) sink += acc[i][j];                                    \
        __asm__ volatile("" : : "r"(&sink) : "memory");                                           \
        return (double)iterations * chains * lanes * 2 / elapsed * 1e-9;                          \
    }

/// The portable path's yardstick on 16-lane vectors: 3 vectors = 12 SSE registers of
/// independent chains (all 16 registers would spill).
MULTIPLY_ADD_PEAK(fma_peak_gflops, , vf16, 3, 16)

#if defined(__x86_64__)
typedef float vf8_avx __attribute__((ext_vector_type(8)));

/// The same at AVX's width: 12 of the 16 YMM registers hold independent chains.
MULTIPLY_ADD_PEAK(avx_multiply_add_peak, __attribute__((target("avx"))), vf8_avx, 12, 8)
#endif

double bsvi_avx_multiply_add_peak_gflops(double seconds) {
#if defined(__x86_64__)
    if (bsvi_cpu_has_avx()) return avx_multiply_add_peak(seconds);
#endif
    (void)seconds;
    return 0;
}

const bsvi_kernel_table bsvi_kernels_portable = {
    .isa = BSVI_ISA_PORTABLE,
    .sgemm_nn = 0,
    .sgemm_nt = 0,
    .sgemm_tn_accumulate = 0,
    .sgemm_nn_bernoulli_log_likelihood = 0,
    .transpose = transpose,
    .fma_peak_gflops = fma_peak_gflops,
    ELEMENTWISE_TABLE_ENTRIES,
};
