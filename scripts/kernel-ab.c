// Two builds of one kernel path in one process: table A (the CKernels of a git revision) and
// table B (this checkout's) take turns on the same step-shaped work, round after round, the
// order swapped every round, so the drift of a shared VM (identical runs minutes apart differ by
// up to ±20 %) falls on both alike. Built and run by scripts/kernel-ab, which compiles A's
// isa_avx2.c and isa_avx512.c with their tables renamed kernel_ab_a_avx2 and kernel_ab_a_avx512;
// B's are this checkout's own bsvi_kernels_avx2 and bsvi_kernels_avx512.
//
// The work, per round and table: the default model's decoder (50-200-200-784, tanh) through k = 20
// SVI refinement steps of a batch of 100 (forward, likelihood and its gradient, back to z through
// held transposes), then the weight-gradient products of bsvi k = 20 (the decoder's three layers
// over 2,100 weighted rows, two encoder layers over 100) and two back-propagation products through
// an untransposed W (sgemm_nt).
#include "kernel_table.h"
#include <stdio.h>
#include <stdlib.h>

extern const bsvi_kernel_table kernel_ab_a_avx2, kernel_ab_a_avx512;

static float *random_floats(long n, float scale) {
    float *p = bsvi_allocate_floats(n);
    for (long i = 0; i < n; i++) p[i] = scale * ((float)rand() / (float)RAND_MAX - 0.5f);
    return p;
}

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/// The q-quantile of n sorted values, interpolated between neighbours (numpy's default), so an
/// even number of rounds gives the midpoint of the middle two as the median.
static double quantile(const double *sorted, int n, double q) {
    const double position = q * (n - 1);
    const int below = (int)position;
    const double above = below + 1 < n ? sorted[below + 1] : sorted[below];
    return sorted[below] + (position - below) * (above - sorted[below]);
}

enum { F1, F2, F3, SCORE, B3, B2, B1, TN, NT, PARTS };
static const char *const part_names[PARTS] = {
    "forward 50-200 tanh", "forward 200-200 tanh", "forward 200-784", "likelihood, gradient",
    "back 784-200, tanh'", "back 200-200, tanh'", "back 200-50", "weight gradients (TN)", "back through W (NT)"};

enum { BATCH = 100, REFINEMENTS = 20, GRADIENT_ROWS = BATCH * (REFINEMENTS + 1) };

typedef struct {
    float *w1, *w2, *w3, *b1, *b2, *b3, *w1t, *w2t, *w3t, *e1, *e2, *gradient;
    float *z, *h1, *h2, *logits, *x, *d2, *d1, *dz, *ll;
    float *many_h2, *many_h1, *many_z, *many_d3, *many_d2, *many_d1, *row_weights, *input, *dx, *de;
} workload;

static workload make_workload(void) {
    workload w;
    // The weights in one buffer, as in the model's parameters (huge pages over 1 MiB, allocate.c).
    float *params = random_floats(50 * 200 + 200 * 200 + 200 * 784 + 200 + 200 + 784 + 784 * 200 + 200 * 200, 0.1f);
    w.w1 = params, w.w2 = w.w1 + 50 * 200, w.w3 = w.w2 + 200 * 200, w.b1 = w.w3 + 200 * 784, w.b2 = w.b1 + 200;
    w.b3 = w.b2 + 200, w.e1 = w.b3 + 784, w.e2 = w.e1 + 784 * 200;
    w.w1t = random_floats(200 * 50, 0.2f), w.w2t = random_floats(200 * 200, 0.1f), w.w3t = random_floats(784 * 200, 0.1f);
    w.gradient = random_floats(50 * 200 + 200 * 200 + 200 * 784 + 784 * 200 + 200 * 200, 0.1f);
    w.z = random_floats(BATCH * 50, 1), w.h1 = random_floats(BATCH * 200, 1), w.h2 = random_floats(BATCH * 200, 1);
    w.logits = random_floats(BATCH * 784, 1), w.x = random_floats(BATCH * 784, 1), w.d2 = random_floats(BATCH * 200, 1);
    w.d1 = random_floats(BATCH * 200, 1), w.dz = random_floats(BATCH * 50, 1), w.ll = random_floats(BATCH, 1);
    for (int i = 0; i < BATCH * 784; i++) w.x[i] = w.x[i] > 0;
    w.many_h2 = random_floats((long)GRADIENT_ROWS * 200, 1), w.many_h1 = random_floats((long)GRADIENT_ROWS * 200, 1);
    w.many_z = random_floats((long)GRADIENT_ROWS * 50, 1), w.many_d3 = random_floats((long)GRADIENT_ROWS * 784, 0.1f);
    w.many_d2 = random_floats((long)GRADIENT_ROWS * 200, 0.1f), w.many_d1 = random_floats((long)GRADIENT_ROWS * 200, 0.1f);
    w.row_weights = random_floats(GRADIENT_ROWS, 1), w.input = random_floats(BATCH * 784, 1);
    w.dx = random_floats(BATCH * 200, 1), w.de = random_floats(BATCH * 200, 1);
    return w;
}

