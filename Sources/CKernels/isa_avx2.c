// The AVX2+FMA kernels: 16-lane vectors in two YMM registers, masked loads and stores for
// ragged edges, and register-blocked products of up to 6 rows × 16 columns (12 accumulators).
// Every C element goes through the same operations in the same order as in the AVX-512
// variant, so the two give identical bits.
#include "kernel_table.h"
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx2,fma,bmi2"))), apply_to = function)

typedef float vf16 __attribute__((ext_vector_type(16)));
typedef float vf8 __attribute__((ext_vector_type(8)));

/// Lane masks for the first n of 8 lanes (n may be ≤ 0 or ≥ 8).
static inline __attribute__((always_inline)) __m256i lane_mask8(int n) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lanes);
}

// A full low half goes by a plain load or store: VMASKMOVPS is slow on AMD's cores before Zen 5 (its
// store is microcoded), and the values are the same.
static inline __attribute__((always_inline)) vf16 load_partial(const float *p, int n) {
    const vf8 lo = (vf8)(n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, lane_mask8(n)));
    const vf8 hi = (vf8)(n > 8 ? _mm256_maskload_ps(p + 8, lane_mask8(n - 8)) : _mm256_setzero_ps());
    return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

static inline void store_partial(vf16 v, float *p, int n) {
    const __m256 lo = (__m256)__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
    if (n >= 8) _mm256_storeu_ps(p, lo);
    else _mm256_maskstore_ps(p, lane_mask8(n), lo);
    if (n > 8) _mm256_maskstore_ps(p + 8, lane_mask8(n - 8), (__m256)__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15));
}

#define SCORE_VECTORS_PER_STEP 2  // two vectors per iteration of the training likelihood pass (elementwise.inc)
#include "elementwise.inc"
#include "transpose.inc"

// MARK: Products

#define MR 6    // rows of C per register block: 6 × 2 vectors = 12 of the 16 YMM registers
#define NR 16   // columns of C per strip (two vectors)
/// Inner-dimension chunk of the forward and back-propagation products (sgemm_nn, sgemm_nt): the
/// default model's 784 is one chunk, whose 784 × 16 strip of B (49 KiB) the row blocks read from
/// L2, where the AVX-512 variant's 256 cuts it in four and stores and reloads C three times more.
/// On a Zen 1 the 100 × 784 × 200 products ran 1.5–2.8 % faster in one chunk than in four, and
/// 0.4–1.6 % faster than in two (docs/benchmarks.md, stop 50). Where a chunk ends never changes a
/// sum (C is stored and reloaded exactly), so both variants still give the same bits.
#define KC 800
/// Rows of A and B per chunk of the weight gradients (sgemm_tn_accumulate), as in the AVX-512
/// variant: the packed panels of A (TN_KC × m floats) stay in L2.
#define TN_KC 256
/// Whether the evaluator's output layer fused with the likelihood fetches its next strip of B ahead
/// (the other products do): on a Zen 1 it made the evaluator 5–8 % slower (docs/benchmarks.md, stop 46).
#define LIKELIHOOD_FETCHES_AHEAD 0
/// Whether sgemm_nt's row blocks fetch the next panel's rows of W ahead (the AVX-512 variant's do):
/// on a Zen 1 vae's back-propagation through W₆ (100 × 784 × 200) ran 6.6 % faster without it,
/// and bsvi's step did not change (scripts/kernel-ab, docs/benchmarks.md, stop 49).
#define NT_FETCHES_AHEAD 0

/// Copies R ≤ MR < 8 floats of a row of A into its panel, where the panel rows follow each other
/// (dst + R is the next row's): one plain 8-float store, whose extra lanes the next row overwrites
/// (after a panel's last row, the PANEL_ROW_SLACK floats between it and the next panel take them,
/// since sgemm_tn_accumulate writes the panels row by row of A), because VMASKMOVPS's store
/// is microcoded on AMD's cores before Zen 5 (16 % of these products on a Zen 4). The load is
/// plain too where the row has 8 floats left (`left`).
#define PANEL_ROW_SLACK 8
static inline __attribute__((always_inline)) void pack_panel_row(const float *src, float *dst, int R, int left) {
    _mm256_storeu_ps(dst, left >= 8 ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, lane_mask8(R)));
}

enum { START_ZERO, START_BIAS, START_FROM_C };

