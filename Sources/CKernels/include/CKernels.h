#ifndef BSVI_CKERNELS_H
#define BSVI_CKERNELS_H

// The hot kernels of the numerics, one implementation per instruction set, chosen at run time.
//
// Every kernel exists as an AVX-512 variant, an AVX2+FMA variant and a portable one (plain C
// compiled for the baseline of the target, e.g. SSE2 on x86-64); the matrix products exist as
// AVX-512 and AVX2 variants and the portable path leaves them to BLAS. The variant is chosen per
// thread on its first call (bsvi_kernels_select changes it): BSVI_KERNELS=avx512|avx2|portable
// if set (and the CPU can run it), otherwise the widest the CPU and the operating system
// support (CPUID + XGETBV).
// Nothing here depends on the machine the program was built on.
//
// Floating point: the AVX2 and AVX-512 variants perform the same operations in the same order
// on every element (16-lane vectors, fused multiply-adds where the source has a*b + c, sums in
// a fixed order), so they give identical bits. The portable variant has no FMA and differs by
// rounding. Random numbers (bsvi_fill_normals) and Adam are computed without contraction and
// are bit-identical on all three paths.

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: Instruction sets

typedef enum {
    BSVI_ISA_PORTABLE = 0,
    BSVI_ISA_AVX2 = 1,    // AVX2 + FMA (Haswell, Zen and later)
    BSVI_ISA_AVX512 = 2,  // AVX-512 F/BW/DQ/VL (Skylake-SP, Ice Lake, Sapphire Rapids, Zen 4 and later)
} bsvi_isa;

/// Whether this CPU and OS can run `isa`'s kernels (CPUID feature bits, and XGETBV for the
/// OS saving the YMM/ZMM and opmask registers).
int bsvi_cpu_supports(bsvi_isa isa);
/// The widest instruction set bsvi_cpu_supports.
bsvi_isa bsvi_cpu_best_isa(void);
/// The CPU's brand string (CPUID 0x80000002–4), trimmed; "unknown" where there is none.
const char *bsvi_cpu_model_name(void);
/// Whether the CPU has AVX-512 BF16 (OpenBLAS's Cooperlake core uses it).
int bsvi_cpu_has_avx512_bf16(void);
/// Whether the CPU has AMX-TILE and AMX-BF16 and the OS manages the tile state (XCR0 bits 17–18);
/// bsvi_amx_bf16_available also needs Linux's per-process permission.
int bsvi_cpu_has_amx_bf16_tiles(void);
/// Whether the CPU and OS run AVX (256-bit) instructions; AVX-only CPUs (Sandy Bridge, Ivy
/// Bridge, Bulldozer) run the portable kernels, but OpenBLAS's AVX cores use the full width.
int bsvi_cpu_has_avx(void);
/// Whether the CPU and OS run AMD's four-operand FMA4 (family 15h: Bulldozer to Excavator), which
/// OpenBLAS's cores for those CPUs use and no Intel or Zen CPU has.
int bsvi_cpu_has_fma4(void);
/// 1 for GenuineIntel, 2 for AuthenticAMD, 0 otherwise.
int bsvi_cpu_vendor(void);
/// The CPU's family and model numbers (CPUID 1, combined as /proc/cpuinfo shows them; 0 where
/// unknown): a VM's brand string may say only "AMD EPYC", which a Zen 4 (family 25) and a Zen 5
/// (family 26) share.
int bsvi_cpu_family(void);
int bsvi_cpu_model_number(void);

/// Parses "avx512", "avx2" or "portable". Returns 0 and sets *isa, or -1 for any other text.
int bsvi_isa_parse(const char *name, bsvi_isa *isa);
const char *bsvi_isa_name(bsvi_isa isa);

/// Makes `isa`'s kernels the active ones on the calling thread (each thread starts from the
/// default below). Returns 0, or -1 (nothing changed) when the CPU cannot run them.
int bsvi_kernels_select(bsvi_isa isa);
/// The calling thread's instruction set (on first use: BSVI_KERNELS if valid and supported, else the best).
bsvi_isa bsvi_kernels_active(void);
/// Whether the active path has its own matrix products (bsvi_sgemm_nn, bsvi_sgemm_nt, bsvi_sgemm_tn_accumulate);
/// 0 on the portable path, whose callers use BLAS.
int bsvi_kernels_have_products(void);

/// The core's peak single-precision FMA throughput in GFLOP/s: independent fused multiply-adds
/// on registers only (no memory), at `isa`'s vector width, for about `seconds` of wall time.
/// The portable variant times separate multiplies and adds (no FMA in the baseline).
double bsvi_fma_peak_gflops(bsvi_isa isa, double seconds);
/// The peak of separate 256-bit AVX multiplies and adds (no FMA): the yardstick of an AVX-only
/// CPU whose products run on an AVX OpenBLAS core. 0 when the CPU has no AVX.
double bsvi_avx_multiply_add_peak_gflops(double seconds);

