/* lib.h - the freestanding runtime of the C guest: port I/O, console, printf. */
#ifndef GUEST_LIB_H
#define GUEST_LIB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

void outb(uint16_t port, uint8_t value);
uint8_t inb(uint16_t port);

int putchar(int c);                 /* one byte to the debug console, port 0xE9 */
int puts(const char *s);            /* s and '\n' */
int printf(const char *fmt, ...);   /* %d %i %u %x %X %s %c %%, l/ll, flags '-' '0', width */
int vprintf(const char *fmt, va_list ap);

/* gcc may emit calls to these even in freestanding code (struct copies, loops it recognises). */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

int main(void);

#endif
