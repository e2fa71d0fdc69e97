/**
 * The VMM (QEMU's kvm_all.c, kvmtool): a `Machine` lays out guest memory, loads an image, sets the
 * CPU up for a boot mode, attaches devices in the kernel or in userspace, lets scripts hook IO
 * ports, MMIO ranges, exits and hypercalls, and runs the loop `kvm_cpu_exec` runs: KVM_RUN, switch
 * on the exit reason, `kvmHandleIo`, KVM_RUN again.
 */
import "../vmx/vmx.ts";
import { Kvm, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY, Vm, type VmState } from "../kvm/kvm_main.ts";
import * as kvmRunMod from "../kvm/kvm_run.ts";
import { KvmRun, type VcpuExit } from "../kvm/kvm_run.ts";
import type { KvmRegs, Vcpu, VmxExitHook } from "../kvm/vcpu.ts";
import type { KvmTimer } from "../kvm/kvm_main.ts";
import type { TraceSink } from "../kvm/trace.ts";
import * as vmcsMod from "../cpu/vmcs.ts";
import { PioBus } from "../devices/pio_bus.ts";
import type { ByteSink, PioDevice } from "../devices/device.ts";
import { DebugCon } from "../devices/debugcon.ts";
import { PostCodePort } from "../devices/post.ts";
import { Uart16550 } from "../devices/uart16550.ts";
import { Mc146818 } from "../devices/mc146818.ts";
import { I8042, ResetControl } from "../devices/i8042.ts";
import { type BootMode, loadImage, MULTIBOOT_BOOTLOADER_MAGIC } from "./loader.ts";
import { ImageError, type ImageFormat, type LoadedImage } from "./image.ts";
import { BOOT_CS, BOOT_DS, BOOT_GDT_ADDR } from "./bzimage.ts";
import { fitHint, initialStackTop } from "./boot_setup.ts";
import { defaultEngine, type EngineName, engineFactory, isEngineName, type JitOptions, type JitStats, type StatsEngine } from "./engines.ts";

// Module-local bindings of the constant tables: V8 folds a module's own consts into optimised code
// but reads an imported binding from its module cell, with a TDZ check, at every use (DESIGN-NOTES.md).
const { KvmExit, kvmExitName, toVcpuExit, KVM_ENOSYS, KVM_EXIT_IO_IN } = kvmRunMod;
const { EXIT_REASON_NAMES } = vmcsMod;
import "./engine_env.ts"; // VMXLAB_ENGINE=jit|auto: binaryen loads with the module graph

export type { EngineName, JitOptions, JitStats };

/** Host-side failures of the VMM; `kind` says which. */
export class MachineError extends Error {
  constructor(
    readonly kind: "hook" | "conflict" | "argument" | "mode" | "image" | "engine",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "MachineError";
  }
}

/** Where a device sits: on KVM's in-kernel PIO bus, in userspace (reached through KVM_EXIT_IO), or absent. */
export type DevicePlacement = "kernel" | "userspace" | false;

export interface MachineOptions {
  /** Guest RAM in bytes (default 16 MiB), mapped at guest-physical 0. */
  memSize?: number;
  /** The boot mode the CPU is set up in (default "real"). */
  mode?: BootMode;
  /**
   * Debug console at 0xE9 (default "kernel"), POST port at 0x80 (default "kernel"), 16550 UART at
   * 0x3F8 (default "userspace"; its interrupt on IRQ4 when there is an in-kernel irqchip, gated by
   * MCR.OUT2 as on a PC). The PC devices Linux expects are off unless asked for (`PC_DEVICES` asks
   * for all, in userspace as QEMU has them): the MC146818 RTC/CMOS at 0x70–0x71 (its interrupt on
   * IRQ8, its timer on virtual time), the i8042 at 0x60 and 0x64, the reset control register at
   * 0xCF9 (a reset through either ends the run with a `reset` exit).
   */
  devices?: {
    debugcon?: DevicePlacement; post?: DevicePlacement; serial?: DevicePlacement;
    rtc?: DevicePlacement; i8042?: DevicePlacement; resetControl?: DevicePlacement;
  };
  /** The RTC's date at virtual time 0, in Unix seconds (default 2026-01-01T00:00:00Z). */
  rtcStart?: number;
  /** Receives every console byte (debug console and UART transmit) as it is written. */
  console?: ByteSink;
  /** Trace the kernel's stages (true collects them in `machine.vm.tracer`; a function receives each). */
  trace?: boolean | TraceSink;
  /** What an access to guest-physical memory with no memslot and no MMIO hook does: end the run (default) or read all ones / drop. */
  unclaimedMmio?: "exit" | "open-bus";
  /**
   * The in-kernel 8259A pair and 8254 PIT (KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2; default true):
   * they claim ports 0x20–0x21, 0xA0–0xA1, 0x4D0–0x4D1, 0x40–0x43 and 0x61, and a HLT with IF=1
   * waits for the timer instead of ending the run. Scripts raise IRQs with `machine.vm.irqLine`.
   */
  irqchip?: boolean;
  /**
   * Keep what `reset()` needs to return the machine to its state right after construction (a copy
   * of the vCPU's state; ~0.1 ms more to create). A service that runs many short guests reuses
   * machines this way instead of paying for a new one each time.
   */
  reusable?: boolean;
  /**
   * The processor's execution engine (default "interp", or `VMXLAB_ENGINE` when set): "jit" compiles
   * guest code to WebAssembly the first time it runs, "auto" once it is hot (jit/DESIGN.md). The JIT
   * needs binaryen loaded first: `await loadJit()` (runtime/vmm/tiering.ts), or build with `await Machine.create(opts)`.
   */
  engine?: EngineName;
  /** JIT options (threshold for auto, callouts, …), for "jit" and "auto". */
  jit?: JitOptions;
}

/** The PC devices Linux expects, in userspace as QEMU has them: `new Machine({ devices: { ...PC_DEVICES } })`. */
export const PC_DEVICES = { rtc: "userspace", i8042: "userspace", resetControl: "userspace" } as const;

type Placement = {
  debugcon: DevicePlacement; post: DevicePlacement; serial: DevicePlacement;
  rtc: DevicePlacement; i8042: DevicePlacement; resetControl: DevicePlacement;
};

