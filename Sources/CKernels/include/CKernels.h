#ifndef BSVI_CKERNELS_H
#define BSVI_CKERNELS_H

/// 1 when this CPU has AVX2 and FMA: bsvi_sgemm_nn may be called, and the transpose and Adam
/// take their AVX2 paths. 0: callers use BLAS instead of bsvi_sgemm_nn (the others fall back
/// to portable C by themselves).
int bsvi_avx2_fma_available(void);

/// C = A·B (+ bias in every row when bias is non-NULL), all row-major Float32:
/// A is m×k (row stride lda), B is k×n (row stride ldb), C is m×n (row stride ldc), bias has n.
/// Made for the small-m products of the SVI loop (m = a batch of 50–100 rows, B a weight
/// matrix): B is read in place in 16-column strips, so unlike a BLAS call nothing is packed
/// per call. Only call when bsvi_avx2_fma_available() is 1.
void bsvi_sgemm_nn(int m, int k, int n, const float *a, int lda, const float *b, int ldb,
                   float *c, int ldc, const float *bias);

/// dst (cols×rows, row stride ldd) = srcᵀ for src rows×cols (row stride lds).
void bsvi_transpose(int rows, int cols, const float *src, int lds, float *dst, int ldd);

/// One Adam step on n parameters (minimizing), g = gradient·gradient_scale:
/// m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  p ← p − step_size·m / (√(v·inverse_c2) + ε).
/// The four arrays must not overlap.
void bsvi_adam_update(long n, float *p, float *m, float *v, const float *gradient, float gradient_scale,
                      float beta1, float beta2, float step_size, float inverse_c2, float epsilon);

/// Uninitialized memory for `count` floats, 64-byte aligned; from 1 MiB up 2 MiB-aligned and advised
/// onto transparent huge pages. Release with free(). NULL when out of memory.
void *bsvi_allocate_floats(long count);

#endif
