// The active kernel table and the public entry points that call through it.
#include "kernel_table.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

// Every kernel runs with denormals flushed to zero (MXCSR FTZ and DAZ), whatever the caller's
// floating-point mode: one denormal operand turns an FMA into a microcode assist (~100× slower;
// a row weight of 1e-39 made the weight-gradient product 170× slower), and bsvi's buffer weights
// and errors do reach that range. Values below 1.2e-38 contribute nothing to these sums. Both
// vector variants flush alike, so AVX2 and AVX-512 still agree bit for bit.
#if defined(__x86_64__)
#define FLUSH_DENORMALS 0x8040u  // FTZ (bit 15) | DAZ (bit 6)
#define FLUSHING(call)                                                              \
    do {                                                                            \
        const unsigned int saved_mode = _mm_getcsr();                               \
        if ((saved_mode & FLUSH_DENORMALS) != FLUSH_DENORMALS) {                    \
            _mm_setcsr(saved_mode | FLUSH_DENORMALS);                               \
            call;                                                                   \
            _mm_setcsr(saved_mode);                                                 \
        } else {                                                                    \
            call;                                                                   \
        }                                                                           \
    } while (0)
#else
#define FLUSHING(call) call
#endif

static const bsvi_kernel_table *table_for(bsvi_isa isa) {
#if defined(__x86_64__)
    if (isa == BSVI_ISA_AVX512) return &bsvi_kernels_avx512;
    if (isa == BSVI_ISA_AVX2) return &bsvi_kernels_avx2;
#endif
    (void)isa;
    return &bsvi_kernels_portable;
}

// Per thread, so that tests can run the numerics on every path side by side. Every thread
// starts from the same default, so a program that chose the default at start-up (the CLI
// validates BSVI_KERNELS and refuses a bad value with a message) runs one path everywhere.
static _Thread_local const bsvi_kernel_table *active_table = NULL;

// First use on a thread: BSVI_KERNELS when it names a path this CPU runs, otherwise the best one.
static const bsvi_kernel_table *active(void) {
    if (__builtin_expect(active_table == NULL, 0)) {
        bsvi_isa isa = bsvi_cpu_best_isa();
        bsvi_isa requested;
        if (bsvi_isa_parse(getenv("BSVI_KERNELS"), &requested) == 0 && bsvi_cpu_supports(requested)) isa = requested;
        active_table = table_for(isa);
    }
    return active_table;
}

/// (This thread only.)
int bsvi_kernels_select(bsvi_isa isa) {
    if (!bsvi_cpu_supports(isa)) return -1;
    active_table = table_for(isa);
    return 0;
}

bsvi_isa bsvi_kernels_active(void) { return active()->isa; }
int bsvi_kernels_have_products(void) { return active()->sgemm_nn != NULL; }

void bsvi_flush_denormals_on_this_thread(void) {
#if defined(__x86_64__)
    _mm_setcsr(_mm_getcsr() | FLUSH_DENORMALS);
#endif
}

float *bsvi_scratch(int slot, long count) {
    static _Thread_local float *buffers[BSVI_SCRATCH_SLOTS];
    static _Thread_local long capacity[BSVI_SCRATCH_SLOTS];
    if (count > capacity[slot]) {
        free(buffers[slot]);
        const long rounded = (count + 4095) & ~4095L;
        buffers[slot] = bsvi_allocate_floats(rounded);
        capacity[slot] = buffers[slot] ? rounded : 0;
    }
    return buffers[slot];
}

float *bsvi_scratch_or_abort(int slot, long count) {
    float *p = bsvi_scratch(slot, count);
    if (!p) {
        fprintf(stderr, "bsvi-dist: out of memory allocating a %ld-float scratch buffer for a matrix product\n", count);
        abort();
    }
    return p;
}

double bsvi_seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

double bsvi_fma_peak_gflops(bsvi_isa isa, double seconds) {
    if (!bsvi_cpu_supports(isa)) return 0;
    return table_for(isa)->fma_peak_gflops(seconds);
}

void bsvi_sgemm_nn(int m, int k, int n, const float *a, int lda, const float *b, int ldb, float *c, int ldc,
                   const float *bias, bsvi_activation activation) {
    FLUSHING(active()->sgemm_nn(m, k, n, a, lda, b, ldb, c, ldc, bias, activation));
}

void bsvi_sgemm_nt(int m, int k, int n, const float *a, int lda, const float *b, int ldb, float *c, int ldc) {
    FLUSHING(active()->sgemm_nt(m, k, n, a, lda, b, ldb, c, ldc));
}