/** What a hook may do with the machine. */
export interface HookContext {
  readonly machine: Machine;
  readonly vcpu: Vcpu;
  /** Read the registers (KVM_GET_REGS). */
  getRegs(): KvmRegs;
  /** Change registers (KVM_SET_REGS, only the fields given). */
  setRegs(r: Partial<KvmRegs>): void;
  /** Read and write guest-physical memory. */
  read(gpa: number, len: number): Uint8Array;
  write(gpa: number, data: Uint8Array): void;
  /** End the run after this exit is handled; `run()` returns `{ reason: "stopped", detail }`. */
  stop(detail?: string): void;
}

export interface IoAccess {
  port: number;
  size: 1 | 2 | 4;
  direction: "in" | "out";
  /** For OUT: the value written. */
  value: number;
}
/** An IO hook: for IN return the value (undefined reads as all ones); for OUT the return is ignored. */
export type IoHandler = (io: IoAccess, ctx: HookContext) => number | void;
export interface IoHookSpec {
  /** A port, or an inclusive [first, last] range. */
  port: number | [number, number];
  /** Which accesses (default both). */
  direction?: "in" | "out" | "both";
  /** Access sizes this hook accepts (default all); others are handled as an open bus. */
  sizes?: (1 | 2 | 4)[];
  /** A name for error messages and traces. */
  name?: string;
  handler: IoHandler;
}
export interface MmioHookSpec {
  base: number;
  size: number;
  name?: string;
  read?: (addr: number, size: number, ctx: HookContext) => number;
  write?: (addr: number, size: number, value: number, ctx: HookContext) => void;
}
/** An exit hook in userspace: return "resume" to re-enter the guest instead of ending the run. */
export type ExitHandler = (exit: VcpuExit, ctx: HookContext) => "resume" | void;
/** A hypercall hook: args are RBX, RCX, RDX, RSI; the return value goes to RAX (default 0). */
export type HypercallHandler = (args: number[], ctx: HookContext) => number | void;

/** How a run ended. */
export type RunExit =
  | VcpuExit
  | { reason: "stopped"; detail: string }
  /** The guest reset the machine (i8042 pulse, port 0xCF9); the run ends as under `qemu -no-reboot`. */
  | { reason: "reset"; source: string }
  | { reason: "timeout" };

export interface RunResult {
  exit: RunExit;
  /** Retired instructions in this run. */
  instructions: number;
  /** VM exits in this run by VMX basic exit reason (lower-case SDM names). */
  exits: Record<string, number>;
  /** Exits that reached userspace in this run, by KVM exit name. */
  userspaceExits: Record<string, number>;
  wallMs: number;
}

interface IoHook {
  first: number;
  last: number;
  dirIn: boolean;
  dirOut: boolean;
  sizes: number;
  name: string;
  handler: IoHandler;
}

const MiB = 1 << 20;

export class Machine {
  readonly kvm: Kvm;
  readonly vm: Vm;
  /** The `trace` option it was created with (reset() sets it again). */
  private readonly traceOption: boolean | TraceSink | undefined;
  readonly vcpu: Vcpu;
  readonly memSize: number;
  readonly mode: BootMode;
  /** Userspace devices (the VMM's own port bus). */
  readonly userBus = new PioBus();
  /** The devices; `reset()` replaces them with fresh ones. */
  debugcon: DebugCon | null = null;
  post: PostCodePort | null = null;
  serial: Uart16550 | null = null;
  rtc: Mc146818 | null = null;
  i8042: I8042 | null = null;
  resetControl: ResetControl | null = null;
  /** Console bytes (debug console and UART) since creation. */
  readonly consoleBytes: number[] = [];
  /** Listeners added with `onConsole`. */
  private consoleWatchers: ByteSink[] = [];
  private readonly consoleSink?: ByteSink;
  /** IO hooks by port (tables of 256-port pages: a machine is cheap to create, a lookup is two array loads per exit). */
  private readonly ioIn = new PortTable<IoHook>();
  private readonly ioOut = new PortTable<IoHook>();
  private readonly ioHooks: IoHook[] = [];
  private readonly mmioHooks: (MmioHookSpec & { name: string })[] = [];
  private readonly exitHooks = new Map<number, { name: string; fn: ExitHandler }[]>();
  private readonly hypercalls = new Map<number, { name: string; fn: HypercallHandler }>();
  private readonly unclaimedMmio: "exit" | "open-bus";
  private stopDetail: string | null = null;
  /** Set with stopDetail when the guest asked for a reset. */
  private resetSource: string | null = null;
  private readonly rtcStart: number | undefined;
  private readonly ctx: HookContext;
  /** The image loaded last. */
  image: LoadedImage | null = null;
  /** What `reset()` restores (with `reusable: true`). */
  private pristine: Pristine | null = null;
  /** Pages of guest RAM written since creation or the last reset (with `reusable: true`). */
  private readonly placement: Placement;
  private readonly sink: ByteSink;
  private engineName: EngineName = "interp";
  private jitOptions: JitOptions = {};

  /**
   * A machine whose engine is ready: like `new Machine(opts)`, but loads binaryen first when the
   * engine is jit or auto and it is not loaded yet.
   */
  static async create(opts: MachineOptions = {}): Promise<Machine> {
    const engine = opts.engine ?? defaultEngine();
    if (engine !== "interp" && engineFactory() === null) {
      const { loadJit } = await import("./tiering.ts");
      await loadJit();
    }
    return new Machine(opts);
  }

