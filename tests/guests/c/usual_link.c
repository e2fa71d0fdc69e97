/* usual_link.c - a C program built the way a new user first builds one, with no linker script:
 *
 *   gcc -m32 -ffreestanding -nostdlib -static -O2 -o usual_link.elf c/usual_link.c
 *
 * gcc's default i386 link puts it at 0x08048000 (128 MiB): vmxlab's default 16 MiB cannot hold
 * it, and the loader says how much RAM it needs or how to link it low (usual_link_low.elf:
 * the same source with -Wl,-Ttext-segment=0x100000). It has no start-up code and sets no stack:
 * it runs on the stack Machine.load gives ELF guests. Prints "fib(20) = 6765\n", then halts.
 */
static void outb(unsigned short port, unsigned char v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static void print(const char *s)
{
    while (*s)
        outb(0xe9, (unsigned char)*s++);
}

static unsigned fib(unsigned n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static char buf[16];

static char *utoa(unsigned v)
{
    char *p = buf + sizeof buf - 1;
    *p = 0;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

void _start(void)
{
    print("fib(20) = ");
    print(utoa(fib(20)));
    print("\n");
    for (;;)
        __asm__ volatile("hlt");
}
