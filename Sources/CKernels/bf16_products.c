// Matrix products with bfloat16 factors and float32 sums: the evaluator's decoder at
// `eval --matmul-precision high|medium` (docs/evaluation.md), on AMX tiles (TDPBF16PS; high and
// medium) or, on a CPU with AVX512_BF16 but no tiles, on 512-bit vectors (VDPBF16PS; medium only:
// high's three products would take 1.5 instructions per float32 multiply-add there, slower than
// float32 itself). Not a kernel path: the float32 kernels stay the default everywhere, and these
// run only where bsvi_amx_bf16_available() or bsvi_avx512_bf16_available() says so. Both units
// read the same packed B.
//
// A float32 value x is split into hi = bf16(x) and lo = bf16(x − hi), both rounded to nearest
// even; x − hi − lo is below 2⁻¹⁶|x|. "medium" multiplies hi·hi; "high" sums hi·hi + hi·lo +
// lo·hi (three tile products: the dropped lo·lo is below 2⁻¹⁶ of the product), PyTorch's
// float32 matmul precisions of the same names. TDPBF16PS multiplies bfloat16 pairs exactly and
// adds them into float32 accumulators (round to nearest even, denormals flushed).
#include "kernel_table.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/// Round to nearest even. ±∞ stay ±∞ and a NaN stays a (quiet) NaN: the rounding carry would
/// turn a NaN's payload into ±0. Finite values from 3.3961 × 10³⁸ up round to ±∞, as IEEE's
/// rounding to bfloat16 does.
static inline uint16_t bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float bf16_value(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/// The second bfloat16 of x's split, bf16(x − hi) for hi = bf16_round(x): one definition for
/// the packing and for bsvi_bf16_split, the tests' reference.
static inline uint16_t bf16_rest(float x, uint16_t hi) { return bf16_round(x - bf16_value(hi)); }

void bsvi_bf16_split(const float *in, float *hi, float *lo, long count) {
    for (long i = 0; i < count; i++) {
        const uint16_t h = bf16_round(in[i]);
        hi[i] = bf16_value(h);
        if (lo) lo[i] = bf16_value(bf16_rest(in[i], h));
    }
}

// Packed B: tile column t (columns 16t…16t+15) and k block q (rows 32q…32q+31) is one tile of
// 16 rows × 16 words, word (p, j) = bf16(B[32q+2p][16t+j]) | bf16(B[32q+2p+1][16t+j]) << 16,
// zero beyond k and n; the tiles t-major. With split, the lo halves follow in the same layout.
// Then the bias, zero-padded to whole tiles (a tile loads it with row stride 0 as the sums'
// starting value).
static inline int tile_columns(int n) { return (n + 15) / 16; }
static inline int k_blocks(int k) { return (k + 31) / 32; }

long bsvi_bf16_packed_words(int k, int n, int split) {
    return (long)tile_columns(n) * k_blocks(k) * 256 * (split ? 2 : 1) + (long)tile_columns(n) * 16;
}

void bsvi_bf16_pack(int k, int n, const float *b, int ldb, const float *bias, int split, float *packed) {
    const int nt = tile_columns(n), kb = k_blocks(k);
    uint32_t *words = (uint32_t *)packed;
    const long part = (long)nt * kb * 256;
    for (int t = 0; t < nt; t++)
        for (int q = 0; q < kb; q++)
            for (int p = 0; p < 16; p++)
                for (int j = 0; j < 16; j++) {
                    uint16_t hi[2] = {0, 0}, lo[2] = {0, 0};
                    const int col = 16 * t + j;
                    for (int e = 0; e < 2; e++) {
                        const int row = 32 * q + 2 * p + e;
                        if (row < k && col < n) {
                            const float x = b[(long)row * ldb + col];
                            hi[e] = bf16_round(x);
                            lo[e] = bf16_rest(x, hi[e]);
                        }
                    }
                    const long w = ((long)t * kb + q) * 256 + p * 16 + j;
                    words[w] = hi[0] | (uint32_t)hi[1] << 16;
                    if (split) words[part + w] = lo[0] | (uint32_t)lo[1] << 16;
                }
    float *padded_bias = packed + part * (split ? 2 : 1);
    for (int j = 0; j < nt * 16; j++) padded_bias[j] = bias && j < n ? bias[j] : 0.0f;
}

#if defined(__x86_64__) && defined(__linux__)
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static int amx_permitted;
static void request_tile_data(void) {
    // Linux allocates the 8 KB tile state per process on request; a tile instruction without
    // it raises SIGILL.
    amx_permitted = bsvi_cpu_has_amx_bf16_tiles() && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

int bsvi_amx_bf16_available(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, request_tile_data);
    return amx_permitted;
}

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t bytes_per_row[16];
    uint8_t rows[16];
} __attribute__((packed)) tile_config;