// MARK: Matrix products (row-major Float32; only when bsvi_kernels_have_products())

typedef enum {
    BSVI_ACTIVATION_NONE = -1,
    BSVI_ACTIVATION_TANH = 0,
    BSVI_ACTIVATION_RELU = 1,
    BSVI_ACTIVATION_SOFTPLUS = 2,
} bsvi_activation;

/// C = f(A·B + bias) (bias added to every row when non-NULL; f the activation, or none for
/// BSVI_ACTIVATION_NONE, applied to each register block's tile right after it is stored, while it
/// is in L1). A is m×k (row stride lda), B is k×n (ldb), C is m×n (ldc). B is read in place, in
/// strips of 32 (AVX-512) or 16 (AVX2) columns, nothing is packed: made for the SVI loop's
/// products of 50–500 rows with a weight matrix. Each C element is bias (or 0) plus Σ_p a_ip·b_pj accumulated by FMAs in order p = 0…k−1,
/// so a row's result does not depend on m or on the other rows.
void bsvi_sgemm_nn(int m, int k, int n, const float *a, int lda, const float *b, int ldb,
                   float *c, int ldc, const float *bias, bsvi_activation activation);

/// C = A·Bᵀ for A m×k (row stride lda) and B n×k (ldb), C m×n (ldc): back-propagation's δ·Wᵀ
/// read from W itself. The same bits as bsvi_sgemm_nn(m, k, n, a, lda, Bᵀ, n, c, ldc, NULL,
/// BSVI_ACTIVATION_NONE) on an explicit transpose Bᵀ (k×n): B is transposed a strip at a time
/// into a small panel instead.
void bsvi_sgemm_nt(int m, int k, int n, const float *a, int lda, const float *b, int ldb, float *c, int ldc);

/// Weight gradients: C (m×n) += Σ_r w_r · A[r, 0..<m]ᵀ · B[r, 0..<n] over r = 0..<rows, with A
/// rows×m (row stride lda) and B rows×n (ldb); w = row_weights, or 1 when NULL. When bias_gradient
/// is non-NULL it also gets bias_gradient[j] += Σ_r w_r · B[r, j]. Sums run over r in order.
/// With `overwrite` non-zero, C and bias_gradient are set to these sums (their previous contents,
/// even NaN, are never read): the bits of an accumulation into zeros, without zeroing first.
void bsvi_sgemm_tn_accumulate(int m, int n, int rows, const float *a, int lda, const float *b, int ldb,
                              float *c, int ldc, float *bias_gradient, const float *row_weights, int overwrite);

/// The evaluator's output layer and likelihood in one pass: log_likelihood[r] = Σ_c x·a − softplus(a)
/// for the logits a = A·B + bias (as bsvi_sgemm_nn, no activation) of row r, which are never stored.
/// The same bits as bsvi_sgemm_nn followed by bsvi_bernoulli_log_likelihood. Row r reads x row
/// (r mod x_rows) (row stride ldx).
void bsvi_sgemm_nn_bernoulli_log_likelihood(int m, int k, int n, const float *a, int lda, const float *b, int ldb,
                                            const float *bias, const float *x, int ldx, int x_rows,
                                            float *log_likelihood);

/// dst (cols×rows, row stride ldd) = srcᵀ for src rows×cols (row stride lds). Exact.
void bsvi_transpose(int rows, int cols, const float *src, int lds, float *dst, int ldd);

// MARK: Reduced-precision products on AMX tiles or AVX512_BF16 vectors (eval --matmul-precision high|medium)

