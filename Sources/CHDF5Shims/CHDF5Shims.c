#include "CHDF5Shims.h"

void bsvi_h5_silence_errors(void) {
    /* No library shutdown at exit: every file we write is closed explicitly, and after a failed
       close (disk full) HDF5's own atexit cleanup would retry the flush and crash. Must come
       before the library initializes, so the first call does it. */
    static int first = 1;
    if (first) { first = 0; H5dont_atexit(); }
    /* The error-printing setting is per thread in some HDF5 builds: set it on every call. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}