/// C's m rows of n values ← f(C), after the products (both units store the sums first).
static void activate_rows(bsvi_activation activation, int m, int n, float *c, int ldc) {
    if (activation != BSVI_ACTIVATION_NONE)
        for (int r = 0; r < m; r++) bsvi_activation_forward(activation, c + (long)r * ldc, n);
}

#define AMX_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,amx-tile,amx-bf16")))
#define ROWS_TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))
#define DOT_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// Tiles: 0–3 the sums of a 32 × 32 block of C, 4–5 two row tiles of A, 6–7 two tiles of B.
AMX_TARGET static void configure_tiles(void) {
    tile_config config;
    memset(&config, 0, sizeof config);
    config.palette = 1;
    for (int t = 0; t < 8; t++) {
        config.rows[t] = 16;
        config.bytes_per_row[t] = 64;
    }
    _tile_loadconfig(&config);
}

/// bf16_round on 16 lanes: the bfloat16 bits in each lane's low half.
ROWS_TARGET static inline __m512i bf16_round_lanes(__m512 x) {
    const __m512i u = _mm512_castps_si512(x);
    const __m512i carry = _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1)));
    const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, carry), 16);
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    return _mm512_mask_or_epi32(rounded, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
}

/// A (m × k floats) as bfloat16 rows of kp = 32·k_blocks values (zero beyond k, and rows m…mp−1
/// zero): hi into `hi`, and with `lo`, lo.
ROWS_TARGET static void split_rows(int m, int mp, int k, int kp, const float *a, int lda, uint16_t *hi, uint16_t *lo) {
    for (int r = 0; r < mp; r++) {
        uint16_t *h = hi + (long)r * kp, *l = lo ? lo + (long)r * kp : NULL;
        for (int c = 0; c < kp; c += 16) {
            const __mmask16 mask = r < m && k > c ? bsvi_lane_mask16(k - c) : 0;
            const __m512 x = _mm512_maskz_loadu_ps(mask, a + (long)r * lda + c);
            const __m512i high = bf16_round_lanes(x);
            _mm256_storeu_si256((__m256i *)(h + c), _mm512_cvtepi32_epi16(high));
            if (l) {
                const __m512 rest = _mm512_sub_ps(x, _mm512_castsi512_ps(_mm512_slli_epi32(high, 16)));
                _mm256_storeu_si256((__m256i *)(l + c), _mm512_cvtepi32_epi16(bf16_round_lanes(rest)));
            }
        }
    }
}

// Accumulator tiles 0 and 2 (and with WIDTH 2, 1 and 3) += A tiles 4 and 5 times B tile 6 (and 7).
#define DOT_TILES(WIDTH)                  \
    do {                                  \
        _tile_dpbf16ps(0, 4, 6);          \
        _tile_dpbf16ps(2, 5, 6);          \
        if (WIDTH == 2) {                 \
            _tile_dpbf16ps(1, 4, 7);      \
            _tile_dpbf16ps(3, 5, 7);      \
        }                                 \
    } while (0)
#define LOAD_B_TILES(WIDTH, B0, B1)                   \
    do {                                              \
        _tile_loadd(6, B0, 64);                       \
        if (WIDTH == 2) _tile_loadd(7, B1, 64);       \
    } while (0)