void bsvi_sgemm_tn_accumulate(int m, int n, int rows, const float *a, int lda, const float *b, int ldb, float *c,
                              int ldc, float *bias_gradient, const float *row_weights, int overwrite) {
    FLUSHING(active()->sgemm_tn_accumulate(m, n, rows, a, lda, b, ldb, c, ldc, bias_gradient, row_weights, overwrite));
}

void bsvi_sgemm_nn_bernoulli_log_likelihood(int m, int k, int n, const float *a, int lda, const float *b, int ldb,
                                            const float *bias, const float *x, int ldx, int x_rows,
                                            float *log_likelihood) {
    FLUSHING(active()->sgemm_nn_bernoulli_log_likelihood(m, k, n, a, lda, b, ldb, bias, x, ldx, x_rows, log_likelihood));
}

void bsvi_transpose(int rows, int cols, const float *src, int lds, float *dst, int ldd) {
    active()->transpose(rows, cols, src, lds, dst, ldd);  // moves only: no arithmetic to flush
}

void bsvi_activation_forward(bsvi_activation f, float *x, long count) {
    FLUSHING(active()->activation_forward(f, x, count));
}

void bsvi_activation_backward(bsvi_activation f, float *delta, const float *y, long count) {
    FLUSHING(active()->activation_backward(f, delta, y, count));
}

void bsvi_bernoulli_score(int rows, int cols, const float *x, int ldx, int x_rows, float *logits, int ldl,
                          float *log_likelihood) {
    FLUSHING(active()->bernoulli_score(rows, cols, x, ldx, x_rows, logits, ldl, log_likelihood));
}

void bsvi_bernoulli_log_likelihood(int rows, int cols, const float *x, int ldx, int x_rows, const float *logits,
                                   int ldl, float *log_likelihood) {
    FLUSHING(active()->bernoulli_log_likelihood(rows, cols, x, ldx, x_rows, logits, ldl, log_likelihood));
}

void bsvi_log_weights(int rows, int d, const float *z, const float *epsilon, const float *lambda, int ldl,
                      int lambda_rows, const float *log_likelihood, float *log_weight) {
    FLUSHING(active()->log_weights(rows, d, z, epsilon, lambda, ldl, lambda_rows, log_likelihood, log_weight));
}

void bsvi_draw_latents(int rows, int d, const uint64_t *keys, uint64_t counter_offset, const float *lambda, int ldl,
                       float *epsilon, float *z) {
    FLUSHING(active()->draw_latents(rows, d, keys, counter_offset, lambda, ldl, epsilon, z));
}

void bsvi_elbo_gradient(int rows, int d, const float *lambda, int ldl, const float *dz, const float *epsilon,
                        float *gradient, int ldg) {
    FLUSHING(active()->elbo_gradient(rows, d, lambda, ldl, dz, epsilon, gradient, ldg));
}

void bsvi_kl_to_standard(int rows, int d, const float *lambda, int ldl, float *kl) {
    FLUSHING(active()->kl_to_standard(rows, d, lambda, ldl, kl));
}

void bsvi_refine_step(bsvi_refine_rule rule, int rows, int width, float *lambda, int ldl, float *gradient, int ldg,
                      float *m, float *v, float eta, float beta, float beta2, float epsilon, float c1, float c2,
                      float clip) {
    FLUSHING(active()->refine_step(rule, rows, width, lambda, ldl, gradient, ldg, m, v, eta, beta, beta2, epsilon, c1, c2, clip));
}

void bsvi_adam_update(long n, float *p, float *m, float *v, const float *gradient, float gradient_scale, float beta1,
                      float beta2, float step_size, float inverse_c2, float epsilon) {
    FLUSHING(active()->adam_update(n, p, m, v, gradient, gradient_scale, beta1, beta2, step_size, inverse_c2, epsilon));
}

void bsvi_update_traffic(long n, float *p, float *m, float *v, const float *gradient) {
    active()->update_traffic(n, p, m, v, gradient);
}

double bsvi_sqrt_divide_rate(double seconds) { return active()->sqrt_divide_rate(seconds); }

float bsvi_max_magnitude(const float *x, long count) {
    // (Bit patterns, so no flushing is needed: a denormal's magnitude comes back unchanged.)
    return active()->max_magnitude(x, count);
}

void bsvi_fill_normals(uint64_t key, uint64_t counter_offset, float *out, long count) {
    FLUSHING(active()->fill_normals(key, counter_offset, out, count));
}

void bsvi_elementary(bsvi_function f, const float *in, float *out, long count) {
    FLUSHING(active()->elementary(f, in, out, count));
}
