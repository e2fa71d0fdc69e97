/* gdb_demo.c - a small C guest to debug over vmxlab's GDB stub (built with -O0 -g by
 * tests/guests/build.sh into gdb_demo.elf; tests/gdb_test.ts drives a real gdb against it).
 *
 * sum_squares(5) adds the squares 1..25 and records each step in the global `progress`,
 * which the test watches; main prints the sum (55) on the debug console and halts. */
#include "lib.h"

uint32_t progress;

static uint32_t square(uint32_t x)
{
    uint32_t r = x * x;
    return r;
}

uint32_t sum_squares(uint32_t n)
{
    uint32_t total = 0;
    for (uint32_t i = 1; i <= n; i++) {
        total += square(i);
        progress = i;
    }
    return total;
}

int main(void)
{
    uint32_t s = sum_squares(5);
    printf("sum_squares(5) = %u\n", s);
    return 0;
}