  /**
   * @throws MachineError("engine") for engine "jit" or "auto" before binaryen is loaded (`await
   *   loadJit()` from runtime/vmm/tiering.ts first, or use `await Machine.create(opts)`), or an unknown engine
   */
  constructor(opts: MachineOptions = {}) {
    const engine = opts.engine ?? defaultEngine();
    checkEngine(engine);
    this.memSize = opts.memSize ?? 16 * MiB;
    this.mode = opts.mode ?? "real";
    if (this.mode === "long") throw new MachineError("mode", "Long mode is not supported: vmxlab runs 16- and 32-bit guests (use real, protected or paged)");
    if (!Number.isSafeInteger(this.memSize) || this.memSize < 4096 || this.memSize % 4096 || this.memSize > 3 * 1024 * MiB) {
      throw new MachineError("argument", `Invalid guest memory size: ${opts.memSize} (a multiple of 4 KiB from 4 KiB to 3 GiB)`);
    }
    this.kvm = Kvm.openSync();
    this.traceOption = opts.trace;
    this.vm = this.kvm.createVm({ trace: opts.trace });
    this.unclaimedMmio = opts.unclaimedMmio ?? "exit";
    this.consoleSink = opts.console;
    // A reusable machine logs the RAM pages written (KVM_MEM_LOG_DIRTY_PAGES), so reset() zeroes only those.
    this.vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: this.memSize, flags: opts.reusable ? KVM_MEM_LOG_DIRTY_PAGES : 0 });
    if (opts.irqchip ?? true) {
      this.vm.createIrqchip();
      this.vm.createPit2();
    }
    this.vcpu = this.vm.createVcpu(0);
    this.sink = (b) => {
      this.consoleBytes.push(b);
      this.consoleSink?.(b);
      const w = this.consoleWatchers;
      for (let i = 0; i < w.length; i++) w[i](b);
    };
    const dev = opts.devices ?? {};
    this.placement = {
      debugcon: dev.debugcon ?? "kernel", post: dev.post ?? "kernel", serial: dev.serial ?? "userspace",
      rtc: dev.rtc ?? false, i8042: dev.i8042 ?? false, resetControl: dev.resetControl ?? false,
    };
    this.rtcStart = opts.rtcStart;
    this.placeDevices();
    this.ctx = this.makeContext();
    this.setupMode();
    if (opts.reusable) this.pristine = this.capture();
    // After the capture: reset() restores no engine and attaches a fresh one (see setEngine).
    this.setEngine(engine, opts.jit);
  }

  /** The engine attached to the processor: "interp", "jit" or "auto". */
  get engine(): EngineName {
    return this.vcpu.cpu.engine === null ? "interp" : this.engineName;
  }

  /** The JIT's counters (regions and blocks compiled, compile time, instructions run compiled, …); null under interp. */
  get jitStats(): JitStats | null {
    const e = this.vcpu.cpu.engine as StatsEngine | null;
    return this.engineName !== "interp" && e !== null ? e.stats : null;
  }

  /**
   * Attach an engine (a fresh one: no compiled code, zero counters) or detach it ("interp").
   * @param opts JIT options; default: the ones given at construction or at the last setEngine
   * @throws MachineError("engine") for jit or auto before binaryen is loaded (`await loadJit()`)
   */
  setEngine(engine: EngineName, opts?: JitOptions): void {
    checkEngine(engine);
    if (opts !== undefined) this.jitOptions = opts;
    const cpu = this.vcpu.cpu;
    this.engineName = engine;
    cpu.engine = engine === "interp" ? null : engineFactory()!(cpu, engine, this.jitOptions);
  }

  private placeDevices(): void {
    const place = (d: PioDevice, where: DevicePlacement) => {
      if (where === "kernel") this.vm.attachKernelDevice(d);
      else if (where === "userspace") this.attachDevice(d);
      return where ? d : null;
    };
    const vm = this.vm, pic = vm.pic;
    this.debugcon = place(new DebugCon(this.sink), this.placement.debugcon) as DebugCon | null;
    this.post = place(new PostCodePort(), this.placement.post) as PostCodePort | null;
    // IRQ lines through KVM_IRQ_LINE (the in-kernel PIC); without an irqchip the lines go nowhere.
    const line = (irq: number) => pic === null ? undefined : (level: boolean) => vm.irqLine(irq, level);
    this.serial = place(new Uart16550(this.sink, { onInterrupt: line(4), out2Gate: true }), this.placement.serial) as Uart16550 | null;
    if (this.rtcTimer !== null) vm.removeTimer(this.rtcTimer);
    this.rtc = place(new Mc146818({ clock: () => vm.clock(), start: this.rtcStart, memSize: this.memSize, irq: line(8) }), this.placement.rtc) as Mc146818 | null;
    this.rtcTimer = null;
    if (this.rtc !== null && pic !== null) {
      const rtc = this.rtc;
      this.rtcTimer = { name: rtc.name, irq: 8, get nextEventTime() { return rtc.nextEventTime; }, update: () => rtc.update() };
      vm.addTimer(this.rtcTimer);
    }
    const onReset = (source: string) => this.requestReset(source);
    this.i8042 = place(new I8042({ onReset, irq1: line(1), irq12: line(12) }), this.placement.i8042) as I8042 | null;
    this.resetControl = place(new ResetControl({ onReset }), this.placement.resetControl) as ResetControl | null;
  }

  /** The RTC's timer as the kernel runs it (Vm.addTimer). */
  private rtcTimer: KvmTimer | null = null;

  /** A device reset the machine: the run ends after the current exit with a `reset` exit. */
  private requestReset(source: string): void {
    if (this.resetSource === null) this.resetSource = source;
    this.stopDetail = "reset";
  }

  // -------------------------------------------------------------------------------------------
  // Reuse
  // -------------------------------------------------------------------------------------------
  /** What the machine holds right after construction, for `reset()`. */
  private capture(): Pristine {
    // From here on the RAM slot's dirty log (KVM_MEM_LOG_DIRTY_PAGES) says which pages reset() zeroes.
    this.vm.getDirtyLog(0);
    const buf = this.vm.memory.buffer;
    const ram = this.vm.memslots()[0];
    // Guest RAM is zero then (but for the page directory of paged mode, which setupMode writes
    // again); everything else in the memory (the vCPU's state area) is copied.
    const before = new Uint8Array(buf, 0, ram.userspaceAddr).slice();
    const after = new Uint8Array(buf, ram.userspaceAddr + ram.memorySize).slice();
    return {
      bytes: buf.byteLength, ramHost: ram.userspaceAddr, before, after,
      slots: JSON.stringify(this.vm.memslots()),
      vm: this.vm.saveState(),
      trace: this.traceOption,
      kernelDevices: this.vm.pioBus.devices().filter((d) => !this.ownDevices().includes(d)),
    };
  }

  /** The devices the machine creates itself (placeDevices), attached or not. */
  private ownDevices(): PioDevice[] {
    return [this.debugcon, this.post, this.serial, this.rtc, this.i8042, this.resetControl].filter((d): d is NonNullable<typeof d> => d !== null);
  }

  /**
   * Whether `reset()` can be used: the machine was created with `reusable: true` and its memory
   * layout is still the one it was created with (mapping a ROM adds memory, which cannot be undone).
   */
  get resettable(): boolean {
    const p = this.pristine;
    return p !== null && this.vm.memory.buffer.byteLength === p.bytes && JSON.stringify(this.vm.memslots()) === p.slots;
  }

  /**
   * Return the machine to its state right after construction, for another guest: guest RAM zeroed,
   * the vCPU, the kernel's per-VM and per-vCPU state, the in-kernel irqchip and PIT as they were,
   * fresh debug console, POST port and UART, every hook, device and count of earlier runs gone.
   * Cheaper than a new Machine (no new memory to map). Needs `reusable: true` at construction.
   * The engine stays (a fresh one: compiled code is dropped with the decoded blocks, counters restart).
   * @throws MachineError("argument") when the machine cannot be reset (see `resettable`)
   */
  reset(): void {
    const p = this.pristine;
    if (p === null) throw new MachineError("argument", "This machine cannot be reset: create it with { reusable: true }");
    if (!this.resettable) throw new MachineError("argument", "This machine cannot be reset: its memory layout changed since it was created (a ROM was mapped or memslots changed)");
    const vm = this.vm;
    // Read (and so clear) the dirty log first: it says which pages of RAM to zero.
    const log = vm.getDirtyLog(0);
    // Devices: the ones created with the machine are replaced, any attached later are dropped.
    for (const d of vm.pioBus.devices()) if (!p.kernelDevices.includes(d)) vm.pioBus.detach(d);
    for (const d of this.userBus.devices()) this.userBus.detach(d);
    vm.restoreState(p.vm);
    this.vcpu.vmxExitHooks.fill(null);
    this.vcpu.cpu.onInsn = null;
    this.vcpu.cpu.engine = null;
    vm.setTrace(p.trace ?? false);
    const buf = vm.memory.buffer;
    const mem = new Uint8Array(buf);
    mem.set(p.before, 0);
    const pages = this.memSize >>> 12;
    let written = 0;
    for (let i = 0; i < log.length; i++) for (let b = log[i]; b !== 0; b &= b - 1) written++;
    if (written > pages / 8) {
      mem.fill(0, p.ramHost, p.ramHost + this.memSize);
    } else {
      for (let page = 0; page < pages; page++) {
        if (log[page >>> 3] & (1 << (page & 7))) mem.fill(0, p.ramHost + page * 4096, p.ramHost + page * 4096 + 4096);
      }
    }
    mem.set(p.after, p.ramHost + this.memSize);
    this.vcpu.cpu.invalidateAllCode();
    this.vcpu.cpu.flushTlb();
    this.placeDevices();
    this.consoleBytes.length = 0;
    this.ioIn.clear();
    this.ioOut.clear();
    this.ioHooks.length = 0;
    this.mmioHooks.length = 0;
    this.exitHooks.clear();
    this.consoleWatchers = [];
    this.hypercalls.clear();
    this.stopDetail = null;
    this.image = null;
    if (this.mode === "paged") this.writePageDirectory();
    // A fresh engine: compiled code belongs to the last guest.
    this.setEngine(this.engineName);
  }

  /** The console output as text (UTF-8). */
  get console(): string {
    return new TextDecoder().decode(new Uint8Array(this.consoleBytes));
  }
  /** Take the console bytes collected so far and start a fresh buffer (for long-running sessions). */
  takeConsole(): Uint8Array {
    const out = new Uint8Array(this.consoleBytes);
    this.consoleBytes.length = 0;
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Boot modes, as KVM_SET_SREGS would set them (no descriptor tables needed in memory)
  // -------------------------------------------------------------------------------------------
  private setupMode(): void {
    if (this.mode === "real") return; // the vCPU is in its reset state; load() points CS:IP at the entry
    const s = this.vcpu.getSregs();
    const flat = (selector: number, type: number) => ({
      base: 0, limit: 0xffffffff, selector, type, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0,
    });
    s.cs = flat(0x08, 0xb);
    s.ds = flat(0x10, 0x3);
    s.es = flat(0x10, 0x3);
    s.ss = flat(0x10, 0x3);
    s.fs = flat(0x10, 0x3);
    s.gs = flat(0x10, 0x3);
    s.tr = { base: 0, limit: 0x67, selector: 0, type: 0xb, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 };
    s.ldt = { base: 0, limit: 0, selector: 0, type: 0x2, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 1 };
    s.cr0 = 0x11; // PE, ET
    if (this.mode === "paged") {
      const pd = this.writePageDirectory();
      s.cr3 = pd;
      s.cr4 = 0x10;
      s.cr0 = 0x80000011;
    }
    this.vcpu.setSregs(s);
    this.vcpu.setRegs({ rflags: 2 });
  }

  /** Identity-map all RAM with 4 MiB pages (CR4.PSE); the page directory is the last 4 KiB of RAM. */
  private writePageDirectory(): number {
    const pd = this.memSize - 4096;
    const dir = new Uint8Array(4096);
    const dv = new DataView(dir.buffer);
    for (let i = 0; i * 4 * MiB < this.memSize; i++) dv.setUint32(i * 4, ((i << 22) | 0x87) >>> 0, true); // P, RW, US, PS
    this.vm.writeGuest(pd, dir);
    return pd;
  }

  /**
   * Load an image (raw, ELF32, multiboot, ROM, a Linux bzImage) and point the CPU at its entry.
   *
   * A bzImage boots through Linux's 32-bit boot protocol (runtime/vmm/bzimage.ts): the zero page
   * with an e820 map of this machine's RAM, the command line and the initrd are placed in memory,
   * and the CPU is set up as the protocol says (flat __BOOT_CS 0x10 and __BOOT_DS 0x18 from a GDT
   * in memory, paging and interrupts off, ESI = boot_params, EIP = code32_start), whatever the
   * machine's mode ("real" or "protected"; "paged" is refused, its page directory would sit in RAM
   * the kernel is told is free).
   * An ELF or multiboot guest in protected or paged mode whose ESP is still 0 gets an initial stack:
   * ESP at the top of RAM (below the page directory in paged mode), or just below the highest segment
   * that reaches into the 64 KiB under it (`initialStackTop`, boot_setup.ts).
   * @param opts.initrd bzImage: the initial RAM disk; opts.cmdline: the kernel command line
   * @throws ImageError for a malformed image or one that does not fit (saying how much RAM it
   *   needs), or a multiboot kernel in real mode (it needs protected mode)
   * @example
   * ```ts
   * import { Machine } from "./machine.ts";
   *
   * const m = new Machine({ mode: "protected", memSize: 128 << 20 });
   * m.load(Deno.readFileSync("tests/guests/linux/bzImage"), {
   *   format: "bzimage",
   *   initrd: Deno.readFileSync("tests/guests/linux/initramfs.cpio.gz"),
   *   cmdline: "console=ttyS0",
   * });
   * if (m.vcpu.getRegs().rsi !== 0x7000) throw new Error("ESI should point at boot_params");
   * ```
   */
  load(bytes: Uint8Array, opts: { format?: ImageFormat | "auto"; loadAddr?: number; entry?: number; initrd?: Uint8Array; cmdline?: string } = {}): LoadedImage {
    let img: LoadedImage;
    try {
      img = loadImage(bytes, { format: opts.format ?? "auto", loadAddr: opts.loadAddr, memSize: this.memSize, mode: this.mode, initrd: opts.initrd, cmdline: opts.cmdline });
    } catch (e) {
      if (e instanceof ImageError && e.kind === "placement" && e.message.startsWith("Image does not fit in RAM")) {
        throw new ImageError("placement", e.message + fitHint(bytes, opts.format ?? "auto", this.memSize));
      }
      throw e;
    }
    if (img.format === "bzimage" && this.mode === "paged") {
      throw new ImageError("unsupported", "A bzImage boots with paging off: create the machine in mode \"protected\" (or \"real\"), not \"paged\"");
    }
    if (img.format !== "bzimage" && (opts.initrd !== undefined || opts.cmdline !== undefined)) {
      throw new MachineError("argument", `An initrd and a command line go with a bzImage kernel, not a ${img.format} image`);
    }
    if (img.format === "multiboot" && this.mode === "real") {
      throw new ImageError("placement", 'A multiboot kernel starts in 32-bit protected mode: create the Machine with { mode: "protected" } (vmrun picks it for multiboot images)');
    }
    if (img.format === "rom") {
      this.mapRom(img);
    } else {
      for (const seg of img.segments) {
        if (this.mode === "paged" && seg.addr + seg.memSize > this.memSize - 4096) {
          throw new ImageError("placement", `Image segment 0x${seg.addr.toString(16)}..0x${(seg.addr + seg.memSize).toString(16)} overlaps the page directory in the last 4 KiB of RAM`);
        }
        this.vm.writeGuest(seg.addr, seg.data);
        if (seg.memSize > seg.data.length) this.vm.writeGuest(seg.addr + seg.data.length, new Uint8Array(seg.memSize - seg.data.length));
      }
    }
    const entry = opts.entry ?? img.entry;
    if (img.format !== "rom") {
      if (!Number.isInteger(entry) || entry < 0 || entry >= this.memSize) {
        throw new ImageError("placement", `Entry point 0x${entry.toString(16)} is outside guest memory (${this.memSize / MiB} MiB)`);
      }
      if (img.format === "bzimage") this.enterBootProtocol(entry, img.bootParams!);
      else this.setEntry(entry);
    }
    if (img.format === "multiboot") this.vcpu.setRegs({ rax: MULTIBOOT_BOOTLOADER_MAGIC, rbx: img.multibootInfo ?? 0 });
    if ((img.format === "elf" || img.format === "multiboot") && this.mode !== "real" && this.vcpu.getRegs().rsp === 0) {
      const sp = initialStackTop(img.segments, this.mode === "paged" ? this.memSize - 4096 : this.memSize);
      if (sp !== null) this.vcpu.setRegs({ rsp: sp });
    }
    this.image = img;
    return img;
  }

  /** The CPU state Linux's 32-bit boot protocol enters with (Documentation/x86/boot.rst). */
  private enterBootProtocol(entry: number, bootParams: number): void {
    const s = this.vcpu.getSregs();
    const flat = (selector: number, type: number) => ({
      base: 0, limit: 0xffffffff, selector, type, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0,
    });
    s.cs = flat(BOOT_CS, 0xb);
    s.ds = flat(BOOT_DS, 0x3);
    s.es = flat(BOOT_DS, 0x3);
    s.ss = flat(BOOT_DS, 0x3);
    s.fs = flat(BOOT_DS, 0x3);
    s.gs = flat(BOOT_DS, 0x3);
    s.tr = { base: 0, limit: 0x67, selector: 0, type: 0xb, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 };
    s.ldt = { base: 0, limit: 0, selector: 0, type: 0x2, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 1 };
    s.gdt = { base: BOOT_GDT_ADDR, limit: 31 };
    s.idt = { base: 0, limit: 0 };
    s.cr0 = 0x11; // PE, ET; paging off
    s.cr3 = 0;
    s.cr4 = 0;
    this.vcpu.setSregs(s);
    this.vcpu.setRegs({ rip: entry, rsi: bootParams, rbx: 0, rbp: 0, rdi: 0, rflags: 2 });
  }

  /** Point the CPU at `entry`: CS:IP in real mode (CS = entry >> 4 rounded to 64 KiB), EIP otherwise. */
  setEntry(entry: number): void {
    if (this.mode === "real") {
      if (entry > 0xfffff) throw new ImageError("placement", `Entry point 0x${entry.toString(16)} is not reachable in real mode (above 1 MiB): create the Machine with { mode: "protected" } (vmrun --mode protected, which vmrun picks for ELF images entered above 1 MiB)`);
      const cs = (entry >>> 4) & 0xf000;
      const s = this.vcpu.getSregs();
      s.cs.selector = cs;
      s.cs.base = cs << 4;
      this.vcpu.setSregs(s);
      this.vcpu.setRegs({ rip: entry - (cs << 4), rflags: 2 });
    } else {
      this.vcpu.setRegs({ rip: entry });
    }
  }

  /** A ROM ends at 1 MiB and again at 4 GiB (read-only, one copy); the CPU starts from the reset state. */
  private mapRom(img: LoadedImage): void {
    const size = img.romSize!;
    const low = 0x100000 - size;
    const host = this.vm.mmap(size);
    new Uint8Array(this.vm.memory.buffer, host, size).set(img.segments[0].data);
    // Carve the low alias out of RAM.
    const slots = this.vm.memslots();
    this.vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: 0 });
    const ram = slots[0];
    this.vm.setUserMemoryRegion({ slot: 0, guestPhysAddr: 0, memorySize: Math.min(low, this.memSize), userspaceAddr: ram.userspaceAddr });
    if (this.memSize > 0x100000) {
      this.vm.setUserMemoryRegion({ slot: 3, guestPhysAddr: 0x100000, memorySize: this.memSize - 0x100000, userspaceAddr: ram.userspaceAddr + 0x100000 });
    }
    this.vm.setUserMemoryRegion({ slot: 1, guestPhysAddr: low, memorySize: size, flags: KVM_MEM_READONLY, userspaceAddr: host });
    this.vm.setUserMemoryRegion({ slot: 2, guestPhysAddr: 2 ** 32 - size, memorySize: size, flags: KVM_MEM_READONLY, userspaceAddr: host });
    this.vcpu.reset();
  }

  // -------------------------------------------------------------------------------------------
  // Devices and hooks
  // -------------------------------------------------------------------------------------------
  private checkPortsFree(first: number, last: number, what: string, dirIn = true, dirOut = true): void {
    const k = this.vm.pioBus.claimed(first, last);
    if (k) throw new MachineError("conflict", `Cannot register ${what} for ports ${hexRange(first, last)}: ports are claimed by in-kernel device "${k.name}"`);
    const u = this.userBus.claimed(first, last);
    if (u) throw new MachineError("conflict", `Cannot register ${what} for ports ${hexRange(first, last)}: ports are claimed by userspace device "${u.name}"`);
    for (let p = first; p <= last; p++) {
      const h = (dirIn ? this.ioIn.get(p) : undefined) ?? (dirOut ? this.ioOut.get(p) : undefined);
      if (h) throw new MachineError("conflict", `Cannot register ${what} for ports ${hexRange(first, last)}: port 0x${p.toString(16)} is claimed by IO hook "${h.name}"`);
    }
  }
  /** Attach a device in userspace (reached through KVM_EXIT_IO). */
  attachDevice(dev: PioDevice): void {
    for (const r of dev.ports) this.checkPortsFree(r.first, r.last, `device "${dev.name}"`);
    this.userBus.attach(dev);
  }
  /** Attach a device on KVM's in-kernel bus (OUTs to it never leave KVM_RUN). */
  attachKernelDevice(dev: PioDevice): void {
    for (const r of dev.ports) this.checkPortsFree(r.first, r.last, `device "${dev.name}"`);
    this.vm.attachKernelDevice(dev);
  }

  /**
   * Hook IO ports. String instructions (INS/OUTS) call the hook once per element.
   * @throws MachineError("conflict") when a device or another hook has any of the ports
   * @returns a function that removes the hook
   */
  onIo(spec: IoHookSpec): () => void {
    const [first, last] = typeof spec.port === "number" ? [spec.port, spec.port] : spec.port;
    if (!isPort(first) || !isPort(last) || first > last) throw new MachineError("argument", `Invalid port range: ${JSON.stringify(spec.port)}`);
    const dir = spec.direction ?? "both";
    if (dir !== "in" && dir !== "out" && dir !== "both") throw new MachineError("argument", `Invalid IO hook direction: ${dir}`);
    const name = spec.name ?? `io ${hexRange(first, last)}`;
    const h: IoHook = {
      first, last, dirIn: dir !== "out", dirOut: dir !== "in",
      sizes: (spec.sizes ?? [1, 2, 4]).reduce((m, s) => m | s, 0), name, handler: spec.handler,
    };
    this.checkPortsFree(first, last, `IO hook "${name}"`, h.dirIn, h.dirOut);
    for (let p = first; p <= last; p++) {
      if (h.dirIn) this.ioIn.set(p, h);
      if (h.dirOut) this.ioOut.set(p, h);
    }
    this.ioHooks.push(h);
    return () => {
      for (let p = first; p <= last; p++) {
        if (this.ioIn.get(p) === h) this.ioIn.delete(p);
        if (this.ioOut.get(p) === h) this.ioOut.delete(p);
      }
    };
  }
  /** Hook a guest-physical range with no memslot behind it (MMIO). */
  onMmio(spec: MmioHookSpec): () => void {
    const name = spec.name ?? `mmio 0x${spec.base.toString(16)}`;
    if (!Number.isSafeInteger(spec.base) || !Number.isSafeInteger(spec.size) || spec.size <= 0 || spec.base < 0 || spec.base + spec.size > 2 ** 32) {
      throw new MachineError("argument", `Invalid MMIO range: base ${spec.base}, size ${spec.size}`);
    }
    for (const m of this.mmioHooks) {
      if (spec.base < m.base + m.size && m.base < spec.base + spec.size) {
        throw new MachineError("conflict", `Cannot register MMIO hook "${name}": range overlaps MMIO hook "${m.name}"`);
      }
    }
    if (this.vm.gpaToHost(spec.base) >= 0 || this.vm.gpaToHost(spec.base + spec.size - 1) >= 0) {
      throw new MachineError("conflict", `Cannot register MMIO hook "${name}": guest-physical 0x${spec.base.toString(16)} is RAM (a memslot covers it)`);
    }
    const entry = { ...spec, name };
    this.mmioHooks.push(entry);
    return () => {
      const i = this.mmioHooks.indexOf(entry);
      if (i >= 0) this.mmioHooks.splice(i, 1);
    };
  }
  /**
   * Hook a userspace exit by KVM exit reason (a KvmExit number or its lower-case name, e.g. "hlt").
   * Hooks of one reason run in registration order; one returning "resume" re-enters the guest.
   */
  onExit(reason: number | string, fn: ExitHandler, name = `exit ${reason}`): void {
    const code = typeof reason === "number" ? reason : exitCodeByName(reason);
    // KVM_EXIT_IDLE is only returned when asked for.
    if (code === KvmExit.IDLE) this.vcpu.idleExit = true;
    const list = this.exitHooks.get(code) ?? [];
    list.push({ name, fn });
    this.exitHooks.set(code, list);
  }
  /** Hook a VMX exit reason at vmxHandleExit (before KVM's own handler). */
  onVmxExit(reason: number, hook: VmxExitHook): void {
    this.vcpu.onVmxExit(reason, hook);
  }
  /** Handle hypercall `nr` (VMCALL with RAX = nr). */
  onHypercall(nr: number, fn: HypercallHandler, name = `hypercall ${nr}`): void {
    if (this.hypercalls.has(nr)) throw new MachineError("conflict", `Cannot register hypercall hook "${name}": hypercall ${nr} is claimed by "${this.hypercalls.get(nr)!.name}"`);
    this.hypercalls.set(nr, { name, fn });
  }
  /**
   * Watch the console: `fn` gets each byte as the guest writes it (during the exit that writes it,
   * so `machine.vcpu.instructions` says when).
   * @returns a function that removes the listener
   */
  onConsole(fn: ByteSink): () => void {
    this.consoleWatchers = [...this.consoleWatchers, fn];
    return () => { this.consoleWatchers = this.consoleWatchers.filter((f) => f !== fn); };
  }
  /** Feed bytes to the UART's receive FIFO. */
  feedSerial(bytes: Uint8Array | string): void {
    if (!this.serial) throw new MachineError("argument", "This machine has no serial port");
    this.serial.feed(bytes);
  }

  private makeContext(): HookContext {
    const m = this;
    return {
      machine: m,
      vcpu: m.vcpu,
      getRegs: () => m.vcpu.getRegs(),
      setRegs: (r) => m.vcpu.setRegs(r),
      read: (gpa, len) => m.vm.readGuest(gpa, len),
      write: (gpa, data) => m.vm.writeGuest(gpa, data),
      stop: (detail = "stopped by a hook") => { m.stopDetail = detail; },
    };
  }

  // -------------------------------------------------------------------------------------------
  // The run loop (kvm_cpu_exec)
  // -------------------------------------------------------------------------------------------
  /**
   * Run until the guest halts, shuts down, a hook stops it, the budget or the time runs out, or an
   * exit nobody handles.
   * @param opts.budget instructions (the VMX preemption timer); the run ends with reason "budget"
   * @param opts.timeoutMs wall-clock limit; the run ends with reason "timeout"
   * @throws MachineError("hook") when a hook throws; the machine stays inspectable
   */
  run(opts: { budget?: number; timeoutMs?: number } = {}): RunResult {
    const vcpu = this.vcpu;
    const t0 = performance.now();
    const i0 = vcpu.instructions;
    const vmx0 = Float64Array.from(vcpu.vmxExitCounts);
    const user0 = new Map(vcpu.userExitCounts);
    vcpu.setBudget(opts.budget ?? null);
    vcpu.setDeadline(opts.timeoutMs !== undefined ? t0 + opts.timeoutMs : null);
    this.stopDetail = null;
    this.resetSource = null;
    let exit: RunExit;
    try {
      exit = this.loop();
    } finally {
      vcpu.setDeadline(null);
    }
    const exits: Record<string, number> = {};
    vcpu.vmxExitCounts.forEach((n, r) => {
      const d = n - vmx0[r];
      if (d > 0) exits[(EXIT_REASON_NAMES[r] ?? `reason_${r}`).toLowerCase()] = d;
    });
    // Userspace exits are counted once, by KVM_RUN (vcpu.userExitCounts); this run's share is the difference.
    const user: Record<string, number> = {};
    for (const [r, n] of vcpu.userExitCounts) {
      const d = n - (user0.get(r) ?? 0);
      if (d > 0) user[kvmExitName(r)] = d;
    }
    return { exit, instructions: vcpu.instructions - i0, exits, userspaceExits: user, wallMs: performance.now() - t0 };
  }

  private loop(): RunExit {
    const vcpu = this.vcpu;
    const run = vcpu.kvmRun;
    for (;;) {
      vcpu.run();
      const reason = run.exitReason;
      const hooks = this.exitHooks.size === 0 ? undefined : this.exitHooks.get(reason);
      if (hooks !== undefined) {
        const resume = this.runExitHooks(hooks, run);
        if (this.stopDetail !== null) return this.stopExit();
        if (resume) continue;
      }
      switch (reason) {
        case KvmExit.IO:
          this.kvmHandleIo(run);
          break;
        case KvmExit.MMIO:
          if (!this.kvmHandleMmio(run)) return toVcpuExit(run);
          break;
        case KvmExit.HYPERCALL:
          this.handleHypercall(run);
          break;
        case KvmExit.INTR:
          return { reason: "timeout" };
        case KvmExit.IDLE:
          break; // nobody hooked it: let the vCPU sleep on the next KVM_RUN
        default:
          return toVcpuExit(run);
      }
      if (this.stopDetail !== null) return this.stopExit();
    }
  }

  /** How a run that a hook or a device stopped ends. */
  private stopExit(): RunExit {
    const source = this.resetSource;
    if (source !== null) {
      this.resetSource = null;
      return { reason: "reset", source };
    }
    return { reason: "stopped", detail: this.stopDetail! };
  }

  private runExitHooks(hooks: { name: string; fn: ExitHandler }[], run: KvmRun): boolean {
    const exit = toVcpuExit(run);
    for (const h of hooks) {
      let r: "resume" | void;
      try {
        r = h.fn(exit, this.ctx);
      } catch (e) {
        throw this.hookError(h.name, exit, e);
      }
      if (r === "resume") return true;
    }
    return false;
  }

  private hookError(hook: string, exit: VcpuExit | string, e: unknown): MachineError {
    const what = typeof exit === "string" ? exit : describeExit(exit);
    const msg = e instanceof Error ? e.message : String(e);
    return new MachineError("hook", `Hook "${hook}" threw on ${what}: ${msg}`, { cause: e });
  }

  /** kvm_handle_io: each element of a KVM_EXIT_IO goes to the port's hook or userspace device. */
  kvmHandleIo(run: KvmRun): void {
    const io = run.io;
    const isIn = io.direction === KVM_EXIT_IO_IN;
    const hook = isIn ? this.ioIn.get(io.port) : this.ioOut.get(io.port);
    // The common case, kept small so that it inlines into the run loop: one OUT to a script's hook.
    if (hook !== undefined && !isIn && io.count === 1 && (hook.sizes & io.size) !== 0) {
      const data = run.data, off = io.dataOffset, size = io.size as 1 | 2 | 4;
      const v = size === 1 ? data[off] : size === 2 ? data[off] | (data[off + 1] << 8)
        : (data[off] | (data[off + 1] << 8) | (data[off + 2] << 16) | (data[off + 3] << 24)) >>> 0;
      try {
        hook.handler({ port: io.port, size, direction: "out", value: v }, this.ctx);
      } catch (e) {
        throw this.ioHookError(hook, io.port, "out", e);
      }
      return;
    }
    this.kvmHandleIoElements(run, hook);
  }

  /** kvm_handle_io for everything but one OUT to a hook: INs, string IO, userspace devices, nobody. */
  private kvmHandleIoElements(run: KvmRun, hook: IoHook | undefined): void {
    const io = run.io;
    const isIn = io.direction === KVM_EXIT_IO_IN;
    const size = io.size as 1 | 2 | 4;
    const port = io.port;
    const count = io.count;
    const data = run.data;
    if (hook !== undefined && (hook.sizes & size) !== 0) {
      for (let k = 0, off = io.dataOffset; k < count; k++, off += size) {
        if (isIn) {
          let r: number | void;
          try {
            r = hook.handler({ port, size, direction: "in", value: 0 }, this.ctx);
          } catch (e) {
            throw this.ioHookError(hook, port, "in", e);
          }
          const v = r === undefined ? -1 : r;
          data[off] = v;
          if (size !== 1) {
            data[off + 1] = v >> 8;
            if (size === 4) { data[off + 2] = v >> 16; data[off + 3] = v >> 24; }
          }
        } else {
          const v = size === 1 ? data[off] : size === 2 ? data[off] | (data[off + 1] << 8)
            : (data[off] | (data[off + 1] << 8) | (data[off + 2] << 16) | (data[off + 3] << 24)) >>> 0;
          try {
            hook.handler({ port, size, direction: "out", value: v }, this.ctx);
          } catch (e) {
            throw this.ioHookError(hook, port, "out", e);
          }
        }
      }
      return;
    }
    // A userspace device, or nobody: an IN reads all ones, an OUT is counted (vm.countPio) and dropped.
    const dev = hook === undefined ? this.userBus.find(port) : undefined;
    for (let k = 0; k < count; k++) {
      const off = io.dataOffset + k * size;
      if (isIn) {
        const v = dev !== undefined ? dev.read(port, size) : -1;
        for (let b = 0; b < size; b++) data[off + b] = v >> (8 * b);
      } else if (dev !== undefined) {
        let v = 0;
        for (let b = size - 1; b >= 0; b--) v = (v << 8) | data[off + b];
        dev.write(port, size, v >>> 0);
      }
    }
  }

  private ioHookError(hook: IoHook, port: number, direction: "in" | "out", e: unknown): MachineError {
    return this.hookError(hook.name, `KVM_EXIT_IO ${direction} port 0x${port.toString(16)}`, e);
  }

  private kvmHandleMmio(run: KvmRun): boolean {
    const { physAddr, len, isWrite, data } = run.mmio;
    const h = this.mmioHooks.find((m) => physAddr >= m.base && physAddr < m.base + m.size);
    if (!h) {
      if (this.unclaimedMmio === "exit") return false;
      if (!isWrite) data.fill(0xff);
      return true;
    }
    try {
      if (isWrite) {
        let v = 0;
        for (let b = len - 1; b >= 0; b--) v = (v << 8) | data[b];
        h.write?.(physAddr, len, v >>> 0, this.ctx);
      } else {
        const v = h.read ? h.read(physAddr, len, this.ctx) : -1;
        for (let b = 0; b < len; b++) data[b] = v >> (8 * b);
      }
    } catch (e) {
      throw this.hookError(h.name, `KVM_EXIT_MMIO ${isWrite ? "write" : "read"} at 0x${physAddr.toString(16)}`, e);
    }
    return true;
  }

  private handleHypercall(run: KvmRun): void {
    const hc = run.hypercall;
    const h = this.hypercalls.get(hc.nr);
    if (!h) {
      hc.ret = -KVM_ENOSYS;
      return;
    }
    try {
      const r = h.fn(hc.args.slice(0, 4), this.ctx);
      hc.ret = r === undefined ? 0 : r;
    } catch (e) {
      throw this.hookError(h.name, `KVM_EXIT_HYPERCALL nr ${hc.nr}`, e);
    }
  }

  /** Port counts: `{ "0x3f8": { out: 2 } }`, in ascending port order. */
  portCounts(): Record<string, { in?: number; out?: number }> {
    const out: Record<string, { in?: number; out?: number }> = {};
    for (const [p, i, o] of this.vm.pioCountEntries()) {
      const e: { in?: number; out?: number } = {};
      if (i) e.in = i;
      if (o) e.out = o;
      if (i || o) out[`0x${p.toString(16)}`] = e;
    }
    return out;
  }
}

