/**
 * The MMX, SSE, SSE2 and SSE3 rows of the two-byte opcode map (SDM vol. 2, table A-3), with their
 * mandatory prefixes: one row per (opcode, prefix), in the SDM's operand notation (V/W/U for XMM
 * registers and XMM-or-memory operands, P/Q/N for the MMX ones). decoder.ts turns the rows into
 * entries; a row's semantic name is checked against `semantics` (ops.ts) at compile time.
 */
import type { SemName } from "../ops.ts";
import { Cvt } from "./fp_ops.ts";
import { Pi, PI_XMM } from "./int_ops.ts";
import { Mv } from "./move_ops.ts";

/** Mandatory-prefix columns: none, 66, F3, F2 (SDM vol. 2, 2.1.2 and A.3). */
export const PFX_NONE = 0, PFX_66 = 1, PFX_F3 = 2, PFX_F2 = 3;

export interface SseRow {
  op: number;
  pfx: number;
  name: string;
  spec: string;
  sem: SemName;
  sub: number;
  /** Group members (0F 71-73, 0F AE): ModRM.reg; -1 for a plain opcode. */
  reg?: number;
  /** The member is for mod = 3 only (the fences); else memory only when set to false. */
  mod3?: boolean;
}

const rows: SseRow[] = [];
function row(op: number, pfx: number, name: string, spec: string, sem: SemName, sub = 0, extra: Partial<SseRow> = {}): void {
  rows.push({ op, pfx, name, spec, sem, sub, ...extra });
}

