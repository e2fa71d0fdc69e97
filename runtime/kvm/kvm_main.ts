/**
 * The generic KVM layer (virt/kvm/kvm_main.c): module init, the /dev/kvm handle, VMs with their
 * memslots and in-kernel PIO bus, and the VM ioctl that creates vCPUs.
 */
import { PioBus } from "../devices/pio_bus.ts";
import { I8259Pair, type I8259PairState } from "../devices/i8259.ts";
import { I8254, type I8254State } from "../devices/i8254.ts";
import type { PioDevice } from "../devices/device.ts";
import * as stateMod from "../cpu/state.ts";
import type { PhysMap } from "../cpu/cpu.ts";
import { type TraceSink, Tracer } from "./trace.ts";
import type { KvmX86Ops } from "./x86_ops.ts";
import { kvmArchInit, kvmArchVcpuCreate, type CpuidEntry, defaultCpuid } from "./x86.ts";
import { Vcpu, type VcpuState } from "./vcpu.ts";
import type { VmxCapabilities } from "../cpu/vmx_capabilities.ts";
import { KvmError } from "./errors.ts";

// Module-local bindings of the constant tables: V8 folds a module's own consts into optimised code
// but reads an imported binding from its module cell, with a TDZ check, at every use (DESIGN-NOTES.md).
const { VCPU_AREA_BYTES } = stateMod;

/** Host-side failures of the kernel layer; `kind` says which (Firecracker's per-operation error enums). */
export { KvmError };

/** What `Vm.saveState` keeps (guest memory apart). */
export interface VmState {
  /** The memslot layout it was saved with (a restore needs the same). */
  layout: string;
  cpuid: CpuidEntry[];
  userspaceMsr: boolean;
  pioCounts: (Float64Array | null)[];
  pic: I8259PairState | null;
  pit: I8254State | null;
  vcpus: VcpuState[];
}

/**
 * The loaded module: the vendor ops (kvm_x86_ops) and what generic KVM knows of the host. What the
 * vendor module found in hardware setup (vmcs_config, the per-CPU vmxarea) is private to it, as in
 * vmx.c (runtime/vmx/vmx.ts: `vmxModuleState`).
 */
export class KvmModule {
  ops!: KvmX86Ops;
  /** Emulated host processors (num_online_cpus), set by the vendor module's hardware setup. */
  cpus = 1;
  /** The module-init path as traced, for tests and `--trace path`. */
  readonly initTrace = new Tracer();
  /** Host TSC rate the timer init derived; the guest TSC counts instructions, so this is nominal. */
  tscKhz = 0;
}

/**
 * kvm_init: called by the vendor module's init (vmxInit) with its ops.
 * Module init order (the seed): vmxInit → kvmInit → kvmArchInit (→ kvmTimerInit) →
 * kvmArchHardwareSetup → hardwareSetup → setupVmcsConfig → allocKvmArea → allocVmcsCpu per CPU.
 */
export function kvmInit(mod: KvmModule, ops: KvmX86Ops): void {
  mod.initTrace.record("kvmInit", { vendor: ops.name });
  kvmArchInit(mod, ops);
}

export interface KvmOpenOptions {
  /** Emulated VMX capabilities; giving them loads a separate module instance (another "machine"). */
  hardware?: VmxCapabilities;
}

let defaultModule: KvmModule | null = null;

/** A handle to the emulated /dev/kvm. */
export class Kvm {
  private constructor(readonly module: KvmModule) {}

