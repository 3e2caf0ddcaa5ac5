// Open MPI's handles and constants that C defines as macros expanding to casts of globals,
// which Swift cannot import, as static inline getters. Only <mpi.h>: the HDF5 and signal
// shims are separate modules, so importing this one brings in nothing but MPI.
#ifndef BSVI_CMPISHIMS_H
#define BSVI_CMPISHIMS_H

#include <mpi.h>

#define BSVI_MPI_SHIM static inline __attribute__((__always_inline__))

BSVI_MPI_SHIM MPI_Comm bsvi_mpi_comm_world(void) { return MPI_COMM_WORLD; }
BSVI_MPI_SHIM MPI_Datatype bsvi_mpi_float(void) { return MPI_FLOAT; }
BSVI_MPI_SHIM MPI_Datatype bsvi_mpi_double(void) { return MPI_DOUBLE; }
BSVI_MPI_SHIM MPI_Datatype bsvi_mpi_byte(void) { return MPI_BYTE; }
BSVI_MPI_SHIM MPI_Op bsvi_mpi_sum(void) { return MPI_SUM; }
BSVI_MPI_SHIM void *bsvi_mpi_in_place(void) { return MPI_IN_PLACE; }
BSVI_MPI_SHIM MPI_Status *bsvi_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
/// The error handler that makes MPI calls return their error code instead of aborting.
BSVI_MPI_SHIM MPI_Errhandler bsvi_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }

#endif
