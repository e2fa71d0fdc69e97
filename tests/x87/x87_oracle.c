/*
 * x87_oracle.c - run x87 instructions on the host CPU with chosen inputs and print the state they
 * leave, as test vectors for vmxlab's x87 (tests/x87/x87_oracle_test.ts).
 *
 * Each vector runs one instruction in a fixed body of machine code, the same bytes vmxlab runs:
 *
 *   fninit; fldcw [esi]; fld tbyte [esi+24] (b); fld tbyte [esi+8] (a); lea ebx, [esi+40];
 *   xor eax, eax; push dword [esi+4]; popfd; <instruction, memory operand at [ebx]>;
 *   pushfd; pop dword [esi+176]; mov [esi+180], eax; fnsave [esi+64]
 *
 * so ST(0) = a, ST(1) = b, the other registers empty, and the instruction's memory operand (if
 * any) is the 16 bytes at esi+40. FNSAVE is a non-waiting instruction, so an unmasked exception
 * is recorded (ES set) without a #MF; it also reinitialises the FPU before C code runs again.
 *
 * Output, one line per vector (hex, little-endian byte strings):
 *   insn cw eflags_in a b mem_in : save(108 bytes) eflags_out eax_out mem_out
 *
 * Build and run: tests/x87/build.sh (gcc -m32). Usage: x87_oracle SEED PER_INSN
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct ctx {
    uint16_t cw;        /* 0 */
    uint16_t pad0;
    uint32_t eflags_in; /* 4 */
    uint8_t a[10];      /* 8 */
    uint8_t pad1[6];
    uint8_t b[10];      /* 24 */
    uint8_t pad2[6];
    uint8_t mem[16];    /* 40 */
    uint8_t pad3[8];
    uint8_t save[108];  /* 64 */
    uint8_t pad4[4];
    uint32_t eflags_out; /* 176 */
    uint32_t eax_out;    /* 180 */
    uint8_t pad5[12];
} __attribute__((packed));

/* What an instruction's memory operand holds before it runs. */
enum { M_NONE, M_F32, M_F64, M_I16, M_I32, M_I64, M_F80, M_BCD, M_OUT };

struct insn {
    uint8_t bytes[3];
    uint8_t len;
    uint8_t mem;
    /* Inputs favour small magnitudes (transcendental domains). */
    uint8_t small;
};

#define MEM(op, r, kind) {{op, (uint8_t)(((r) << 3) | 3)}, 2, kind, 0}
#define REG(op, m) {{op, m}, 2, M_NONE, 0}
#define TRANS(op, m) {{op, m}, 2, M_NONE, 1}