// One 32 × (16·width) block of C, width 1 or 2 tile columns, from row pair `a_hi`/`a_lo` (stride
// a_stride bytes) and the packed tiles of columns t…t+width−1; stored to `out` (row stride out_ld
// floats, out_stride bytes).
#define PRODUCT_BLOCK(WIDTH)                                                                    \
    do {                                                                                        \
        _tile_loadd(0, bias + 16 * t, 0);                                                       \
        _tile_loadd(2, bias + 16 * t, 0);                                                       \
        if (WIDTH == 2) {                                                                       \
            _tile_loadd(1, bias + 16 * (t + 1), 0);                                             \
            _tile_loadd(3, bias + 16 * (t + 1), 0);                                             \
        }                                                                                       \
        for (int q = 0; q < kb; q++) {                                                          \
            const uint32_t *b0 = hi_tiles + ((long)t * kb + q) * 256, *b1 = b0 + (long)kb * 256; \
            _tile_loadd(4, a_hi + 32 * q, a_stride);                                            \
            _tile_loadd(5, a_hi + 16L * kp + 32 * q, a_stride);                                 \
            LOAD_B_TILES(WIDTH, b0, b1);                                                        \
            DOT_TILES(WIDTH); /* hi · hi */                                                     \
            if (split) {                                                                        \
                LOAD_B_TILES(WIDTH, b0 + part, b1 + part);                                      \
                DOT_TILES(WIDTH); /* hi · lo */                                                 \
                _tile_loadd(4, a_lo + 32 * q, a_stride);                                        \
                _tile_loadd(5, a_lo + 16L * kp + 32 * q, a_stride);                             \
                LOAD_B_TILES(WIDTH, b0, b1);                                                    \
                DOT_TILES(WIDTH); /* lo · hi */                                                 \
            }                                                                                   \
        }                                                                                       \
        _tile_stored(0, out, out_stride);                                                       \
        _tile_stored(2, out + 16 * out_ld, out_stride);                                         \
        if (WIDTH == 2) {                                                                       \
            _tile_stored(1, out + 16, out_stride);                                              \
            _tile_stored(3, out + 16 * out_ld + 16, out_stride);                                \
        }                                                                                       \
    } while (0)

AMX_TARGET static void amx_linear(int m, int k, int n, const float *a, int lda, const float *packed, int split,
                                  float *c, int ldc, bsvi_activation activation) {
    const int nt = tile_columns(n), kb = k_blocks(k), kp = 32 * kb, mp = (m + 31) / 32 * 32;
    const long part = (long)nt * kb * 256;
    const uint32_t *hi_tiles = (const uint32_t *)packed;
    const float *bias = packed + part * (split ? 2 : 1);
    // The A halves (bfloat16, two per float of scratch) and a 32 × 32 block of C.
    const long a_floats = (long)mp * kp / 2;
    float *scratch = bsvi_scratch_or_abort(BSVI_SCRATCH_PACKED_A, a_floats * (split ? 2 : 1) + 32 * 32);
    uint16_t *a_hi_rows = (uint16_t *)scratch, *a_lo_rows = split ? (uint16_t *)(scratch + a_floats) : NULL;
    float *block = scratch + a_floats * (split ? 2 : 1);
    split_rows(m, mp, k, kp, a, lda, a_hi_rows, a_lo_rows);
    configure_tiles();
    const long a_stride = (long)kp * 2;
    for (int i = 0; i < mp; i += 32) {
        const uint16_t *a_hi = a_hi_rows + (long)i * kp, *a_lo = split ? a_lo_rows + (long)i * kp : NULL;
        const int rows = m - i < 32 ? m - i : 32;
        for (int t = 0; t < nt; t += 2) {
            const int width = t + 1 < nt ? 2 : 1;
            const int cols = n - 16 * t < 16 * width ? n - 16 * t : 16 * width;
            // A whole block goes straight to C; one cut by m or n through the 32 × 32 scratch.
            const int whole = rows == 32 && cols == 16 * width;
            float *out = whole ? c + (long)i * ldc + 16 * t : block;
            const long out_ld = whole ? ldc : 32, out_stride = out_ld * 4;
            if (width == 2) PRODUCT_BLOCK(2);
            else PRODUCT_BLOCK(1);
            if (!whole)
                for (int r = 0; r < rows; r++) memcpy(c + (long)(i + r) * ldc + 16 * t, block + r * 32, (size_t)cols * 4);
        }
    }
    _tile_release();
    activate_rows(activation, m, n, c, ldc);
}

// MARK: The same products on AVX512_BF16 vectors (medium only)

/// Rows of C a vector block computes: 12 rows × 2 tile columns = 24 accumulators, with the two
/// rows of B in registers and each row's pair of A broadcast from memory: the float32 kernels'
/// blocks as they were at stop 58 (docs/benchmarks.md), and as they still cut the evaluator's
/// 120-row chunk (ten blocks of 12).
enum { DOT_ROWS = 12 };

