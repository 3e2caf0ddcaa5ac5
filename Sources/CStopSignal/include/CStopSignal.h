// The async-signal-safe stop flag: SIGTERM/SIGINT/SIGUSR1/SIGUSR2 set it, and the training
// loop turns it into a collective stop. Also the temp files a fatal signal removes (AtomicFile's,
// at the end). No MPI or HDF5 here, so the CLI, the trainer and the storage layer can use it
// without seeing either library.
//
// From the first line of main the signals are held: recorded, not fatal (a signal in the
// start-up, or while the process re-executes itself for OpenBLAS, used to kill it). Commands
// that stop gracefully keep them so; every other path releases them to the dispositions the
// process started with (default, or ignored by its parent), and a signal recorded meanwhile
// then acts as it would have on arrival.
#ifndef BSVI_CSTOPSIGNAL_H
#define BSVI_CSTOPSIGNAL_H

/// Installs the handlers (and unblocks the signals, which a process may inherit blocked).
void bsvi_install_stop_handlers(void);
/// The dispositions the process started with again; a stop signal recorded so far is raised
/// (and so acted on) now, unless the process was started ignoring it.
void bsvi_release_stop_signals(void);
/// Before execv of this program: blocks the signals, so that one arriving before the new image
/// holds them stays pending instead of killing it, and makes a recorded one pending again.
void bsvi_block_stop_signals_for_exec(void);
/// 0, or the number of the first stop signal received.
int bsvi_stop_signal(void);

/// Registers a temp file to unlink if SIGINT, SIGTERM or SIGHUP kills the process while it is
/// written (installing that removal for each of them whose disposition is the default, and only
/// those). Returns the registration (for bsvi_forget_on_fatal_signal), or -1 when all slots are
/// in use or the path is too long: the file is then left to the usual stale-file removal.
int bsvi_remove_on_fatal_signal(const char *path);
/// The file is renamed into place or removed: a signal must no longer unlink that name.
void bsvi_forget_on_fatal_signal(int registration);

#endif
