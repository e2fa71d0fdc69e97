/*
 * oracle.c - run MMX/SSE/SSE2/SSE3 instructions on the host processor and print what they did.
 *
 * Each vector is one instruction (destination xmm0/mm0/eax, source xmm1/mm1/eax, or in memory forms
 * the source [esi+32] (b) or [esi+4] (eax))
 * run inside a fixed body of machine code that loads its inputs from a record at ESI and stores
 * its outputs back (the body's bytes are listed in sse_oracle_test.ts, which runs the same bytes
 * under vmxlab):
 *
 *   0f ae 16        ldmxcsr [esi]            mxcsr in        (record +0)
 *   8b 46 04        mov eax, [esi+4]         eax in          (record +4)
 *   0f 10 46 10     movups xmm0, [esi+16]    a               (record +16)
 *   0f 10 4e 20     movups xmm1, [esi+32]    b               (record +32)
 *   0f 6f 46 10     movq mm0, [esi+16]
 *   0f 6f 4e 20     movq mm1, [esi+32]
 *   6a 02 9d        push 2; popf             EFLAGS = 2 (arithmetic flags clear)
 *   <the instruction>
 *   0f 11 46 30     movups [esi+48], xmm0    xmm0 out        (record +48)
 *   0f 7f 46 40     movq [esi+64], mm0       mm0 out         (record +64)
 *   0f ae 5e 48     stmxcsr [esi+72]         mxcsr out       (record +72)
 *   9c 8f 46 4c     pushf; pop [esi+76]      EFLAGS out      (record +76)
 *   89 46 50        mov [esi+80], eax        eax out         (record +80)
 *
 * Natively the body is wrapped as a function (push esi; mov esi, [esp+8]; body; emms; pop esi; ret).
 * Inputs are random with a bias to what breaks floating point: zeros, infinities, quiet and
 * signaling NaNs, denormals, the largest and smallest normals, halfway cases and cancellation,
 * under every rounding mode with DAZ and FTZ on and off (all exceptions masked).
 *
 * Output, one line per vector:
 *   <instruction hex> <mxcsr> <eax> <a 32 hex> <b 32 hex> <xmm0> <mm0 16 hex> <mxcsr> <eflags> <eax>
 * with 128-bit values as little-endian byte strings.
 *
 * Build and run: build.sh (gcc -m32; the output is committed as vectors.txt and sequences.txt).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <ucontext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct rec {
    uint32_t mxcsr_in, eax_in, pad0, pad1;
    uint8_t a[16], b[16], x0[16];
    uint8_t m0[8];
    uint32_t mxcsr_out, eflags_out, eax_out;
} __attribute__((aligned(16)));

/* Lane kinds for the inputs: f single, d double, i integer, s shift count source. */
struct op { const char *hex; char lane; int imm; /* 1: append a random imm8; 2: a shift count imm8 */ };