static const struct insn insns[] = {
    /* D8, DC, DA, DE memory arithmetic: add mul com comp sub subr div divr */
    MEM(0xd8, 0, M_F32), MEM(0xd8, 1, M_F32), MEM(0xd8, 2, M_F32), MEM(0xd8, 3, M_F32),
    MEM(0xd8, 4, M_F32), MEM(0xd8, 5, M_F32), MEM(0xd8, 6, M_F32), MEM(0xd8, 7, M_F32),
    MEM(0xdc, 0, M_F64), MEM(0xdc, 1, M_F64), MEM(0xdc, 2, M_F64), MEM(0xdc, 3, M_F64),
    MEM(0xdc, 4, M_F64), MEM(0xdc, 5, M_F64), MEM(0xdc, 6, M_F64), MEM(0xdc, 7, M_F64),
    MEM(0xda, 0, M_I32), MEM(0xda, 1, M_I32), MEM(0xda, 2, M_I32), MEM(0xda, 3, M_I32),
    MEM(0xda, 4, M_I32), MEM(0xda, 5, M_I32), MEM(0xda, 6, M_I32), MEM(0xda, 7, M_I32),
    MEM(0xde, 0, M_I16), MEM(0xde, 1, M_I16), MEM(0xde, 2, M_I16), MEM(0xde, 3, M_I16),
    MEM(0xde, 4, M_I16), MEM(0xde, 5, M_I16), MEM(0xde, 6, M_I16), MEM(0xde, 7, M_I16),
    /* loads and stores */
    MEM(0xd9, 0, M_F32), MEM(0xd9, 2, M_OUT), MEM(0xd9, 3, M_OUT),
    MEM(0xdd, 0, M_F64), MEM(0xdd, 1, M_OUT), MEM(0xdd, 2, M_OUT), MEM(0xdd, 3, M_OUT),
    MEM(0xdb, 0, M_I32), MEM(0xdb, 1, M_OUT), MEM(0xdb, 2, M_OUT), MEM(0xdb, 3, M_OUT),
    MEM(0xdb, 5, M_F80), MEM(0xdb, 7, M_OUT),
    MEM(0xdf, 0, M_I16), MEM(0xdf, 1, M_OUT), MEM(0xdf, 2, M_OUT), MEM(0xdf, 3, M_OUT),
    MEM(0xdf, 4, M_BCD), MEM(0xdf, 5, M_I64), MEM(0xdf, 6, M_OUT), MEM(0xdf, 7, M_OUT),
    MEM(0xd9, 7, M_OUT), MEM(0xdd, 7, M_OUT),
    /* register arithmetic */
    REG(0xd8, 0xc1), REG(0xd8, 0xc9), REG(0xd8, 0xd1), REG(0xd8, 0xd9), REG(0xd8, 0xe1), REG(0xd8, 0xe9),
    REG(0xd8, 0xf1), REG(0xd8, 0xf9), REG(0xd8, 0xc2),
    REG(0xdc, 0xc1), REG(0xdc, 0xc9), REG(0xdc, 0xd1), REG(0xdc, 0xd9), REG(0xdc, 0xe1), REG(0xdc, 0xe9),
    REG(0xdc, 0xf1), REG(0xdc, 0xf9),
    REG(0xde, 0xc1), REG(0xde, 0xc9), REG(0xde, 0xd1), REG(0xde, 0xd9), REG(0xde, 0xe1), REG(0xde, 0xe9),
    REG(0xde, 0xf1), REG(0xde, 0xf9),
    /* D9 register forms */
    REG(0xd9, 0xc1), REG(0xd9, 0xc9), REG(0xd9, 0xca), REG(0xd9, 0xd0), REG(0xd9, 0xd9),
    REG(0xd9, 0xe0), REG(0xd9, 0xe1), REG(0xd9, 0xe4), REG(0xd9, 0xe5),
    REG(0xd9, 0xe8), REG(0xd9, 0xe9), REG(0xd9, 0xea), REG(0xd9, 0xeb), REG(0xd9, 0xec), REG(0xd9, 0xed),
    REG(0xd9, 0xee),
    TRANS(0xd9, 0xf0), TRANS(0xd9, 0xf1), TRANS(0xd9, 0xf2), TRANS(0xd9, 0xf3), REG(0xd9, 0xf4),
    REG(0xd9, 0xf5), REG(0xd9, 0xf6), REG(0xd9, 0xf7), REG(0xd9, 0xf8), TRANS(0xd9, 0xf9),
    REG(0xd9, 0xfa), TRANS(0xd9, 0xfb), REG(0xd9, 0xfc), REG(0xd9, 0xfd), TRANS(0xd9, 0xfe),
    TRANS(0xd9, 0xff),
    /* FCMOVcc, FUCOMPP, FCOMI, FUCOMI, FNCLEX, FNINIT */
    REG(0xda, 0xc1), REG(0xda, 0xc9), REG(0xda, 0xd1), REG(0xda, 0xd9), REG(0xda, 0xe9),
    REG(0xdb, 0xc1), REG(0xdb, 0xc9), REG(0xdb, 0xd1), REG(0xdb, 0xd9), REG(0xdb, 0xe2), REG(0xdb, 0xe3),
    REG(0xdb, 0xe9), REG(0xdb, 0xf1),
    /* DD and DF register forms */
    REG(0xdd, 0xc1), REG(0xdd, 0xc2), REG(0xdd, 0xd1), REG(0xdd, 0xd9), REG(0xdd, 0xe1), REG(0xdd, 0xe9),
    REG(0xdf, 0xc1), REG(0xdf, 0xe0), REG(0xdf, 0xe9), REG(0xdf, 0xf1),
};
#define NINSNS (sizeof insns / sizeof insns[0])