  /**
   * Open /dev/kvm; the first call in a process loads the module (module init).
   * @throws KvmError("hardware") when the emulated processor lacks a control KVM requires
   * @example
   * ```ts
   * import { Kvm } from "../mod.ts"; // mod.ts also loads the vendor module (runtime/vmx)
   *
   * const kvm = await Kvm.open();
   * const vm = kvm.createVm();
   * ```
   */
  static async open(opts: KvmOpenOptions = {}): Promise<Kvm> {
    return Kvm.openSync(opts);
  }
  static openSync(opts: KvmOpenOptions = {}): Kvm {
    const { vmxInit } = vmxModuleLoader();
    if (opts.hardware) return new Kvm(vmxInit(opts.hardware));
    if (!defaultModule) defaultModule = vmxInit();
    return new Kvm(defaultModule);
  }
  /** The module-init trace of the module this handle uses. */
  get moduleInitTrace(): Tracer {
    return this.module.initTrace;
  }
  /** KVM_GET_API_VERSION. */
  getApiVersion(): number {
    return 12;
  }
  /** KVM_CREATE_VM. */
  createVm(opts: { trace?: boolean | TraceSink } = {}): Vm {
    return new Vm(this.module, opts);
  }
}

// The vendor module is imported lazily through a setter to keep kvm_main free of a static import
// cycle (vmx.ts imports kvmInit from here).
let vmxLoader: (() => { vmxInit: (caps?: VmxCapabilities) => KvmModule }) | null = null;
export function registerVendorModule(l: () => { vmxInit: (caps?: VmxCapabilities) => KvmModule }): void {
  vmxLoader = l;
}
function vmxModuleLoader() {
  if (!vmxLoader) throw new KvmError("hardware", "No vendor module is loaded: import runtime/vmx/vmx.ts (runtime/mod.ts does)");
  return vmxLoader();
}

/** KVM_MEM_* flags. */
export const KVM_MEM_LOG_DIRTY_PAGES = 1;
export const KVM_MEM_READONLY = 2;

export interface UserMemoryRegion {
  slot: number;
  flags?: number;
  guestPhysAddr: number;
  memorySize: number;
  /** Offset in the VM memory returned by `vm.mmap` (the C API's userspace_addr); allocated when omitted. */
  userspaceAddr?: number;
}
interface MemSlot {
  slot: number;
  flags: number;
  gpa: number;
  end: number;
  host: number;
  /** KVM_MEM_LOG_DIRTY_PAGES: one bit per page written since the last getDirtyLog. */
  dirty: Uint8Array | null;
}

const PAGE = 4096;
const WASM_PAGE = 65536;

/** A virtual machine: guest memory (memslots over one WebAssembly.Memory), vCPUs, the in-kernel PIO bus. */
/** A device with a timer the kernel runs on virtual time (see `Vm.addTimer`). */
export interface KvmTimer {
  readonly name: string;
  /** Virtual time (ns) of the device's next event, or Infinity. */
  readonly nextEventTime: number;
  /** Account what is due by now (raising the device's interrupt) and recompute `nextEventTime`. */
  update(): void;
  /** The PIC input the device's interrupt arrives on (the wake-up test of a halted vCPU). */
  readonly irq: number;
}

export class Vm implements PhysMap {
  /** Guest RAM and every vCPU's state live in this memory. */
  readonly memory = new WebAssembly.Memory({ initial: 1 });
  private brk = 0;
  private slots: MemSlot[] = [];
  private last: MemSlot | null = null;
  readonly vcpus: Vcpu[] = [];
  /** The in-kernel PIO bus (kvm->buses[KVM_PIO_BUS]). */
  readonly pioBus = new PioBus();
  /**
   * IN/OUT element counts per port and direction, in pages of 256 ports allocated on first use (a
   * VM touches a handful of ports; a dense table of 65536 × 2 counters cost more than the rest of a
   * VM to create): page port >> 8, index (port & 0xff) * 2 + (1 for OUT, 0 for IN). Read them with
   * `pioCounts` or `pioCountEntries()`.
   */
  private readonly pioCountPages: (Float64Array | null)[] = new Array(256).fill(null);
  /** The CPUID table (KVM_SET_CPUID2), shared by new vCPUs. */
  cpuid: CpuidEntry[] = defaultCpuid();
  /** Exit to userspace on unknown MSRs (KVM_CAP_X86_USER_SPACE_MSR) instead of injecting #GP. */
  userspaceMsr = false;
  /** The in-kernel 8259A pair (KVM_CREATE_IRQCHIP), or null when the interrupt controller is userspace's. */
  pic: I8259Pair | null = null;
  /** The in-kernel 8254 (KVM_CREATE_PIT2), or null. */
  pit: I8254 | null = null;
  /** Other devices that raise interrupts on virtual time (the RTC), or null for none; see `addTimer`. */
  timers: KvmTimer[] | null = null;
  tracer: Tracer | null = null;