/// One round of the work on table t, each part's seconds added to seconds[part].
static void run_round(const bsvi_kernel_table *t, workload *w, double *seconds) {
    double t0 = bsvi_seconds_now(), t1;
#define LAP(part) (t1 = bsvi_seconds_now(), seconds[part] += t1 - t0, t0 = t1)
    for (int step = 0; step < REFINEMENTS; step++) {
        t->sgemm_nn(BATCH, 50, 200, w->z, 50, w->w1, 200, w->h1, 200, w->b1, BSVI_ACTIVATION_TANH);
        LAP(F1);
        t->sgemm_nn(BATCH, 200, 200, w->h1, 200, w->w2, 200, w->h2, 200, w->b2, BSVI_ACTIVATION_TANH);
        LAP(F2);
        t->sgemm_nn(BATCH, 200, 784, w->h2, 200, w->w3, 784, w->logits, 784, w->b3, BSVI_ACTIVATION_NONE);
        LAP(F3);
        t->bernoulli_score(BATCH, 784, w->x, 784, BATCH, w->logits, 784, w->ll);
        LAP(SCORE);
        t->sgemm_nn(BATCH, 784, 200, w->logits, 784, w->w3t, 200, w->d2, 200, 0, BSVI_ACTIVATION_NONE);
        t->activation_backward(BSVI_ACTIVATION_TANH, w->d2, w->h2, (long)BATCH * 200);
        LAP(B3);
        t->sgemm_nn(BATCH, 200, 200, w->d2, 200, w->w2t, 200, w->d1, 200, 0, BSVI_ACTIVATION_NONE);
        t->activation_backward(BSVI_ACTIVATION_TANH, w->d1, w->h1, (long)BATCH * 200);
        LAP(B2);
        t->sgemm_nn(BATCH, 200, 50, w->d1, 200, w->w1t, 50, w->dz, 50, 0, BSVI_ACTIVATION_NONE);
        LAP(B1);
        for (int i = 0; i < BATCH * 50; i++) w->z[i] = 0.9f * w->z[i] + 0.01f * w->dz[i];  // keeps z bounded
        t0 = bsvi_seconds_now();
    }
    float *g = w->gradient;
    t->sgemm_tn_accumulate(200, 784, GRADIENT_ROWS, w->many_h2, 200, w->many_d3, 784, g, 784, 0, w->row_weights, 1);
    g += 200 * 784;
    t->sgemm_tn_accumulate(200, 200, GRADIENT_ROWS, w->many_h1, 200, w->many_d2, 200, g, 200, 0, w->row_weights, 1);
    g += 200 * 200;
    t->sgemm_tn_accumulate(50, 200, GRADIENT_ROWS, w->many_z, 50, w->many_d1, 200, g, 200, 0, w->row_weights, 1);
    g += 50 * 200;
    t->sgemm_tn_accumulate(784, 200, BATCH, w->input, 784, w->dx, 200, g, 200, 0, 0, 1);
    g += 784 * 200;
    t->sgemm_tn_accumulate(200, 200, BATCH, w->input, 784, w->de, 200, g, 200, 0, 0, 1);
    LAP(TN);
    t->sgemm_nt(BATCH, 200, 784, w->de, 200, w->e1, 200, w->logits, 784);
    t->sgemm_nt(BATCH, 200, 200, w->de, 200, w->e2, 200, w->d1, 200);
    LAP(NT);
#undef LAP
}