// Moves
row(0x10, PFX_NONE, "movups", "Vps,Wps", "sseMov", Mv.LOADU);
row(0x10, PFX_66, "movupd", "Vpd,Wpd", "sseMov", Mv.LOADU);
row(0x10, PFX_F3, "movss", "Vss,Wss", "sseMov", Mv.MOVSS_L);
row(0x10, PFX_F2, "movsd", "Vsd,Wsd", "sseMov", Mv.MOVSD_L);
row(0x11, PFX_NONE, "movups", "Wps,Vps", "sseMov", Mv.STOREU);
row(0x11, PFX_66, "movupd", "Wpd,Vpd", "sseMov", Mv.STOREU);
row(0x11, PFX_F3, "movss", "Wss,Vss", "sseMov", Mv.MOVSS_S);
row(0x11, PFX_F2, "movsd", "Wsd,Vsd", "sseMov", Mv.MOVSD_S);
row(0x12, PFX_NONE, "movlps", "Vq,Wq", "sseMov", Mv.MOVLPS_L); // register form: MOVHLPS
row(0x12, PFX_66, "movlpd", "Vq,Mq", "sseMov", Mv.MOVLPS_L);
row(0x12, PFX_F3, "movsldup", "Vdq,Wdq", "sseMov", Mv.MOVSLDUP);
row(0x12, PFX_F2, "movddup", "Vdq,Wq", "sseMov", Mv.MOVDDUP);
row(0x13, PFX_NONE, "movlps", "Mq,Vq", "sseMov", Mv.MOVLPS_S);
row(0x13, PFX_66, "movlpd", "Mq,Vq", "sseMov", Mv.MOVLPS_S);
row(0x14, PFX_NONE, "unpcklps", "Vps,Wps", "pint", Pi.PUNPCKLDQ | PI_XMM);
row(0x14, PFX_66, "unpcklpd", "Vpd,Wpd", "pint", Pi.PUNPCKLQDQ | PI_XMM);
row(0x15, PFX_NONE, "unpckhps", "Vps,Wps", "pint", Pi.PUNPCKHDQ | PI_XMM);
row(0x15, PFX_66, "unpckhpd", "Vpd,Wpd", "pint", Pi.PUNPCKHQDQ | PI_XMM);
row(0x16, PFX_NONE, "movhps", "Vq,Wq", "sseMov", Mv.MOVHPS_L); // register form: MOVLHPS
row(0x16, PFX_66, "movhpd", "Vq,Mq", "sseMov", Mv.MOVHPS_L);
row(0x16, PFX_F3, "movshdup", "Vdq,Wdq", "sseMov", Mv.MOVSHDUP);
row(0x17, PFX_NONE, "movhps", "Mq,Vq", "sseMov", Mv.MOVHPS_S);
row(0x17, PFX_66, "movhpd", "Mq,Vq", "sseMov", Mv.MOVHPS_S);
row(0x28, PFX_NONE, "movaps", "Vps,Wps", "sseMov", Mv.LOADA);
row(0x28, PFX_66, "movapd", "Vpd,Wpd", "sseMov", Mv.LOADA);
row(0x29, PFX_NONE, "movaps", "Wps,Vps", "sseMov", Mv.STOREA);
row(0x29, PFX_66, "movapd", "Wpd,Vpd", "sseMov", Mv.STOREA);
row(0x2b, PFX_NONE, "movntps", "Mps,Vps", "sseMov", Mv.STOREA);
row(0x2b, PFX_66, "movntpd", "Mpd,Vpd", "sseMov", Mv.STOREA);
row(0x77, PFX_NONE, "emms", "", "emms");
row(0x6e, PFX_NONE, "movd", "Pq,Ed", "mmxMov", 0);
row(0x6e, PFX_66, "movd", "Vdq,Ed", "sseMov", Mv.MOVD_L);
row(0x6f, PFX_NONE, "movq", "Pq,Qq", "mmxMov", 2);
row(0x6f, PFX_66, "movdqa", "Vdq,Wdq", "sseMov", Mv.LOADA);
row(0x6f, PFX_F3, "movdqu", "Vdq,Wdq", "sseMov", Mv.LOADU);
row(0x7e, PFX_NONE, "movd", "Ed,Pq", "mmxMov", 1);
row(0x7e, PFX_66, "movd", "Ed,Vdq", "sseMov", Mv.MOVD_S);
row(0x7e, PFX_F3, "movq", "Vq,Wq", "sseMov", Mv.MOVQ_L);
row(0x7f, PFX_NONE, "movq", "Qq,Pq", "mmxMov", 3);
row(0x7f, PFX_66, "movdqa", "Wdq,Vdq", "sseMov", Mv.STOREA);
row(0x7f, PFX_F3, "movdqu", "Wdq,Vdq", "sseMov", Mv.STOREU);
row(0xd6, PFX_66, "movq", "Wq,Vq", "sseMov", Mv.MOVQ_S);
row(0xd6, PFX_F3, "movq2dq", "Vdq,Nq", "sseMov", Mv.MOVQ2DQ);
row(0xd6, PFX_F2, "movdq2q", "Pq,Uq", "sseMov", Mv.MOVDQ2Q);
row(0xe7, PFX_NONE, "movntq", "Mq,Pq", "mmxMov", 4);
row(0xe7, PFX_66, "movntdq", "Mdq,Vdq", "sseMov", Mv.STOREA);
row(0xf0, PFX_F2, "lddqu", "Vdq,Mdq", "sseMov", Mv.LOADU);
row(0xc3, PFX_NONE, "movnti", "Md,Gd", "mov");
row(0x50, PFX_NONE, "movmskps", "Gd,Ups", "movmskp", 0);
row(0x50, PFX_66, "movmskpd", "Gd,Upd", "movmskp", 1);
row(0xc6, PFX_NONE, "shufps", "Vps,Wps,Ib", "shufp", 0);
row(0xc6, PFX_66, "shufpd", "Vpd,Wpd,Ib", "shufp", 1);
row(0xf7, PFX_NONE, "maskmovq", "Pq,Nq", "maskmov", 0);
row(0xf7, PFX_66, "maskmovdqu", "Vdq,Udq", "maskmov", 1);

