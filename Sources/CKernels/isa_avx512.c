// The AVX-512 kernels: 16-lane vectors in one ZMM register, masked loads and stores for ragged
// edges, and register-blocked products of up to 13 rows × 32 columns (26 accumulators), or 8 rows
// × 40 columns for a forward product's last 33–40 columns.
#include "kernel_table.h"
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi2"))), apply_to = function)

typedef float vf16 __attribute__((ext_vector_type(16)));
static inline __attribute__((always_inline)) vf16 load_partial(const float *p, int n) { return (vf16)_mm512_maskz_loadu_ps(bsvi_lane_mask16(n), p); }
static inline void store_partial(vf16 v, float *p, int n) { _mm512_mask_storeu_ps(p, bsvi_lane_mask16(n), (__m512)v); }

#include "elementwise.inc"
#include "transpose.inc"

// MARK: Products

// Rows of C per register block: 26 accumulators (13 rows × 2 vectors) + 2 vectors of B + 1
// broadcast of A = 29 of the 32 ZMM registers (no spills). Against 12: a rank's share of the
// default batch of 100 on 8 ranks (12 or 13 rows) is one block instead of two, 25 rows two instead
// of three, 50 rows four of 12–13 instead of five of 10; on the Intel model 207 bsvi's kernels
// 3.5 %, 3.7 % and 0.8 % faster at 13, 25 and 50 rows, the same at 100 (docs/benchmarks.md, stop
// 61; the Zen 4 and Zen 5 not timed at those shares). The blocks do not change any sum: the same bits.
#define MR 13
_Static_assert(MR <= 15, "nn_block reads the rows of A through three pointers five rows apart");
#define NR 32   // columns of C per strip (two vectors)
#define KC 256  // inner-dimension chunk: a 256×32 strip of B (32 KiB) stays in L1 across row blocks
#define TN_KC KC  // rows per chunk of the weight gradients
#define LIKELIHOOD_FETCHES_AHEAD 1  // the evaluator's output layer fetches its next strip too (docs/benchmarks.md, Intel, 2026-12-02 morning)
#define NT_FETCHES_AHEAD 1          // sgemm_nt's blocks fetch the next panel's rows (docs/benchmarks.md, Zen 4, stop 43)

/// Copies R ≤ MR < 16 floats of a row of A into its panel (`left`, the row's floats from src on,
/// is unused): one masked load and store instead of a memcpy call.
#define PANEL_ROW_SLACK 0
static inline __attribute__((always_inline)) void pack_panel_row(const float *src, float *dst, int R, int left) {
    (void)left;
    store_partial(load_partial(src, R), dst, R);
}

enum { START_ZERO, START_BIAS, START_FROM_C };

/// Every cache line a strip row (NR floats) can span, into L2: two, or three where the row is not
/// 64-byte aligned, as every other row of a 200-wide matrix is (fetching the middle one too made
/// bsvi's tn 50 × 2100 × 200 18 % faster; docs/benchmarks.md, stop 43). B's rows (a weight
/// matrix's, or the errors a weight gradient sums over) are 0.8–3 KB apart, too far for the
/// hardware's stream prefetcher, so without this each strip's first row block waits on L3 for
/// every row once the step's other data has pushed B out.
static inline __attribute__((always_inline)) void prefetch_strip_row(const float *row) {
    _mm_prefetch((const char *)row, _MM_HINT_T1);
    _mm_prefetch((const char *)(row + 16), _MM_HINT_T1);
    _mm_prefetch((const char *)(row + NR - 1), _MM_HINT_T1);
}

/// C ← f(C) on R rows of a strip just stored (V vectors a row): the same values as applying f to
/// the accumulators before the store, in a function of its own so that f's constants and
/// temporaries do not compete with nn_block's 26 accumulators for registers (as on the AVX2 path).
static __attribute__((noinline)) void activate_block(bsvi_activation f, int R, int V, float *c, long ldc, __mmask16 m0,
                                                     __mmask16 m1) {
    for (int r = 0; r < R; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, (__m512)activate(f, (vf)_mm512_maskz_loadu_ps(m0, c + r * ldc)));
        if (V == 2) _mm512_mask_storeu_ps(c + r * ldc + 16, m1, (__m512)activate(f, (vf)_mm512_maskz_loadu_ps(m1, c + r * ldc + 16)));
    }
}