static const struct op OPS[] = {
    /* single precision arithmetic, packed and scalar */
    {"0f58c1", 'f', 0}, {"f30f58c1", 'f', 0}, {"0f59c1", 'f', 0}, {"f30f59c1", 'f', 0},
    {"0f5cc1", 'f', 0}, {"f30f5cc1", 'f', 0}, {"0f5ec1", 'f', 0}, {"f30f5ec1", 'f', 0},
    {"0f5dc1", 'f', 0}, {"f30f5dc1", 'f', 0}, {"0f5fc1", 'f', 0}, {"f30f5fc1", 'f', 0},
    {"0f51c1", 'f', 0}, {"f30f51c1", 'f', 0},
    {"f20fd0c1", 'f', 0}, {"f20f7cc1", 'f', 0}, {"f20f7dc1", 'f', 0},
    {"0fc2c100", 'f', 0}, {"0fc2c101", 'f', 0}, {"0fc2c102", 'f', 0}, {"0fc2c103", 'f', 0},
    {"0fc2c104", 'f', 0}, {"0fc2c105", 'f', 0}, {"0fc2c106", 'f', 0}, {"0fc2c107", 'f', 0},
    {"f30fc2c100", 'f', 0}, {"f30fc2c101", 'f', 0}, {"f30fc2c102", 'f', 0}, {"f30fc2c103", 'f', 0},
    {"f30fc2c104", 'f', 0}, {"f30fc2c105", 'f', 0}, {"f30fc2c106", 'f', 0}, {"f30fc2c107", 'f', 0},
    {"0f2ec1", 'f', 0}, {"0f2fc1", 'f', 0},
    {"0f5ac1", 'f', 0}, {"f30f5ac1", 'f', 0}, {"660f5bc1", 'f', 0}, {"f30f5bc1", 'f', 0},
    {"f30f2dc1", 'f', 0}, {"f30f2cc1", 'f', 0}, {"0f2dc1", 'f', 0}, {"0f2cc1", 'f', 0},
    /* double precision */
    {"660f58c1", 'd', 0}, {"f20f58c1", 'd', 0}, {"660f59c1", 'd', 0}, {"f20f59c1", 'd', 0},
    {"660f5cc1", 'd', 0}, {"f20f5cc1", 'd', 0}, {"660f5ec1", 'd', 0}, {"f20f5ec1", 'd', 0},
    {"660f5dc1", 'd', 0}, {"f20f5dc1", 'd', 0}, {"660f5fc1", 'd', 0}, {"f20f5fc1", 'd', 0},
    {"660f51c1", 'd', 0}, {"f20f51c1", 'd', 0},
    {"660fd0c1", 'd', 0}, {"660f7cc1", 'd', 0}, {"660f7dc1", 'd', 0},
    {"660fc2c100", 'd', 0}, {"660fc2c101", 'd', 0}, {"660fc2c102", 'd', 0}, {"660fc2c103", 'd', 0},
    {"660fc2c104", 'd', 0}, {"660fc2c105", 'd', 0}, {"660fc2c106", 'd', 0}, {"660fc2c107", 'd', 0},
    {"f20fc2c100", 'd', 0}, {"f20fc2c101", 'd', 0}, {"f20fc2c102", 'd', 0}, {"f20fc2c103", 'd', 0},
    {"f20fc2c104", 'd', 0}, {"f20fc2c105", 'd', 0}, {"f20fc2c106", 'd', 0}, {"f20fc2c107", 'd', 0},
    {"660f2ec1", 'd', 0}, {"660f2fc1", 'd', 0},
    {"660f5ac1", 'd', 0}, {"f20f5ac1", 'd', 0}, {"f20fe6c1", 'd', 0}, {"660fe6c1", 'd', 0},
    {"f20f2dc1", 'd', 0}, {"f20f2cc1", 'd', 0}, {"660f2dc1", 'd', 0}, {"660f2cc1", 'd', 0},
    /* integer to floating point */
    {"0f5bc1", 'i', 0}, {"f30fe6c1", 'i', 0}, {"f30f2ac0", 'i', 0}, {"f20f2ac0", 'i', 0},
    {"0f2ac1", 'i', 0}, {"660f2ac1", 'i', 0},
    /* logic, shuffles, moves */
    {"0f54c1", 'i', 0}, {"0f55c1", 'i', 0}, {"0f56c1", 'i', 0}, {"0f57c1", 'i', 0},
    {"660f54c1", 'i', 0}, {"660f55c1", 'i', 0}, {"660f56c1", 'i', 0}, {"660f57c1", 'i', 0},
    {"0fc6c1", 'i', 1}, {"660fc6c1", 'i', 1}, {"0f14c1", 'i', 0}, {"0f15c1", 'i', 0},
    {"660f14c1", 'i', 0}, {"660f15c1", 'i', 0}, {"f30f10c1", 'i', 0}, {"f20f10c1", 'i', 0},
    {"0f12c1", 'i', 0}, {"0f16c1", 'i', 0}, {"f30f12c1", 'i', 0}, {"f30f16c1", 'i', 0},
    {"f20f12c1", 'i', 0}, {"0f50c1", 'i', 0}, {"660f50c1", 'i', 0}, {"f30f7ec1", 'i', 0},
    {"660f6ec0", 'i', 0}, {"660f7ec8", 'i', 0}, {"f30fd6c1", 'i', 0}, {"f20fd6c1", 'i', 0},
    {"0f28c1", 'i', 0}, {"660f6fc1", 'i', 0}, {"f30f6fc1", 'i', 0}, {"0f6fc1", 'i', 0},
    {"0f6ec0", 'i', 0}, {"0f7ec8", 'i', 0},
    /* integer SIMD: pshuf, pinsrw, pextrw, pmovmskb, shifts by immediate */
    {"660f70c1", 'i', 1}, {"f30f70c1", 'i', 1}, {"f20f70c1", 'i', 1}, {"0f70c1", 'i', 1},
    {"660fc4c0", 'i', 1}, {"0fc4c0", 'i', 1}, {"660fc5c1", 'i', 1}, {"0fc5c1", 'i', 1},
    {"660fd7c1", 'i', 0}, {"0fd7c1", 'i', 0},
    {"660f71d0", 'i', 2}, {"660f71e0", 'i', 2}, {"660f71f0", 'i', 2},
    {"660f72d0", 'i', 2}, {"660f72e0", 'i', 2}, {"660f72f0", 'i', 2},
    {"660f73d0", 'i', 2}, {"660f73f0", 'i', 2}, {"660f73d8", 'i', 2}, {"660f73f8", 'i', 2},
    {"0f71d0", 'i', 2}, {"0f71e0", 'i', 2}, {"0f71f0", 'i', 2},
    {"0f72d0", 'i', 2}, {"0f72e0", 'i', 2}, {"0f72f0", 'i', 2}, {"0f73d0", 'i', 2}, {"0f73f0", 'i', 2},
    {NULL, 0, 0},
};

