// Two builds of one kernel path in one process: table A (the CKernels of a git revision) and
// table B (this checkout's) take turns on the same step-shaped work, round after round, the
// order swapped every round, so the drift of a shared VM (identical runs minutes apart differ by
// up to ±20 %) falls on both alike. Built and run by scripts/kernel-ab, which compiles A's
// isa_avx2.c and isa_avx512.c with their tables renamed kernel_ab_a_avx2 and kernel_ab_a_avx512;
// B's are this checkout's own bsvi_kernels_avx2 and bsvi_kernels_avx512.
//
// The work, per round and table, WORK = bsvi (the default): the default model's decoder
// (50-200-200-784, tanh) through k = 20 SVI refinement steps of a batch of 100 (forward, likelihood
// and its gradient, back to z through held transposes), then the weight-gradient products of bsvi
// k = 20 (the decoder's three layers over 2,100 weighted rows, two encoder layers over 100) and two
// back-propagation products through an untransposed W (sgemm_nt). WORK = vae: vae's step on the
// default model, 784-200-200-(50+50) and 50-200-200-784 with tanh, batch 100: both networks
// forward, the likelihood and its gradient, back through every W as it is (sgemm_nt), every weight
// gradient (sgemm_tn_accumulate), and Adam over all the parameters, so each round leaves the
// caches as a step leaves them for the next. WORK = eval: the evaluator's decoder passes, 40 chunks
// of 120 samples (ImportanceSampler.evaluationChunk) through 50-200-200-784 with tanh, the output
// layer fused with the Bernoulli likelihood.
#include "kernel_table.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
enum { VAE_FORWARD, VAE_SCORE, VAE_BACK, VAE_TN, VAE_UPDATE, VAE_PARTS };
static const char *const vae_part_names[VAE_PARTS] = {"vae forward (NN)", "vae likelihood, gradient",
                                                      "vae back (NT, tanh')", "vae gradients (TN)", "vae update (Adam)"};
_Static_assert(VAE_PARTS <= PARTS, "main sizes its arrays by PARTS");
enum { EVAL_F1, EVAL_F2, EVAL_F3, EVAL_PARTS };
static const char *const eval_part_names[EVAL_PARTS] = {"eval 50-200 tanh", "eval 200-200 tanh",
                                                        "eval 200-784 likelihood"};
_Static_assert(EVAL_PARTS <= PARTS, "main sizes its arrays by PARTS");

// The rows a pass takes: bsvi's and vae's batch on this rank, or the evaluator's chunk
// (scripts/kernel-ab's ROWS).
#ifndef KERNEL_AB_ROWS
#define KERNEL_AB_ROWS 100
#endif
enum { BATCH = KERNEL_AB_ROWS, REFINEMENTS = 20, GRADIENT_ROWS = BATCH * (REFINEMENTS + 1) };

typedef struct {
    float *w1, *w2, *w3, *b1, *b2, *b3, *w1t, *w2t, *w3t, *e1, *e2, *gradient;
    float *z, *h1, *h2, *logits, *x, *d2, *d1, *dz, *ll;
    float *many_h2, *many_h1, *many_z, *many_d3, *many_d2, *many_d1, *row_weights, *input, *dx, *de;
} workload;

/// The next offset on a cache line (a multiple of 16 floats), as ParameterLayout places tensors.
static long line_up(long at) { return (at + 15) / 16 * 16; }

