/* float.c - a C guest that computes with float, double and long double on the x87 (gcc -m32
 * -mfpmath=387), printing results as exact bit patterns so that the guest's output must equal the
 * output of the same source run natively on the host CPU (gen_expected.py builds it with -m32).
 *
 * What gcc makes of it: FLD/FST/FSTP of m32/m64/m80, FILD/FISTP of m16/m32/m64 (with FNSTCW/FLDCW
 * around the truncating casts), FADD/FSUB/FMUL/FDIV in all forms, FCOMI/FUCOMI and FCMOVcc
 * (-march=i686), FCHS, FABS, FXCH; and, by inline assembly, FSQRT, FSIN, FCOS, FPTAN, FPATAN,
 * F2XM1, FYL2X, FSCALE, FRNDINT, FPREM, FXTRACT and FBSTP. Transcendental results are printed
 * after rounding to float, which hides the last-bit freedom the SDM allows (vol. 1, 8.3.10). */
#include "lib.h"

static void hex64(const char *name, double d)
{
    union { double d; uint32_t w[2]; } u = { d };
    printf("%s %08x%08x\n", name, u.w[1], u.w[0]);
}

static void hex32(const char *name, float f)
{
    union { float f; uint32_t w; } u = { f };
    printf("%s %08x\n", name, u.w);
}

static void hex80(const char *name, long double x)
{
    union { long double x; uint32_t w[3]; } u;
    u.w[2] = 0;
    u.x = x;
    printf("%s %04x%08x%08x\n", name, u.w[2] & 0xffff, u.w[1], u.w[0]);
}

/* Decimal with 6 places, from integer arithmetic on the double (a FISTP m64). */
static void dec(const char *name, double d)
{
    long long v = (long long)(d * 1000000.0);
    int neg = v < 0;
    unsigned long long a = neg ? -(unsigned long long)v : (unsigned long long)v;
    printf("%s %s%u.%06u\n", name, neg ? "-" : "", (unsigned)(a / 1000000), (unsigned)(a % 1000000));
}

#define X87_1(insn, x) ({ long double _r; __asm__ volatile(insn : "=t"(_r) : "0"(x)); _r; })

static long double x87_sqrt(long double x) { return X87_1("fsqrt", x); }
static long double x87_sin(long double x) { return X87_1("fsin", x); }
static long double x87_cos(long double x) { return X87_1("fcos", x); }
static long double x87_rndint(long double x) { return X87_1("frndint", x); }
static long double x87_f2xm1(long double x) { return X87_1("f2xm1", x); }
static long double x87_tan(long double x)
{
    long double r, one;
    __asm__("fptan" : "=t"(one), "=u"(r) : "0"(x));
    return r / one;
}
static long double x87_atan2(long double y, long double x)
{
    long double r;
    __asm__("fpatan" : "=t"(r) : "0"(x), "u"(y) : "st(1)");
    return r;
}
static long double x87_ylog2x(long double y, long double x)
{
    long double r;
    __asm__("fyl2x" : "=t"(r) : "0"(x), "u"(y) : "st(1)");
    return r;
}
static long double x87_scale(long double x, long double n)
{
    long double r;
    __asm__("fscale" : "=t"(r) : "0"(x), "u"(n));
    return r;
}
static long double x87_prem(long double x, long double y)
{
    long double r;
    __asm__("1: fprem\n\tfnstsw %%ax\n\ttestb $4, %%ah\n\tjnz 1b" : "=t"(r) : "0"(x), "u"(y) : "eax", "cc");
    return r;
}
static long double x87_xtract_sig(long double x)
{
    long double sig, ex;
    __asm__("fxtract" : "=t"(sig), "=u"(ex) : "0"(x));
    return sig + ex;
}
static void x87_bcd(const char *name, long double x)
{
    unsigned char b[10];
    __asm__ volatile("fbstp %0" : "=m"(b) : "t"(x) : "st");
    printf("%s ", name);
    for (int i = 9; i >= 0; i--)
        printf("%02x", b[i]);
    printf("\n");
}

/* A few bodies of an n-body system, in double. */
struct body { double x, y, z, vx, vy, vz, m; };

static double nbody(int steps)
{
    static struct body b[5] = {
        { 0, 0, 0, 0, 0, 0, 39.47841760435743 },
        { 4.84143144246472090, -1.16032004402742839, -0.103622044471123109, 0.606326392995832, 2.81198684491626, -0.02521836165988763, 0.03769367487038949 },
        { 8.34336671824457987, 4.12479856412430479, -0.403523417114321381, -1.01077434617730, 1.82566237123041, 0.008415761376584154, 0.011286326131968767 },
        { 12.8943695621391310, -15.1111514016986312, -0.223307578892655734, 1.08279100644154, 0.868713018169608, -0.01010836218888, 0.0017237240570597112 },
        { 15.3796971148509165, -25.9193146099879641, 0.179258772950371181, 0.979090732243898, 0.594698998647676, -0.034755955504078, 0.0020336868699246304 },
    };
    const double dt = 0.01;
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < 5; i++)
            for (int j = i + 1; j < 5; j++) {
                double dx = b[i].x - b[j].x, dy = b[i].y - b[j].y, dz = b[i].z - b[j].z;
                double d2 = dx * dx + dy * dy + dz * dz;
                double d = (double)x87_sqrt(d2);
                double mag = dt / (d2 * d);
                b[i].vx -= dx * b[j].m * mag; b[i].vy -= dy * b[j].m * mag; b[i].vz -= dz * b[j].m * mag;
                b[j].vx += dx * b[i].m * mag; b[j].vy += dy * b[i].m * mag; b[j].vz += dz * b[i].m * mag;
            }
        for (int i = 0; i < 5; i++) {
            b[i].x += dt * b[i].vx; b[i].y += dt * b[i].vy; b[i].z += dt * b[i].vz;
        }
    }
    double e = 0;
    for (int i = 0; i < 5; i++) {
        e += 0.5 * b[i].m * (b[i].vx * b[i].vx + b[i].vy * b[i].vy + b[i].vz * b[i].vz);
        for (int j = i + 1; j < 5; j++) {
            double dx = b[i].x - b[j].x, dy = b[i].y - b[j].y, dz = b[i].z - b[j].z;
            e -= b[i].m * b[j].m / (double)x87_sqrt(dx * dx + dy * dy + dz * dz);
        }
    }
    return e;
}