/* Two-operand integer opcodes: each runs as 66 0f xx c1 (XMM) and 0f xx c1 (MMX). */
static const uint8_t INT_OPS[] = {
    0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x74, 0x75, 0x76,
    0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
    0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef,
    0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe,
};
/* XMM only: punpcklqdq, punpckhqdq. */
static const uint8_t INT_XMM_ONLY[] = { 0x6c, 0x6d };

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static uint32_t f32_special(void) {
    static const uint32_t S[] = {
        0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7fa00001, 0xff812345,
        0x00000001, 0x80000001, 0x007fffff, 0x807fffff, 0x00400000, 0x00800000, 0x80800000, 0x7f7fffff,
        0xff7fffff, 0x3f800000, 0xbf800000, 0x3f800001, 0x3fffffff, 0x4f000000, 0xcf000000, 0x4effffff,
        0xcf000001, 0x3f000000, 0x3fc00000, 0x40200000, 0x0c000000, 0x1f800000, 0x5f800000, 0x00000003,
    };
    return S[rnd() % (sizeof S / sizeof S[0])];
}
static uint64_t f64_special(void) {
    static const uint64_t S[] = {
        0x0000000000000000ull, 0x8000000000000000ull, 0x7ff0000000000000ull, 0xfff0000000000000ull,
        0x7ff8000000000000ull, 0xfff8000000000000ull, 0x7ff4000000000001ull, 0xfff0000000000123ull,
        0x0000000000000001ull, 0x8000000000000001ull, 0x000fffffffffffffull, 0x0010000000000000ull,
        0x8010000000000000ull, 0x7fefffffffffffffull, 0xffefffffffffffffull, 0x3ff0000000000000ull,
        0xbff0000000000000ull, 0x3ff0000000000001ull, 0x41e0000000000000ull, 0xc1e0000000000000ull,
        0x41dfffffffffffffull, 0xc1e0000000200000ull, 0x3fe0000000000000ull, 0x3ff8000000000000ull,
        0x47efffffe0000000ull, 0x47efffff00000000ull, 0x3810000000000000ull, 0x36a0000000000000ull,
        0x380fffffffffffffull, 0x3690000000000000ull, 0x0008000000000000ull, 0x4330000000000001ull,
    };
    return S[rnd() % (sizeof S / sizeof S[0])];
}
/* A random single: special, random bits, a random value of moderate exponent, or near another. */
static uint32_t f32_value(uint32_t other) {
    switch (rnd() % 6) {
    case 0: return f32_special();
    case 1: return rnd();
    case 2: return (rnd() & 0x807fffff) | ((uint32_t)(120 + rnd() % 16) << 23);
    case 3: return other ^ (rnd() & 0x7);                 /* cancellation, equality */
    case 4: return (rnd() & 0x807fffff) | ((rnd() % 8) << 23); /* tiny: denormal results */
    default: return (rnd() & 0x807fffff) | ((uint32_t)(248 + rnd() % 7) << 23); /* huge: overflow */
    }
}
static uint64_t f64_value(uint64_t other) {
    switch (rnd() % 6) {
    case 0: return f64_special();
    case 1: return ((uint64_t)rnd() << 32) | rnd();
    case 2: return ((((uint64_t)rnd() << 32) | rnd()) & 0x800fffffffffffffull) | ((uint64_t)(1016 + rnd() % 16) << 52);
    case 3: return other ^ (rnd() & 0x7);
    case 4: return ((((uint64_t)rnd() << 32) | rnd()) & 0x800fffffffffffffull) | ((uint64_t)(rnd() % 8) << 52);
    default: return ((((uint64_t)rnd() << 32) | rnd()) & 0x800fffffffffffffull) | ((uint64_t)(2040 + rnd() % 7) << 52);
    }
}
static uint32_t int_value(void) {
    static const uint32_t S[] = { 0, 0xffffffff, 0x7fffffff, 0x80000000, 0x7fff7fff, 0x80008000, 0x7f7f7f7f,
        0x80808080, 0x00ff00ff, 0xff00ff00, 0x00010001, 0x01000100, 0x4f000000, 0xcf000000 };
    if (rnd() % 3 == 0) return S[rnd() % (sizeof S / sizeof S[0])];
    return rnd();
}

