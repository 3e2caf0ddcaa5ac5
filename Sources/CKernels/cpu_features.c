// What the CPU and the operating system let us run, from CPUID and XGETBV, read at run time
// (never from the machine the program was built on).
#include "CKernels.h"
#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>

typedef struct {
    int avx;
    int fma4;
    int avx2_fma;
    int avx512;
    int avx512_bf16;
    int amx_bf16;
    int vendor;
    int family, model_number;
    char model[49];
} cpu_info;

static unsigned long long read_xcr0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static void detect(cpu_info *info) {
    memset(info, 0, sizeof *info);
    unsigned int a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    const unsigned int max_leaf = a;
    if (b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e) info->vendor = 1;       // GenuineIntel
    else if (b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163) info->vendor = 2;  // AuthenticAMD
    __get_cpuid(1, &a, &b, &c, &d);
    // Family and model as the vendors' manuals (and /proc/cpuinfo) combine them: the extended
    // family counts only above 15, the extended model only in families 6 and 15 and above.
    const int base_family = (a >> 8) & 0xF, base_model = (a >> 4) & 0xF;
    info->family = base_family == 0xF ? base_family + (int)((a >> 20) & 0xFF) : base_family;
    info->model_number = base_family == 0x6 || base_family == 0xF ? (int)((a >> 12) & 0xF0) + base_model : base_model;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    // The OS must save the registers on context switches: XMM|YMM for AVX2, plus the opmask
    // and both halves of the ZMM state for AVX-512 (XCR0 bits 1, 2, 5, 6, 7).
    const unsigned long long xcr0 = osxsave ? read_xcr0() : 0;
    const int os_ymm = (xcr0 & 0x6) == 0x6, os_zmm = (xcr0 & 0xE6) == 0xE6;
    info->avx = avx && os_ymm;
    if (max_leaf >= 7) {
        __get_cpuid_count(7, 0, &a, &b, &c, &d);
        const int avx2 = (b >> 5) & 1, bmi2 = (b >> 8) & 1;
        const int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
        // Both vector variants are compiled with BMI2 (the compiler uses shlx and friends for
        // their index arithmetic): every AVX2 CPU has it, but a VM may hide it.
        info->avx2_fma = avx && avx2 && fma && bmi2 && os_ymm;
        info->avx512 = info->avx2_fma && f && dq && bw && vl && os_zmm;
        // AMX: TILE (EDX bit 24) and BF16 (bit 22), with the OS managing the tile configuration
        // and data (XCR0 bits 17 and 18). Linux still wants a per-process request before the
        // first tile instruction (bf16_products.c makes it).
        info->amx_bf16 = info->avx512 && ((d >> 24) & 1) && ((d >> 22) & 1) && (xcr0 & 0x60000) == 0x60000;
        __get_cpuid_count(7, 1, &a, &b, &c, &d);
        info->avx512_bf16 = info->avx512 && ((a >> 5) & 1);
    }
    strcpy(info->model, "unknown");
    const unsigned int max_extended_leaf = __get_cpuid(0x80000000, &a, &b, &c, &d) ? a : 0;
    if (max_extended_leaf >= 0x80000001) {
        __get_cpuid(0x80000001, &a, &b, &c, &d);
        info->fma4 = info->avx && ((c >> 16) & 1);
    }
    if (max_extended_leaf >= 0x80000004) {
        unsigned int words[12];
        for (unsigned int leaf = 0; leaf < 3; leaf++)
            __get_cpuid(0x80000002 + leaf, &words[4 * leaf], &words[4 * leaf + 1], &words[4 * leaf + 2], &words[4 * leaf + 3]);
        char raw[49];
        memcpy(raw, words, 48);
        raw[48] = 0;
        const char *start = raw;
        while (*start == ' ') start++;
        size_t len = strlen(start);
        while (len > 0 && start[len - 1] == ' ') len--;
        if (len > 0) {
            memcpy(info->model, start, len);
            info->model[len] = 0;
        }
    }
}
#else
typedef struct {
    int avx, fma4, avx2_fma, avx512, avx512_bf16, amx_bf16, vendor, family, model_number;
    char model[49];
} cpu_info;
static void detect(cpu_info *info) {
    memset(info, 0, sizeof *info);
    strcpy(info->model, "unknown");
}
#endif

static cpu_info detected;
static void detect_once(void) { detect(&detected); }

/// Detected once for the process: a thread making its first kernel call while another detects
/// must not read a half-filled (zeroed) record and pick a narrower path.
static const cpu_info *cpu(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, detect_once);
    return &detected;
}

int bsvi_cpu_supports(bsvi_isa isa) {
    switch (isa) {
    case BSVI_ISA_PORTABLE: return 1;
    case BSVI_ISA_AVX2: return cpu()->avx2_fma;
    case BSVI_ISA_AVX512: return cpu()->avx512;
    }
    return 0;
}

bsvi_isa bsvi_cpu_best_isa(void) {
    return bsvi_cpu_supports(BSVI_ISA_AVX512) ? BSVI_ISA_AVX512
         : bsvi_cpu_supports(BSVI_ISA_AVX2) ? BSVI_ISA_AVX2 : BSVI_ISA_PORTABLE;
}

const char *bsvi_cpu_model_name(void) { return cpu()->model; }
int bsvi_cpu_has_avx512_bf16(void) { return cpu()->avx512_bf16; }
int bsvi_cpu_has_avx(void) { return cpu()->avx; }
int bsvi_cpu_has_amx_bf16_tiles(void) { return cpu()->amx_bf16; }
int bsvi_cpu_has_fma4(void) { return cpu()->fma4; }
int bsvi_cpu_vendor(void) { return cpu()->vendor; }
int bsvi_cpu_family(void) { return cpu()->family; }
int bsvi_cpu_model_number(void) { return cpu()->model_number; }

int bsvi_isa_parse(const char *name, bsvi_isa *isa) {
    if (!name) return -1;
    if (strcmp(name, "avx512") == 0) *isa = BSVI_ISA_AVX512;
    else if (strcmp(name, "avx2") == 0) *isa = BSVI_ISA_AVX2;
    else if (strcmp(name, "portable") == 0) *isa = BSVI_ISA_PORTABLE;
    else return -1;
    return 0;
}

const char *bsvi_isa_name(bsvi_isa isa) {
    switch (isa) {
    case BSVI_ISA_AVX512: return "avx512";
    case BSVI_ISA_AVX2: return "avx2";
    case BSVI_ISA_PORTABLE: return "portable";
    }
    return "unknown";
}