/// Rows i…i+rows−1 (rows ≤ DOT_ROWS; A's rows to DOT_ROWS exist, zero past m) and tile columns
/// t…t+width−1 of C: each accumulator starts from the bias, then one VDPBF16PS per pair of k
/// (two exact bfloat16 products added into the float32 lane), for the `used` pairs that hold k's
/// values (the tiles' padding to 32 rows of k would add 12 % to a k of 200). `words` are A's rows
/// as bfloat16 pairs, `pairs` to a row; `tiles` B's packed tile column t, whose pair w is the 16
/// words at 16w (a tile's 16 rows follow the previous tile's), the next column `next` words on.
DOT_TARGET static inline __attribute__((always_inline)) void dot_block(const int width, const uint32_t *words, long pairs,
                                                                        long used, const uint32_t *tiles, long next,
                                                                        const float *bias, float *c, int ldc, int rows,
                                                                        __mmask16 mask0, __mmask16 mask1) {
    __m512 acc[DOT_ROWS][2];
    for (int r = 0; r < DOT_ROWS; r++) {
        acc[r][0] = _mm512_loadu_ps(bias);
        if (width == 2) acc[r][1] = _mm512_loadu_ps(bias + 16);
    }
    for (long w = 0; w < used; w++) {
        const uint32_t *row = tiles + 16 * w;
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(row);
        const __m512bh b1 = width == 2 ? (__m512bh)_mm512_loadu_si512(row + next) : b0;
        for (int r = 0; r < DOT_ROWS; r++) {
            const __m512bh a = (__m512bh)_mm512_set1_epi32((int)words[r * pairs + w]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
            if (width == 2) acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
        }
    }
    for (int r = 0; r < rows; r++) {
        _mm512_mask_storeu_ps(c + (long)r * ldc, mask0, acc[r][0]);
        if (width == 2) _mm512_mask_storeu_ps(c + (long)r * ldc + 16, mask1, acc[r][1]);
    }
}

DOT_TARGET static void dot_linear(int m, int k, int n, const float *a, int lda, const float *packed, float *c, int ldc,
                                  bsvi_activation activation) {
    const int nt = tile_columns(n), kb = k_blocks(k), kp = 32 * kb, mp = (m + DOT_ROWS - 1) / DOT_ROWS * DOT_ROWS;
    const long part = (long)nt * kb * 256;
    const uint32_t *tiles = (const uint32_t *)packed;
    const float *bias = packed + part;
    // A as bfloat16 rows (two per float of scratch), zero rows up to a whole block.
    uint16_t *rows16 = (uint16_t *)bsvi_scratch_or_abort(BSVI_SCRATCH_PACKED_A, (long)mp * kp / 2);
    split_rows(m, mp, k, kp, a, lda, rows16, NULL);
    const uint32_t *words = (const uint32_t *)rows16;
    const long pairs = kp / 2, used = (k + 1) / 2;
    for (int i = 0; i < mp; i += DOT_ROWS) {
        const int rows = m - i < DOT_ROWS ? m - i : DOT_ROWS;
        for (int t = 0; t < nt; t += 2) {
            const int cols = n - 16 * t;
            const __mmask16 mask0 = bsvi_lane_mask16(cols), mask1 = cols > 16 ? bsvi_lane_mask16(cols - 16) : 0;
            const uint32_t *tile_column = tiles + (long)t * kb * 256;
            float *out = c + (long)i * ldc + 16 * t;
            if (t + 1 < nt) dot_block(2, words + (long)i * pairs, pairs, used, tile_column, (long)kb * 256, bias + 16 * t, out, ldc, rows, mask0, mask1);
            else dot_block(1, words + (long)i * pairs, pairs, used, tile_column, 0, bias + 16 * t, out, ldc, rows, mask0, 0);
        }
    }
    activate_rows(activation, m, n, c, ldc);
}

/// Independent VDPBF16PS chains on registers only, as the FMA peak's loop: two multiply-adds per
/// 32-bit lane an instruction.
DOT_TARGET static double dot_peak(double seconds) {
    __m512 acc[24];
    for (int i = 0; i < 24; i++) acc[i] = _mm512_set1_ps((float)i);
    const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3F803F80), y = (__m512bh)_mm512_set1_epi32(0x33D633D6);  // 1.0, 1e-7 pairs
    long iterations = 0;
    const long batch = 1 << 16;
    const double t0 = bsvi_seconds_now();
    double elapsed;
    do {
        for (long it = 0; it < batch; it++) {
            for (int i = 0; i < 24; i++) acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
            __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]));
        }
        iterations += batch;
        elapsed = bsvi_seconds_now() - t0;
    } while (elapsed < seconds);
    float sink = 0;
    for (int i = 0; i < 24; i++) sink += _mm512_reduce_add_ps(acc[i]);
    __asm__ volatile("" : : "x"(sink));
    return (double)iterations * 24 * 16 * 2 * 2 / elapsed * 1e-9;
}

