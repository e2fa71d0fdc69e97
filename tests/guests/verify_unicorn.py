#!/usr/bin/env python3
"""verify_unicorn.py - run every guest in expected.json on Unicorn (QEMU's TCG CPU) and
compare its console output and exit with the expectation.

This is a cross-check of the committed binaries against an independent x86 implementation,
not part of the test suite: it needs Debian's python3-unicorn (apt-get install
python3-unicorn) and runs as /usr/bin/python3 verify_unicorn.py [NAME...] [--edi N].

What it plays the part of:
  * memory: 16 MiB from physical 0; real-mode raw images at 0000:1000, protected-mode raw
    images at 0x100000 with flat segments, ELF PT_LOAD segments, multiboot (ELF, or the
    a.out kludge of header flag bit 16) with EAX=0x2BADB002 and an info block at 0x9000
    (flags=1, mem_lower=640, mem_upper=15360);
  * ports: 0xE9 and the UART THR 0x3F8 append to the console; the UART LSR 0x3FD reads
    0x60 (THR empty); port 0x60 reads 0x11, 0x22, 0x33, 0x44, ...; port 0x80 is counted;
  * VMCALL: EAX = EBX + ECX (Unicorn raises #UD for it, which is caught and completed);
  * INT n in real mode: delivered through the IVT here (Unicorn reports it to a hook);
  * an exception in real mode whose IVT entry is 0000:0000, or beyond the IDT limit, and
    an invalid opcode in protected mode: a shutdown.
"""
import json
import os
import struct
import sys

from unicorn import (UC_ARCH_X86, UC_ERR_INSN_INVALID, UC_HOOK_INSN, UC_HOOK_INTR, UC_MODE_16,
                     UC_MODE_32, Uc, UcError)
from unicorn.x86_const import (UC_X86_INS_IN, UC_X86_INS_OUT, UC_X86_REG_CS, UC_X86_REG_EAX,
                               UC_X86_REG_EBX, UC_X86_REG_ECX, UC_X86_REG_EDI, UC_X86_REG_EDX,
                               UC_X86_REG_EFLAGS, UC_X86_REG_EIP, UC_X86_REG_ESI, UC_X86_REG_ESP,
                               UC_X86_REG_IDTR, UC_X86_REG_SP)

HERE = os.path.dirname(os.path.abspath(__file__))
RAM = 16 << 20
REGS = {"eax": UC_X86_REG_EAX, "ebx": UC_X86_REG_EBX, "ecx": UC_X86_REG_ECX, "edx": UC_X86_REG_EDX,
        "esi": UC_X86_REG_ESI, "edi": UC_X86_REG_EDI}


