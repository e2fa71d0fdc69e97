/* main.c - the C guest: a handful of small workloads with a fixed, printed result.
 *
 * Every result is derived from constants, so the output is the same at -O0, at -O2 and
 * in the hosted reference build. Only fixed-width types reach the output (long appears
 * once, with a value that fits in 32 bits), so the 64-bit host prints what the 32-bit
 * guest prints.
 */
#include "lib.h"

/* .data and .bss: a loader that drops .data or leaves .bss dirty shows in the first line. */
static uint32_t data_word = 0xC0FFEE42u;
static uint32_t bss_words[256];

/* Opaque operands: volatile, so gcc -O2 cannot fold the 64-bit arithmetic away and
 * must call libgcc's __udivdi3, __umoddi3, __divdi3 and __moddi3. */
static volatile uint64_t v_big = 0xFEDCBA9876543210ull;
static volatile uint64_t v_div = 1000000007ull;
static volatile int64_t v_neg = -123456789012345ll;
static volatile int64_t v_sdiv = 1000;
static volatile uint32_t v_twenty = 20;

static uint32_t lcg_state;

static uint32_t lcg_next(void)
{
    lcg_state = lcg_state * 1103515245u + 12345u;
    return lcg_state;
}

/* ---- quicksort ---------------------------------------------------------------------- */

#define NSORT 200
static uint32_t sort_buf[NSORT];

static void quicksort(uint32_t *a, int lo, int hi)
{
    while (lo < hi) {
        uint32_t pivot = a[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                uint32_t t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        /* recurse into the smaller side, loop on the larger: stack depth O(log n) */
        if (j - lo < hi - i) {
            quicksort(a, lo, j);
            lo = i;
        } else {
            quicksort(a, i, hi);
            hi = j;
        }
    }
}

static void test_sort(void)
{
    lcg_state = 42;
    for (int i = 0; i < NSORT; i++)
        sort_buf[i] = lcg_next();
    quicksort(sort_buf, 0, NSORT - 1);

    int sorted = 1;
    uint32_t sum = 0;
    for (int i = 0; i < NSORT; i++) {
        if (i > 0 && sort_buf[i - 1] > sort_buf[i])
            sorted = 0;
        sum = (sum << 5 | sum >> 27) ^ (sort_buf[i] * (uint32_t)(i + 1));
    }
    printf("qsort: n=%d sorted=%s min=%u max=%u checksum=%08x\n", NSORT, sorted ? "yes" : "no",
           sort_buf[0], sort_buf[NSORT - 1], sum);
}

/* ---- FNV-1a ------------------------------------------------------------------------- */

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s) {
        h ^= (uint8_t)*s++;
        h *= 16777619u;
    }
    return h;
}

