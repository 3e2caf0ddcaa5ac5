// Getters for the Open MPI and HDF5 constants that C defines as macros (Swift cannot import
// macros that expand to casts, globals or function calls), and an async-signal-safe stop flag.
#ifndef BSVI_CSHIMS_H
#define BSVI_CSHIMS_H

#include <mpi.h>
#include <hdf5.h>

// Open MPI
MPI_Comm bsvi_mpi_comm_world(void);
MPI_Datatype bsvi_mpi_float(void);
MPI_Datatype bsvi_mpi_double(void);
MPI_Datatype bsvi_mpi_byte(void);
MPI_Op bsvi_mpi_sum(void);
void *bsvi_mpi_in_place(void);

// HDF5
hid_t bsvi_h5p_default(void);
hid_t bsvi_h5s_all(void);
hid_t bsvi_h5p_dataset_create(void);
hid_t bsvi_h5p_file_access(void);
unsigned bsvi_h5f_acc_rdonly(void);
unsigned bsvi_h5f_acc_rdwr(void);
unsigned bsvi_h5f_acc_trunc(void);
hid_t bsvi_h5t_native_float(void);
hid_t bsvi_h5t_native_double(void);
hid_t bsvi_h5t_native_uint8(void);
hid_t bsvi_h5t_native_int64(void);
hid_t bsvi_h5t_c_s1(void);
size_t bsvi_h5t_variable(void);
/// Turns off HDF5's automatic error-stack printing (callers report errors themselves) and its
/// atexit shutdown. Call before any other HDF5 function.
void bsvi_h5_silence_errors(void);

// Signals: SIGTERM/SIGINT set a flag that the training loop turns into a collective stop.
void bsvi_install_stop_handlers(void);
int bsvi_stop_signal(void);  // 0, or the number of the first stop signal received

#endif