/** What `Machine.reset()` restores. */
interface Pristine {
  /** The memory's size and the bytes around guest RAM (the vCPU's state area). */
  bytes: number;
  ramHost: number;
  before: Uint8Array;
  after: Uint8Array;
  slots: string;
  /** The kernel's state (every layer's own saveState: vCPU and VMCS, irqchip, PIT, counts). */
  vm: VmState;
  /** The per-VM trace as it was set at construction. */
  trace: boolean | TraceSink | undefined;
  kernelDevices: PioDevice[];
}

function checkEngine(engine: unknown): asserts engine is EngineName {
  if (!isEngineName(engine)) throw new MachineError("engine", `Unknown engine: ${String(engine)} (expected interp, jit or auto)`);
  if (engine !== "interp" && engineFactory() === null) {
    throw new MachineError("engine", `Engine "${engine}" needs binaryen, which loads asynchronously: call \`await loadJit()\` (runtime/vmm/tiering.ts) before \`new Machine({ engine: "${engine}" })\`, or use \`await Machine.create(opts)\``);
  }
}

/** A port-indexed table, in pages of 256 ports allocated on first use. */
class PortTable<T> {
  // null, not undefined, marks an empty slot: V8 stores an array filled with undefined as doubles
  // and boxes every element it reads (DESIGN-NOTES.md).
  private readonly pages: ((T | null)[] | null)[] = new Array(256).fill(null);
  get(port: number): T | undefined {
    const page = this.pages[port >>> 8];
    if (page === null) return undefined;
    const v = page[port & 0xff];
    return v === null ? undefined : v;
  }
  set(port: number, v: T): void {
    let page = this.pages[port >>> 8];
    if (page === null) page = this.pages[port >>> 8] = new Array<T | null>(256).fill(null);
    page[port & 0xff] = v;
  }
  delete(port: number): void {
    const page = this.pages[port >>> 8];
    if (page !== null) page[port & 0xff] = null;
  }
  clear(): void {
    this.pages.fill(null);
  }
}

function isPort(p: number): boolean {
  return Number.isInteger(p) && p >= 0 && p <= 0xffff;
}
function hexRange(a: number, b: number): string {
  return a === b ? `0x${a.toString(16)}` : `0x${a.toString(16)}-0x${b.toString(16)}`;
}
function exitCodeByName(name: string): number {
  const key = name.toUpperCase().replace(/^KVM_EXIT_/, "");
  const v = (KvmExit as Record<string, number>)[key];
  if (v === undefined) throw new MachineError("argument", `Unknown KVM exit reason: ${name}`);
  return v;
}
function describeExit(e: VcpuExit): string {
  switch (e.reason) {
    case "io": return `KVM_EXIT_IO ${e.direction} port 0x${e.port.toString(16)}`;
    case "mmio": return `KVM_EXIT_MMIO ${e.isWrite ? "write" : "read"} at 0x${e.physAddr.toString(16)}`;
    case "hypercall": return `KVM_EXIT_HYPERCALL nr ${e.nr}`;
    default: return `KVM_EXIT_${e.reason.toUpperCase()}`;
  }
}
