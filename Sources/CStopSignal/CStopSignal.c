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

static void set_disposition(void (*handler)(int)) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    for (int i = 0; i < stop_signal_count; i++) sigaction(stop_signals[i], &action, NULL);
}

void bsvi_install_stop_handlers(void) {
    set_disposition(on_stop_signal);
    /* A process inherits its parent's blocked signals (e.g. from a thread pool); unblock ours.
       One that arrived while blocked (see bsvi_block_stop_signals_for_exec) is recorded now. */
    sigset_t set = stop_signal_set();
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

void bsvi_release_stop_signals(void) {
    set_disposition(SIG_DFL);
    sigset_t set = stop_signal_set();
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    /* What the signal would have done on arrival. */
    if (stop_signal != 0) raise(stop_signal);
}

void bsvi_block_stop_signals_for_exec(void) {
    sigset_t set = stop_signal_set();
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* Pending signals and the blocked mask survive execv (handlers do not): the new image
       records this one once it holds the signals again. */
    if (stop_signal != 0) raise(stop_signal);
}

int bsvi_stop_signal(void) { return stop_signal; }