/// C[0..R)[strip] = start + Σ_p A(r, p)·B[p][strip] for p in [0, kc), A(r, p) = a[r·lda + p].
/// R ≤ MR, V (1, 2 or 3 vectors) and H are constants after inlining, so the accumulators live in
/// registers. H: the strip's last 8 or fewer columns, from column hc on, on 256-bit registers
/// (acch), masked by mh: a strip of at most 8 columns (V = 1, such as the last of a 100-wide
/// product), or the last 8 of a 40-column one (V = 3, nn_dispatch_wide). Zen 4 runs a 512-bit FMA
/// as two 256-bit halves, masked lanes included, so this costs it half as much (bsvi's n = 200
/// products 2–3 % faster; docs/benchmarks.md, stop 44); on the Intel model 207 the two forms cost
/// the same (stop 62). The same operations on the same lanes: the same bits. A 17–24-column strip
/// keeps two 512-bit vectors: with its second on 256-bit registers, clang spilled accumulators to
/// the stack in the loop.
/// `next` (or NULL): NR floats of each of the first `next_rows` rows (row stride next_ld) of what
/// the driver reads next, fetched into L2 meanwhile, a row per step.
static inline __attribute__((always_inline)) void
nn_block(const int R, const int V, const int H, const int kc, const float *a, const long lda, const float *b,
         const long ldb, float *c, const long ldc, const __mmask16 m0, const __mmask16 m1, const __mmask8 mh, const int start,
         const float *bias, const bsvi_activation activation, const float *next, const long next_ld, const int next_rows) {
    const int Z = V - H;  // 512-bit vectors
    const int hc = 16 * Z;  // the 256-bit part's first column
    __m512 acc0[MR], acc1[MR];
    __m256 acch[MR];
    if (start == START_FROM_C) {
        for (int r = 0; r < R; r++) {
            if (Z >= 1) acc0[r] = _mm512_maskz_loadu_ps(m0, c + r * ldc);
            if (Z == 2) acc1[r] = _mm512_maskz_loadu_ps(m1, c + r * ldc + 16);
            if (H) acch[r] = _mm256_maskz_loadu_ps(mh, c + r * ldc + hc);
        }
    } else {
        const int biased = start == START_BIAS;
        const __m512 s0 = biased && Z >= 1 ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
        const __m512 s1 = biased && Z == 2 ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
        const __m256 sh = biased && H ? _mm256_maskz_loadu_ps(mh, bias + hc) : _mm256_setzero_ps();
        for (int r = 0; r < R; r++) {
            acc0[r] = s0;
            acc1[r] = s1;
            acch[r] = sh;
        }
    }
    // A step is 13 broadcasts and 26 FMAs, and what else it issues competes with them for the
    // front end (and, it seems, for the vector ports while the core's other hyperthread is busy).
    // So the steps that fetch a row of `next` and those that do not are two loops (testing `next`
    // every step cost six instructions: clang kept it on the stack), and A's rows are read through
    // three pointers five rows apart, advanced by one float a step (rows base + i·lda, i < 5, are
    // then invariant offsets); indexing a[r·lda + p] made clang recompute the thirteen row
    // addresses every step, a chain of about eleven adds. The FMAs and their order are unchanged:
    // the same bits. On the Intel model 207, bsvi's kernels ran 0.5–1.7 % faster in one process and
    // vae's 4 %; one product alone, 4–8 % while the host was busy (docs/benchmarks.md, stop 64).
    const float *a5 = R > 5 ? a + 5 * lda : a, *a10 = R > 10 ? a + 10 * lda : a;  // never past A's rows
    const int fetched = next ? (next_rows < kc ? next_rows : kc) : 0;
#define NN_STEP(FETCH)                                                                           \
    {                                                                                            \
        const __m512 b0 = Z >= 1 ? _mm512_maskz_loadu_ps(m0, b + p * ldb) : _mm512_setzero_ps(); \
        const __m512 b1 = Z == 2 ? _mm512_maskz_loadu_ps(m1, b + p * ldb + 16) : b0;             \
        const __m256 bh = H ? _mm256_maskz_loadu_ps(mh, b + p * ldb + hc) : _mm256_setzero_ps(); \
        if (FETCH) prefetch_strip_row(next + p * next_ld);                                       \
        for (int r = 0; r < R; r++) {                                                            \
            const float *row = (r < 5 ? a : r < 10 ? a5 : a10) + (r % 5) * lda;                  \
            const __m512 x = _mm512_set1_ps(*row);                                               \
            if (Z >= 1) acc0[r] = _mm512_fmadd_ps(x, b0, acc0[r]);                               \
            if (Z == 2) acc1[r] = _mm512_fmadd_ps(x, b1, acc1[r]);                               \
            if (H) acch[r] = _mm256_fmadd_ps(_mm256_set1_ps(*row), bh, acch[r]);                 \
        }                                                                                        \
        a++, a5++, a10++; /* within A's rows: at most one past a row's last column */            \
    }
    for (int p = 0; p < fetched; p++) NN_STEP(1)
    for (int p = fetched; p < kc; p++) NN_STEP(0)
#undef NN_STEP
    for (int r = 0; r < R; r++) {
        if (Z >= 1) _mm512_mask_storeu_ps(c + r * ldc, m0, acc0[r]);
        if (Z == 2) _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc1[r]);
        if (H) _mm256_mask_storeu_ps(c + r * ldc + hc, mh, acch[r]);
    }
    if (activation != BSVI_ACTIVATION_NONE) {
        activate_block(activation, R, Z ? Z : 1, c, ldc, Z ? m0 : mh, m1);
        if (H && Z) activate_block(activation, R, 1, c + hc, ldc, mh, 0);
    }
}