static void fill(uint8_t *a, uint8_t *b, char lane) {
    if (lane == 'f') {
        for (int k = 0; k < 4; k++) {
            uint32_t x = f32_value(0), y = f32_value(x);
            if (rnd() & 1) { uint32_t t = x; x = y; y = t; }
            memcpy(a + 4 * k, &x, 4); memcpy(b + 4 * k, &y, 4);
        }
    } else if (lane == 'd') {
        for (int k = 0; k < 2; k++) {
            uint64_t x = f64_value(0), y = f64_value(x);
            if (rnd() & 1) { uint64_t t = x; x = y; y = t; }
            memcpy(a + 8 * k, &x, 8); memcpy(b + 8 * k, &y, 8);
        }
    } else {
        for (int k = 0; k < 4; k++) {
            uint32_t x = int_value(), y = int_value();
            memcpy(a + 4 * k, &x, 4); memcpy(b + 4 * k, &y, 4);
        }
    }
}

static uint8_t *code;

static int hexbytes(const char *hex, uint8_t *out) {
    int n = 0;
    for (; hex[0] && hex[1]; hex += 2) { unsigned v; sscanf(hex, "%2x", &v); out[n++] = (uint8_t)v; }
    return n;
}

static const uint8_t PRE[] = { 0x0f, 0xae, 0x16, 0x8b, 0x46, 0x04, 0x0f, 0x10, 0x46, 0x10, 0x0f, 0x10, 0x4e, 0x20,
    0x0f, 0x6f, 0x46, 0x10, 0x0f, 0x6f, 0x4e, 0x20, 0x6a, 0x02, 0x9d };
