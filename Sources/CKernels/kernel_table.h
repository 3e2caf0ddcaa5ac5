// The kernels of one instruction set, as a table of function pointers (kernel_dispatch.c
// picks one table; the public functions of CKernels.h call through it).
#ifndef BSVI_KERNEL_TABLE_H
#define BSVI_KERNEL_TABLE_H

#include "CKernels.h"

typedef struct {
    bsvi_isa isa;
    // NULL on the portable path: callers use BLAS.
    void (*sgemm_nn)(int m, int k, int n, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                     const float *bias, bsvi_activation activation);
    void (*sgemm_nt)(int m, int k, int n, const float *a, int lda, const float *b, int ldb, float *c, int ldc);
    void (*sgemm_tn_accumulate)(int m, int n, int rows, const float *a, int lda, const float *b, int ldb, float *c,
                                int ldc, float *bias_gradient, const float *row_weights, int overwrite);
    void (*sgemm_nn_bernoulli_log_likelihood)(int m, int k, int n, const float *a, int lda, const float *b, int ldb,
                                              const float *bias, const float *x, int ldx, int x_rows,
                                              float *log_likelihood);
    void (*transpose)(int rows, int cols, const float *src, int lds, float *dst, int ldd);
    void (*activation_forward)(bsvi_activation f, float *x, long count);
    void (*activation_backward)(bsvi_activation f, float *delta, const float *y, long count);
    void (*bernoulli_score)(int rows, int cols, const float *x, int ldx, int x_rows, float *logits, int ldl,
                            float *log_likelihood);
    void (*bernoulli_log_likelihood)(int rows, int cols, const float *x, int ldx, int x_rows, const float *logits,
                                     int ldl, float *log_likelihood);
    void (*log_weights)(int rows, int d, const float *z, const float *epsilon, const float *lambda, int ldl,
                        int lambda_rows, const float *log_likelihood, float *log_weight);
    void (*draw_latents)(int rows, int d, const uint64_t *keys, uint64_t counter_offset, const float *lambda,
                         int ldl, float *epsilon, float *z);
    void (*elbo_gradient)(int rows, int d, const float *lambda, int ldl, const float *dz, const float *epsilon,
                          float *gradient, int ldg);
    void (*kl_to_standard)(int rows, int d, const float *lambda, int ldl, float *kl);
    void (*refine_step)(bsvi_refine_rule rule, int rows, int width, float *lambda, int ldl, float *gradient, int ldg,
                        float *m, float *v, float eta, float beta, float beta2, float epsilon, float c1, float c2,
                        float clip);
    void (*adam_update)(long n, float *p, float *m, float *v, const float *gradient, float gradient_scale,
                        float beta1, float beta2, float step_size, float inverse_c2, float epsilon);
    void (*update_traffic)(long n, float *p, float *m, float *v, const float *gradient);
    double (*sqrt_divide_rate)(double seconds);
    float (*max_magnitude)(const float *x, long count);
    void (*fill_normals)(uint64_t key, uint64_t counter_offset, float *out, long count);
    void (*elementary)(bsvi_function f, const float *in, float *out, long count);
    double (*fma_peak_gflops)(double seconds);
} bsvi_kernel_table;

extern const bsvi_kernel_table bsvi_kernels_portable;
#if defined(__x86_64__)
extern const bsvi_kernel_table bsvi_kernels_avx2;
extern const bsvi_kernel_table bsvi_kernels_avx512;
#endif

/// The first n of 16 lanes (0 ≤ n; 16 and more: all), as an AVX-512 mask: the avx512 kernels'
/// partial vectors and the bfloat16 products' edges.
static inline __attribute__((always_inline)) uint16_t bsvi_lane_mask16(int n) {
    return n >= 16 ? (uint16_t)0xFFFF : (uint16_t)((1u << n) - 1u);
}

/// Monotonic wall time in seconds (for the FMA peak loops).
double bsvi_seconds_now(void);

/// A 64-byte-aligned scratch buffer of at least `count` floats, one per (thread, slot), kept and
/// grown as needed (the products pack their operands into it). NULL when out of memory.
float *bsvi_scratch(int slot, long count);
enum { BSVI_SCRATCH_PACKED_A = 0, BSVI_SCRATCH_PACKED_B = 1, BSVI_SCRATCH_SLOTS = 2 };
/// bsvi_scratch, or a message on standard error and abort() when memory is exhausted.
float *bsvi_scratch_or_abort(int slot, long count);

#endif
