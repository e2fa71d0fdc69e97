/**
 * x86 disassembly for display (traces, debugger views), backed by the `capstone-wasm` package.
 * The WebAssembly module is loaded on first use, so importing this file costs nothing until then.
 * Intel syntax, as Capstone prints it (`rep movsd dword ptr es:[edi], dword ptr [esi]`).
 */
import type { Capstone } from "capstone-wasm";

/** One decoded instruction. */
export interface DisasmInsn {
  /** Address of the first byte (the `address` argument plus the offset into the input). */
  address: number;
  /** The instruction's bytes. */
  bytes: number[];
  /** Mnemonic including prefixes, e.g. "rep movsd". */
  mnemonic: string;
  /** Operands, "" when there are none. */
  operands: string;
  /** `mnemonic` and `operands` joined by a space, or the mnemonic alone. */
  text: string;
}

/** The code size to decode in: 16-bit (real mode), 32-bit or 64-bit. */
export type DisasmBits = 16 | 32 | 64;

/**
 * The most input bytes passed to Capstone in one call: capstone-wasm copies the input onto a small
 * WebAssembly stack and corrupts its memory on inputs over 32 KiB. Longer inputs are truncated.
 */
export const MAX_DISASM_INPUT = 32 * 1024;

/** The longest x86 instruction, used to bound the input when a `count` is given. */
const MAX_INSN_LENGTH = 15;

type CapstoneModule = typeof import("capstone-wasm");

let loading: Promise<void> | undefined;
let capstone: CapstoneModule | undefined;
const handles = new Map<DisasmBits, Capstone>();

/**
 * Loads and instantiates Capstone once; later calls return the same promise. A failed load is not
 * cached, so it can be retried.
 */
export function loadDisassembler(): Promise<void> {
  if (!loading) {
    loading = (async () => {
      const mod = await import("capstone-wasm");
      await mod.loadCapstone();
      capstone = mod;
    })();
    loading.catch(() => {
      loading = undefined;
    });
  }
  return loading;
}

/** True once `loadDisassembler()` (or a `disassemble()` call) has finished loading Capstone. */
export function disassemblerLoaded(): boolean {
  return capstone !== undefined;
}

/**
 * Disassembles `bytes` as if placed at `address`, stopping after `count` instructions (all of them
 * when omitted), at the end of the input, or at the first bytes that do not decode. At most
 * `MAX_DISASM_INPUT` bytes (and, with a `count`, at most `count * 15`) are looked at.
 * @throws RangeError for an address that is not a non-negative safe integer, bits other than
 *   16/32/64, or a count that is not a non-negative integer
 */
export async function disassemble(
  bytes: Uint8Array,
  address: number,
  bits: DisasmBits,
  count?: number,
): Promise<DisasmInsn[]> {
  checkArguments(address, bits, count);
  await loadDisassembler();
  return disassembleSync(bytes, address, bits, count);
}

/**
 * The synchronous form of `disassemble()`, for callers that decode one instruction at a time (the
 * tracer). Usable once `await loadDisassembler()` has completed.
 * @throws Error when Capstone is not loaded yet; RangeError as `disassemble()`
 */
export function disassembleSync(
  bytes: Uint8Array,
  address: number,
  bits: DisasmBits,
  count?: number,
): DisasmInsn[] {
  checkArguments(address, bits, count);
  if (!capstone) throw new Error("Disassembler is not loaded: await loadDisassembler() first");
  let length = Math.min(bytes.length, MAX_DISASM_INPUT);
  if (count !== undefined) length = Math.min(length, count * MAX_INSN_LENGTH);
  if (length === 0) return [];
  const cs = handle(capstone, bits);
  let decoded;
  try {
    decoded = cs.disasm(bytes.subarray(0, length), { address, count: count ?? 0 });
  } catch (e) {
    // capstone-wasm throws when nothing decodes; Capstone's error number stays OK in that case.
    if (cs.errNo() === capstone.Const.CS_ERR_OK) return [];
    throw e;
  }
  return decoded.map((insn) => ({
    address: Number(insn.address),
    bytes: Array.from(insn.bytes),
    mnemonic: insn.mnemonic,
    operands: insn.opStr,
    text: insn.opStr ? `${insn.mnemonic} ${insn.opStr}` : insn.mnemonic,
  }));
}

function checkArguments(address: number, bits: number, count: number | undefined): void {
  if (!Number.isSafeInteger(address) || address < 0) {
    throw new RangeError(`Invalid disassembly address: ${address} (expected a non-negative safe integer)`);
  }
  if (bits !== 16 && bits !== 32 && bits !== 64) {
    throw new RangeError(`Invalid disassembly mode: ${bits} bits (expected 16, 32 or 64)`);
  }
  if (count !== undefined && (!Number.isInteger(count) || count < 0)) {
    throw new RangeError(`Invalid instruction count: ${count} (expected a non-negative integer)`);
  }
}

function handle(mod: CapstoneModule, bits: DisasmBits): Capstone {
  let cs = handles.get(bits);
  if (!cs) {
    const mode = bits === 16 ? mod.Const.CS_MODE_16 : bits === 32 ? mod.Const.CS_MODE_32 : mod.Const.CS_MODE_64;
    cs = new mod.Capstone(mod.Const.CS_ARCH_X86, mode);
    handles.set(bits, cs);
  }
  return cs;
}
