/* sse2.c - float and double code as gcc compiles it for SSE2 (-m32 -msse2 -mfpmath=sse, no x87:
 * -mno-80387 makes any x87 use a compile error). Run natively (build.sh) it gives the expected
 * output; under vmxlab it runs on the emulated SSE unit. Prints IEEE bit patterns in hex, so the
 * two must agree bit for bit: a Mandelbrot in doubles, an n-body simulation (sqrt, division),
 * harmonic sums in float and double, conversions, comparisons, min/max, denormals, infinities,
 * NaNs, and 1/3 under the four rounding modes with the MXCSR flags they raise. */
#include "../c/lib.h"

typedef union { double d; uint32_t w[2]; } dbits;
typedef union { float f; uint32_t w; } fbits;

static void pd(const char *name, double d) {
    dbits u; u.d = d;
    printf("%s %08x%08x\n", name, u.w[1], u.w[0]);
}
static void pf(const char *name, float f) {
    fbits u; u.f = f;
    printf("%s %08x\n", name, u.w);
}
static inline uint32_t get_mxcsr(void) { uint32_t v; __asm__ volatile("stmxcsr %0" : "=m"(v)); return v; }
static inline void set_mxcsr(uint32_t v) { __asm__ volatile("ldmxcsr %0" : : "m"(v)); }

/* Values the compiler cannot fold. */
static volatile double vd[8] = { 1.0, 3.0, 1e-310, 1e308, -0.0, 2.5, -7.75, 0.1 };
static volatile float vf[4] = { 1.0f, 3.0f, 1e-40f, 16777217.0f };
static volatile int vi[4] = { 7, -7, 2147483647, -2147483647 - 1 };

static unsigned mandel(void) {
    unsigned h = 0, inside = 0;
    for (int y = 0; y < 40; y++) {
        for (int x = 0; x < 80; x++) {
            double cr = -2.0 + x * (3.0 / 80), ci = -1.125 + y * (2.25 / 40);
            double zr = 0, zi = 0;
            int n = 0;
            while (n < 200 && zr * zr + zi * zi <= 4.0) {
                double t = zr * zr - zi * zi + cr;
                zi = 2 * zr * zi + ci;
                zr = t;
                n++;
            }
            if (n == 200) inside++;
            h = h * 31 + (unsigned)n;
        }
    }
    printf("mandel %08x %u\n", h, inside);
    return h;
}

#define NB 5
static double px[NB], py[NB], pz[NB], vx[NB], vy[NB], vz[NB], m[NB];
static double energy(void) {
    double e = 0;
    for (int i = 0; i < NB; i++) {
        e += 0.5 * m[i] * (vx[i] * vx[i] + vy[i] * vy[i] + vz[i] * vz[i]);
        for (int j = i + 1; j < NB; j++) {
            double dx = px[i] - px[j], dy = py[i] - py[j], dz = pz[i] - pz[j];
            e -= m[i] * m[j] / __builtin_sqrt(dx * dx + dy * dy + dz * dz);
        }
    }
    return e;
}
static void nbody(void) {
    for (int i = 0; i < NB; i++) {
        px[i] = i * 1.5 - 3; py[i] = (i % 2) * 0.75 + 0.125 * i; pz[i] = -0.5 * i;
        vx[i] = 0.01 * i; vy[i] = -0.02 * (i - 2); vz[i] = 0.003 * i * i;
        m[i] = 1.0 + i * 0.25;
    }
    pd("nbody e0", energy());
    const double dt = 0.01;
    for (int s = 0; s < 200; s++) {
        for (int i = 0; i < NB; i++)
            for (int j = i + 1; j < NB; j++) {
                double dx = px[i] - px[j], dy = py[i] - py[j], dz = pz[i] - pz[j];
                double d2 = dx * dx + dy * dy + dz * dz;
                double mag = dt / (d2 * __builtin_sqrt(d2));
                vx[i] -= dx * m[j] * mag; vy[i] -= dy * m[j] * mag; vz[i] -= dz * m[j] * mag;
                vx[j] += dx * m[i] * mag; vy[j] += dy * m[i] * mag; vz[j] += dz * m[i] * mag;
            }
        for (int i = 0; i < NB; i++) { px[i] += dt * vx[i]; py[i] += dt * vy[i]; pz[i] += dt * vz[i]; }
    }
    pd("nbody e1", energy());
    pd("nbody x0", px[0]);
}

