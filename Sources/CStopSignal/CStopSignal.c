#include "CStopSignal.h"
#include <pthread.h>
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_signal = 0;

/* SIGTERM/SIGINT to a rank, and SIGUSR1/SIGUSR2, which Open MPI's mpirun forwards to every
   rank (it aborts the job on SIGTERM/SIGINT instead of forwarding them). */
static const int stop_signals[] = {SIGTERM, SIGINT, SIGUSR1, SIGUSR2};
enum { stop_signal_count = sizeof stop_signals / sizeof stop_signals[0] };

static void on_stop_signal(int signal_number) {
    if (stop_signal == 0) stop_signal = signal_number;
}

static sigset_t stop_signal_set(void) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < stop_signal_count; i++) sigaddset(&set, stop_signals[i]);
    return set;
}

/* The dispositions the process started with (a parent's SIG_IGN: `trap '' TERM`, or SIGINT in
   a non-interactive shell's background job), given back on release and before an exec. */
static struct sigaction inherited[stop_signal_count];
static int inherited_saved = 0;

static int inherited_ignores(int signal_number) {
    for (int i = 0; i < stop_signal_count; i++) {
        if (stop_signals[i] == signal_number) return inherited_saved && inherited[i].sa_handler == SIG_IGN;
    }
    return 0;
}

static void restore_inherited(void) {
    if (!inherited_saved) return;
    for (int i = 0; i < stop_signal_count; i++) sigaction(stop_signals[i], &inherited[i], NULL);
}

void bsvi_install_stop_handlers(void) {
    if (!inherited_saved) {
        for (int i = 0; i < stop_signal_count; i++) sigaction(stop_signals[i], NULL, &inherited[i]);
        inherited_saved = 1;
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    for (int i = 0; i < stop_signal_count; i++) sigaction(stop_signals[i], &action, NULL);
    /* A process inherits its parent's blocked signals (e.g. from a thread pool); unblock ours.
       One that arrived while blocked (see bsvi_block_stop_signals_for_exec) is recorded now. */
    sigset_t set = stop_signal_set();
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

void bsvi_release_stop_signals(void) {
    restore_inherited();
    sigset_t set = stop_signal_set();
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    /* What the signal would have done on arrival (nothing, if the process was started ignoring it). */
    if (stop_signal != 0 && !inherited_ignores(stop_signal)) raise(stop_signal);
}

void bsvi_block_stop_signals_for_exec(void) {
    sigset_t set = stop_signal_set();
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* Pending signals, the blocked mask and ignored dispositions survive execv (handlers do
       not): the new image inherits what this one did, and records a signal received here once
       it holds the signals again. */
    restore_inherited();
    if (stop_signal != 0 && !inherited_ignores(stop_signal)) raise(stop_signal);
}

int bsvi_stop_signal(void) { return stop_signal; }
