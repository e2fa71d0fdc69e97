/**
 * How the processor unwinds an instruction that cannot complete. These are internal control flow:
 * the run loop catches them and turns them into a guest event (a fault delivered through the
 * IVT/IDT) or a VM exit. They never reach code outside `runtime/cpu`.
 */
import * as stateMod from "./state.ts";

// Module-local bindings of the constant tables: V8 folds a module's own consts into optimised code
// but reads an imported binding from its module cell, with a TDZ check, at every use (DESIGN-NOTES.md).
const { VECTOR_NAMES } = stateMod;

/** A guest exception raised while executing an instruction (SDM 6.5: faults restart the instruction). */
export class CpuFault {
  constructor(
    readonly vector: number,
    readonly errorCode: number = -1,
  ) {}
  get hasErrorCode(): boolean {
    return this.errorCode >= 0;
  }
  toString(): string {
    return `${VECTOR_NAMES[this.vector] ?? `vector ${this.vector}`}${this.hasErrorCode ? `(0x${this.errorCode.toString(16)})` : ""}`;
  }
}

/** The instruction caused a VM exit; the exit information is already in the VMCS. */
export class VmExitSignal {
  static readonly instance = new VmExitSignal();
}
