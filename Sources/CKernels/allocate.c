// Memory for FloatBuffer. Buffers of 1 MiB or more (parameters, gradients, Adam moments, the
// decoder workspace of the k+1 SVI blocks) are 2 MiB-aligned and marked for transparent huge
// pages: the GEMM kernel walks weight strips with a row stride of ~3 KB, touching a new 4 KiB
// page every row, so with small pages the TLB, not the arithmetic, sets the pace.
#include "CKernels.h"
#include <stdlib.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

void *bsvi_allocate_floats(long count) {
    const size_t bytes = (size_t)count * sizeof(float);
    const size_t huge = (size_t)2 << 20;
    void *p = NULL;
    if (bytes >= ((size_t)1 << 20)) {
        const size_t rounded = (bytes + huge - 1) / huge * huge;
        if (posix_memalign(&p, huge, rounded) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        madvise(p, rounded, MADV_HUGEPAGE);  // advice only: without THP this is a no-op
#endif
    } else if (posix_memalign(&p, 64, bytes) != 0) {
        return NULL;
    }
    return p;
}