  constructor(readonly module: KvmModule, opts: { trace?: boolean | TraceSink } = {}) {
    if (opts.trace) this.tracer = new Tracer(typeof opts.trace === "function" ? opts.trace : undefined, opts.trace === true);
  }

  /**
   * The VM's state but for guest memory (which the VMM saves with the dirty log): the memslot
   * layout, the in-kernel irqchip and PIT, the CPUID table, the PIO counts and every vCPU. The
   * devices userspace attached to the in-kernel bus are userspace's to save.
   */
  saveState(): VmState {
    return {
      layout: this.layoutKey(), cpuid: structuredClone(this.cpuid), userspaceMsr: this.userspaceMsr,
      pioCounts: this.pioCountPages.map((p) => p && p.slice()), pic: this.pic?.saveState() ?? null,
      pit: this.pit?.saveState() ?? null, vcpus: this.vcpus.map((v) => v.saveState()),
    };
  }
  /**
   * Put back what `saveState` saved, on the VM it was saved from or one laid out the same way.
   * @throws KvmError("state") when the memslots, the irqchip, the PIT or the vCPUs differ
   */
  restoreState(s: VmState): void {
    if (s.layout !== this.layoutKey()) throw new KvmError("state", "Cannot restore: the memslots differ from the saved VM's");
    if ((s.pic === null) !== (this.pic === null) || (s.pit === null) !== (this.pit === null) || s.vcpus.length !== this.vcpus.length) {
      throw new KvmError("state", "Cannot restore: the irqchip, the PIT or the vCPUs differ from the saved VM's");
    }
    this.cpuid = structuredClone(s.cpuid);
    this.userspaceMsr = s.userspaceMsr;
    s.pioCounts.forEach((p, i) => (this.pioCountPages[i] = p && p.slice()));
    if (s.pic !== null) this.pic!.restoreState(s.pic);
    if (s.pit !== null) this.pit!.restoreState(s.pit);
    s.vcpus.forEach((v, i) => this.vcpus[i].restoreState(v));
  }
  private layoutKey(): string {
    return JSON.stringify([this.brk, this.slots.map((s) => [s.slot, s.flags, s.gpa, s.end, s.host])]);
  }

  /** Count `n` IN or OUT elements at `port` (KVM's per-port PIO statistics). */
  countPio(port: number, isIn: boolean, n: number): void {
    const pages = this.pioCountPages;
    let page = pages[port >>> 8];
    if (page === null) page = pages[port >>> 8] = new Float64Array(512);
    page[((port & 0xff) << 1) | (isIn ? 0 : 1)] += n;
  }
  /** The ports counted so far: `[port, ins, outs]`, in ascending port order. */
  pioCountEntries(): [port: number, ins: number, outs: number][] {
    const out: [number, number, number][] = [];
    this.pioCountPages.forEach((page, hi) => {
      if (page === null) return;
      for (let lo = 0; lo < 256; lo++) {
        const i = page[lo * 2], o = page[lo * 2 + 1];
        if (i || o) out.push([(hi << 8) | lo, i, o]);
      }
    });
    return out;
  }
  /**
   * The counts as a dense table, index port*2 + (1 for OUT, 0 for IN): a copy made on each read
   * (writing to it changes nothing; `resetPioCounts()` clears the counts).
   */
  get pioCounts(): Uint32Array {
    const t = new Uint32Array(65536 * 2);
    this.pioCountPages.forEach((page, hi) => { if (page !== null) t.set(page, hi * 512); });
    return t;
  }
  /** Forget the PIO counts. */
  resetPioCounts(): void {
    this.pioCountPages.fill(null);
  }