static unsigned mandel(int w, int h, int maxit)
{
    unsigned hash = 0;
    for (int py = 0; py < h; py++)
        for (int px = 0; px < w; px++) {
            double cr = -2.0 + 3.0 * px / w, ci = -1.2 + 2.4 * py / h;
            double zr = 0, zi = 0;
            int n = 0;
            while (n < maxit && zr * zr + zi * zi <= 4.0) {
                double t = zr * zr - zi * zi + cr;
                zi = 2 * zr * zi + ci;
                zr = t;
                n++;
            }
            hash = hash * 31 + (unsigned)n;
        }
    return hash;
}

static volatile double vzero = 0.0, vone = 1.0, vthree = 3.0, vhalf = 0.5;

int main(void)
{
    __asm__ volatile("fninit");
    puts("float guest");

    /* float and double arithmetic, conversions */
    float f = 0;
    for (int i = 1; i <= 1000; i++)
        f += 1.0f / (float)i;
    hex32("harmonic-f", f);
    double d = 0;
    for (int i = 1; i <= 1000; i++)
        d += 1.0 / ((double)i * i);
    hex64("basel", d);
    dec("basel-dec", d);
    long double ld = 1;
    for (int i = 1; i <= 20; i++)
        ld *= i;
    hex80("20!", ld);
    long long ll = (long long)ld;
    printf("20!-int %u %u\n", (unsigned)(ll >> 32), (unsigned)ll);
    short sh = (short)(d * 10000);
    printf("short %d\n", sh);
    volatile float nf = -2.75f, bf = 2.5e9f;
    int iv = (int)nf, iw = (int)bf;
    printf("casts %d %d\n", iv, iw);
    unsigned long long big = 0xfedcba9876543210ull;
    hex64("u64-to-double", (double)(long long)(big >> 1));

    /* comparisons and selects (FCOMI/FUCOMI, FCMOVcc with -march=i686) */
    double vals[6] = { 3.5, -1.25, 1e300, -0.0, 7e-310, 2.0 };
    double mx = vals[0], mn = vals[0];
    for (int i = 1; i < 6; i++) {
        mx = vals[i] > mx ? vals[i] : mx;
        mn = vals[i] < mn ? vals[i] : mn;
    }
    hex64("max", mx);
    hex64("min", mn);
    double nan = vzero / vzero;
    printf("nan-cmp %d %d %d\n", nan == nan, nan < 1.0, nan != nan);
    hex64("nan", nan);
    hex64("inf", 1.0 / vzero);
    hex64("denormal", vals[4] * 0.5);
    hex32("float-underflow", (float)(vals[4]));
    hex64("overflow", vals[2] * 1e10);

    /* rounding modes through the control word */
    unsigned short cw;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    for (int rc = 0; rc < 4; rc++) {
        unsigned short ncw = (unsigned short)((cw & ~0x0c00) | (rc << 10));
        __asm__ volatile("fldcw %0" : : "m"(ncw));
        volatile double third = vone / vthree;
        long double r = x87_rndint(vhalf * -5);
        printf("rc%d ", rc);
        hex64("third", third);
        hex80("  rndint(-2.5)", r);
    }
    __asm__ volatile("fldcw %0" : : "m"(cw));

    /* transcendentals, printed as floats */
    hex32("sin(1)", (float)x87_sin(1.0L));
    hex32("cos(1)", (float)x87_cos(1.0L));
    hex32("tan(0.5)", (float)x87_tan(0.5L));
    hex32("atan2(1,-2)", (float)x87_atan2(1.0L, -2.0L));
    hex32("log2(10)", (float)x87_ylog2x(1.0L, 10.0L));
    hex32("2^0.5-1", (float)x87_f2xm1(0.5L));
    hex80("scale", x87_scale(3.0L, 100.0L));
    hex80("prem", x87_prem(1e20L, 3.0L));
    hex80("xtract", x87_xtract_sig(1234.5L));
    x87_bcd("bcd", -123456789012345678.0L);
    hex32("sin(1e10)", (float)x87_sin(1e10L));

    /* workloads */
    double e0 = nbody(0), e1 = nbody(40);
    hex64("nbody-e0", e0);
    hex64("nbody-e40", e1);
    dec("nbody-e40-dec", e1);
    printf("mandel %08x\n", mandel(24, 16, 32));
    puts("done");
    return 0;
}
