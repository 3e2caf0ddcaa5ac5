// The evaluator's decoder products alone, on hot data: each shape's GFLOP/s and its fraction of
// this core's FMA peak on the chosen kernel path; on the avx512 path also the bfloat16 products of
// `eval --matmul-precision` on each unit the CPU has. Built and run by scripts/kernel-bench.
#include "CKernels.h"
#include <stdio.h>
#include <stdlib.h>

double bsvi_seconds_now(void);
double bsvi_fma_peak_gflops(bsvi_isa isa, double seconds);

static float *random_floats(long n, float scale) {
    float *p = bsvi_allocate_floats(n);
    for (long i = 0; i < n; i++) p[i] = scale * ((float)rand() / (float)RAND_MAX - 0.5f);
    return p;
}

/// `eval --matmul-precision medium` (and high on tiles): the decoder's three products in bfloat16
/// on each unit this CPU has, in float32-equivalent GFLOP/s, against the FMA peak and the unit's own.
static void bfloat16_products(int m, float *z, float *w1, float *w2, float *w3, float *b1, float *b2, float *b3,
                              float *h1, float *h2, float *logits, double fma_peak) {
    const int ks[] = {50, 200, 200}, ns[] = {200, 200, 784};
    float *weights[] = {w1, w2, w3}, *biases[] = {b1, b2, b3}, *inputs[] = {z, h1, h2}, *outputs[] = {h1, h2, logits};
    const bsvi_activation activations[] = {BSVI_ACTIVATION_TANH, BSVI_ACTIVATION_TANH, BSVI_ACTIVATION_NONE};
    for (int unit = 0; unit < 2; unit++) {  // 0: AVX512_BF16 vectors (medium), 1: AMX tiles (medium, high)
        if (!(unit == 0 ? bsvi_avx512_bf16_available() : bsvi_amx_bf16_available())) continue;
        const double unit_peak = unit == 0 ? bsvi_avx512_bf16_peak_gflops(0.3) : bsvi_amx_bf16_peak_gflops(0.3);
        for (int split = 0; split <= unit; split++) {
            float *packed[3];
            for (int l = 0; l < 3; l++) {
                packed[l] = bsvi_allocate_floats(bsvi_bf16_packed_words(ks[l], ns[l], split));
                bsvi_bf16_pack(ks[l], ns[l], weights[l], ns[l], biases[l], split, packed[l]);
            }
            printf("%s, %s: unit peak %.0f GFLOP/s (%d bfloat16 multiply-adds a multiply-add)\n",
                   unit == 0 ? "AVX512_BF16 vectors (VDPBF16PS)" : "AMX tiles (TDPBF16PS)", split ? "high" : "medium", unit_peak,
                   split ? 3 : 1);
            for (int which = 0; which < 4; which++) {  // the three layers, then all three
                double best = 1e30;
                for (int round = 0; round < 5; round++) {
                    const double t0 = bsvi_seconds_now();
                    for (int r = 0; r < 200; r++)
                        for (int l = 0; l < 3; l++) {
                            if (which < 3 && l != which) continue;
                            if (unit == 0) bsvi_avx512_bf16_linear(m, ks[l], ns[l], inputs[l], ks[l], packed[l], outputs[l], ns[l], activations[l]);
                            else bsvi_amx_bf16_linear(m, ks[l], ns[l], inputs[l], ks[l], packed[l], split, outputs[l], ns[l], activations[l]);
                        }
                    const double seconds = (bsvi_seconds_now() - t0) / 200;
                    if (seconds < best) best = seconds;
                }
                const double macs = which < 3 ? (double)ks[which] * ns[which] : 50 * 200 + 200 * 200 + 200 * 784;
                const double gflops = 2 * macs * m / best * 1e-9;
                printf("  %-26s %6.1f GFLOP/s  %3.0f %% of the FMA peak, %3.0f %% of the unit's\n",
                       which == 0 ? "50 -> 200, tanh" : which == 1 ? "200 -> 200, tanh" : which == 2 ? "200 -> 784" : "whole decoder",
                       gflops, 100 * gflops / fma_peak, 100 * gflops * (split ? 3 : 1) / unit_peak);
            }
        }
    }
}