// Floating-point arithmetic: sub = op * 4 + form (ps, pd, ss, sd)
const FORMS = [["ps", PFX_NONE], ["pd", PFX_66], ["ss", PFX_F3], ["sd", PFX_F2]] as const;
const ARITH: [number, string, number, boolean][] = [
  [0x58, "add", 0, true], [0x59, "mul", 1, true], [0x5c, "sub", 2, true], [0x5d, "min", 3, true],
  [0x5e, "div", 4, true], [0x5f, "max", 5, true], [0x51, "sqrt", 6, true], [0x53, "rcp", 7, false], [0x52, "rsqrt", 8, false],
];
for (const [opc, name, op, all] of ARITH) {
  FORMS.forEach(([f, pfx], form) => {
    if (!all && (form === 1 || form === 3)) return; // RCP and RSQRT exist in single precision only
    row(opc, pfx, name + f, `V${f},W${f}`, "sseArith", op * 4 + form);
  });
}
row(0xd0, PFX_66, "addsubpd", "Vpd,Wpd", "sseArith", 9 * 4 + 1);
row(0xd0, PFX_F2, "addsubps", "Vps,Wps", "sseArith", 9 * 4 + 0);
row(0x7c, PFX_66, "haddpd", "Vpd,Wpd", "sseArith", 10 * 4 + 1);
row(0x7c, PFX_F2, "haddps", "Vps,Wps", "sseArith", 10 * 4 + 0);
row(0x7d, PFX_66, "hsubpd", "Vpd,Wpd", "sseArith", 11 * 4 + 1);
row(0x7d, PFX_F2, "hsubps", "Vps,Wps", "sseArith", 11 * 4 + 0);
FORMS.forEach(([f, pfx], form) => row(0xc2, pfx, "cmp" + f, `V${f},W${f},Ib`, "sseCmp", form));
row(0x2e, PFX_NONE, "ucomiss", "Vss,Wss", "sseComi", 0);
row(0x2e, PFX_66, "ucomisd", "Vsd,Wsd", "sseComi", 2);
row(0x2f, PFX_NONE, "comiss", "Vss,Wss", "sseComi", 1);
row(0x2f, PFX_66, "comisd", "Vsd,Wsd", "sseComi", 3);
// Bitwise logic on floating-point vectors: the integer definitions (same bits, same alignment rule).
for (const [opc, name, op] of [[0x54, "and", Pi.PAND], [0x55, "andn", Pi.PANDN], [0x56, "or", Pi.POR], [0x57, "xor", Pi.PXOR]] as const) {
  row(opc, PFX_NONE, name + "ps", "Vps,Wps", "pint", op | PI_XMM);
  row(opc, PFX_66, name + "pd", "Vpd,Wpd", "pint", op | PI_XMM);
}

// Conversions
row(0x2a, PFX_NONE, "cvtpi2ps", "Vps,Qq", "sseCvt", Cvt.PI2PS);
row(0x2a, PFX_66, "cvtpi2pd", "Vpd,Qq", "sseCvt", Cvt.PI2PD);
row(0x2a, PFX_F3, "cvtsi2ss", "Vss,Ed", "sseCvt", Cvt.SI2SS);
row(0x2a, PFX_F2, "cvtsi2sd", "Vsd,Ed", "sseCvt", Cvt.SI2SD);
row(0x2c, PFX_NONE, "cvttps2pi", "Pq,Wq", "sseCvt", Cvt.TPS2PI);
row(0x2c, PFX_66, "cvttpd2pi", "Pq,Wpd", "sseCvt", Cvt.TPD2PI);
row(0x2c, PFX_F3, "cvttss2si", "Gd,Wss", "sseCvt", Cvt.TSS2SI);
row(0x2c, PFX_F2, "cvttsd2si", "Gd,Wsd", "sseCvt", Cvt.TSD2SI);
row(0x2d, PFX_NONE, "cvtps2pi", "Pq,Wq", "sseCvt", Cvt.PS2PI);
row(0x2d, PFX_66, "cvtpd2pi", "Pq,Wpd", "sseCvt", Cvt.PD2PI);
row(0x2d, PFX_F3, "cvtss2si", "Gd,Wss", "sseCvt", Cvt.SS2SI);
row(0x2d, PFX_F2, "cvtsd2si", "Gd,Wsd", "sseCvt", Cvt.SD2SI);
row(0x5a, PFX_NONE, "cvtps2pd", "Vpd,Wq", "sseCvt", Cvt.PS2PD);
row(0x5a, PFX_66, "cvtpd2ps", "Vps,Wpd", "sseCvt", Cvt.PD2PS);
row(0x5a, PFX_F3, "cvtss2sd", "Vsd,Wss", "sseCvt", Cvt.SS2SD);
row(0x5a, PFX_F2, "cvtsd2ss", "Vss,Wsd", "sseCvt", Cvt.SD2SS);
row(0x5b, PFX_NONE, "cvtdq2ps", "Vps,Wdq", "sseCvt", Cvt.DQ2PS);
row(0x5b, PFX_66, "cvtps2dq", "Vdq,Wps", "sseCvt", Cvt.PS2DQ);
row(0x5b, PFX_F3, "cvttps2dq", "Vdq,Wps", "sseCvt", Cvt.TPS2DQ);
row(0xe6, PFX_66, "cvttpd2dq", "Vdq,Wpd", "sseCvt", Cvt.TPD2DQ);
row(0xe6, PFX_F3, "cvtdq2pd", "Vpd,Wq", "sseCvt", Cvt.DQ2PD);
row(0xe6, PFX_F2, "cvtpd2dq", "Vdq,Wpd", "sseCvt", Cvt.PD2DQ);

