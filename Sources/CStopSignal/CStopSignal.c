#include "CStopSignal.h"
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal = 0;

/* SIGTERM/SIGINT to a rank, and SIGUSR1/SIGUSR2, which Open MPI's mpirun forwards to every
   rank (it aborts the job on SIGTERM/SIGINT instead of forwarding them). */
static const int stop_signals[] = {SIGTERM, SIGINT, SIGUSR1, SIGUSR2};
enum { stop_signal_count = sizeof stop_signals / sizeof stop_signals[0] };

/* The stop signals this process was started ignoring, carried across the re-execution (which
   resets caught signals to the default action): a parent's `trap '' TERM`, or SIGINT in a
   non-interactive shell's background job. */
static const char *const ignored_variable = "BSVI_IGNORED_STOP_SIGNALS";

/* The dispositions the process started with, given back on release. */
static struct sigaction inherited[stop_signal_count];
static int inherited_saved = 0;
static pthread_t main_thread;

static void on_stop_signal(int signal_number) {
    /* A process-directed signal may land on any thread that does not block it (OpenBLAS's
       workers, started before main, block nothing). Hand it to the main thread, which records
       it, or keeps it pending while it blocks the signals across the exec. */
    if (!pthread_equal(pthread_self(), main_thread)) {
        pthread_kill(main_thread, signal_number);
        return;
    }
    if (stop_signal == 0) stop_signal = signal_number;
}

static sigset_t stop_signal_set(void) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < stop_signal_count; i++) sigaddset(&set, stop_signals[i]);
    return set;
}

static int inherited_ignores(int signal_number) {
    for (int i = 0; i < stop_signal_count; i++) {
        if (stop_signals[i] == signal_number) return inherited_saved && inherited[i].sa_handler == SIG_IGN;
    }
    return 0;
}

static void save_inherited(void) {
    const char *carried = getenv(ignored_variable);
    for (int i = 0; i < stop_signal_count; i++) {
        sigaction(stop_signals[i], NULL, &inherited[i]);
        char name[16];
        snprintf(name, sizeof name, ",%d,", stop_signals[i]);
        if (carried != NULL && strstr(carried, name) != NULL) inherited[i].sa_handler = SIG_IGN;
    }
    if (carried != NULL) unsetenv(ignored_variable);
    main_thread = pthread_self();
    inherited_saved = 1;
}

void bsvi_install_stop_handlers(void) {
    if (!inherited_saved) save_inherited();
    else unsetenv(ignored_variable);  /* after an exec that failed */
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
    if (!inherited_saved) return;
    for (int i = 0; i < stop_signal_count; i++) sigaction(stop_signals[i], &inherited[i], NULL);
    sigset_t set = stop_signal_set();
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    /* What the signal would have done on arrival (nothing, if the process was started ignoring it). */
    if (stop_signal != 0 && !inherited_ignores(stop_signal)) raise(stop_signal);
}

void bsvi_block_stop_signals_for_exec(void) {
    sigset_t set = stop_signal_set();
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* The handlers stay until execv resets them (another thread's signal is forwarded here and
       stays pending); pending signals and the blocked mask survive execv. A signal recorded so
       far is made pending again, for the new image to record once it holds the signals. */
    char carried[64] = ",";
    for (int i = 0; i < stop_signal_count; i++) {
        if (!inherited_ignores(stop_signals[i])) continue;
        char name[16];
        snprintf(name, sizeof name, "%d,", stop_signals[i]);
        strncat(carried, name, sizeof carried - strlen(carried) - 1);
    }
    if (strlen(carried) > 1) setenv(ignored_variable, carried, 1);
    if (stop_signal != 0) raise(stop_signal);
}

int bsvi_stop_signal(void) { return stop_signal; }

/* MARK: Temp files removed by a fatal signal */

/* A command whose stop signals act as they would by default (prepare-data, sample, every command
   once it releases the signals) dies at Ctrl-C mid-write. Its AtomicFile temp file, as large as
   the output, would stay behind as a hidden .NAME.tmp-PID until a later writer of the same
   output found it abandoned. Registered paths are removed by the signal, which then does what
   it would have done. Only where its disposition is the default: a process that handles the
   signal (training's graceful stop) or was started ignoring it keeps that. */
enum { temp_slots = 4, temp_path_bytes = 4096 };
static char temp_paths[temp_slots][temp_path_bytes];
static volatile sig_atomic_t temp_used[temp_slots];
static pthread_mutex_t temp_lock = PTHREAD_MUTEX_INITIALIZER;
static const int fatal_signals[] = {SIGINT, SIGTERM, SIGHUP};
enum { fatal_signal_count = sizeof fatal_signals / sizeof fatal_signals[0] };

static void on_fatal_signal(int signal_number) {
    for (int i = 0; i < temp_slots; i++) {
        if (temp_used[i]) unlink(temp_paths[i]);
    }
    signal(signal_number, SIG_DFL);
    raise(signal_number);
}

int bsvi_remove_on_fatal_signal(const char *path) {
    if (strlen(path) >= temp_path_bytes) return -1;
    pthread_mutex_lock(&temp_lock);
    int slot = -1;
    for (int i = 0; i < temp_slots && slot < 0; i++) {
        if (!temp_used[i]) slot = i;
    }
    if (slot >= 0) {
        strcpy(temp_paths[slot], path);
        temp_used[slot] = 1;  /* after the copy: a signal sees the whole path or none */
        for (int i = 0; i < fatal_signal_count; i++) {
            struct sigaction current;
            if (sigaction(fatal_signals[i], NULL, &current) != 0) continue;
            if ((current.sa_flags & SA_SIGINFO) || current.sa_handler != SIG_DFL) continue;
            struct sigaction action;
            memset(&action, 0, sizeof action);
            action.sa_handler = on_fatal_signal;
            sigemptyset(&action.sa_mask);
            sigaction(fatal_signals[i], &action, NULL);
        }
    }
    pthread_mutex_unlock(&temp_lock);
    return slot;
}

void bsvi_forget_on_fatal_signal(int slot) {
    if (slot >= 0 && slot < temp_slots) temp_used[slot] = 0;
}
