#include "CShims.h"
#include <pthread.h>
#include <signal.h>
#include <string.h>

MPI_Comm bsvi_mpi_comm_world(void) { return MPI_COMM_WORLD; }
MPI_Datatype bsvi_mpi_float(void) { return MPI_FLOAT; }
MPI_Datatype bsvi_mpi_double(void) { return MPI_DOUBLE; }
MPI_Datatype bsvi_mpi_byte(void) { return MPI_BYTE; }
MPI_Op bsvi_mpi_sum(void) { return MPI_SUM; }

hid_t bsvi_h5p_default(void) { return H5P_DEFAULT; }
hid_t bsvi_h5s_all(void) { return H5S_ALL; }
hid_t bsvi_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
hid_t bsvi_h5p_file_access(void) { return H5P_FILE_ACCESS; }
unsigned bsvi_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
unsigned bsvi_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
unsigned bsvi_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
hid_t bsvi_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
hid_t bsvi_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
hid_t bsvi_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
hid_t bsvi_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
hid_t bsvi_h5t_c_s1(void) { return H5T_C_S1; }
size_t bsvi_h5t_variable(void) { return H5T_VARIABLE; }
void bsvi_h5_silence_errors(void) {
    /* No library shutdown at exit: every file we write is closed explicitly, and after a failed
       close (disk full) HDF5's own atexit cleanup would retry the flush and crash. Must come
       before the library initializes, so the first call does it. */
    static int first = 1;
    if (first) { first = 0; H5dont_atexit(); }
    /* The error-printing setting is per thread in some HDF5 builds: set it on every call. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static volatile sig_atomic_t stop_signal = 0;

static void on_stop_signal(int signal_number) {
    if (stop_signal == 0) stop_signal = signal_number;
}

void bsvi_install_stop_handlers(void) {
    /* SIGTERM/SIGINT to a rank, and SIGUSR1/SIGUSR2, which Open MPI's mpirun forwards to every
       rank (it aborts the job on SIGTERM/SIGINT instead of forwarding them). */
    const int signals[] = {SIGTERM, SIGINT, SIGUSR1, SIGUSR2};
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigset_t unblock;
    sigemptyset(&unblock);
    for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        sigaction(signals[i], &action, NULL);
        sigaddset(&unblock, signals[i]);
    }
    /* A process inherits its parent's blocked signals (e.g. from a thread pool); unblock ours. */
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
}

int bsvi_stop_signal(void) { return stop_signal; }
void *bsvi_mpi_in_place(void) { return MPI_IN_PLACE; }
