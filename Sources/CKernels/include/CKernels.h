#ifndef BSVI_CKERNELS_H
#define BSVI_CKERNELS_H

/// 1 when this CPU runs bsvi_sgemm_nn's AVX2+FMA kernel, 0 when callers must use BLAS.
int bsvi_sgemm_nn_available(void);

/// C = A·B (+ bias in every row when bias is non-NULL), all row-major Float32:
/// A is m×k (row stride lda), B is k×n (row stride ldb), C is m×n (row stride ldc), bias has n.
/// Made for the small-m products of the SVI loop (m = a batch of 50–100 rows, B a weight
/// matrix): B is read in place in 16-column strips, so unlike a BLAS call nothing is packed
/// per call. Only call when bsvi_sgemm_nn_available() is 1.
void bsvi_sgemm_nn(int m, int k, int n, const float *a, int lda, const float *b, int ldb,
                   float *c, int ldc, const float *bias);

/// dst (cols×rows, row stride ldd) = srcᵀ for src rows×cols (row stride lds).
void bsvi_transpose(int rows, int cols, const float *src, int lds, float *dst, int ldd);

#endif
