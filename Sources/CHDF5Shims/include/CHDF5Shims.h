// HDF5's identifiers and constants that C defines as macros (casts, or globals read after an
// H5open() call), which Swift cannot import, as static inline getters. Only <hdf5.h>: the MPI
// and signal shims are separate modules, so importing this one brings in nothing but HDF5.
#ifndef BSVI_CHDF5SHIMS_H
#define BSVI_CHDF5SHIMS_H

#include <hdf5.h>

#define BSVI_HDF5_SHIM static inline __attribute__((__always_inline__))

BSVI_HDF5_SHIM hid_t bsvi_h5p_default(void) { return H5P_DEFAULT; }
BSVI_HDF5_SHIM hid_t bsvi_h5s_all(void) { return H5S_ALL; }
BSVI_HDF5_SHIM hid_t bsvi_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
BSVI_HDF5_SHIM hid_t bsvi_h5p_group_create(void) { return H5P_GROUP_CREATE; }
BSVI_HDF5_SHIM hid_t bsvi_h5p_file_create(void) { return H5P_FILE_CREATE; }
BSVI_HDF5_SHIM hid_t bsvi_h5p_dataset_access(void) { return H5P_DATASET_ACCESS; }
BSVI_HDF5_SHIM hid_t bsvi_h5p_file_access(void) { return H5P_FILE_ACCESS; }
BSVI_HDF5_SHIM unsigned bsvi_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
BSVI_HDF5_SHIM unsigned bsvi_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
BSVI_HDF5_SHIM unsigned bsvi_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
BSVI_HDF5_SHIM hid_t bsvi_h5e_default(void) { return H5E_DEFAULT; }
// Memory types (the machine's layout).
BSVI_HDF5_SHIM hid_t bsvi_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
BSVI_HDF5_SHIM hid_t bsvi_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
BSVI_HDF5_SHIM hid_t bsvi_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
BSVI_HDF5_SHIM hid_t bsvi_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
// File types (little-endian on disk whatever the machine).
BSVI_HDF5_SHIM hid_t bsvi_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
BSVI_HDF5_SHIM hid_t bsvi_h5t_ieee_f64le(void) { return H5T_IEEE_F64LE; }
BSVI_HDF5_SHIM hid_t bsvi_h5t_std_u8le(void) { return H5T_STD_U8LE; }
BSVI_HDF5_SHIM hid_t bsvi_h5t_std_i64le(void) { return H5T_STD_I64LE; }
BSVI_HDF5_SHIM hid_t bsvi_h5t_c_s1(void) { return H5T_C_S1; }
BSVI_HDF5_SHIM size_t bsvi_h5t_variable(void) { return H5T_VARIABLE; }

/// Turns off HDF5's automatic error-stack printing (callers report errors themselves) and its
/// atexit shutdown. Call before any other HDF5 function. Not inline: it keeps one flag for
/// the whole process.
void bsvi_h5_silence_errors(void);

/// Marks an open file's descriptor close-on-exec (HDF5 opens files without O_CLOEXEC): a process
/// started meanwhile by this one — by posix_spawn, which passes on every descriptor not so
/// marked — would otherwise keep the file and HDF5's flock lock on it for as long as it lives,
/// and every other process's H5Fopen of the file would fail ("unable to lock file"). 0 on
/// success or for a driver other than the POSIX one (nothing to mark), −1 if it failed.
int bsvi_h5f_close_on_exec(hid_t file);

#endif
