// The async-signal-safe stop flag: SIGTERM/SIGINT/SIGUSR1/SIGUSR2 set it, and the training
// loop turns it into a collective stop. No MPI or HDF5 here, so the CLI and the trainer can
// use it without seeing either library.
#ifndef BSVI_CSTOPSIGNAL_H
#define BSVI_CSTOPSIGNAL_H

/// Installs the handlers (and unblocks the signals, which a process may inherit blocked).
void bsvi_install_stop_handlers(void);
/// 0, or the number of the first stop signal received.
int bsvi_stop_signal(void);

#endif