static const uint8_t POST[] = { 0x0f, 0x11, 0x46, 0x30, 0x0f, 0x7f, 0x46, 0x40, 0x0f, 0xae, 0x5e, 0x48,
    0x9c, 0x8f, 0x46, 0x4c, 0x89, 0x46, 0x50 };

static void run_one(const uint8_t *insn, int len, char lane) {
    static struct rec r;
    memset(&r, 0, sizeof r);
    fill(r.a, r.b, lane);
    uint32_t mx = 0x1f80 | ((rnd() % 4) << 13);
    if (rnd() % 3 == 0) mx |= 0x40;   /* DAZ */
    if (rnd() % 3 == 0) mx |= 0x8000; /* FTZ */
    if (rnd() % 8 == 0) mx |= rnd() & 0x3f; /* sticky flags already set */
    r.mxcsr_in = mx;
    r.eax_in = lane == 'i' ? int_value() : (rnd() % 2 ? int_value() : rnd() % 1000);
    uint8_t *p = code;
    *p++ = 0x56;                                   /* push esi */
    *p++ = 0x8b; *p++ = 0x74; *p++ = 0x24; *p++ = 0x08; /* mov esi, [esp+8] */
    memcpy(p, PRE, sizeof PRE); p += sizeof PRE;
    memcpy(p, insn, len); p += len;
    memcpy(p, POST, sizeof POST); p += sizeof POST;
    *p++ = 0x0f; *p++ = 0x77;                      /* emms */
    *p++ = 0x5e;                                   /* pop esi */
    *p++ = 0xc3;                                   /* ret */
    ((void (*)(struct rec *))code)(&r);
    for (int k = 0; k < len; k++) printf("%02x", insn[k]);
    printf(" %08x %08x ", r.mxcsr_in, r.eax_in);
    for (int k = 0; k < 16; k++) printf("%02x", r.a[k]);
    printf(" ");
    for (int k = 0; k < 16; k++) printf("%02x", r.b[k]);
    printf(" ");
    for (int k = 0; k < 16; k++) printf("%02x", r.x0[k]);
    printf(" ");
    for (int k = 0; k < 8; k++) printf("%02x", r.m0[k]);
    printf(" %08x %08x %08x\n", r.mxcsr_out, r.eflags_out, r.eax_out);
}

/*
 * Sequence mode (`oracle N SEED seq`): N random sequences of 1-8 instructions over XMM0-XMM7 (the
 * instructions of OPS whose operands are all XMM registers, plus the integer ones' 66 forms), with
 * random registers in ModRM. The record: +0 mxcsr, +4 eax, +16 XMM0-7 in, +144 XMM0-7 out,
 * +272 mxcsr out, +276 EFLAGS out, +280 eax out. The body:
 *   0f ae 16; 8b 46 04; for k in 0..7: 0f 10 (86|k<<3) <16+16k as disp32>   (movups xmmk, [esi+disp32])
 *   6a 02 9d; <the sequence>; for k in 0..7: 0f 11 (86|k<<3) <144+16k>;
 *   0f ae 9e <272>; 9c 8f 86 <276>; 89 86 <280>
 * Output line: S <instructions, hex, joined by '-'> <mxcsr> <eax> <XMM0-7 in, 256 hex> <XMM0-7 out> <mxcsr> <eflags> <eax>
 */
static const char *NOT_XMM[] = { "f30f2d", "f30f2c", "f20f2d", "f20f2c", "0f2d", "0f2c", "660f2d", "660f2c", "0f2a",
    "660f2a", "f30f2a", "f20f2a", "0f50", "660f50", "660f6e", "660f7e", "0f6e", "0f7e", "f30fd6", "f20fd6",
    "660fc4", "0fc4", "660fc5", "0fc5", "660fd7", "0fd7", "0f70", "0f71", "0f72", "0f73", "0f6f", NULL };