// Integer instructions, MMX (no prefix) and XMM (66) forms
const INT: [number, string, number][] = [
  [0x60, "punpcklbw", Pi.PUNPCKLBW], [0x61, "punpcklwd", Pi.PUNPCKLWD], [0x62, "punpckldq", Pi.PUNPCKLDQ],
  [0x63, "packsswb", Pi.PACKSSWB], [0x64, "pcmpgtb", Pi.PCMPGTB], [0x65, "pcmpgtw", Pi.PCMPGTW],
  [0x66, "pcmpgtd", Pi.PCMPGTD], [0x67, "packuswb", Pi.PACKUSWB], [0x68, "punpckhbw", Pi.PUNPCKHBW],
  [0x69, "punpckhwd", Pi.PUNPCKHWD], [0x6a, "punpckhdq", Pi.PUNPCKHDQ], [0x6b, "packssdw", Pi.PACKSSDW],
  [0x74, "pcmpeqb", Pi.PCMPEQB], [0x75, "pcmpeqw", Pi.PCMPEQW], [0x76, "pcmpeqd", Pi.PCMPEQD],
  [0xd1, "psrlw", Pi.PSRLW], [0xd2, "psrld", Pi.PSRLD], [0xd3, "psrlq", Pi.PSRLQ], [0xd4, "paddq", Pi.PADDQ],
  [0xd5, "pmullw", Pi.PMULLW], [0xd8, "psubusb", Pi.PSUBUSB], [0xd9, "psubusw", Pi.PSUBUSW],
  [0xda, "pminub", Pi.PMINUB], [0xdb, "pand", Pi.PAND], [0xdc, "paddusb", Pi.PADDUSB], [0xdd, "paddusw", Pi.PADDUSW],
  [0xde, "pmaxub", Pi.PMAXUB], [0xdf, "pandn", Pi.PANDN], [0xe0, "pavgb", Pi.PAVGB], [0xe1, "psraw", Pi.PSRAW],
  [0xe2, "psrad", Pi.PSRAD], [0xe3, "pavgw", Pi.PAVGW], [0xe4, "pmulhuw", Pi.PMULHUW], [0xe5, "pmulhw", Pi.PMULHW],
  [0xe8, "psubsb", Pi.PSUBSB], [0xe9, "psubsw", Pi.PSUBSW], [0xea, "pminsw", Pi.PMINSW], [0xeb, "por", Pi.POR],
  [0xec, "paddsb", Pi.PADDSB], [0xed, "paddsw", Pi.PADDSW], [0xee, "pmaxsw", Pi.PMAXSW], [0xef, "pxor", Pi.PXOR],
  [0xf1, "psllw", Pi.PSLLW], [0xf2, "pslld", Pi.PSLLD], [0xf3, "psllq", Pi.PSLLQ], [0xf4, "pmuludq", Pi.PMULUDQ],
  [0xf5, "pmaddwd", Pi.PMADDWD], [0xf6, "psadbw", Pi.PSADBW], [0xf8, "psubb", Pi.PSUBB], [0xf9, "psubw", Pi.PSUBW],
  [0xfa, "psubd", Pi.PSUBD], [0xfb, "psubq", Pi.PSUBQ], [0xfc, "paddb", Pi.PADDB], [0xfd, "paddw", Pi.PADDW],
  [0xfe, "paddd", Pi.PADDD],
];
for (const [opc, name, op] of INT) {
  row(opc, PFX_NONE, name, "Pq,Qq", "pint", op);
  row(opc, PFX_66, name, "Vdq,Wdq", "pint", op | PI_XMM);
}
row(0x6c, PFX_66, "punpcklqdq", "Vdq,Wdq", "pint", Pi.PUNPCKLQDQ | PI_XMM);
row(0x6d, PFX_66, "punpckhqdq", "Vdq,Wdq", "pint", Pi.PUNPCKHQDQ | PI_XMM);
row(0x70, PFX_NONE, "pshufw", "Pq,Qq,Ib", "pshuf", 0);
row(0x70, PFX_66, "pshufd", "Vdq,Wdq,Ib", "pshuf", 1);
row(0x70, PFX_F3, "pshufhw", "Vdq,Wdq,Ib", "pshuf", 2);
row(0x70, PFX_F2, "pshuflw", "Vdq,Wdq,Ib", "pshuf", 3);
row(0xc4, PFX_NONE, "pinsrw", "Pq,Ew,Ib", "pinsrw", 0);
row(0xc4, PFX_66, "pinsrw", "Vdq,Ew,Ib", "pinsrw", 1);
row(0xc5, PFX_NONE, "pextrw", "Gd,Nq,Ib", "pextrw", 0);
row(0xc5, PFX_66, "pextrw", "Gd,Udq,Ib", "pextrw", 1);
row(0xd7, PFX_NONE, "pmovmskb", "Gd,Nq", "pmovmskb", 0);
row(0xd7, PFX_66, "pmovmskb", "Gd,Udq", "pmovmskb", 1);
// Shifts by an immediate: groups 12-14 (0F 71-73), by ModRM.reg
const SHIFT_IMM: [number, number, string, number][] = [
  [0x71, 2, "psrlw", Pi.PSRLW], [0x71, 4, "psraw", Pi.PSRAW], [0x71, 6, "psllw", Pi.PSLLW],
  [0x72, 2, "psrld", Pi.PSRLD], [0x72, 4, "psrad", Pi.PSRAD], [0x72, 6, "pslld", Pi.PSLLD],
  [0x73, 2, "psrlq", Pi.PSRLQ], [0x73, 6, "psllq", Pi.PSLLQ],
];
for (const [opc, reg, name, op] of SHIFT_IMM) {
  row(opc, PFX_NONE, name, "Nq,Ib", "pshiftImm", op, { reg });
  row(opc, PFX_66, name, "Udq,Ib", "pshiftImm", op | PI_XMM, { reg });
}
row(0x73, PFX_66, "psrldq", "Udq,Ib", "pshiftImm", Pi.PSRLDQ | PI_XMM, { reg: 3 });
row(0x73, PFX_66, "pslldq", "Udq,Ib", "pshiftImm", Pi.PSLLDQ | PI_XMM, { reg: 7 });

// Group 15 (0F AE): state and ordering
row(0xae, PFX_NONE, "fxsave", "M", "fxsave", 0, { reg: 0, mod3: false });
row(0xae, PFX_NONE, "fxrstor", "M", "fxrstor", 0, { reg: 1, mod3: false });
row(0xae, PFX_NONE, "ldmxcsr", "Md", "ldmxcsr", 0, { reg: 2, mod3: false });
row(0xae, PFX_NONE, "stmxcsr", "Md", "stmxcsr", 0, { reg: 3, mod3: false });
row(0xae, PFX_NONE, "clflush", "Mb", "clflush", 0, { reg: 7, mod3: false });
row(0xae, PFX_NONE, "lfence", "", "fence", 0, { reg: 5, mod3: true });
row(0xae, PFX_NONE, "mfence", "", "fence", 0, { reg: 6, mod3: true });
row(0xae, PFX_NONE, "sfence", "", "fence", 0, { reg: 7, mod3: true });

/** Every row, in table order. */
export const SSE_ROWS: readonly SseRow[] = rows;
