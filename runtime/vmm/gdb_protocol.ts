/**
 * The GDB remote serial protocol's framing and the i386 register layout (GDB manual, appendix E
 * "GDB Remote Serial Protocol" and G.5 "i386 Features"): packets `$data#checksum` with `+`/`-`
 * acknowledgements, binary escapes (`}` then the byte XOR 0x20), the Ctrl-C byte, and the 32
 * registers of the `org.gnu.gdb.i386.core` feature in the order GDB numbers them.
 */

/** One thing the client sent: a packet's payload, an interrupt (0x03), or an acknowledgement. */
export type GdbInput = { kind: "packet"; data: string } | { kind: "interrupt" } | { kind: "ack"; ok: boolean } | { kind: "bad" };

/** The longest packet the stub accepts (it offers PacketSize=4000; binary writes may double that). */
export const MAX_PACKET = 0x4000;

/** Splits the client's byte stream into packets, interrupts and acknowledgements. */
export class PacketReader {
  private buf = "";

  /** Feed received bytes; returns what they completed, in order. */
  push(bytes: Uint8Array | string): GdbInput[] {
    this.buf += typeof bytes === "string" ? bytes : latin1(bytes);
    const out: GdbInput[] = [];
    for (;;) {
      if (this.buf.length === 0) return out;
      const c = this.buf[0];
      if (c === "\x03") { out.push({ kind: "interrupt" }); this.buf = this.buf.slice(1); continue; }
      if (c === "+" || c === "-") { out.push({ kind: "ack", ok: c === "+" }); this.buf = this.buf.slice(1); continue; }
      if (c !== "$") { this.buf = this.buf.slice(1); continue; } // noise between packets
      const end = this.buf.indexOf("#");
      if (end < 0 && this.buf.length > MAX_PACKET) {
        // A packet that never ends: drop it (answered with a `-`) rather than hold it all.
        this.buf = "";
        out.push({ kind: "bad" });
        return out;
      }
      if (end < 0 || this.buf.length < end + 3) return out;
      const body = this.buf.slice(1, end);
      const sum = parseInt(this.buf.slice(end + 1, end + 3), 16);
      this.buf = this.buf.slice(end + 3);
      out.push(checksum(body) === sum ? { kind: "packet", data: unescape(body) } : { kind: "bad" });
    }
  }
}

/** `$data#cs` with the payload's `$`, `#`, `}` and `*` escaped. */
export function framePacket(data: string): string {
  const body = data.replace(/[$#}*]/g, (ch) => "}" + String.fromCharCode(ch.charCodeAt(0) ^ 0x20));
  return `$${body}#${checksum(body).toString(16).padStart(2, "0")}`;
}

function checksum(s: string): number {
  let sum = 0;
  for (let i = 0; i < s.length; i++) sum = (sum + s.charCodeAt(i)) & 0xff;
  return sum;
}
function unescape(s: string): string {
  if (!s.includes("}")) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "}" && i + 1 < s.length) out += String.fromCharCode(s.charCodeAt(++i) ^ 0x20);
    else out += s[i];
  }
  return out;
}
function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

/** Bytes as lower-case hex, two digits each. */
export function toHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, "0");
  return s;
}
/** Hex pairs to bytes; null when malformed. */
export function fromHex(s: string): Uint8Array | null {
  if (s.length % 2 !== 0 || /[^0-9a-fA-F]/.test(s)) return null;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}
/** A 32-bit value as 8 hex digits, little-endian (the target's byte order). */
export function hexLe32(v: number): string {
  v >>>= 0;
  let s = "";
  for (let i = 0; i < 4; i++) s += ((v >>> (8 * i)) & 0xff).toString(16).padStart(2, "0");
  return s;
}

/**
 * The i386 core registers as GDB numbers them: 16 integer registers (32 bits), the eight x87
 * stack registers (80 bits) and the eight x87 control registers (32 bits). GDB's i386 target
 * refuses a description whose core feature lacks any of them.
 */
export const I386_REGS: readonly { name: string; bits: 32 | 80; type: string; group?: string }[] = [
  ...["eax", "ecx", "edx", "ebx"].map((name) => ({ name, bits: 32 as const, type: "int32" })),
  { name: "esp", bits: 32, type: "data_ptr" },
  { name: "ebp", bits: 32, type: "data_ptr" },
  { name: "esi", bits: 32, type: "int32" },
  { name: "edi", bits: 32, type: "int32" },
  { name: "eip", bits: 32, type: "code_ptr" },
  { name: "eflags", bits: 32, type: "i386_eflags" },
  ...["cs", "ss", "ds", "es", "fs", "gs"].map((name) => ({ name, bits: 32 as const, type: "int32" })),
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => ({ name: `st${i}`, bits: 80 as const, type: "i387_ext" })),
  ...["fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"].map((name) => ({ name, bits: 32 as const, type: "int", group: "float" })),
];

/** Byte offset of register `n` in the `g` packet's data. */
export function regOffset(n: number): number {
  let off = 0;
  for (let i = 0; i < n; i++) off += I386_REGS[i].bits / 8;
  return off;
}
export const G_BYTES = regOffset(I386_REGS.length);

/** The target description GDB reads with `qXfer:features:read:target.xml`. */
export function targetXml(): string {
  const flags = [
    [0, "CF"], [1, ""], [2, "PF"], [4, "AF"], [6, "ZF"], [7, "SF"], [8, "TF"], [9, "IF"], [10, "DF"], [11, "OF"],
    [14, "NT"], [16, "RF"], [17, "VM"], [18, "AC"], [19, "VIF"], [20, "VIP"], [21, "ID"],
  ] as const;
  const regs = I386_REGS.map((r, i) =>
    `<reg name="${r.name}" bitsize="${r.bits}" type="${r.type}" regnum="${i}"${r.group ? ` group="${r.group}"` : ""}/>`
  ).join("");
  return '<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">' +
    "<target><architecture>i386</architecture>" +
    '<feature name="org.gnu.gdb.i386.core">' +
    '<flags id="i386_eflags" size="4">' + flags.map(([b, n]) => `<field name="${n}" start="${b}" end="${b}"/>`).join("") + "</flags>" +
    regs + "</feature></target>";
}
