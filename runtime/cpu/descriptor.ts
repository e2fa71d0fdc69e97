/**
 * Segment descriptor fields (SDM 3.4.5), shared by the processor's segment loads, far transfers and
 * task switches. A leaf module: the instruction semantics import it without importing the processor.
 */

/** A descriptor's base from its low and high dwords. */
export function descBase(lo: number, hi: number): number {
  return ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0;
}
/** A descriptor's limit in bytes, scaled by G. */
export function descLimit(lo: number, hi: number): number {
  const raw = (lo & 0xffff) | (hi & 0xf0000);
  return hi & 0x800000 ? ((raw << 12) | 0xfff) >>> 0 : raw;
}
/** Access rights in VMX format (type, S, DPL, P, AVL, L, D/B, G) from a descriptor's high dword. */
export function descAttr(hi: number): number {
  return ((hi >> 8) & 0xff) | ((hi >> 8) & 0xf000);
}