int main(int argc, char **argv) {
    const int m = argc > 1 ? atoi(argv[1]) : 120;  // samples per chunk: ImportanceSampler.evaluationChunk
    // The CPU's best path, as bsvi-dist picks it, or the one BSVI_KERNELS names.
    const char *requested = getenv("BSVI_KERNELS");
    bsvi_isa isa = bsvi_cpu_best_isa();
    if (requested && bsvi_isa_parse(requested, &isa) != 0) {
        fprintf(stderr, "kernel-bench: BSVI_KERNELS=%s is not a kernel path; use avx512 or avx2\n", requested);
        return 64;
    }
    const char *path = bsvi_isa_name(isa);
    if (m <= 0) {
        fprintf(stderr, "kernel-bench: ROWS must be a positive number of samples per pass\n");
        return 64;
    }
    if (bsvi_kernels_select(isa) != 0 || !bsvi_kernels_have_products()) {
        fprintf(stderr, "kernel-bench: the %s path %s; use BSVI_KERNELS=avx512 or avx2 on a CPU that has it\n", path,
                bsvi_cpu_supports(isa) ? "has no product kernels of its own (it uses OpenBLAS)" : "is not available on this CPU");
        return 64;
    }
    bsvi_flush_denormals_on_this_thread();
    float *z = random_floats((long)m * 50, 2), *w1 = random_floats(50 * 200, 0.3f), *w2 = random_floats(200 * 200, 0.15f);
    float *w3 = random_floats(200 * 784, 0.15f), *b1 = random_floats(200, 0.1f), *b2 = random_floats(200, 0.1f);
    float *b3 = random_floats(784, 0.1f), *h1 = random_floats((long)m * 200, 1), *h2 = random_floats((long)m * 200, 1);
    float *logits = random_floats((long)m * 784, 1), *ll = random_floats(m, 1), *x = random_floats(784, 1);
    for (int i = 0; i < 784; i++) x[i] = x[i] > 0;
    const double peak = bsvi_fma_peak_gflops(isa, 0.3);
    const char *names[] = {"50 -> 200, tanh", "200 -> 200, tanh", "200 -> 784", "200 -> 784 + likelihood", "whole decoder + likelihood"};
    const double macs[] = {50 * 200, 200 * 200, 200 * 784, 200 * 784, 50 * 200 + 200 * 200 + 200 * 784};
    printf("%s kernels, %d rows, FMA peak %.0f GFLOP/s\n", path, m, peak);
    for (int which = 0; which < 5; which++) {
        double best = 1e30;
        for (int round = 0; round < 5; round++) {  // best of 5 rounds of 200 calls
            const double t0 = bsvi_seconds_now();
            for (int r = 0; r < 200; r++) {
                if (which == 0 || which == 4) bsvi_sgemm_nn(m, 50, 200, z, 50, w1, 200, h1, 200, b1, BSVI_ACTIVATION_TANH);
                if (which == 1 || which == 4) bsvi_sgemm_nn(m, 200, 200, h1, 200, w2, 200, h2, 200, b2, BSVI_ACTIVATION_TANH);
                if (which == 2) bsvi_sgemm_nn(m, 200, 784, h2, 200, w3, 784, logits, 784, b3, BSVI_ACTIVATION_NONE);
                if (which >= 3) bsvi_sgemm_nn_bernoulli_log_likelihood(m, 200, 784, h2, 200, w3, 784, b3, x, 784, 1, ll);
            }
            const double seconds = (bsvi_seconds_now() - t0) / 200;
            if (seconds < best) best = seconds;
        }
        const double gflops = 2 * macs[which] * m / best * 1e-9;
        printf("%-28s %6.1f GFLOP/s  %3.0f %% of peak\n", names[which], gflops, 100 * gflops / peak);
    }
    if (isa == BSVI_ISA_AVX512) bfloat16_products(m, z, w1, w2, w3, b1, b2, b3, h1, h2, logits, peak);
    return 0;
}