static int pure_xmm(const char *hex) {
    for (int k = 0; NOT_XMM[k]; k++) if (strncmp(hex, NOT_XMM[k], strlen(NOT_XMM[k])) == 0) return 0;
    return 1;
}
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Instructions whose source must be a register (U, N: a memory form is #UD) or whose register
 * form is a different instruction worth no memory test (MOVHLPS/MOVLHPS are MOVLPS/MOVHPS). */
static const char *REG_ONLY[] = { "0f50", "660f50", "0fd7", "660fd7", "0fc5", "660fc5", "f30fd6", "f20fd6", NULL };
static int mem_ok(const char *hex) {
    for (int k = 0; REG_ONLY[k]; k++) if (strncmp(hex, REG_ONLY[k], strlen(REG_ONLY[k])) == 0) return 0;
    return 1;
}

static void run_seq(void) {
    static uint8_t rec[288] __attribute__((aligned(16)));
    static const struct op *pool[512];
    static int npool = 0;
    const int nint = (int)(sizeof INT_OPS + sizeof INT_XMM_ONLY); /* the 66 0f xx integer forms */
    if (npool == 0) {
        for (const struct op *o = OPS; o->hex; o++) if (pure_xmm(o->hex)) pool[npool++] = o;
    }
    memset(rec, 0, sizeof rec);
    char lane = "fdi"[rnd() % 3];
    for (int k = 0; k < 8; k++) fill(rec + 16 + 16 * k, rec + 16 + 16 * ((k + 1) % 8), lane);
    uint32_t mx = 0x1f80 | ((rnd() % 4) << 13);
    if (rnd() % 3 == 0) mx |= 0x40;
    if (rnd() % 3 == 0) mx |= 0x8000;
    put32(rec, mx);
    put32(rec + 4, int_value());
    uint8_t seq[8][8];
    int lens[8], n = 1 + rnd() % 8;
    for (int i = 0; i < n; i++) {
        uint8_t *b = seq[i];
        int len;
        int pick = rnd() % (npool + nint);
        if (pick < npool) {
            const struct op *o = pool[pick];
            len = hexbytes(o->hex, b);
            int grp = strstr(o->hex, "0f71") || strstr(o->hex, "0f72") || strstr(o->hex, "0f73");
            int cmp = strstr(o->hex, "0fc2") != NULL; /* the predicate is the last byte, ModRM before it */
            int at = cmp ? len - 2 : len - 1;
            b[at] = (uint8_t)(0xc0 | (grp ? (b[at] & 0x38) : (rnd() % 8) << 3) | (rnd() % 8));
            if (o->imm == 1) b[len++] = (uint8_t)rnd();
            if (o->imm == 2) b[len++] = (uint8_t)(rnd() % 40);
        } else {
            int k = pick - npool;
            b[0] = 0x66; b[1] = 0x0f;
            b[2] = k < (int)sizeof INT_OPS ? INT_OPS[k] : INT_XMM_ONLY[k - sizeof INT_OPS];
            b[3] = (uint8_t)(0xc0 | (rnd() % 8) << 3 | (rnd() % 8));
            len = 4;
        }
        lens[i] = len;
    }
    uint8_t *p = code;
    *p++ = 0x56; *p++ = 0x8b; *p++ = 0x74; *p++ = 0x24; *p++ = 0x08;
    *p++ = 0x0f; *p++ = 0xae; *p++ = 0x16; *p++ = 0x8b; *p++ = 0x46; *p++ = 0x04;
    for (int k = 0; k < 8; k++) { *p++ = 0x0f; *p++ = 0x10; *p++ = (uint8_t)(0x86 | k << 3); put32(p, 16 + 16 * k); p += 4; }
    *p++ = 0x6a; *p++ = 0x02; *p++ = 0x9d;
    for (int i = 0; i < n; i++) { memcpy(p, seq[i], lens[i]); p += lens[i]; }
    for (int k = 0; k < 8; k++) { *p++ = 0x0f; *p++ = 0x11; *p++ = (uint8_t)(0x86 | k << 3); put32(p, 144 + 16 * k); p += 4; }
    *p++ = 0x0f; *p++ = 0xae; *p++ = 0x9e; put32(p, 272); p += 4;
    *p++ = 0x9c; *p++ = 0x8f; *p++ = 0x86; put32(p, 276); p += 4;
    *p++ = 0x89; *p++ = 0x86; put32(p, 280); p += 4;
    *p++ = 0x5e; *p++ = 0xc3;
    ((void (*)(uint8_t *))code)(rec);
    printf("S ");
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < lens[i]; k++) printf("%02x", seq[i][k]);
        printf(i + 1 < n ? "-" : " ");
    }
    uint32_t v[3];
    memcpy(v, rec, 8);
    printf("%08x %08x ", v[0], v[1]);
    for (int k = 0; k < 128; k++) printf("%02x", rec[16 + k]);
    printf(" ");
    for (int k = 0; k < 128; k++) printf("%02x", rec[144 + k]);
    memcpy(v, rec + 272, 12);
    printf(" %08x %08x %08x\n", v[0], v[1], v[2]);
}

