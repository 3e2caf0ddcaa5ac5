#include "CStopSignal.h"
#include <pthread.h>
#include <signal.h>
#include <string.h>

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