static const uint8_t head[] = {
    0x53, 0x56, 0x8b, 0x74, 0x24, 0x0c, /* push ebx; push esi; mov esi, [esp+12] */
};
static const uint8_t body_pre[] = {
    0xdb, 0xe3,             /* fninit */
    0xd9, 0x2e,             /* fldcw [esi] */
    0xdb, 0x6e, 0x18,       /* fld tbyte [esi+24] */
    0xdb, 0x6e, 0x08,       /* fld tbyte [esi+8] */
    0x8d, 0x5e, 0x28,       /* lea ebx, [esi+40] */
    0x31, 0xc0,             /* xor eax, eax */
    0xff, 0x76, 0x04,       /* push dword [esi+4] */
    0x9d,                   /* popfd */
};
static const uint8_t body_post[] = {
    0x9c,                               /* pushfd */
    0x8f, 0x86, 0xb0, 0x00, 0x00, 0x00, /* pop dword [esi+176] */
    0x89, 0x86, 0xb4, 0x00, 0x00, 0x00, /* mov [esi+180], eax */
    0xdd, 0x76, 0x40,                   /* fnsave [esi+64] */
};
static const uint8_t tail[] = { 0x5e, 0x5b, 0xc3 }; /* pop esi; pop ebx; ret */

static uint64_t rng_state;
static uint32_t rnd(void) {
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}
static uint64_t rnd64(void) { return ((uint64_t)rnd() << 32) | rnd(); }

static void put80(uint8_t *p, int sign, int exp, uint64_t sig) {
    memcpy(p, &sig, 8);
    uint16_t se = (uint16_t)((sign << 15) | (exp & 0x7fff));
    memcpy(p + 8, &se, 2);
}

/* A register value from the interesting classes. */
static void gen80(uint8_t *p, int small) {
    uint32_t k = rnd() % 100;
    int sign = rnd() & 1;
    uint64_t sig = rnd64() | (1ULL << 63);
    int exp;
    if (small) {
        if (k < 70) { put80(p, sign, 16383 - 6 + (int)(rnd() % 8), sig); return; }
        if (k < 80) { put80(p, sign, 16383 - 70 + (int)(rnd() % 64), sig); return; }
    }
    if (k < 35) exp = 16383 - 40 + (int)(rnd() % 80);
    else if (k < 45) exp = 1 + (int)(rnd() % 0x7ffe);
    else if (k < 50) exp = 1 + (int)(rnd() % 64);                /* near the denormal range */
    else if (k < 55) exp = 0x7ffe - (int)(rnd() % 64);           /* near overflow */
    else if (k < 60) { put80(p, sign, 0, rnd64() >> (rnd() % 64)); return; } /* denormal */
    else if (k < 61) { put80(p, sign, 0, sig); return; }         /* pseudo-denormal */
    else if (k < 66) { put80(p, sign, 0, 0); return; }           /* zero */
    else if (k < 70) { put80(p, sign, 0x7fff, 1ULL << 63); return; } /* infinity */
    else if (k < 74) { put80(p, sign, 0x7fff, sig | (1ULL << 62)); return; } /* QNaN */
    else if (k < 78) { uint64_t s = (sig & ~(1ULL << 62)); if (s == (1ULL << 63)) s |= 1; put80(p, sign, 0x7fff, s); return; } /* SNaN */
    else if (k < 80) { put80(p, sign, 1 + (int)(rnd() % 0x7ffe), sig & ~(1ULL << 63)); return; } /* unnormal */
    else if (k < 81) { put80(p, sign, 0x7fff, sig & ~(1ULL << 63)); return; } /* pseudo-NaN/infinity */
    else if (k < 90) { /* a small integer or half-integer */
        int64_t v = (int64_t)(rnd() % 2001) - 1000;
        int half = rnd() & 1;
        if (v == 0) v = 3;
        uint64_t m = (uint64_t)(v < 0 ? -v : v) * (half ? 1 : 2);
        int n = 63 - __builtin_clzll(m);
        put80(p, v < 0, 16383 + n - 1, m << (63 - n));
        return;
    } else { /* exactly a double or a float */
        exp = 16383 - 30 + (int)(rnd() % 60);
        sig &= (rnd() & 1) ? 0xfffffffffffff800ULL : 0xffffff0000000000ULL;
    }
    put80(p, sign, exp, sig);
}

