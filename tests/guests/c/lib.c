/* lib.c - console output and a small printf for the C guest.
 *
 * Built freestanding for the guest; built with -DHOSTED (and host_shim.c providing
 * outb/inb) for the reference run that produces the expected output.
 */
#include "lib.h"

#ifndef HOSTED
void outb(uint16_t port, uint8_t value)
{
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

uint8_t inb(uint16_t port)
{
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}
#endif

int putchar(int c)
{
    outb(0xE9, (uint8_t)c);
    return (uint8_t)c;
}

int puts(const char *s)
{
    while (*s)
        putchar(*s++);
    putchar('\n');
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

void *memset(void *dst, int c, size_t n)
{
    uint8_t *d = dst;
    while (n--)
        *d++ = (uint8_t)c;
    return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (d < s) {
        while (n--)
            *d++ = *s++;
    } else {
        while (n--)
            d[n] = s[n];
    }
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

/* Digits of v in base 10 or 16, least significant first; returns the count.
 * Values that fit in 32 bits take the 32-bit path (DIV r32); larger ones use
 * 64-bit division, which on i386 is a call to libgcc's __udivdi3/__umoddi3. */
static int to_digits(char *buf, uint64_t v, unsigned base, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    int n = 0;
    while (v > 0xFFFFFFFFu) {
        buf[n++] = digits[v % base];
        v /= base;
    }
    uint32_t w = (uint32_t)v;
    do {
        buf[n++] = digits[w % base];
        w /= base;
    } while (w);
    return n;
}

static int pad(int c, int count)
{
    for (int i = 0; i < count; i++)
        putchar(c);
    return count > 0 ? count : 0;
}

int vprintf(const char *fmt, va_list ap)
{
    int out = 0;
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            putchar(*fmt);
            out++;
            continue;
        }
        fmt++;
        int left = 0, zero = 0, width = 0, longs = 0;
        for (;; fmt++) {
            if (*fmt == '-')
                left = 1;
            else if (*fmt == '0')
                zero = 1;
            else
                break;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') {
            longs++;
            fmt++;
        }

        char buf[24];
        int len = 0, neg = 0;
        const char *str = buf;
        uint64_t u;
        switch (*fmt) {
        case 'd':
        case 'i': {
            int64_t s = longs >= 2 ? va_arg(ap, long long) : longs ? va_arg(ap, long) : va_arg(ap, int);
            neg = s < 0;
            u = neg ? 0 - (uint64_t)s : (uint64_t)s;
            len = to_digits(buf, u, 10, 0);
            break;
        }
        case 'u':
        case 'x':
        case 'X':
            u = longs >= 2 ? va_arg(ap, unsigned long long)
                : longs ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
            len = to_digits(buf, u, *fmt == 'u' ? 10 : 16, *fmt == 'X');
            break;
        case 'c':
            buf[0] = (char)va_arg(ap, int);
            len = 1;
            break;
        case 's':
            str = va_arg(ap, const char *);
            if (!str)
                str = "(null)";
            len = (int)strlen(str);
            break;
        case '%':
            buf[0] = '%';
            len = 1;
            break;
        default:            /* unknown conversion: print it as is */
            putchar('%');
            putchar(*fmt ? *fmt : '?');
            out += 2;
            if (!*fmt)
                return out;
            continue;
        }

        int numeric = *fmt == 'd' || *fmt == 'i' || *fmt == 'u' || *fmt == 'x' || *fmt == 'X';
        int fill = width - len - neg;
        if (!left && !(zero && numeric))
            out += pad(' ', fill);
        if (neg) {
            putchar('-');
            out++;
        }
        if (!left && zero && numeric)
            out += pad('0', fill);
        if (str == buf && numeric) {
            for (int i = len - 1; i >= 0; i--)   /* digits are stored backwards */
                putchar(buf[i]);
        } else {
            for (int i = 0; i < len; i++)
                putchar(str[i]);
        }
        out += len;
        if (left)
            out += pad(' ', fill);
    }
    return out;
}

int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}