/// C[0..R)[strip] += Σ_p A(p, r)·B'[p][strip] over a packed panel of A (ap[p·R + r]) and a packed,
/// already weighted strip of B (bp[p·32 + j]): both contiguous, so every load hits L1. With
/// `overwrite` the sums start from zero and C is only written. V and H as in nn_block. `next`
/// (or NULL): the strip of B packed next, whose first `next_rows` rows (row stride ldb) are
/// fetched into L2 meanwhile.
static inline __attribute__((always_inline)) void
tn_block(const int R, const int V, const int H, const int kc, const float *ap, const float *bp, float *c, const long ldc,
         const __mmask16 m0, const __mmask16 m1, const int overwrite, const float *next, const long ldb, const int next_rows) {
    const int Z = V - H;  // 512-bit vectors
    const __mmask8 mh = (__mmask8)m0;
    __m512 acc0[MR], acc1[MR];
    __m256 acch[MR];
    for (int r = 0; r < R; r++) {
        acc0[r] = Z >= 1 && !overwrite ? _mm512_maskz_loadu_ps(m0, c + r * ldc) : _mm512_setzero_ps();
        acc1[r] = Z == 2 && !overwrite ? _mm512_maskz_loadu_ps(m1, c + r * ldc + 16) : _mm512_setzero_ps();
        acch[r] = H && !overwrite ? _mm256_maskz_loadu_ps(mh, c + r * ldc) : _mm256_setzero_ps();
    }
    for (int p = 0; p < kc; p++) {
        const __m512 b0 = Z >= 1 ? _mm512_load_ps(bp + p * NR) : _mm512_setzero_ps();
        const __m512 b1 = Z == 2 ? _mm512_load_ps(bp + p * NR + 16) : b0;
        const __m256 bh = H ? _mm256_load_ps(bp + p * NR) : _mm256_setzero_ps();
        if (next && p < next_rows) prefetch_strip_row(next + p * ldb);
        for (int r = 0; r < R; r++) {
            const __m512 x = _mm512_set1_ps(ap[p * R + r]);
            if (Z >= 1) acc0[r] = _mm512_fmadd_ps(x, b0, acc0[r]);
            if (Z == 2) acc1[r] = _mm512_fmadd_ps(x, b1, acc1[r]);
            if (H) acch[r] = _mm256_fmadd_ps(_mm256_set1_ps(ap[p * R + r]), bh, acch[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        if (Z >= 1) _mm512_mask_storeu_ps(c + r * ldc, m0, acc0[r]);
        if (Z == 2) _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc1[r]);
        if (H) _mm256_mask_storeu_ps(c + r * ldc, mh, acch[r]);
    }
}

/// Packs rows [0, kc) of a 32-column strip of B, times the row weights w (when given), into
/// bp[p·32 + j] (zeros beyond the strip's width), and adds the weighted rows to the strip's
/// bias gradient g (when given; from zero with `overwrite`) in row order.
static void pack_weighted_strip(const int kc, const float *b, const long ldb, const float *w, float *bp, float *g,
                                const __mmask16 m0, const __mmask16 m1, const int overwrite) {
    __m512 g0 = g && !overwrite ? _mm512_maskz_loadu_ps(m0, g) : _mm512_setzero_ps();
    __m512 g1 = g && !overwrite ? _mm512_maskz_loadu_ps(m1, g + 16) : _mm512_setzero_ps();
    for (int p = 0; p < kc; p++) {
        __m512 b0 = _mm512_maskz_loadu_ps(m0, b + p * ldb);
        __m512 b1 = _mm512_maskz_loadu_ps(m1, b + p * ldb + 16);
        if (w) {
            const __m512 wp = _mm512_set1_ps(w[p]);
            b0 = _mm512_mul_ps(b0, wp);
            b1 = _mm512_mul_ps(b1, wp);
        }
        _mm512_store_ps(bp + p * NR, b0);
        _mm512_store_ps(bp + p * NR + 16, b1);
        g0 = _mm512_add_ps(g0, b0);
        g1 = _mm512_add_ps(g1, b1);
    }
    if (g) {
        _mm512_mask_storeu_ps(g, m0, g0);
        _mm512_mask_storeu_ps(g + 16, m1, g1);
    }
}

/// Whether a strip is at most 8 columns wide: H for nn_block and tn_block.
static inline __attribute__((always_inline)) int narrow_strip(int V, __mmask16 m0) { return V == 1 && (m0 & 0xFF00) == 0; }

#define NN_CASE(R)                                                                                                             \
    case R:                                                                                                                    \
        if (V == 2) nn_block(R, 2, 0, kc, a, lda, b, ldb, c, ldc, m0, m1, 0, start, bias, activation, next, next_ld, next_rows);  \
        else if (!H) nn_block(R, 1, 0, kc, a, lda, b, ldb, c, ldc, m0, m1, 0, start, bias, activation, next, next_ld, next_rows); \
        else nn_block(R, 1, 1, kc, a, lda, b, ldb, c, ldc, 0, 0, (__mmask8)m0, start, bias, activation, next, next_ld, next_rows); \
        break;

static void nn_dispatch(int R, int V, int kc, const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                        __mmask16 m0, __mmask16 m1, int start, const float *bias, bsvi_activation activation,
                        const float *next, long next_ld, int next_rows) {
    const int H = narrow_strip(V, m0);
    switch (R) {
        NN_CASE(1) NN_CASE(2) NN_CASE(3) NN_CASE(4) NN_CASE(5) NN_CASE(6)
        NN_CASE(7) NN_CASE(8) NN_CASE(9) NN_CASE(10) NN_CASE(11) NN_CASE(12) NN_CASE(13)
    }
}

/// sgemm_nn's last strip when it is 33–40 columns wide (NN_WIDE_TAIL), as the last of a 200-wide
/// product (columns 160–199): two 512-bit vectors and one 256-bit a row, on at most MR_WIDE rows
/// (24 accumulators + 3 vectors of B + 1 broadcast of A). As a strip of their own, those 8 columns
/// took 11–13 % of δ·W₃ᵀ's time for 4 % of its multiply-adds (stop 62): each broadcast of A fed one
/// FMA. In the 40-column strip δ·W₃ᵀ (100 × 784 × 200) is 4–6 % faster and the other 200-wide
/// products 1–4 % (docs/benchmarks.md, stop 63). At 9 rows the loop (as it was before stop 64)
/// reloaded its row addresses from the stack and gained a third as much. The same FMAs on the
/// same elements in the same order: the same bits.
#define NN_WIDE_TAIL 8
#define MR_WIDE 8
_Static_assert(MR_WIDE <= 8, "nn_dispatch_wide has a case for each height up to 8 rows");
#define NN_WIDE_CASE(R)                                                                                                  \
    case R:                                                                                                              \
        nn_block(R, 3, 1, kc, a, lda, b, ldb, c, ldc, 0xFFFF, 0xFFFF, mh, start, bias, activation, next, next_ld, next_rows); \
        break;

static void nn_dispatch_wide(int R, int width, int kc, const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                             int start, const float *bias, bsvi_activation activation, const float *next, long next_ld,
                             int next_rows) {
    const __mmask8 mh = (__mmask8)bsvi_lane_mask16(width - NR);
    switch (R) {
        NN_WIDE_CASE(1) NN_WIDE_CASE(2) NN_WIDE_CASE(3) NN_WIDE_CASE(4)
        NN_WIDE_CASE(5) NN_WIDE_CASE(6) NN_WIDE_CASE(7) NN_WIDE_CASE(8)
    }
}

#define TN_CASE(R)                                                                                   \
    case R:                                                                                          \
        if (V == 2) tn_block(R, 2, 0, kc, ap, bp, c, ldc, m0, m1, overwrite, next, ldb, next_rows);  \
        else if (!H) tn_block(R, 1, 0, kc, ap, bp, c, ldc, m0, m1, overwrite, next, ldb, next_rows); \
        else tn_block(R, 1, 1, kc, ap, bp, c, ldc, m0, m1, overwrite, next, ldb, next_rows);         \
        break;

static void tn_dispatch(int R, int V, int kc, const float *ap, const float *bp, float *c, long ldc, __mmask16 m0,
                        __mmask16 m1, int overwrite, const float *next, long ldb, int next_rows) {
    const int H = narrow_strip(V, m0);
    switch (R) {
        TN_CASE(1) TN_CASE(2) TN_CASE(3) TN_CASE(4) TN_CASE(5) TN_CASE(6)
        TN_CASE(7) TN_CASE(8) TN_CASE(9) TN_CASE(10) TN_CASE(11) TN_CASE(12) TN_CASE(13)
    }
}

typedef __mmask16 strip_mask;
/// The lane masks of a strip `width` columns wide (≤ 32) and its number of vectors.
static inline __attribute__((always_inline)) int strip_masks(int width, strip_mask *m0, strip_mask *m1) {
    *m0 = bsvi_lane_mask16(width);
    *m1 = bsvi_lane_mask16(width > 16 ? width - 16 : 0);
    return width > 16 ? 2 : 1;
}

#include "product_drivers.inc"

/// Independent FMA chains on registers only: enough to cover the FMA latency on both ports.
static double fma_peak_gflops(double seconds) {
    __m512 acc[24];
    for (int i = 0; i < 24; i++) acc[i] = _mm512_set1_ps((float)i);
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    long iterations = 0, batch = 1 << 16;
    const double t0 = bsvi_seconds_now();
    double elapsed;
    do {
        for (long it = 0; it < batch; it++) {
            for (int i = 0; i < 24; i++) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
            __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]));
        }
        iterations += batch;
        elapsed = bsvi_seconds_now() - t0;
    } while (elapsed < seconds);
    float sink = 0;
    for (int i = 0; i < 24; i++) sink += _mm512_reduce_add_ps(acc[i]);
    __asm__ volatile("" : : "x"(sink));
    return (double)iterations * 24 * 16 * 2 / elapsed * 1e-9;
}

#pragma clang attribute pop

const bsvi_kernel_table bsvi_kernels_avx512 = {
    .isa = BSVI_ISA_AVX512,
    .sgemm_nn = sgemm_nn,
    .sgemm_nt = sgemm_nt,
    .sgemm_tn_accumulate = sgemm_tn_accumulate,
    .sgemm_nn_bernoulli_log_likelihood = sgemm_nn_bernoulli_log_likelihood,
    .transpose = transpose_avx,
    .fma_peak_gflops = fma_peak_gflops,
    ELEMENTWISE_TABLE_ENTRIES,
};
#endif