  /** Turn the per-VM trace on (collecting events) or off. */
  setTrace(on: boolean | TraceSink): Tracer | null {
    this.tracer = on ? new Tracer(typeof on === "function" ? on : undefined, on === true) : null;
    return this.tracer;
  }

  /** Allocate `size` bytes of host memory for guest RAM or vCPU state (page aligned, zeroed). */
  mmap(size: number): number {
    if (!Number.isSafeInteger(size) || size <= 0) throw new RangeError(`Invalid mapping size: ${size}`);
    const start = this.brk;
    const end = start + Math.ceil(size / PAGE) * PAGE;
    if (end > 0xffff0000) throw new KvmError("memslot", `Cannot map ${size} bytes: the VM memory would exceed 4 GiB`);
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      this.memory.grow(Math.ceil((end - have) / WASM_PAGE));
      for (const v of this.vcpus) v.cpu.refreshViews();
    }
    this.brk = end;
    return start;
  }

  /**
   * KVM_SET_USER_MEMORY_REGION: map guest-physical [guestPhysAddr, +memorySize) to host memory.
   * A memorySize of 0 deletes the slot.
   */
  setUserMemoryRegion(r: UserMemoryRegion): void {
    const t = this.tracer;
    if (t) t.record("kvmVmIoctlSetMemoryRegion", { slot: r.slot, guestPhysAddr: r.guestPhysAddr, memorySize: r.memorySize });
    if (!Number.isInteger(r.slot) || r.slot < 0 || r.slot > 32767) throw new KvmError("memslot", `Invalid memslot number: ${r.slot}`);
    const existing = this.slots.findIndex((s) => s.slot === r.slot);
    if (r.memorySize === 0) {
      if (existing >= 0) this.slots.splice(existing, 1);
      this.last = null;
      this.invalidateAll();
      return;
    }
    if (r.guestPhysAddr % PAGE || r.memorySize % PAGE || r.memorySize < 0) {
      throw new KvmError("memslot", `Memslot ${r.slot} must be page aligned: guest 0x${r.guestPhysAddr.toString(16)}, size 0x${r.memorySize.toString(16)}`);
    }
    const end = r.guestPhysAddr + r.memorySize;
    if (r.guestPhysAddr < 0 || end > 2 ** 32) throw new KvmError("memslot", `Memslot ${r.slot} lies outside the 4 GiB guest-physical space`);
    for (const s of this.slots) {
      if (s.slot !== r.slot && r.guestPhysAddr < s.end && s.gpa < end) {
        throw new KvmError("memslot", `Memslot ${r.slot} at 0x${r.guestPhysAddr.toString(16)} overlaps memslot ${s.slot} at 0x${s.gpa.toString(16)}`);
      }
    }
    const old = existing >= 0 ? this.slots[existing] : undefined;
    if (old !== undefined && old.end - old.gpa !== r.memorySize) {
      // KVM refuses to resize a slot in place (EINVAL): delete it and create it again.
      throw new KvmError("memslot", `Cannot resize memslot ${r.slot} from 0x${(old.end - old.gpa).toString(16)} to 0x${r.memorySize.toString(16)} bytes: delete it first`);
    }
    // Moving a slot or changing its flags keeps its memory unless another mapping is given.
    const host = r.userspaceAddr ?? old?.host ?? this.mmap(r.memorySize);
    if (host % PAGE || host + r.memorySize > this.brk) throw new KvmError("memslot", `Memslot ${r.slot}: userspaceAddr 0x${host.toString(16)} is not mapped memory of this VM`);
    const flags = r.flags ?? 0;
    const dirty = flags & KVM_MEM_LOG_DIRTY_PAGES ? new Uint8Array(Math.ceil(r.memorySize / PAGE / 8)) : null;
    const slot: MemSlot = { slot: r.slot, flags, gpa: r.guestPhysAddr, end, host, dirty };
    if (existing >= 0) this.slots[existing] = slot; else this.slots.push(slot);
    this.last = null;
    this.invalidateAll();
  }

  gpaToHost(gpa: number): number {
    const l = this.last;
    if (l !== null && gpa >= l.gpa && gpa < l.end) return l.host + (gpa - l.gpa);
    for (const s of this.slots) {
      if (gpa >= s.gpa && gpa < s.end) {
        this.last = s;
        return s.host + (gpa - s.gpa);
      }
    }
    return -1;
  }
  /**
   * Whether the memslot holding `gpa` is read-only. The processor asks before it lets a write reach
   * a page (a write TLB entry or the write slow path), so this is also where dirty logging marks
   * the page (KVM marks it when it makes the page writable in the EPT; over-marking on a read
   * fill is harmless to a dirty log).
   */
  isReadonly(gpa: number): boolean {
    for (const s of this.slots) {
      if (gpa >= s.gpa && gpa < s.end) {
        if (s.dirty !== null) markDirty(s, gpa, 1);
        return (s.flags & KVM_MEM_READONLY) !== 0;
      }
    }
    return false;
  }
  /**
   * KVM_GET_DIRTY_LOG: the pages of memslot `slot` written since the last call (one bit per page,
   * bit k of byte k>>3 for page k of the slot), and clear the log. The slot needs
   * KVM_MEM_LOG_DIRTY_PAGES.
   */
  getDirtyLog(slot: number): Uint8Array {
    const s = this.slots.find((x) => x.slot === slot);
    if (!s) throw new KvmError("memslot", `No memslot ${slot}`);
    if (s.dirty === null) throw new KvmError("memslot", `Memslot ${slot} does not log dirty pages (KVM_MEM_LOG_DIRTY_PAGES)`);
    const out = s.dirty.slice();
    s.dirty.fill(0);
    return out;
  }
  /** Mark guest-physical [gpa, gpa+len) written in the slots that log dirty pages. */
  private markWritten(gpa: number, len: number): void {
    for (const s of this.slots) {
      if (s.dirty !== null && gpa < s.end && gpa + len > s.gpa) {
        const a = Math.max(gpa, s.gpa), b = Math.min(gpa + len, s.end);
        markDirty(s, a, b - a);
      }
    }
  }
  /** The memslots, for inspection. */
  memslots(): { slot: number; guestPhysAddr: number; memorySize: number; flags: number; userspaceAddr: number }[] {
    return this.slots.map((s) => ({ slot: s.slot, guestPhysAddr: s.gpa, memorySize: s.end - s.gpa, flags: s.flags, userspaceAddr: s.host }));
  }

  /**
   * A view of guest memory, like the mmap'd userspace_addr a C VMM writes through. Writing code
   * through it behind a running guest's back needs `invalidateCode()`; `writeGuest` does that itself.
   * Views are invalidated when the memory grows (a new memslot): take a new one then.
   */
  memoryView(gpa: number, len: number): Uint8Array {
    const h = this.gpaToHost(gpa);
    if (h < 0 || this.gpaToHost(gpa + len - 1) !== h + len - 1) {
      throw new KvmError("memslot", `Guest range 0x${gpa.toString(16)}..0x${(gpa + len).toString(16)} is not covered by one memslot`);
    }
    // Userspace may write through the view: count its pages as dirty (a writable mapping).
    this.markWritten(gpa, len);
    return new Uint8Array(this.memory.buffer, h, len);
  }
  /** Copy bytes into guest-physical memory (across memslots) and drop decoded code there. */
  writeGuest(gpa: number, data: Uint8Array): void {
    const m = new Uint8Array(this.memory.buffer);
    this.markWritten(gpa, data.length);
    for (let k = 0; k < data.length;) {
      const h = this.gpaToHost(gpa + k);
      if (h < 0) throw new KvmError("memslot", `Guest-physical address 0x${(gpa + k).toString(16)} has no memslot`);
      const chunk = Math.min(data.length - k, PAGE - ((gpa + k) % PAGE));
      m.set(data.subarray(k, k + chunk), h);
      for (const v of this.vcpus) if (v.cpu.codePage[h >>> 12]) v.cpu.invalidateCodePage(h >>> 12);
      k += chunk;
    }
  }
  /** Copy bytes out of guest-physical memory; addresses without a memslot read as 0xff. */
  readGuest(gpa: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    const m = new Uint8Array(this.memory.buffer);
    for (let k = 0; k < len; k++) {
      const h = this.gpaToHost(gpa + k);
      out[k] = h < 0 ? 0xff : m[h];
    }
    return out;
  }
  /** Drop decoded code in every vCPU (after writes through a raw memory view). */
  invalidateCode(): void {
    this.invalidateAll();
  }
  private invalidateAll(): void {
    for (const v of this.vcpus) v.cpu.invalidateAllCode();
  }

  /** Attach a device to the in-kernel PIO bus (KVM_CREATE_PIT2-style in-kernel devices). */
  attachKernelDevice(dev: PioDevice): void {
    this.pioBus.attach(dev);
  }

  /**
   * KVM_CREATE_IRQCHIP: put the interrupt controller in the kernel, an 8259A pair on the in-kernel
   * PIO bus (ports 0x20–0x21, 0xA0–0xA1, 0x4D0–0x4D1). Its INT output is injected at VM entry;
   * HLT then waits in the kernel for an interrupt instead of exiting (see kvmEmulateHalt), and
   * KVM_INTERRUPT is refused, as KVM refuses it with an in-kernel PIC.
   * @throws KvmError("state") when the VM already has one, or has vCPUs (KVM: EEXIST, EINVAL)
   * @example
   * ```ts
   * import { Kvm } from "../mod.ts";
   *
   * const vm = (await Kvm.open()).createVm();
   * vm.createIrqchip();
   * vm.createPit2();
   * vm.irqLine(4, 1); // KVM_IRQ_LINE: raise IRQ4 (the COM1 line)
   * vm.irqLine(4, 0);
   * ```
   */
  createIrqchip(): void {
    this.tracer?.record("kvmVmIoctl", { ioctl: "KVM_CREATE_IRQCHIP" });
    if (this.pic !== null) throw new KvmError("state", "Cannot create the irqchip: this VM already has one");
    if (this.vcpus.length > 0) throw new KvmError("state", "Cannot create the irqchip after KVM_CREATE_VCPU: create it first");
    const pic = new I8259Pair();
    this.pioBus.attach(pic);
    this.pic = pic;
  }
  /**
   * KVM_CREATE_PIT2: an in-kernel 8254 at ports 0x40–0x43 and 0x61, channel 0 on IRQ0 of the
   * in-kernel PIC, counting in virtual time (`clock()`).
   * @throws KvmError("state") without an in-kernel irqchip, or when the VM already has a PIT
   */
  createPit2(): void {
    this.tracer?.record("kvmVmIoctl", { ioctl: "KVM_CREATE_PIT2" });
    const pic = this.pic;
    if (pic === null) throw new KvmError("state", "Cannot create the PIT: it needs the in-kernel irqchip (call createIrqchip first)");
    if (this.pit !== null) throw new KvmError("state", "Cannot create the PIT: this VM already has one");
    const pit = new I8254({ clock: () => this.clock(), irq0: (level) => pic.setIrq(0, level) });
    this.pioBus.attach(pit);
    this.pit = pit;
  }
  /**
   * KVM_IRQ_LINE: drive PIC input `irq` (0–15) to `level` (edge-triggered inputs latch a rising
   * edge; see I8259Pair). The interrupt reaches the guest at the next VM entry.
   * @throws KvmError("state") without an in-kernel irqchip; RangeError for an IRQ outside 0–15
   */
  irqLine(irq: number, level: number | boolean): void {
    const pic = this.pic;
    if (pic === null) throw new KvmError("state", `Cannot set IRQ line ${irq}: KVM_IRQ_LINE needs the in-kernel irqchip (call createIrqchip first)`);
    this.tracer?.record("kvmVmIoctl", { ioctl: "KVM_IRQ_LINE", irq, level: level ? 1 : 0 });
    pic.setIrq(irq, !!level);
  }
  /**
   * Run a device's timer in the kernel: at each VM entry, and while a halted vCPU waits, the
   * device's `update()` is called once virtual time reaches its `nextEventTime`, and a halted vCPU
   * sleeps to that time when the interrupt it raises on `irq` would wake it (the hrtimer a device
   * arms: in the kernel for KVM's own devices, through QEMU's timer thread and KVM_IRQ_LINE for a
   * userspace one such as the RTC; both reach the guest at the same instruction here).
   * @throws KvmError("state") without an in-kernel irqchip
   */
  addTimer(timer: KvmTimer): void {
    if (this.pic === null) throw new KvmError("state", `Cannot add the timer of "${timer.name}": it needs the in-kernel irqchip (call createIrqchip first)`);
    this.timers = [...(this.timers ?? []), timer];
  }
  /** Stop running a device's timer (see `addTimer`). */
  removeTimer(timer: KvmTimer): void {
    const rest = (this.timers ?? []).filter((t) => t !== timer);
    this.timers = rest.length ? rest : null;
  }

  /**
   * The VM's virtual clock in nanoseconds: the first vCPU's retired instructions plus the time it
   * spent halted (one instruction is 1 ns at the nominal 1 GHz TSC of kvmTimerInit). The in-kernel
   * PIT counts on it, so timer interrupts arrive at the same instruction in every run.
   */
  clock(): number {
    const v = this.vcpus[0];
    return v === undefined ? 0 : v.cpu.icount + v.idleNs;
  }

  /** KVM_CREATE_VCPU. */
  createVcpu(id: number): Vcpu {
    return kvmVmIoctl(this, "KVM_CREATE_VCPU", id);
  }
  /** KVM_SET_CPUID2 for every vCPU created afterwards (and the existing ones). */
  setCpuid(entries: CpuidEntry[]): void {
    this.cpuid = entries.map((e) => ({ ...e }));
  }
}