static void test_fnv(void)
{
    static const char *const inputs[] = {
        "",
        "a",
        "foobar",
        "The quick brown fox jumps over the lazy dog",
    };
    for (unsigned i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
        printf("fnv1a(\"%s\") = %08x\n", inputs[i], fnv1a(inputs[i]));
}

/* ---- bump + free-list allocator ------------------------------------------------------ */

/* The heap is an array of 32-bit words; blocks are named by word offsets, not pointers,
 * so the layout (and the printed numbers) do not depend on the pointer size. A block is
 * a 2-word header {payload bytes, next free block} followed by the payload. Offset 0 is
 * never a block, so 0 is the null link. */
#define HEAP_WORDS 16384
static uint32_t heap[HEAP_WORDS];
static uint32_t heap_top = 2;       /* bump pointer, in words */
static uint32_t free_head;          /* first free block, 0 = none */
static uint32_t n_bump, n_reused;

static void *heap_alloc(uint32_t bytes)
{
    uint32_t words = (bytes + 7) / 8 * 2;   /* round up to 8 bytes */
    uint32_t prev = 0, cur = free_head;
    while (cur) {                           /* first fit */
        if (heap[cur] >= words * 4) {
            if (prev)
                heap[prev + 1] = heap[cur + 1];
            else
                free_head = heap[cur + 1];
            n_reused++;
            return &heap[cur + 2];
        }
        prev = cur;
        cur = heap[cur + 1];
    }
    if (heap_top + 2 + words > HEAP_WORDS)
        return NULL;
    cur = heap_top;
    heap[cur] = words * 4;
    heap[cur + 1] = 0;
    heap_top += 2 + words;
    n_bump++;
    return &heap[cur + 2];
}

static void heap_free(void *p)
{
    uint32_t cur = (uint32_t)((uint32_t *)p - heap) - 2;
    heap[cur + 1] = free_head;              /* push: LIFO */
    free_head = cur;
}

static void test_alloc(void)
{
    enum { NBLK = 48 };
    uint8_t *blk[NBLK];
    uint32_t size[NBLK];

    lcg_state = 7;
    for (int i = 0; i < NBLK; i++) {
        size[i] = 1 + (lcg_next() >> 16) % 100;
        blk[i] = heap_alloc(size[i]);
        memset(blk[i], i, size[i]);
    }
    for (int i = 1; i < NBLK; i += 2)
        heap_free(blk[i]);
    uint32_t top_before = heap_top;
    for (int i = 1; i < NBLK; i += 2) {
        size[i] = 1 + (lcg_next() >> 16) % 100;
        blk[i] = heap_alloc(size[i]);
        memset(blk[i], i ^ 0x5a, size[i]);
    }

    int intact = 1;
    for (int i = 0; i < NBLK; i++) {
        uint8_t want = (uint8_t)(i & 1 ? i ^ 0x5a : i);
        for (uint32_t k = 0; k < size[i]; k++)
            if (blk[i][k] != want)
                intact = 0;
    }
    uint32_t free_count = 0;
    for (uint32_t cur = free_head; cur; cur = heap[cur + 1])
        free_count++;
    printf("alloc: bump=%u reused=%u free_left=%u heap_words=%u grew=%u intact=%s\n", n_bump,
           n_reused, free_count, heap_top, heap_top - top_before, intact ? "yes" : "no");
}

/* ---- recursion ---------------------------------------------------------------------- */

static uint32_t ackermann(uint32_t m, uint32_t n)
{
    if (m == 0)
        return n + 1;
    if (n == 0)
        return ackermann(m - 1, 1);
    return ackermann(m - 1, ackermann(m, n - 1));
}

static uint32_t fib(uint32_t n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static void test_recursion(void)
{
    printf("recursion: ack(2,3)=%u ack(3,3)=%u fib(20)=%u\n", ackermann(2, 3), ackermann(3, 3), fib(20));
}

/* ---- 64-bit arithmetic -------------------------------------------------------------- */

/* One operation per function, so each is its own libgcc call rather than a combined
 * __udivmoddi4/__divmoddi4 (which gcc uses when it needs quotient and remainder). */
static __attribute__((noinline)) uint64_t udiv64(uint64_t a, uint64_t b) { return a / b; }  /* __udivdi3 */
static __attribute__((noinline)) uint64_t umod64(uint64_t a, uint64_t b) { return a % b; }  /* __umoddi3 */
static __attribute__((noinline)) int64_t sdiv64(int64_t a, int64_t b) { return a / b; }     /* __divdi3 */
static __attribute__((noinline)) int64_t smod64(int64_t a, int64_t b) { return a % b; }     /* __moddi3 */

static void test_64(void)
{
    uint64_t f = 1;
    for (uint32_t i = 1; i <= v_twenty; i++)
        f *= i;
    printf("u64: 20! = %llu = 0x%llx\n", f, f);

    uint64_t a = v_big, b = v_div;
    printf("u64: %llx / %llu = %llu rem %llu\n", a, b, udiv64(a, b), umod64(a, b));
    printf("u64: a*b = %016llx a<<12 = %016llx a>>20 = %llx\n", a * b, a << 12, a >> 20);

    int64_t s = v_neg, d = v_sdiv;
    printf("s64: %lld / %lld = %lld rem %lld\n", s, d, sdiv64(s, d), smod64(s, d));
    printf("s64: -s / 7 = %lld, s / -7 = %lld rem %lld\n", -s / 7, s / -7, s % -7);
}

/* ---- printf itself ------------------------------------------------------------------ */

static void test_printf(void)
{
    printf("fmt: [%5d] [%-5d] [%05d] [%x] [%08X] [%c] [%s] [%-6s] [%6s] [%%] [%ld] [%u] [%i]\n",
           42, 42, -42, 0xbeefu, 0xbeefu, 'Z', "str", "left", "right", -123456L, 4000000000u, -7);
    printf("fmt: [%d] [%u] [%x] [%lld] [%llu] [%020llu]\n", (int32_t)0x80000000u, 0xffffffffu, 0u,
           (long long)(-0x7fffffffffffffffll - 1), 0xffffffffffffffffull, 12345ull);
}

int main(void)
{
    uint32_t bss_or = 0;
    for (unsigned i = 0; i < sizeof bss_words / sizeof bss_words[0]; i++)
        bss_or |= bss_words[i];
    printf("cguest: data=%08x bss=%s\n", data_word, bss_or == 0 && heap_top == 2 ? "zero" : "dirty");

    test_printf();
    test_sort();
    test_fnv();
    test_alloc();
    test_recursion();
    test_64();
    puts("cguest: done");
    return 0;
}
