/* host_shim.c - runs the C guest as an ordinary Linux program to produce the expected output.
 * Port 0xE9 goes to stdout; other ports are ignored (inb reads 0xff). Built with -DMB, it
 * also plays the multiboot loader: magic 0x2BADB002 and mem_upper 15360 (16 MiB of RAM). */
#include <stdint.h>
#include <unistd.h>

void outb(uint16_t port, uint8_t value)
{
    if (port == 0xE9)
        (void)write(1, &value, 1);
}

uint8_t inb(uint16_t port)
{
    (void)port;
    return 0xff;
}

#ifdef MB
struct multiboot_info {
    uint32_t flags, mem_lower, mem_upper;
};
void mb_main(uint32_t magic, const struct multiboot_info *info);

int main(void)
{
    static const struct multiboot_info info = { 1, 640, 15360 };
    mb_main(0x2BADB002u, &info);
    return 0;
}
#endif
