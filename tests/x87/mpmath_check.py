#!/usr/bin/env python3
"""mpmath_check.py - check vmxlab's x87 transcendentals against mpmath (shares no code with it).

For every vector of vectors.txt whose instruction is FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1,
FYL2X or FYL2XP1 with all exceptions masked, normal inputs and an input inside the SDM's domain,
compute the result with mpmath at 400 bits (the trigonometric ones reduced by the SDM's 66-bit pi,
vol. 1, 8.3.10), round it to 64 bits in the vector's rounding mode, and count how often the host
CPU and vmxlab (results dumped by `deno run -A tests/x87/dump_transcendentals.ts > mine.json`)
are that correctly rounded value.

Usage: python3 tests/x87/mpmath_check.py mine.json   (needs python3-mpmath)
"""
import json
import sys

import mpmath

mpmath.mp.prec = 400
PI66 = mpmath.mpf(0xC90FDAA22168C234C) * mpmath.mpf(2) ** -66


def f80(h):
    b = bytes.fromhex(h)
    sig = int.from_bytes(b[:8], "little")
    se = int.from_bytes(b[8:10], "little")
    return se >> 15, se & 0x7FFF, sig


def value(s, e, m):
    if e == 0 or e == 0x7FFF or not (m >> 63):
        return None
    v = mpmath.mpf(m) * mpmath.mpf(2) ** (e - 16383 - 63)
    return -v if s else v


def round64(x, rc):
    s = 1 if x < 0 else 0
    a = abs(x)
    e = int(mpmath.floor(mpmath.log(a, 2)))
    while mpmath.mpf(2) ** e > a:
        e -= 1
    while mpmath.mpf(2) ** (e + 1) <= a:
        e += 1
    q = a * mpmath.mpf(2) ** (63 - e)
    fl = int(mpmath.floor(q))
    fr = q - fl
    if rc == 0:
        up = fr > 0.5 or (fr == 0.5 and fl & 1)
    elif rc == 1:
        up = s == 1 and fr > 0
    elif rc == 2:
        up = s == 0 and fr > 0
    else:
        up = False
    m = fl + (1 if up else 0)
    if m >> 64:
        m >>= 1
        e += 1
    return s, e + 16383, m


def expected(op, x, y):
    if op in ("fe", "ff", "fb", "f2"):
        if abs(x) >= 2 ** 63:
            return None
        k = mpmath.nint(x / (PI66 / 2))
        r, q = x - k * (PI66 / 2), int(k) % 4
        s, c = mpmath.sin(r), mpmath.cos(r)
        sv, cv = [s, c, -s, -c][q], [c, -s, -c, s][q]
        return {"fe": [(0, sv)], "ff": [(0, cv)], "fb": [(1, sv), (0, cv)], "f2": [(1, sv / cv)]}[op]
    if op == "f0":
        return None if abs(x) > 1 else [(0, mpmath.power(2, x) - 1)]
    if y is None:
        return None
    if op == "f1":
        return None if x <= 0 else [(0, y * mpmath.log(x, 2))]
    if op == "f9":
        return None if abs(x) >= 1 - mpmath.sqrt(2) / 2 else [(0, y * mpmath.log(1 + x, 2))]
    if op == "f3":
        return [(0, mpmath.atan2(y, x))]
    return None


def main():
    mine = json.load(open(sys.argv[1]))
    lines = open(__file__.rsplit("/", 1)[0] + "/vectors.txt").read().split("\n")
    stats = {}
    for ln, msave in mine.items():
        lhs, rhs = lines[int(ln) - 1].split(" : ")
        insn, cw, _fl, a, b, _mem = lhs.split(" ")
        host = rhs.split(" ")[0]
        cw = int(cw, 16)
        if (cw & 0x3F) != 0x3F:
            continue
        x, y = value(*f80(a)), value(*f80(b))
        if x is None:
            continue
        exp = expected(insn[2:], x, y)
        for reg, v in exp or []:
            if v == 0:
                continue
            want = round64(v, (cw >> 10) & 3)
            st = stats.setdefault(insn[2:], [0, 0, 0])
            st[0] += 1
            st[1] += f80(host[56 + 20 * reg:76 + 20 * reg]) == want
            st[2] += f80(msave[56 + 20 * reg:76 + 20 * reg]) == want
    for op, (n, h, m) in sorted(stats.items()):
        print(f"D9 {op.upper()}: {n} results, host correctly rounded {h}, vmxlab {m}")


main()