int main(int argc, char **argv) {
    const int rounds = argc > 1 ? atoi(argv[1]) : 30;
    const char *label_a = argc > 2 ? argv[2] : "A", *label_b = argc > 3 ? argv[3] : "B";
    if (rounds <= 0) {
        fprintf(stderr, "kernel-ab: ROUNDS must be a positive number of rounds\n");
        return 64;
    }
    // The CPU's best path, as bsvi-dist picks it, or the one BSVI_KERNELS names.
    const char *requested = getenv("BSVI_KERNELS");
    bsvi_isa isa = bsvi_cpu_best_isa();
    if (requested && *requested && bsvi_isa_parse(requested, &isa) != 0) {
        fprintf(stderr, "kernel-ab: BSVI_KERNELS=%s is not a kernel path; use avx512 or avx2\n", requested);
        return 64;
    }
    if (isa == BSVI_ISA_PORTABLE || !bsvi_cpu_supports(isa)) {
        fprintf(stderr, "kernel-ab: the %s path %s; use BSVI_KERNELS=avx512 or avx2 on a CPU that has it\n", bsvi_isa_name(isa),
                isa == BSVI_ISA_PORTABLE ? "has no product kernels of its own (it uses OpenBLAS)" : "is not available on this CPU");
        return 64;
    }
    bsvi_flush_denormals_on_this_thread();
    workload w = make_workload();
    const int avx512 = isa == BSVI_ISA_AVX512;
    const bsvi_kernel_table *tables[2] = {avx512 ? &kernel_ab_a_avx512 : &kernel_ab_a_avx2,
                                          avx512 ? &bsvi_kernels_avx512 : &bsvi_kernels_avx2};
    double *seconds[2][PARTS], *round_ratio = calloc(rounds, sizeof(double));
    for (int v = 0; v < 2; v++)
        for (int p = 0; p < PARTS; p++) seconds[v][p] = calloc(rounds, sizeof(double));
    double scratch[PARTS];
    for (int r = -2; r < rounds; r++) {  // two untimed rounds first: page faults, caches
        for (int turn = 0; turn < 2; turn++) {
            const int v = (r & 1) ? 1 - turn : turn;
            for (int p = 0; p < PARTS; p++) scratch[p] = 0;
            run_round(tables[v], &w, scratch);
            if (r >= 0)
                for (int p = 0; p < PARTS; p++) seconds[v][p][r] = scratch[p];
        }
        if (r >= 0) {
            double a = 0, b = 0;
            for (int p = 0; p < PARTS; p++) a += seconds[0][p][r], b += seconds[1][p][r];
            round_ratio[r] = a / b;
        }
    }
    printf("%s kernels, %d rounds: ms per round (medians); %s/%s > 1 means %s is faster\n",
           bsvi_isa_name(isa), rounds, label_a, label_b, label_b);
    printf("%-24s %10s %10s %8s\n", "part", label_a, label_b, "ratio");
    double total[2] = {0, 0};
    for (int p = 0; p < PARTS; p++) {
        for (int v = 0; v < 2; v++) qsort(seconds[v][p], rounds, sizeof(double), by_value);
        const double a = 1e3 * quantile(seconds[0][p], rounds, 0.5), b = 1e3 * quantile(seconds[1][p], rounds, 0.5);
        total[0] += a, total[1] += b;
        printf("%-24s %10.3f %10.3f %8.3f\n", part_names[p], a, b, a / b);
    }
    printf("%-24s %10.3f %10.3f %8.3f\n", "sum of the medians", total[0], total[1], total[0] / total[1]);
    int b_faster = 0;
    for (int r = 0; r < rounds; r++) b_faster += round_ratio[r] > 1;
    qsort(round_ratio, rounds, sizeof(double), by_value);
    printf("per-round ratio: median %.3f, quartiles %.3f-%.3f; %s faster in %d of %d rounds\n",
           quantile(round_ratio, rounds, 0.5), quantile(round_ratio, rounds, 0.25), quantile(round_ratio, rounds, 0.75),
           label_b, b_faster, rounds);
    return 0;
}