static void sums(void) {
    float sf = 0; double sd = 0;
    for (int i = 1; i <= 2000; i++) { sf += 1.0f / (float)i; sd += 1.0 / i; }
    pf("harmonic f", sf);
    pd("harmonic d", sd);
    float pf2 = 1; double pd2 = 1;
    for (int i = 0; i < 30; i++) { pf2 *= 1.1f; pd2 *= 1.1; }
    pf("pow f", pf2);
    pd("pow d", pd2);
    pf("sqrtf 2", __builtin_sqrtf(vf[0] + vf[0]));
    pd("sqrt 2", __builtin_sqrt(vd[0] + vd[0]));
}

static void conversions(void) {
    for (int k = 0; k < 8; k++) printf("cvt %d %d %d\n", k, (int)vd[k] , (int)(float)vd[k]);
    for (int k = 0; k < 4; k++) { pf("i2f", (float)vi[k]); pd("i2d", (double)vi[k]); }
    for (int k = 0; k < 8; k++) pf("d2f", (float)vd[k]);
    for (int k = 0; k < 4; k++) pd("f2d", (double)vf[k]);
    pf("f big+1", vf[3] + vf[0]);
}

static void compares(void) {
    double nan = vd[3] * 10 - vd[3] * 10; /* inf - inf */
    pd("nan", nan);
    pd("inf", vd[3] * 10);
    pd("denormal", vd[2] * 0.5);
    pd("underflow", vd[2] * 1e-20);
    pf("denormal f", vf[2] * 0.25f);
    for (int k = 0; k < 7; k++) {
        double a = vd[k], b = vd[k + 1];
        printf("cmp %d %d%d%d%d%d\n", k, a < b, a <= b, a == b, a != b, nan < a);
        pd("min", a < b ? a : b);
        pd("max", a > b ? a : b);
        pd("neg", -a);
        pd("abs", __builtin_fabs(a));
    }
}

static void rounding(void) {
    static const char *names[4] = { "nearest", "down", "up", "zero" };
    for (uint32_t rc = 0; rc < 4; rc++) {
        set_mxcsr(0x1f80 | (rc << 13));
        double d = vd[0] / vd[1];
        float f = vf[0] / vf[1];
        double n = -vd[0] / vd[1];
        int i = (int)(vd[5] * 1.0);       /* truncating conversion whatever the mode */
        uint32_t flags = get_mxcsr() & 0x3f;
        printf("rc %s flags %02x trunc %d\n", names[rc], flags, i);
        pd(" 1/3", d);
        pd("-1/3", n);
        pf(" 1/3f", f);
    }
    set_mxcsr(0x1f80);
    volatile double big = vd[3];
    double o = big * big;
    printf("overflow flags %02x\n", get_mxcsr() & 0x3f);
    pd("overflow", o);
    set_mxcsr(0x1f80 | 0x8040); /* FTZ and DAZ */
    pd("ftz", vd[2] * 0.5);
    pd("daz", vd[2] + 0.0);
    printf("ftz flags %02x\n", get_mxcsr() & 0x3f);
    set_mxcsr(0x1f80);
}

static void run(void) __attribute__((noinline));
static void run(void) {
    mandel();
    nbody();
    sums();
    conversions();
    compares();
    rounding();
    printf("sse2 done\n");
}

int main(void) {
#ifndef HOSTED
    /* The OS's part (SDM vol. 3, 13.1.3): CR4.OSFXSR and OSXMMEXCPT before any SSE instruction. */
    __asm__ volatile("mov %%cr4, %%eax; or $0x600, %%eax; mov %%eax, %%cr4" : : : "eax", "memory");
#endif
    run();
    return 0;
}