/// Whether bsvi_amx_bf16_linear can run: AMX-TILE and AMX-BF16, with the OS's tile state, and
/// (Linux) this process's permission for it, requested on the first call.
int bsvi_amx_bf16_available(void);
/// The tile unit's bfloat16 peak in GFLOP/s (2 per multiply-add): register-only TDPBF16PS into four
/// accumulator tiles for about `seconds`; 0 where bsvi_amx_bf16_available() is 0.
double bsvi_amx_bf16_peak_gflops(double seconds);
/// hi[i] = bf16(in[i]) and, when lo is non-NULL, lo[i] = bf16(in[i] − hi[i]), rounded to nearest
/// even and returned as floats: the factors bsvi_amx_bf16_linear multiplies (tests' reference).
void bsvi_bf16_split(const float *in, float *hi, float *lo, long count);
/// The floats a packed weight matrix needs (bsvi_bf16_pack): tiles of bfloat16 pairs, and the bias.
long bsvi_bf16_packed_words(int k, int n, int split);
/// Packs B (k×n, row stride ldb) and bias (n values, or NULL for zeros) for bsvi_amx_bf16_linear
/// and (split 0) bsvi_avx512_bf16_linear: bf16(B) and, with split non-zero, bf16(B − bf16(B)).
void bsvi_bf16_pack(int k, int n, const float *b, int ldb, const float *bias, int split, float *packed);
/// C = f(A·B + bias) for A m×k (row stride lda) and B, bias as packed, C m×n (ldc): each product of
/// bfloat16 factors, summed in float32 from the bias. split 0: bf16(A)·bf16(B) ("medium"); split 1:
/// hi·hi + hi·lo + lo·hi of the two-term splits ("high", relative error ≈ 2⁻¹⁶ per product).
/// Aborts where bsvi_amx_bf16_available() is 0.
void bsvi_amx_bf16_linear(int m, int k, int n, const float *a, int lda, const float *packed, int split, float *c,
                          int ldc, bsvi_activation activation);
/// Whether bsvi_avx512_bf16_linear can run: the CPU's AVX512_BF16 (VDPBF16PS), with the OS's
/// AVX-512 state.
int bsvi_avx512_bf16_available(void);
/// VDPBF16PS's bfloat16 peak in GFLOP/s (4 per instruction and 32-bit lane: two multiply-adds):
/// register-only chains for about `seconds`; 0 where bsvi_avx512_bf16_available() is 0.
double bsvi_avx512_bf16_peak_gflops(double seconds);
/// bsvi_amx_bf16_linear at split 0 ("medium": bf16(A)·bf16(B), float32 sums from the bias) on
/// 512-bit vectors, from B packed by bsvi_bf16_pack with split 0. Each pair of k is added as one
/// VDPBF16PS, so the sums' rounding differs from the tiles'. Aborts where
/// bsvi_avx512_bf16_available() is 0.
void bsvi_avx512_bf16_linear(int m, int k, int n, const float *a, int lda, const float *packed, float *c, int ldc,
                             bsvi_activation activation);

// MARK: Element-wise passes


/// x ← f(x) for `count` values.
void bsvi_activation_forward(bsvi_activation f, float *x, long count);
/// delta ← delta · f'(pre), written through the output y = f(pre).
void bsvi_activation_backward(bsvi_activation f, float *delta, const float *y, long count);

/// Bernoulli log-likelihood and its error, for `rows` rows of `cols` logits (row stride ldl):
/// log_likelihood[r] = Σ_c x·a − softplus(a), and the logits are overwritten by x − sigmoid(a).
/// Row r reads x row (r mod x_rows) (row stride ldx). With log_likelihood NULL, only the error
/// (the same bits).
void bsvi_bernoulli_score(int rows, int cols, const float *x, int ldx, int x_rows, float *logits, int ldl,
                          float *log_likelihood);
/// The same log-likelihood without the error (evaluation): logits are left unchanged.
void bsvi_bernoulli_log_likelihood(int rows, int cols, const float *x, int ldx, int x_rows, const float *logits,
                                   int ldl, float *log_likelihood);

/// log w = log p(x|z) + log N(z; 0, I) − log N(z; μ, exp ℓ) for `rows` rows of d latents, with
/// z = μ + exp(ℓ/2)·ε (so log q is written through ε and stays exact for tiny σ). Row r uses
/// proposal row (r mod lambda_rows) of lambda (μ then ℓ, row stride ldl).
void bsvi_log_weights(int rows, int d, const float *z, const float *epsilon, const float *lambda, int ldl,
                      int lambda_rows, const float *log_likelihood, float *log_weight);

/// Row i: ε = the standard normals of stream keys[i] from counter `counter_offset`, and
/// z = μ + exp(ℓ/2)·ε for proposal row i of lambda (μ then ℓ, row stride ldl). ε and z are rows×d.
void bsvi_draw_latents(int rows, int d, const uint64_t *keys, uint64_t counter_offset, const float *lambda, int ldl,
                       float *epsilon, float *z);

/// The reparameterized one-sample gradient of ELBO(λ) with analytic KL for `rows` rows:
/// ∂/∂μ = dz − μ, ∂/∂ℓ = ½·dz·ε·exp(ℓ/2) − ½·(exp ℓ − 1); lambda and gradient rows are 2d wide.
void bsvi_elbo_gradient(int rows, int d, const float *lambda, int ldl, const float *dz, const float *epsilon,
                        float *gradient, int ldg);