static workload make_workload(void) {
    workload w;
    // The weights in one buffer, each on a cache line as in the model's parameters
    // (ParameterLayout; huge pages over 1 MiB, allocate.c).
    const long sizes[8] = {50 * 200, 200 * 200, 200 * 784, 200, 200, 784, 784 * 200, 200 * 200};
    long offsets[8], at = 0;
    for (int i = 0; i < 8; i++) offsets[i] = line_up(at), at = offsets[i] + sizes[i];
    float *params = random_floats(at, 0.1f);
    w.w1 = params + offsets[0], w.w2 = params + offsets[1], w.w3 = params + offsets[2], w.b1 = params + offsets[3];
    w.b2 = params + offsets[4], w.b3 = params + offsets[5], w.e1 = params + offsets[6], w.e2 = params + offsets[7];
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

/// Adds the time since *t0 to part `part` of this round's `seconds` and restarts the clock there.
static void lap(double *seconds, int part, double *t0) {
    const double t1 = bsvi_seconds_now();
    seconds[part] += t1 - *t0, *t0 = t1;
}

/// One round of the work on table t, each part's seconds added to seconds[part].
static void run_round(const bsvi_kernel_table *t, workload *w, double *seconds) {
    double t0 = bsvi_seconds_now();
    for (int step = 0; step < REFINEMENTS; step++) {
        t->sgemm_nn(BATCH, 50, 200, w->z, 50, w->w1, 200, w->h1, 200, w->b1, BSVI_ACTIVATION_TANH);
        lap(seconds, F1, &t0);
        t->sgemm_nn(BATCH, 200, 200, w->h1, 200, w->w2, 200, w->h2, 200, w->b2, BSVI_ACTIVATION_TANH);
        lap(seconds, F2, &t0);
        t->sgemm_nn(BATCH, 200, 784, w->h2, 200, w->w3, 784, w->logits, 784, w->b3, BSVI_ACTIVATION_NONE);
        lap(seconds, F3, &t0);
        t->bernoulli_score(BATCH, 784, w->x, 784, BATCH, w->logits, 784, w->ll);
        lap(seconds, SCORE, &t0);
        t->sgemm_nn(BATCH, 784, 200, w->logits, 784, w->w3t, 200, w->d2, 200, 0, BSVI_ACTIVATION_NONE);
        t->activation_backward(BSVI_ACTIVATION_TANH, w->d2, w->h2, (long)BATCH * 200);
        lap(seconds, B3, &t0);
        t->sgemm_nn(BATCH, 200, 200, w->d2, 200, w->w2t, 200, w->d1, 200, 0, BSVI_ACTIVATION_NONE);
        t->activation_backward(BSVI_ACTIVATION_TANH, w->d1, w->h1, (long)BATCH * 200);
        lap(seconds, B2, &t0);
        t->sgemm_nn(BATCH, 200, 50, w->d1, 200, w->w1t, 50, w->dz, 50, 0, BSVI_ACTIVATION_NONE);
        lap(seconds, B1, &t0);
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
    lap(seconds, TN, &t0);
    t->sgemm_nt(BATCH, 200, 784, w->de, 200, w->e1, 200, w->logits, 784);
    t->sgemm_nt(BATCH, 200, 200, w->de, 200, w->e2, 200, w->d1, 200);
    lap(seconds, NT, &t0);
}

/// vae's layers in one parameter vector, in the model's order (weights, then biases, layer by
/// layer, each starting on a cache line as ParameterLayout places them), its gradient, Adam's
/// moments, and the step's activations.
enum { IN = 784, HID = 200, LAT = 50 };
typedef struct {
    float *params, *gradient, *m, *v;
    long count;
    float *w[6], *b[6], *gw[6], *gb[6];
    float *x, *h1, *h2, *q, *z, *g1, *g2, *logits, *ll, *dg2, *dg1, *dz, *dq, *dh2, *dh1;
} vae_workload;

static const int vae_in[6] = {IN, HID, HID, LAT, HID, HID}, vae_out[6] = {HID, HID, 2 * LAT, HID, HID, IN};

static vae_workload make_vae_workload(void) {
    vae_workload w;
    long kernel_at[6], bias_at[6], at = 0;
    for (int l = 0; l < 6; l++) {
        kernel_at[l] = line_up(at), bias_at[l] = line_up(kernel_at[l] + (long)vae_in[l] * vae_out[l]);
        at = bias_at[l] + vae_out[l];
    }
    w.count = at;
    w.params = random_floats(w.count, 0.1f), w.gradient = random_floats(w.count, 0.1f);
    w.m = random_floats(w.count, 0.01f), w.v = random_floats(w.count, 0.01f);
    for (long i = 0; i < w.count; i++) w.v[i] = w.v[i] * w.v[i];
    for (int l = 0; l < 6; l++) {
        w.w[l] = w.params + kernel_at[l], w.gw[l] = w.gradient + kernel_at[l];
        w.b[l] = w.params + bias_at[l], w.gb[l] = w.gradient + bias_at[l];
    }
    w.x = random_floats(BATCH * IN, 1);
    for (int i = 0; i < BATCH * IN; i++) w.x[i] = w.x[i] > 0.2f;  // binary pixels, about 30 % ones
    w.h1 = random_floats(BATCH * HID, 1), w.h2 = random_floats(BATCH * HID, 1), w.q = random_floats(BATCH * 2 * LAT, 1);
    w.z = random_floats(BATCH * LAT, 1), w.g1 = random_floats(BATCH * HID, 1), w.g2 = random_floats(BATCH * HID, 1);
    w.logits = random_floats(BATCH * IN, 1), w.ll = random_floats(BATCH, 1), w.dg2 = random_floats(BATCH * HID, 1);
    w.dg1 = random_floats(BATCH * HID, 1), w.dz = random_floats(BATCH * LAT, 1), w.dq = random_floats(BATCH * 2 * LAT, 0.1f);
    w.dh2 = random_floats(BATCH * HID, 1), w.dh1 = random_floats(BATCH * HID, 1);
    return w;
}

/// One layer of vae's backward pass, from the layer's input `in` and the δ of its output: ∂/∂W_l
/// and its bias (timed as VAE_TN), then, given `delta_in`, δ back through W_l itself, times tanh'
/// where the input is a tanh layer's output (timed as VAE_BACK). *t0 is the round's clock.
static void vae_layer_back(const bsvi_kernel_table *t, vae_workload *w, int l, const float *in, const float *delta,
                           float *delta_in, int tanh_input, double *seconds, double *t0) {
    const int k = vae_in[l], n = vae_out[l];
    t->sgemm_tn_accumulate(k, n, BATCH, in, k, delta, n, w->gw[l], n, w->gb[l], 0, 1);
    lap(seconds, VAE_TN, t0);
    if (!delta_in) return;
    t->sgemm_nt(BATCH, n, k, delta, n, w->w[l], n, delta_in, k);
    if (tanh_input) t->activation_backward(BSVI_ACTIVATION_TANH, delta_in, in, (long)BATCH * k);
    lap(seconds, VAE_BACK, t0);
}

/// One vae step on table t. z and ∂/∂(μ, log σ²) are held fixed (the sampling and the KL terms
/// are small element-wise passes the products do not depend on).
static void run_vae_round(const bsvi_kernel_table *t, vae_workload *w, double *seconds) {
    double t0 = bsvi_seconds_now();
    const bsvi_activation tanh = BSVI_ACTIVATION_TANH, none = BSVI_ACTIVATION_NONE;
    t->sgemm_nn(BATCH, IN, HID, w->x, IN, w->w[0], HID, w->h1, HID, w->b[0], tanh);
    t->sgemm_nn(BATCH, HID, HID, w->h1, HID, w->w[1], HID, w->h2, HID, w->b[1], tanh);
    t->sgemm_nn(BATCH, HID, 2 * LAT, w->h2, HID, w->w[2], 2 * LAT, w->q, 2 * LAT, w->b[2], none);
    t->sgemm_nn(BATCH, LAT, HID, w->z, LAT, w->w[3], HID, w->g1, HID, w->b[3], tanh);
    t->sgemm_nn(BATCH, HID, HID, w->g1, HID, w->w[4], HID, w->g2, HID, w->b[4], tanh);
    t->sgemm_nn(BATCH, HID, IN, w->g2, HID, w->w[5], IN, w->logits, IN, w->b[5], none);
    lap(seconds, VAE_FORWARD, &t0);
    t->bernoulli_score(BATCH, IN, w->x, IN, BATCH, w->logits, IN, w->ll);
    lap(seconds, VAE_SCORE, &t0);
    // The decoder's layers back to z, then the encoder's back to its first layer (whose δ is not needed).
    vae_layer_back(t, w, 5, w->g2, w->logits, w->dg2, 1, seconds, &t0);
    vae_layer_back(t, w, 4, w->g1, w->dg2, w->dg1, 1, seconds, &t0);
    vae_layer_back(t, w, 3, w->z, w->dg1, w->dz, 0, seconds, &t0);
    vae_layer_back(t, w, 2, w->h2, w->dq, w->dh2, 1, seconds, &t0);
    vae_layer_back(t, w, 1, w->h1, w->dh2, w->dh1, 1, seconds, &t0);
    vae_layer_back(t, w, 0, w->x, w->dh1, 0, 0, seconds, &t0);
    // A tiny step size keeps the weights where they started, round after round.
    t->adam_update(w->count, w->params, w->m, w->v, w->gradient, 1.0f, 0.9f, 0.999f, 1e-9f, 1.0f, 1e-8f);
    lap(seconds, VAE_UPDATE, &t0);
}

/// The evaluator's decoder passes (ImportanceSampler): EVAL_PASSES chunks of EVAL_CHUNK samples
/// of one example through the decoder, the output layer fused with the likelihood.
enum { EVAL_CHUNK = KERNEL_AB_ROWS, EVAL_PASSES = 40 };
typedef struct {
    float *w1, *w2, *w3, *b1, *b2, *b3, *z, *h1, *h2, *x, *ll;
} eval_workload;

static eval_workload make_eval_workload(void) {
    eval_workload w;
    const long sizes[6] = {50 * 200, 200, 200 * 200, 200, 200 * 784, 784};  // the decoder's parameters, in order
    long offsets[6], at = 0;
    for (int i = 0; i < 6; i++) offsets[i] = line_up(at), at = offsets[i] + sizes[i];
    float *params = random_floats(at, 0.15f);
    w.w1 = params + offsets[0], w.b1 = params + offsets[1], w.w2 = params + offsets[2], w.b2 = params + offsets[3];
    w.w3 = params + offsets[4], w.b3 = params + offsets[5];
    w.z = random_floats((long)EVAL_PASSES * EVAL_CHUNK * 50, 2), w.h1 = random_floats(EVAL_CHUNK * 200, 1);
    w.h2 = random_floats(EVAL_CHUNK * 200, 1), w.x = random_floats(784, 1), w.ll = random_floats(EVAL_CHUNK, 1);
    for (int i = 0; i < 784; i++) w.x[i] = w.x[i] > 0.2f;  // binary pixels, about 30 % ones
    return w;
}

static void run_eval_round(const bsvi_kernel_table *t, eval_workload *w, double *seconds) {
    double t0 = bsvi_seconds_now();
    for (int pass = 0; pass < EVAL_PASSES; pass++) {
        t->sgemm_nn(EVAL_CHUNK, 50, 200, w->z + (long)pass * EVAL_CHUNK * 50, 50, w->w1, 200, w->h1, 200, w->b1,
                    BSVI_ACTIVATION_TANH);
        lap(seconds, EVAL_F1, &t0);
        t->sgemm_nn(EVAL_CHUNK, 200, 200, w->h1, 200, w->w2, 200, w->h2, 200, w->b2, BSVI_ACTIVATION_TANH);
        lap(seconds, EVAL_F2, &t0);
        t->sgemm_nn_bernoulli_log_likelihood(EVAL_CHUNK, 200, 784, w->h2, 200, w->w3, 784, w->b3, w->x, 784, 1, w->ll);
        lap(seconds, EVAL_F3, &t0);
    }
}

int main(int argc, char **argv) {
    const int rounds = argc > 1 ? atoi(argv[1]) : 30;
    const char *label_a = argc > 2 ? argv[2] : "A", *label_b = argc > 3 ? argv[3] : "B";
    const char *work = argc > 4 ? argv[4] : "bsvi";
    const int vae = strcmp(work, "vae") == 0, eval = strcmp(work, "eval") == 0;
    if (!vae && !eval && strcmp(work, "bsvi") != 0) {
        fprintf(stderr, "kernel-ab: WORK must be bsvi, vae or eval, got '%s'\n", work);
        return 64;
    }
    const int parts = vae ? VAE_PARTS : eval ? EVAL_PARTS : PARTS;
    const char *const *names = vae ? vae_part_names : eval ? eval_part_names : part_names;
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
    workload w;
    vae_workload vw;
    eval_workload ew;
    if (vae) vw = make_vae_workload();
    else if (eval) ew = make_eval_workload();
    else w = make_workload();
    const int avx512 = isa == BSVI_ISA_AVX512;
    const bsvi_kernel_table *tables[2] = {avx512 ? &kernel_ab_a_avx512 : &kernel_ab_a_avx2,
                                          avx512 ? &bsvi_kernels_avx512 : &bsvi_kernels_avx2};
    double *seconds[2][PARTS], *round_ratio = calloc(rounds, sizeof(double));
    for (int v = 0; v < 2; v++)
        for (int p = 0; p < parts; p++) seconds[v][p] = calloc(rounds, sizeof(double));
    double scratch[PARTS];
    for (int r = -2; r < rounds; r++) {  // two untimed rounds first: page faults, caches
        for (int turn = 0; turn < 2; turn++) {
            const int v = (r & 1) ? 1 - turn : turn;
            for (int p = 0; p < parts; p++) scratch[p] = 0;
            if (vae) run_vae_round(tables[v], &vw, scratch);
            else if (eval) run_eval_round(tables[v], &ew, scratch);
            else run_round(tables[v], &w, scratch);
            if (r >= 0)
                for (int p = 0; p < parts; p++) seconds[v][p][r] = scratch[p];
        }
        if (r >= 0) {
            double a = 0, b = 0;
            for (int p = 0; p < parts; p++) a += seconds[0][p][r], b += seconds[1][p][r];
            round_ratio[r] = a / b;
        }
    }
    printf("%s kernels, %d rounds of %s's work, %d rows a pass: ms per round (medians); %s/%s > 1 means %s is faster\n",
           bsvi_isa_name(isa), rounds, work, KERNEL_AB_ROWS, label_a, label_b, label_b);
    printf("%-24s %10s %10s %8s\n", "part", label_a, label_b, "ratio");
    double total[2] = {0, 0};
    for (int p = 0; p < parts; p++) {
        for (int v = 0; v < 2; v++) qsort(seconds[v][p], rounds, sizeof(double), by_value);
        const double a = 1e3 * quantile(seconds[0][p], rounds, 0.5), b = 1e3 * quantile(seconds[1][p], rounds, 0.5);
        total[0] += a, total[1] += b;
        printf("%-24s %10.3f %10.3f %8.3f\n", names[p], a, b, a / b);
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