static void gen_mem(uint8_t *m, int kind) {
    uint32_t k = rnd() % 100;
    memset(m, 0, 16);
    switch (kind) {
    case M_F32: {
        uint32_t v = rnd();
        if (k < 50) v = (v & 0x807fffff) | ((uint32_t)(127 - 20 + rnd() % 40) << 23);
        else if (k < 60) v &= 0x807fffff;            /* denormal or zero */
        else if (k < 65) v &= 0x80000000;            /* zero */
        else if (k < 70) v = (v & 0x80000000) | 0x7f800000; /* infinity */
        else if (k < 75) v |= 0x7f800000;            /* NaN (or infinity) */
        memcpy(m, &v, 4);
        break;
    }
    case M_F64: {
        uint64_t v = rnd64();
        if (k < 50) v = (v & 0x800fffffffffffffULL) | ((uint64_t)(1023 - 40 + rnd() % 80) << 52);
        else if (k < 60) v &= 0x800fffffffffffffULL;
        else if (k < 65) v &= 0x8000000000000000ULL;
        else if (k < 70) v = (v & 0x8000000000000000ULL) | 0x7ff0000000000000ULL;
        else if (k < 75) v |= 0x7ff0000000000000ULL;
        memcpy(m, &v, 8);
        break;
    }
    case M_I16: { uint16_t v = (uint16_t)(k < 60 ? (rnd() % 200) - 100 : rnd()); memcpy(m, &v, 2); break; }
    case M_I32: { uint32_t v = k < 60 ? (rnd() % 20000) - 10000 : rnd(); memcpy(m, &v, 4); break; }
    case M_I64: { uint64_t v = k < 40 ? (uint64_t)((int64_t)(rnd() % 20000) - 10000) : rnd64() >> (rnd() % 64); if (rnd() & 1) v = -v; memcpy(m, &v, 8); break; }
    case M_F80: gen80(m, 0); break;
    case M_BCD:
        for (int i = 0; i < 9; i++) m[i] = (uint8_t)(((rnd() % 10) << 4) | (rnd() % 10));
        if (k < 30) for (int i = 3 + (int)(rnd() % 6); i < 9; i++) m[i] = 0;
        m[9] = (rnd() & 1) ? 0x80 : 0;
        break;
    case M_OUT:
        for (int i = 0; i < 16; i++) m[i] = 0xa5;
        break;
    }
}

static uint16_t gen_cw(void) {
    static const int pcs[] = { 0, 2, 3, 3, 3 };
    uint16_t masks = (rnd() % 100) < 70 ? 0x3f : (uint16_t)(rnd() & 0x3f);
    uint16_t pc = (uint16_t)pcs[rnd() % 5];
    uint16_t rc = (uint16_t)(rnd() & 3);
    return (uint16_t)(0x40 | masks | (pc << 8) | (rc << 10));
}

static void hex(const uint8_t *p, int n) {
    for (int i = 0; i < n; i++) printf("%02x", p[i]);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s SEED PER_INSN\n", argv[0]); return 2; }
    rng_state = strtoull(argv[1], 0, 0) * 0x9e3779b97f4a7c15ULL + 1;
    int per = atoi(argv[2]);
    uint8_t *code = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) { perror("mmap"); return 1; }
    static struct ctx c;
    for (unsigned n = 0; n < NINSNS; n++) {
        const struct insn *in = &insns[n];
        size_t o = 0;
        memcpy(code + o, head, sizeof head); o += sizeof head;
        memcpy(code + o, body_pre, sizeof body_pre); o += sizeof body_pre;
        memcpy(code + o, in->bytes, in->len); o += in->len;
        memcpy(code + o, body_post, sizeof body_post); o += sizeof body_post;
        memcpy(code + o, tail, sizeof tail);
        void (*fn)(struct ctx *) = (void (*)(struct ctx *))code;
        for (int t = 0; t < per; t++) {
            memset(&c, 0, sizeof c);
            c.cw = gen_cw();
            c.eflags_in = 0x202 | (rnd() & 0x8d5);
            gen80(c.a, in->small);
            gen80(c.b, in->small && (rnd() & 1));
            gen_mem(c.mem, in->mem);
            hex(in->bytes, in->len);
            printf(" %04x %08x ", c.cw, c.eflags_in);
            hex(c.a, 10); printf(" "); hex(c.b, 10); printf(" "); hex(c.mem, 16);
            fn(&c);
            printf(" : "); hex(c.save, 108);
            printf(" %08x %08x ", c.eflags_out, c.eax_out);
            hex(c.mem, 16);
            printf("\n");
        }
    }
    return 0;
}