/// kl[i] = KL(N(μ_i, exp ℓ_i) ‖ N(0, I)) = ½ Σ (exp ℓ + μ² − 1 − ℓ) for `rows` proposal rows.
void bsvi_kl_to_standard(int rows, int d, const float *lambda, int ldl, float *kl);

typedef enum { BSVI_REFINE_SGD = 0, BSVI_REFINE_MOMENTUM = 1, BSVI_REFINE_ADAM = 2 } bsvi_refine_rule;

/// One SVI ascent step on `rows` rows of `width` variational parameters, each row with its own
/// optimizer state m, v (rows×width) and, when clip > 0, its gradient rescaled in place to norm ≤ clip:
/// sgd λ += η·g; momentum m = β·m + g, λ += η·m; adam m = β·m + (1−β)·g, v = β₂·v + (1−β₂)·g²,
/// λ += η·(m/c1)/(√(v/c2) + ε). `lambda` and `gradient` have row strides ldl and ldg.
void bsvi_refine_step(bsvi_refine_rule rule, int rows, int width, float *lambda, int ldl, float *gradient, int ldg,
                      float *m, float *v, float eta, float beta, float beta2, float epsilon, float c1, float c2,
                      float clip);

/// One Adam step on n parameters (minimizing), g = gradient·gradient_scale:
/// m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  p ← p − step_size·m / (√(v·inverse_c2) + ε).
/// The four arrays must not overlap. No contraction: bit-identical on every path.
void bsvi_adam_update(long n, float *p, float *m, float *v, const float *gradient, float gradient_scale,
                      float beta1, float beta2, float step_size, float inverse_c2, float epsilon);

/// bsvi_adam_update's memory traffic without its arithmetic: reads p, m, v and gradient and
/// writes p, m, v (n floats each), with the same prefetches, one FMA per value. `bench` times it as the
/// floor no update of n parameters can go below. On zeroed arrays it leaves zeros.
void bsvi_update_traffic(long n, float *p, float *m, float *v, const float *gradient);

/// Square roots with a division each (y ← c/(√y + 1)) per second on the active path's vectors, from
/// register-only chains run for about `seconds`: Adam's update needs one of each per parameter,
/// exactly rounded, so n parameters take at least n over this rate. `bench` sets the update's
/// floor to the larger of this and bsvi_update_traffic's time.
double bsvi_sqrt_divide_rate(double seconds);

/// max |x_i| over `count` floats (0 for none): +∞ if some x_i is ±∞, NaN if some x_i is NaN.
float bsvi_max_magnitude(const float *x, long count);

/// Standard normals from a counter-based stream (SplitMix64 finalizer of key + (counter+1)·φ):
/// counter c gives u₁ (its top 23 bits) and u₂ (low 23 bits), both in (0, 1); normal j of a block of
/// 32 is r·cos(2πu₂) of pair j for j < 16 and r·sin of pair j − 16 otherwise, r = √(−2 ln u₁).
/// Bit-identical on every path (no contraction).
void bsvi_fill_normals(uint64_t key, uint64_t counter_offset, float *out, long count);

/// The elementary functions the kernels are built from, over arrays (for tests and reuse).
typedef enum {
    BSVI_FUNCTION_EXP = 0,        // e^x, inputs clamped to [−87.3, 88.7]
    BSVI_FUNCTION_LOG = 1,        // ln x for positive normal x
    BSVI_FUNCTION_LOG1P_UNIT = 2, // ln(1 + x) for x in [0, 1]
    BSVI_FUNCTION_TANH = 3,
    BSVI_FUNCTION_SOFTPLUS = 4,   // max(x, 0) + ln(1 + e^−|x|)
    BSVI_FUNCTION_COS_2PI = 5,    // cos 2πx (the sampler's, no contraction)
    BSVI_FUNCTION_SIN_2PI = 6,    // sin 2πx (the sampler's, no contraction)
    BSVI_FUNCTION_SIGMOID = 7,
    BSVI_FUNCTION_EXP_NONPOSITIVE = 8, // e^x for x ≤ 0: the same bits as BSVI_FUNCTION_EXP, fewer operations
} bsvi_function;
void bsvi_elementary(bsvi_function f, const float *in, float *out, long count);

/// Sets FTZ and DAZ in the calling thread's MXCSR (denormal results flushed to zero, denormal
/// inputs read as zero), for code outside the kernels (BLAS). The kernels set them for themselves.
void bsvi_flush_denormals_on_this_thread(void);

// MARK: Memory

/// Uninitialized memory for `count` floats, 64-byte aligned; from 1 MiB up 2 MiB-aligned and advised
/// onto transparent huge pages. Release with free(). NULL when out of memory.
void *bsvi_allocate_floats(long count);

#ifdef __cplusplus
}
#endif
#endif