static inline __attribute__((always_inline)) __m256 masked_load(const float *p, __m256i mask) { return _mm256_maskload_ps(p, mask); }
/// A vector of a strip of B or C: plain loads and stores where the strip is full (`full`), for
/// the same reason as in load_partial. On a Zen 4 the plain loads of B alone took the decoder's
/// products from 55–64 % to 63–69 % of the FMA peak, the plain stores too to 74–77 %
/// (docs/benchmarks.md).
static inline __attribute__((always_inline)) __m256 strip_load(const int full, const float *p, __m256i mask) {
    return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
}
static inline __attribute__((always_inline)) void strip_store(const int full, float *p, __m256i mask, __m256 v) {
    if (full) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, mask, v);
}
/// Whether a strip is all 16 columns wide (its second vector's mask has every lane).
static inline __attribute__((always_inline)) int is_full(int V, __m256i m1) {
    return V == 2 && _mm256_movemask_ps(_mm256_castsi256_ps(m1)) == 0xff;
}

/// C ← f(C) on R rows of a strip just stored (V vectors a row), with the 16-lane element-wise
/// code on each row's two halves: the same values as applying f to the accumulators before the
/// store, but in a function of its own. Inside nn_block, f's constants and temporaries competed
/// with the 12 accumulators for AVX2's 16 registers, and the products with a fused tanh ran
/// further from the peak than without it (docs/benchmarks.md, "Later that day").
static __attribute__((noinline)) void activate_block(bsvi_activation f, int R, int V, int full, float *c, long ldc, __m256i m0,
                                                     __m256i m1) {
    for (int r = 0; r < R; r++) {
        const vf8 lo = (vf8)strip_load(full, c + r * ldc, m0);
        const vf8 hi = V == 2 ? (vf8)strip_load(full, c + r * ldc + 8, m1) : (vf8)_mm256_setzero_ps();
        const vf y = activate(f, __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
        strip_store(full, c + r * ldc, m0, (__m256)__builtin_shufflevector(y, y, 0, 1, 2, 3, 4, 5, 6, 7));
        if (V == 2) strip_store(full, c + r * ldc + 8, m1, (__m256)__builtin_shufflevector(y, y, 8, 9, 10, 11, 12, 13, 14, 15));
    }
}

/// Both cache lines a strip row (NR floats) can span, into L2.
static inline __attribute__((always_inline)) void prefetch_strip_row(const float *row) {
    _mm_prefetch((const char *)row, _MM_HINT_T1);
    _mm_prefetch((const char *)(row + NR - 1), _MM_HINT_T1);
}

/// `next` (or NULL): NR floats of each of the first `next_rows` rows (row stride next_ld) of what
/// the driver reads next, fetched into L2 meanwhile, a row per step (as in the AVX-512 variant).
static inline __attribute__((always_inline)) void
nn_block(const int R, const int V, const int full, const int kc, const float *a, const long lda, const float *b, const long ldb,
         float *c, const long ldc, const __m256i m0, const __m256i m1, const int start, const float *bias,
         const bsvi_activation activation, const float *next, const long next_ld, const int next_rows) {
    __m256 acc0[MR], acc1[MR];
    if (start == START_FROM_C) {
        for (int r = 0; r < R; r++) {
            acc0[r] = strip_load(full, c + r * ldc, m0);
            acc1[r] = V == 2 ? strip_load(full, c + r * ldc + 8, m1) : _mm256_setzero_ps();
        }
    } else {
        const __m256 s0 = start == START_BIAS ? strip_load(full, bias, m0) : _mm256_setzero_ps();
        const __m256 s1 = start == START_BIAS && V == 2 ? strip_load(full, bias + 8, m1) : _mm256_setzero_ps();
        for (int r = 0; r < R; r++) {
            acc0[r] = s0;
            acc1[r] = s1;
        }
    }
    // Four steps of p per iteration: 12 FMAs a step (6 cycles at two a cycle) leave too little room
    // to hide the loop counter and the address arithmetic of six rows of A; the AVX-512 block's 24
    // do (unrolled, it ran slower). scripts/kernel-ab against the loop as it was, 30 rounds on a
    // Zen 4: these products 3–20 % faster (the 200-wide ones 14–20 %). Unrolled by 2, about half
    // the gain; by 8, a third slower; the TN block unrolled, no change (docs/benchmarks.md, "Evening").
    _Pragma("clang loop unroll_count(4)")
    for (int p = 0; p < kc; p++) {
        const __m256 b0 = strip_load(full, b + p * ldb, m0);
        const __m256 b1 = V == 2 ? strip_load(full, b + p * ldb + 8, m1) : b0;
        if (next && p < next_rows) prefetch_strip_row(next + p * next_ld);
        for (int r = 0; r < R; r++) {
            const __m256 x = _mm256_broadcast_ss(a + r * lda + p);
            acc0[r] = _mm256_fmadd_ps(x, b0, acc0[r]);
            if (V == 2) acc1[r] = _mm256_fmadd_ps(x, b1, acc1[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        strip_store(full, c + r * ldc, m0, acc0[r]);
        if (V == 2) strip_store(full, c + r * ldc + 8, m1, acc1[r]);
    }
    if (activation != BSVI_ACTIVATION_NONE) activate_block(activation, R, V, full, c, ldc, m0, m1);
}

/// C[0..R)[strip] += Σ_p A(p, r)·B'[p][strip] over a packed panel of A (ap[p·R + r]) and a packed,
/// already weighted strip of B (bp[p·16 + j]). With `overwrite` the sums start from zero and C is
/// only written. `next` (or NULL): the strip of B packed next, whose first `next_rows` rows (row
/// stride ldb) are fetched into L2 meanwhile.
static inline __attribute__((always_inline)) void
tn_block(const int R, const int V, const int full, const int kc, const float *ap, const float *bp, float *c, const long ldc,
         const __m256i m0, const __m256i m1, const int overwrite, const float *next, const long ldb, const int next_rows) {
    __m256 acc0[MR], acc1[MR];
    if (overwrite) {
        for (int r = 0; r < R; r++) acc0[r] = acc1[r] = _mm256_setzero_ps();
    } else {
        for (int r = 0; r < R; r++) {
            acc0[r] = strip_load(full, c + r * ldc, m0);
            if (V == 2) acc1[r] = strip_load(full, c + r * ldc + 8, m1);
        }
    }
    for (int p = 0; p < kc; p++) {
        const __m256 b0 = _mm256_load_ps(bp + p * NR);
        const __m256 b1 = V == 2 ? _mm256_load_ps(bp + p * NR + 8) : b0;
        if (next && p < next_rows) prefetch_strip_row(next + p * ldb);
        for (int r = 0; r < R; r++) {
            const __m256 x = _mm256_broadcast_ss(ap + p * R + r);
            acc0[r] = _mm256_fmadd_ps(x, b0, acc0[r]);
            if (V == 2) acc1[r] = _mm256_fmadd_ps(x, b1, acc1[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        strip_store(full, c + r * ldc, m0, acc0[r]);
        if (V == 2) strip_store(full, c + r * ldc + 8, m1, acc1[r]);
    }
}

/// Packs rows [0, kc) of a 16-column strip of B, times the row weights w (when given), into
/// bp[p·16 + j] (zeros beyond the strip's width), adding them to the strip's bias gradient g (from
/// zero with `overwrite`).
static void pack_weighted_strip(const int kc, const float *b, const long ldb, const float *w, float *bp, float *g,
                                const __m256i m0, const __m256i m1, const int overwrite) {
    const int full = is_full(2, m1);
    const int from_g = g && !overwrite;
    __m256 g0 = from_g ? masked_load(g, m0) : _mm256_setzero_ps(), g1 = from_g ? masked_load(g + 8, m1) : _mm256_setzero_ps();
    for (int p = 0; p < kc; p++) {
        __m256 b0 = strip_load(full, b + p * ldb, m0);
        __m256 b1 = strip_load(full, b + p * ldb + 8, m1);
        if (w) {
            const __m256 wp = _mm256_broadcast_ss(w + p);
            b0 = _mm256_mul_ps(b0, wp);
            b1 = _mm256_mul_ps(b1, wp);
        }
        _mm256_store_ps(bp + p * NR, b0);
        _mm256_store_ps(bp + p * NR + 8, b1);
        g0 = _mm256_add_ps(g0, b0);
        g1 = _mm256_add_ps(g1, b1);
    }
    if (g) {
        _mm256_maskstore_ps(g, m0, g0);
        _mm256_maskstore_ps(g + 8, m1, g1);
    }
}

#define NN_CASE(R, NEXT)                                                                                                 \
    case R:                                                                                                              \
        if (full) nn_block(R, 2, 1, kc, a, lda, b, ldb, c, ldc, m0, m1, start, bias, activation, NEXT, next_ld, next_rows);     \
        else if (V == 2) nn_block(R, 2, 0, kc, a, lda, b, ldb, c, ldc, m0, m1, start, bias, activation, NEXT, next_ld, next_rows); \
        else nn_block(R, 1, 0, kc, a, lda, b, ldb, c, ldc, m0, m1, start, bias, activation, NEXT, next_ld, next_rows);         \
        break;

/// `next` (with next_ld and next_rows), what the driver reads next, is fetched into L2 as on the
/// AVX-512 path, by a separate instantiation of the blocks: with the test for `next` inside every
/// block's loop (the AVX-512 form until stop 64), the blocks that fetch nothing ran slower too and
/// the whole came out 2 % slower on a Zen 1; unswitched, the bsvi-shaped products ran 3–4 % faster
/// there (its 512 KB L2 does not hold a 200 × 784 weight matrix; scripts/kernel-ab,
/// docs/benchmarks.md, stop 46).
static void nn_dispatch(int R, int V, int kc, const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                        __m256i m0, __m256i m1, int start, const float *bias, bsvi_activation activation,
                        const float *next, long next_ld, int next_rows) {
    const int full = is_full(V, m1);
    if (next) {
        switch (R) { NN_CASE(1, next) NN_CASE(2, next) NN_CASE(3, next) NN_CASE(4, next) NN_CASE(5, next) NN_CASE(6, next) }
    } else {
        switch (R) { NN_CASE(1, 0) NN_CASE(2, 0) NN_CASE(3, 0) NN_CASE(4, 0) NN_CASE(5, 0) NN_CASE(6, 0) }
    }
}

#define TN_CASE(R)                                                                                       \
    case R:                                                                                              \
        if (full) tn_block(R, 2, 1, kc, ap, bp, c, ldc, m0, m1, overwrite, next, ldb, next_rows);        \
        else if (V == 2) tn_block(R, 2, 0, kc, ap, bp, c, ldc, m0, m1, overwrite, next, ldb, next_rows); \
        else tn_block(R, 1, 0, kc, ap, bp, c, ldc, m0, m1, overwrite, next, ldb, next_rows);             \
        break;

static void tn_dispatch(int R, int V, int kc, const float *ap, const float *bp, float *c, long ldc, __m256i m0,
                        __m256i m1, int overwrite, const float *next, long ldb, int next_rows) {
    const int full = is_full(V, m1);
    switch (R) { TN_CASE(1) TN_CASE(2) TN_CASE(3) TN_CASE(4) TN_CASE(5) TN_CASE(6) }
}

typedef __m256i strip_mask;
/// The lane masks of a strip `width` columns wide (≤ 16) and its number of vectors.
static inline __attribute__((always_inline)) int strip_masks(int width, strip_mask *m0, strip_mask *m1) {
    *m0 = lane_mask8(width);
    *m1 = lane_mask8(width - 8);
    return width > 8 ? 2 : 1;
}

#define NN_PACKS_B 1  // a forward product copies a strip of B whose rows start off a cache line (product_drivers.inc)
#include "product_drivers.inc"

/// Independent FMA chains on registers only: enough to cover the FMA latency on both ports.
static double fma_peak_gflops(double seconds) {
    __m256 acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i);
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    long iterations = 0, batch = 1 << 16;
    const double t0 = bsvi_seconds_now();
    double elapsed;
    do {
        for (long it = 0; it < batch; it++) {
            for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
            __asm__ volatile("" : "+x"(acc[0]), "+x"(acc[1]), "+x"(acc[2]), "+x"(acc[3]));
        }
        iterations += batch;
        elapsed = bsvi_seconds_now() - t0;
    } while (elapsed < seconds);
    float lanes[8], sink = 0;
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_ps(lanes, acc[i]);
        for (int j = 0; j < 8; j++) sink += lanes[j];
    }
    __asm__ volatile("" : : "x"(sink));
    return (double)iterations * 12 * 8 * 2 / elapsed * 1e-9;
}

#pragma clang attribute pop

const bsvi_kernel_table bsvi_kernels_avx2 = {
    .isa = BSVI_ISA_AVX2,
    .sgemm_nn = sgemm_nn,
    .sgemm_nt = sgemm_nt,
    .sgemm_tn_accumulate = sgemm_tn_accumulate,
    .sgemm_nn_bernoulli_log_likelihood = sgemm_nn_bernoulli_log_likelihood,
    .transpose = transpose_avx,
    .fma_peak_gflops = fma_peak_gflops,
    ELEMENTWISE_TABLE_ENTRIES,
};
#endif