/*
 * Exception mode (`oracle N SEED xm`): the floating-point instructions of OPS with some exceptions
 * unmasked. When the instruction raises an unmasked one, the processor takes #XM (Linux: SIGFPE);
 * the handler reads XMM0, MXCSR and EAX as they were at the fault from the signal frame. Output:
 * a vector line (as above; mm0 and EFLAGS zero after a fault) and a last column, 1 when it faulted.
 */
static sigjmp_buf xm_env;
static struct rec *xm_rec;
static void on_sigfpe(int sig, siginfo_t *si, void *ctx) {
    (void)sig; (void)si;
    ucontext_t *u = ctx;
    const uint8_t *fp = (const uint8_t *)u->uc_mcontext.fpregs; /* struct _fpstate_32 */
    memcpy(&xm_rec->mxcsr_out, fp + 136, 4);
    memcpy(xm_rec->x0, fp + 272, 16);
    xm_rec->eax_out = (uint32_t)u->uc_mcontext.gregs[REG_EAX];
    xm_rec->eflags_out = 0;
    siglongjmp(xm_env, 1);
}
static void run_xm(const uint8_t *insn, int len, char lane) {
    static struct rec r;
    memset(&r, 0, sizeof r);
    fill(r.a, r.b, lane);
    uint32_t mx = (rnd() % 4) << 13;
    if (rnd() % 4 == 0) mx |= 0x40;
    if (rnd() % 4 == 0) mx |= 0x8000;
    mx |= (rnd() & 0x3f) << 7;       /* a random set of masks */
    if (rnd() % 2) mx |= 0x1000;     /* mostly PM masked: PE is everywhere */
    r.mxcsr_in = mx;
    r.eax_in = int_value();
    uint8_t *p = code;
    *p++ = 0x56; *p++ = 0x8b; *p++ = 0x74; *p++ = 0x24; *p++ = 0x08;
    memcpy(p, PRE, sizeof PRE); p += sizeof PRE;
    memcpy(p, insn, len); p += len;
    memcpy(p, POST, sizeof POST); p += sizeof POST;
    *p++ = 0x0f; *p++ = 0x77; *p++ = 0x5e; *p++ = 0xc3;
    xm_rec = &r;
    int faulted = 0;
    if (sigsetjmp(xm_env, 1) == 0) ((void (*)(struct rec *))code)(&r);
    else { faulted = 1; memset(r.m0, 0, 8); __asm__ volatile("emms"); }
    for (int k = 0; k < len; k++) printf("%02x", insn[k]);
    printf(" %08x %08x ", r.mxcsr_in, r.eax_in);
    for (int k = 0; k < 16; k++) printf("%02x", r.a[k]);
    printf(" ");
    for (int k = 0; k < 16; k++) printf("%02x", r.b[k]);
    printf(" ");
    for (int k = 0; k < 16; k++) printf("%02x", r.x0[k]);
    printf(" ");
    for (int k = 0; k < 8; k++) printf("%02x", r.m0[k]);
    printf(" %08x %08x %08x %d\n", r.mxcsr_out, r.eflags_out, r.eax_out, faulted);
}

