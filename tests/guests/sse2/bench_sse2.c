/* bench_sse2.c - a double-precision benchmark for SSE2 code as gcc compiles it (-m32 -msse2
 * -mfpmath=sse -mno-80387 -O2): per pass, 500 steps of a 5-body simulation (sqrt and division in
 * the inner loop) and a 48x32 Mandelbrot in doubles (up to 100 iterations). Every pass starts from
 * the same state, so the output (energy bits and the Mandelbrot hash of the last pass) does not
 * depend on the pass count given in EDI (0 = 1). Expected output: the same source run natively. */
#include "../c/lib.h"

typedef union { double d; uint32_t w[2]; } dbits;

#define NB 5
static double px[NB], py[NB], pz[NB], vx[NB], vy[NB], vz[NB], m[NB];

static void init(void) {
    for (int i = 0; i < NB; i++) {
        px[i] = i * 1.25 - 2.5; py[i] = (i & 1) * 0.5 + 0.25 * i; pz[i] = 0.3 * i - 0.6;
        vx[i] = 0.02 * (2 - i); vy[i] = 0.015 * i; vz[i] = -0.01 * (i & 2);
        m[i] = 1.0 + 0.5 * i;
    }
}
static double energy(void) {
    double e = 0;
    for (int i = 0; i < NB; i++) {
        e += 0.5 * m[i] * (vx[i] * vx[i] + vy[i] * vy[i] + vz[i] * vz[i]);
        for (int j = i + 1; j < NB; j++) {
            double dx = px[i] - px[j], dy = py[i] - py[j], dz = pz[i] - pz[j];
            e -= m[i] * m[j] / __builtin_sqrt(dx * dx + dy * dy + dz * dz + 0.01);
        }
    }
    return e;
}
static void advance(double dt) {
    for (int i = 0; i < NB; i++)
        for (int j = i + 1; j < NB; j++) {
            double dx = px[i] - px[j], dy = py[i] - py[j], dz = pz[i] - pz[j];
            double d2 = dx * dx + dy * dy + dz * dz + 0.01;
            double mag = dt / (d2 * __builtin_sqrt(d2));
            vx[i] -= dx * m[j] * mag; vy[i] -= dy * m[j] * mag; vz[i] -= dz * m[j] * mag;
            vx[j] += dx * m[i] * mag; vy[j] += dy * m[i] * mag; vz[j] += dz * m[i] * mag;
        }
    for (int i = 0; i < NB; i++) { px[i] += dt * vx[i]; py[i] += dt * vy[i]; pz[i] += dt * vz[i]; }
}
static unsigned mandel(void) {
    unsigned h = 0;
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 48; x++) {
            double cr = -2.0 + x * (3.0 / 48), ci = -1.2 + y * (2.4 / 32), zr = 0, zi = 0;
            int n = 0;
            while (n < 100 && zr * zr + zi * zi <= 4.0) {
                double t = zr * zr - zi * zi + cr;
                zi = 2 * zr * zi + ci;
                zr = t;
                n++;
            }
            h = h * 31 + (unsigned)n;
        }
    return h;
}

int bench_main(unsigned passes) {
#ifndef HOSTED
    __asm__ volatile("mov %%cr4, %%eax; or $0x600, %%eax; mov %%eax, %%cr4" : : : "eax", "memory");
#endif
    if (passes == 0) passes = 1;
    dbits e0, e1;
    unsigned h = 0;
    for (unsigned p = 0; p < passes; p++) {
        init();
        e0.d = energy();
        for (int s = 0; s < 500; s++) advance(0.005);
        e1.d = energy();
        h = mandel();
    }
    printf("nbody %08x%08x %08x%08x mandel %08x\n", e0.w[1], e0.w[0], e1.w[1], e1.w[0], h);
    return 0;
}