/** kvm_vm_ioctl(KVM_CREATE_VCPU) → kvm_vm_ioctl_create_vcpu. */
export function kvmVmIoctl(vm: Vm, ioctl: "KVM_CREATE_VCPU", id: number): Vcpu {
  vm.tracer?.record("kvmVmIoctl", { ioctl, id });
  return kvmVmIoctlCreateVcpu(vm, id);
}
function kvmVmIoctlCreateVcpu(vm: Vm, id: number): Vcpu {
  const t = vm.tracer;
  if (t) t.record("kvmVmIoctlCreateVcpu", { id });
  if (!Number.isInteger(id) || id < 0 || id >= vm.module.cpus * 64) throw new KvmError("vcpu", `Invalid vCPU id: ${id}`);
  if (vm.vcpus.some((v) => v.id === id)) throw new KvmError("vcpu", `vCPU ${id} already exists`);
  const area = vm.mmap(VCPU_AREA_BYTES);
  const vcpu = new Vcpu(vm, id, area);
  vm.vcpus.push(vcpu);
  kvmArchVcpuCreate(vcpu);
  return vcpu;
}

function markDirty(s: MemSlot, gpa: number, len: number): void {
  const d = s.dirty!;
  const last = Math.floor((gpa + Math.max(len, 1) - 1 - s.gpa) / PAGE);
  for (let p = Math.floor((gpa - s.gpa) / PAGE); p <= last; p++) d[p >>> 3] |= 1 << (p & 7);
}