int main(int argc, char **argv) {
    int per = argc > 1 ? atoi(argv[1]) : 40;
    if (argc > 2) rng = strtoull(argv[2], NULL, 0);
    code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) { perror("mmap"); return 1; }
    if (argc > 3 && strcmp(argv[3], "seq") == 0) {
        for (int k = 0; k < per; k++) run_seq();
        return 0;
    }
    if (argc > 3 && strcmp(argv[3], "xm") == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sigfpe;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGFPE, &sa, NULL);
        uint8_t x[16];
        for (const struct op *o = OPS; o->hex; o++) {
            /* Floating point, and the integer-to-floating-point conversions (CVTDQ2PS, CVTxI2xx). */
            if (o->lane == 'i' && !strstr(o->hex, "2a") && strcmp(o->hex, "0f5bc1") != 0) continue;
            int n = hexbytes(o->hex, x);
            for (int v = 0; v < per; v++) run_xm(x, n, o->lane);
        }
        return 0;
    }
    uint8_t insn[16];
    static const uint8_t COUNTS[] = { 0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 255 };
    for (const struct op *o = OPS; o->hex; o++) {
        int n = hexbytes(o->hex, insn);
        for (int v = 0; v < per; v++) {
            int len = n;
            if (o->imm == 1) insn[len++] = (uint8_t)rnd();
            if (o->imm == 2) insn[len++] = COUNTS[rnd() % sizeof COUNTS];
            run_one(insn, len, o->lane);
        }
    }
    /* Memory forms: the source xmm1/mm1 becomes [esi+32] (b), the source eax [esi+4]. */
    for (const struct op *o = OPS; o->hex; o++) {
        int n = hexbytes(o->hex, insn);
        int cmp = strstr(o->hex, "0fc2") != NULL;
        int at = cmp ? n - 2 : n - 1;
        if ((insn[at] != 0xc1 && insn[at] != 0xc0) || !mem_ok(o->hex)) continue;
        uint8_t m[16];
        memcpy(m, insn, at);
        m[at] = 0x46;
        m[at + 1] = insn[at] == 0xc1 ? 0x20 : 0x04;
        int len = at + 2;
        if (cmp) m[len++] = insn[n - 1];
        for (int v = 0; v < (per + 3) / 4; v++) {
            int l = len;
            if (o->imm == 1) m[l++] = (uint8_t)rnd();
            run_one(m, l, o->lane);
        }
    }
    for (unsigned k = 0; k < sizeof INT_OPS; k++) {
        for (int v = 0; v < per; v++) {
            uint8_t x[4] = { 0x66, 0x0f, INT_OPS[k], 0xc1 };
            run_one(x, 4, 'i');
            run_one(x + 1, 3, 'i');
        }
    }
    for (unsigned k = 0; k < sizeof INT_XMM_ONLY; k++) {
        for (int v = 0; v < per; v++) {
            uint8_t x[4] = { 0x66, 0x0f, INT_XMM_ONLY[k], 0xc1 };
            run_one(x, 4, 'i');
        }
    }
    /* Their memory forms: the source is [esi+32] (b; PUNPCKL* of MMX registers read 4 bytes). */
    for (unsigned k = 0; k < sizeof INT_OPS; k++) {
        for (int v = 0; v < (per + 3) / 4; v++) {
            uint8_t x[5] = { 0x66, 0x0f, INT_OPS[k], 0x46, 0x20 };
            run_one(x, 5, 'i');
            run_one(x + 1, 4, 'i');
        }
    }
    return 0;
}
