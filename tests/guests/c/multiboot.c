/* multiboot.c - the entry of mb_kernel.elf after crt0: check the boot loader's hand-off,
 * print the upper memory size, then run the normal C guest (main). */
#include "lib.h"

#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u

/* The start of the Multiboot (v0.6.96) information structure. */
struct multiboot_info {
    uint32_t flags;         /* bit 0: mem_lower/mem_upper are valid */
    uint32_t mem_lower;     /* KiB below 1 MiB */
    uint32_t mem_upper;     /* KiB from 1 MiB to the first hole */
};

void mb_main(uint32_t magic, const struct multiboot_info *info);

void mb_main(uint32_t magic, const struct multiboot_info *info)
{
    if (magic != MULTIBOOT_BOOTLOADER_MAGIC) {
        printf("multiboot: bad magic %08x\n", magic);
        return;
    }
    printf("multiboot: magic ok\n");
    if (info->flags & 1)
        printf("multiboot: mem_upper=%u\n", info->mem_upper);
    else
        printf("multiboot: no memory info (flags=%x)\n", info->flags);
    main();
}