int bsvi_avx512_bf16_available(void) { return bsvi_cpu_has_avx512_bf16(); }

double bsvi_avx512_bf16_peak_gflops(double seconds) { return bsvi_avx512_bf16_available() ? dot_peak(seconds) : 0; }

void bsvi_avx512_bf16_linear(int m, int k, int n, const float *a, int lda, const float *packed, float *c, int ldc,
                             bsvi_activation activation) {
    if (!bsvi_avx512_bf16_available()) {
        fprintf(stderr, "bsvi-dist: bsvi_avx512_bf16_linear called on a CPU without AVX512_BF16\n");
        abort();
    }
    dot_linear(m, k, n, a, lda, packed, c, ldc, activation);
}

/// Four independent accumulator tiles fed by TDPBF16PS from tiles that stay loaded: no memory
/// traffic in the loop, the tile unit's own rate (16 × 16 × 32 multiply-adds per instruction).
AMX_TARGET static double amx_peak(double seconds) {
    static const uint16_t ones[16 * 32] __attribute__((aligned(64))) = {0};
    configure_tiles();
    _tile_loadd(4, ones, 64);
    _tile_loadd(5, ones, 64);
    _tile_loadd(6, ones, 64);
    _tile_loadd(7, ones, 64);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    long iterations = 0;
    const long batch = 1 << 12;
    const double t0 = bsvi_seconds_now();
    double elapsed;
    do {
        for (long it = 0; it < batch; it++) {
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
        iterations += batch;
        elapsed = bsvi_seconds_now() - t0;
    } while (elapsed < seconds);
    _tile_release();
    return (double)iterations * 4 * 16 * 16 * 32 * 2 / elapsed * 1e-9;
}

double bsvi_amx_bf16_peak_gflops(double seconds) { return bsvi_amx_bf16_available() ? amx_peak(seconds) : 0; }

void bsvi_amx_bf16_linear(int m, int k, int n, const float *a, int lda, const float *packed, int split, float *c,
                          int ldc, bsvi_activation activation) {
    if (!bsvi_amx_bf16_available()) {
        fprintf(stderr, "bsvi-dist: bsvi_amx_bf16_linear called on a CPU without usable AMX-BF16 tiles\n");
        abort();
    }
    amx_linear(m, k, n, a, lda, packed, split, c, ldc, activation);
}
#else
int bsvi_amx_bf16_available(void) { return 0; }
int bsvi_avx512_bf16_available(void) { return 0; }
double bsvi_avx512_bf16_peak_gflops(double seconds) {
    (void)seconds;
    return 0;
}
void bsvi_avx512_bf16_linear(int m, int k, int n, const float *a, int lda, const float *packed, float *c, int ldc,
                             bsvi_activation activation) {
    (void)m, (void)k, (void)n, (void)a, (void)lda, (void)packed, (void)c, (void)ldc, (void)activation;
    fprintf(stderr, "bsvi-dist: bsvi_avx512_bf16_linear called on a CPU without AVX512_BF16\n");
    abort();
}
double bsvi_amx_bf16_peak_gflops(double seconds) {
    (void)seconds;
    return 0;
}
void bsvi_amx_bf16_linear(int m, int k, int n, const float *a, int lda, const float *packed, int split, float *c,
                          int ldc, bsvi_activation activation) {
    (void)m, (void)k, (void)n, (void)a, (void)lda, (void)packed, (void)split, (void)c, (void)ldc, (void)activation;
    fprintf(stderr, "bsvi-dist: bsvi_amx_bf16_linear called on a CPU without usable AMX-BF16 tiles\n");
    abort();
}
#endif
