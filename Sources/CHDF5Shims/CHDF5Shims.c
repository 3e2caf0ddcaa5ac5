#include "CHDF5Shims.h"
#include <fcntl.h>

void bsvi_h5_silence_errors(void) {
    /* No library shutdown at exit: every file we write is closed explicitly, and after a failed
       close (disk full) HDF5's own atexit cleanup would retry the flush and crash. Must come
       before the library initializes, so the first call does it. */
    static int first = 1;
    if (first) { first = 0; H5dont_atexit(); }
    /* The error-printing setting is per thread in some HDF5 builds: set it on every call. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

int bsvi_h5f_close_on_exec(hid_t file) {
    hid_t fapl = H5Fget_access_plist(file);
    if (fapl < 0) return -1;
    const hid_t driver = H5Pget_driver(fapl);
    H5Pclose(fapl);
    /* Only the POSIX driver's handle is known to be a pointer to its descriptor. */
    if (driver != H5FD_SEC2) return 0;
    void *handle = NULL;
    if (H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) < 0 || handle == NULL) return -1;
    const int fd = *(const int *)handle;
    const int flags = fcntl(fd, F_GETFD);
    if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) return -1;
    return 0;
}