class Run:
    def __init__(self, name, spec, edi):
        self.name, self.spec = name, spec
        self.real = spec["mode"] == "real"
        self.uc = Uc(UC_ARCH_X86, UC_MODE_16 if self.real else UC_MODE_32)
        self.uc.mem_map(0, RAM)
        if self.real:  # the reset IVT: base 0, limit 0x3FF (Unicorn starts with limit 0)
            self.uc.reg_write(UC_X86_REG_IDTR, (0, 0, 0x3FF, 0))
        self.console = bytearray()
        self.port60 = 0x11
        self.post = 0
        self.exit = None
        self.pending_int = None
        data = open(os.path.join(HERE, name), "rb").read()
        if spec["format"] == "raw":
            base = 0x1000 if self.real else 0x100000
            self.uc.mem_write(base, data)
            entry = base
        elif spec["format"] == "elf":
            entry = self.load_elf(data)
        else:
            entry = self.load_multiboot(data)
        for reg, value in spec.get("regs", {}).items():
            self.uc.reg_write(REGS[reg], value)
        if edi is not None:
            self.uc.reg_write(UC_X86_REG_EDI, edi)
        self.uc.hook_add(UC_HOOK_INSN, self.on_in, None, 1, 0, UC_X86_INS_IN)
        self.uc.hook_add(UC_HOOK_INSN, self.on_out, None, 1, 0, UC_X86_INS_OUT)
        self.uc.hook_add(UC_HOOK_INTR, self.on_intr)
        self.entry = entry

    def load_elf(self, data):
        assert data[:4] == b"\x7fELF" and data[4] == 1, "not ELF32"
        entry, phoff = struct.unpack_from("<II", data, 24)
        phentsize, phnum = struct.unpack_from("<HH", data, 42)
        for i in range(phnum):
            p_type, off, _vaddr, paddr, filesz, memsz, _flags, _align = struct.unpack_from(
                "<8I", data, phoff + i * phentsize)
            if p_type == 1:  # PT_LOAD; memory is already zero, so .bss needs nothing
                self.uc.mem_write(paddr, data[off:off + filesz])
                assert memsz >= filesz
        return entry

    def load_multiboot(self, data):
        for off in range(0, min(len(data), 8192) - 12, 4):
            magic, flags, checksum = struct.unpack_from("<III", data, off)
            if magic == 0x1BADB002 and (magic + flags + checksum) & 0xFFFFFFFF == 0:
                break
        else:
            raise AssertionError("no multiboot header")
        if flags & 0x10000:
            header_addr, load_addr, load_end, bss_end, entry = struct.unpack_from("<5I", data, off + 12)
            start = off - (header_addr - load_addr)
            end = len(data) if load_end == 0 else start + (load_end - load_addr)
            self.uc.mem_write(load_addr, data[start:end])
        else:
            entry = self.load_elf(data)
        self.uc.mem_write(0x9000, struct.pack("<III", 1, 640, 15360))
        self.uc.reg_write(UC_X86_REG_EAX, 0x2BADB002)
        self.uc.reg_write(UC_X86_REG_EBX, 0x9000)
        return entry

    def on_in(self, uc, port, size, _user):
        if port == 0x3FD:
            return 0x60
        if port == 0x60:
            v = self.port60
            self.port60 += 0x11
            return v
        return 0xFF

    def on_out(self, uc, port, size, value, _user):
        if port in (0xE9, 0x3F8):
            self.console.append(value & 0xFF)
        elif port == 0x80:
            self.post += 1

    def on_intr(self, uc, intno, _user):
        self.pending_int = intno
        uc.emu_stop()

    def linear_ip(self):
        eip = self.uc.reg_read(UC_X86_REG_EIP)
        return (self.uc.reg_read(UC_X86_REG_CS) << 4) + eip if self.real else eip

    def deliver_real(self, vector, ret_ip):
        """Real-mode interrupt through the IVT (SDM Vol. 3, 20.1.4)."""
        _base, limit = self.uc.reg_read(UC_X86_REG_IDTR)[1:3]
        off, seg = struct.unpack("<HH", self.uc.mem_read(vector * 4, 4)) if vector * 4 + 3 <= limit else (0, 0)
        if vector * 4 + 3 > limit or (off, seg) == (0, 0):
            return False
        sp = self.uc.reg_read(UC_X86_REG_SP)
        flags = self.uc.reg_read(UC_X86_REG_EFLAGS) & 0xFFFF
        cs = self.uc.reg_read(UC_X86_REG_CS)
        for word in (flags, cs, ret_ip):
            sp = (sp - 2) & 0xFFFF
            self.uc.mem_write(sp, struct.pack("<H", word))  # SS = 0 in these guests
        self.uc.reg_write(UC_X86_REG_SP, sp)
        self.uc.reg_write(UC_X86_REG_EFLAGS, flags & ~0x300)  # clear IF, TF
        self.uc.reg_write(UC_X86_REG_CS, seg)
        self.uc.reg_write(UC_X86_REG_EIP, off)
        return True

    def run(self, budget=2_000_000_000):
        pc = self.entry
        if not self.real:
            self.uc.reg_write(UC_X86_REG_ESP, 0)
        while True:
            self.pending_int = None
            try:
                self.uc.emu_start(pc, RAM + 1, count=budget)
            except UcError as err:
                ip = self.linear_ip()
                if err.errno == UC_ERR_INSN_INVALID and bytes(self.uc.mem_read(ip, 3)) == b"\x0f\x01\xc1":
                    ebx, ecx = self.uc.reg_read(UC_X86_REG_EBX), self.uc.reg_read(UC_X86_REG_ECX)
                    self.uc.reg_write(UC_X86_REG_EAX, (ebx + ecx) & 0xFFFFFFFF)
                    pc = self.resume_at(self.uc.reg_read(UC_X86_REG_EIP) + 3)
                    continue
                if err.errno == UC_ERR_INSN_INVALID:
                    if self.real and self.deliver_real(6, self.uc.reg_read(UC_X86_REG_EIP)):
                        pc = self.resume_at(self.uc.reg_read(UC_X86_REG_EIP))
                        continue
                    self.exit = "shutdown"
                    return
                raise
            ip = self.linear_ip()
            if self.pending_int is not None:
                # Unicorn reports INT n with EIP already past the instruction
                if self.real and self.deliver_real(self.pending_int, self.uc.reg_read(UC_X86_REG_EIP)):
                    pc = self.resume_at(self.uc.reg_read(UC_X86_REG_EIP))
                    continue
                self.exit = f"interrupt {self.pending_int:#x}"
                return
            if self.uc.mem_read(ip - 1, 1) == b"\xf4":
                self.exit = "hlt"
            else:
                self.exit = f"stopped at {ip:#x}"
            return

    def resume_at(self, eip):
        self.uc.reg_write(UC_X86_REG_EIP, eip)
        if self.real:
            return (self.uc.reg_read(UC_X86_REG_CS) << 4) + eip
        return eip


def main():
    args = sys.argv[1:]
    edi = None
    if "--edi" in args:
        i = args.index("--edi")
        edi = int(args[i + 1], 0)
        del args[i:i + 2]
    expected = json.load(open(os.path.join(HERE, "expected.json")))
    failed = 0
    skipped = 0
    for name in args or expected:
        if expected[name].get("unicorn", "").startswith("skip"):
            print(f"skip {name:18} {expected[name]['unicorn']}")
            skipped += 1
            continue
        r = Run(name, expected[name], edi)
        r.run()
        out = r.console.decode("latin-1")
        ok = out == expected[name]["stdout"] and r.exit == expected[name]["exit"]
        extra = f" post={r.post}" if r.post else ""
        if name == "rm_string_io.bin":
            extra += " mem[0x600]=" + r.uc.mem_read(0x600, 4).hex()
        print(f"{'ok  ' if ok else 'FAIL'} {name:18} exit={r.exit}{extra} stdout={out!r}")
        failed += not ok
    print(f"{len(args or expected) - failed - skipped} passed, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
