/**
 * The GDB stub spoken to as GDB would, packet by packet over TCP (no gdb needed: tests/gdb_test.ts
 * drives a real one). Every test runs under the interpreter and the JIT.
 */
import { test } from "node:test";
import { connect, type Socket } from "node:net";
import { assert, assertEquals, assertMatch } from "../../tests/assert.ts";
import { Machine } from "./machine.ts";
import { GdbStub } from "./gdbstub.ts";
import { framePacket, PacketReader } from "./gdb_protocol.ts";
import { loadJit } from "./tiering.ts";

/** A client that sends packets and waits for each answer (acks on, as GDB starts). */
class Client {
  private readonly reader = new PacketReader();
  private readonly queue: string[] = [];
  private waiter: ((p: string) => void) | null = null;
  private constructor(private readonly sock: Socket) {
    sock.on("data", (d: Uint8Array) => {
      for (const x of this.reader.push(d)) {
        if (x.kind !== "packet") continue;
        sock.write("+");
        if (this.waiter) { const w = this.waiter; this.waiter = null; w(x.data); } else this.queue.push(x.data);
      }
    });
  }
  static open(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = connect(port, "127.0.0.1", () => resolve(new Client(s)));
      s.once("error", reject);
    });
  }
  next(): Promise<string> {
    const q = this.queue.shift();
    if (q !== undefined) return Promise.resolve(q);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("no answer from the stub in 20 s")), 20_000);
      this.waiter = (p) => { clearTimeout(t); resolve(p); };
    });
  }
  send(p: string): Promise<string> {
    this.sock.write(framePacket(p));
    return this.next();
  }
  raw(s: string): void {
    this.sock.write(s);
  }
  close(): void {
    this.sock.destroy();
  }
}

const le32 = (hex: string) => parseInt(hex.match(/../g)!.reverse().join(""), 16);

async function session(code: number[], engine: "interp" | "jit", opts: { mode?: "protected" | "paged"; setup?: (m: Machine) => void } = {}) {
  if (engine === "jit") await loadJit();
  const m = new Machine({ mode: opts.mode ?? "protected", engine });
  m.load(new Uint8Array(code), { format: "raw" });
  opts.setup?.(m);
  const stub = new GdbStub(m, { wait: true });
  const { port } = await stub.listen(0);
  const c = await Client.open(port);
  return { m, stub, c };
}

// 0x100000: mov ecx,5; l: inc eax; dec ecx; jnz l (0x100005); mov [0x2000],eax; hlt
const LOOP = [0xb9, 5, 0, 0, 0, 0x40, 0x49, 0x75, 0xfc, 0xa3, 0x00, 0x20, 0, 0, 0xf4];

for (const engine of ["interp", "jit"] as const) {
  test(`gdb stub (${engine}): qSupported, the i386 target description, registers and a breakpoint that leaves guest memory alone`, async () => {
    const { m, stub, c } = await session(LOOP, engine);
    try {
      assertMatch(await c.send("qSupported:multiprocess+;swbreak+;xmlRegisters=i386"), /qXfer:features:read\+/);
      const xml = await c.send("qXfer:features:read:target.xml:0,fff");
      assert(xml.startsWith("l"), "the whole description in one reply");
      assert(xml.includes('<feature name="org.gnu.gdb.i386.core">') && xml.includes('name="st7" bitsize="80"') && xml.includes('name="fop"'));
      assertEquals(await c.send("?"), "S05");
      const g = await c.send("g");
      assertEquals(g.length, (16 * 4 + 8 * 10 + 8 * 4) * 2);
      assertEquals(le32(g.slice(8 * 8, 8 * 8 + 8)), 0x100000, "eip, register 8");
      assertEquals(le32(g.slice(10 * 8, 10 * 8 + 8)), 0x08, "cs, register 10");
      // A breakpoint on the loop's `dec ecx`, hit once per iteration.
      const before = [...m.vm.readGuest(0x100006, 1)];
      assertEquals(await c.send("Z0,100006,1"), "OK");
      assertEquals(await c.send("c"), "T05swbreak:;thread:01;");
      assertEquals(le32(await c.send("p8")), 0x100006);
      assertEquals(le32(await c.send("p0")), 1, "eax after the first inc");
      assertEquals([...m.vm.readGuest(0x100006, 1)], before, "guest memory holds no int3");
      assertEquals(await c.send("m100006,1"), "49", "memory reads show the guest's byte");
      assertEquals(await c.send("c"), "T05swbreak:;thread:01;");
      assertEquals(le32(await c.send("p0")), 2, "the breakpoint is left, and hit again on the next iteration");
      // A single step runs one instruction.
      assertEquals(await c.send("s"), "T05thread:01;");
      assertEquals(le32(await c.send("p8")), 0x100007);
      assertEquals(le32(await c.send("p1")), 3, "ecx");
      // Registers written by P are the guest's.
      assertEquals(await c.send("P1=01000000"), "OK");
      assertEquals(await c.send("z0,100006,1"), "OK");
      // A write watchpoint on the dword the program stores: the stop follows the store.
      assertEquals(await c.send("Z2,2000,4"), "OK");
      assertEquals(await c.send("c"), "T05watch:2000;thread:01;");
      assertEquals(le32(await c.send("p8")), 0x10000e, "stopped after the store, at the hlt");
      assertEquals(await c.send("m2000,4"), "03000000");
      assertEquals(await c.send("Z3,2000,4"), "", "read watchpoints are not offered");
      assertEquals(await c.send("c"), "W00", "the guest halts: its end");
      c.close();
      const r = await stub.finished;
      assertEquals(r.exit.reason, "hlt");
      // mov, inc | dec, jnz, inc | dec (the step) | jnz, inc, dec, jnz, mov | hlt
      assertEquals(r.instructions, 2 + 3 + 1 + 5 + 1, "the instructions the guest ran, slices' ends left out");
      assertEquals(m.vcpu.getRegs().rax, 3);
    } finally {
      c.close();
      stub.close();
    }
  });

  test(`gdb stub (${engine}): Ctrl-C stops a spinning guest; memory is read through the guest's page tables; k ends the session`, async () => {
    // jmp $ at 0x100000; a page table maps linear 0x400000 onto guest-physical 0x200000.
    const { m, stub, c } = await session([0xeb, 0xfe], engine, {
      mode: "paged",
      setup: (mm) => {
        const pdBase = mm.vcpu.getSregs().cr3;
        const pt = 0x300000;
        mm.vm.writeGuest(pdBase + 4, new Uint8Array([0x07, 0x00, 0x30, 0x00])); // PDE 1 → page table at 0x300000
        mm.vm.writeGuest(pt, new Uint8Array([0x07, 0x00, 0x20, 0x00])); // PTE 0 → 0x200000
        mm.vm.writeGuest(0x200000, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
      },
    });
    try {
      assertEquals(await c.send("m400000,4"), "deadbeef", "linear 0x400000 is guest-physical 0x200000");
      assertEquals(await c.send("m401000,4"), "E14", "an unmapped page");
      assertEquals(await c.send("M400002,2:0102"), "OK");
      assertEquals([...m.vm.readGuest(0x200000, 4)], [0xde, 0xad, 1, 2]);
      const stopped = c.send("c");
      await new Promise((r) => setTimeout(r, 200));
      c.raw("\x03");
      assertEquals(await stopped, "T02thread:01;");
      assertEquals(le32(await c.send("p8")), 0x100000);
      c.raw(framePacket("k"));
      const r = await stub.finished;
      assertEquals(r.exit, { reason: "stopped", detail: "killed by gdb" });
      assert(r.instructions > 1000, `the guest ran (${r.instructions} instructions)`);
    } finally {
      c.close();
      stub.close();
    }
  });
}

test("gdb stub: after D (detach) the guest runs on without its breakpoints to its end", async () => {
  const { m, stub, c } = await session(LOOP, "interp");
  try {
    assertEquals(await c.send("Z0,100006,1"), "OK");
    assertEquals(await c.send("c"), "T05swbreak:;thread:01;");
    assertEquals(await c.send("D"), "OK");
    const r = await stub.finished;
    assertEquals(r.exit.reason, "hlt");
    assertEquals(r.instructions, 1 + 5 * 3 + 2, "every instruction once: the breakpoint stopped it only once");
    assertEquals(m.vcpu.getRegs().rax, 5);
    assertEquals(m.vcpu.cpu.onInsn, null, "the per-instruction check is gone");
  } finally {
    c.close();
    stub.close();
  }
});

test("gdb stub: a guest that runs on when no debugger waits for it, and ends the session when it halts", async () => {
  const m = new Machine({ mode: "protected" });
  m.load(new Uint8Array(LOOP), { format: "raw" });
  const stub = new GdbStub(m);
  await stub.listen(0);
  const r = await stub.finished;
  assertEquals(r.exit.reason, "hlt");
  assertEquals(r.instructions, 1 + 5 * 3 + 2);
});

test("PacketReader: checksums, escapes, acks and the interrupt byte", () => {
  const rd = new PacketReader();
  const p = framePacket("X100,2:}#");
  assertEquals(p, "$X100,2:}]}\x03#" + p.slice(-2));
  assertEquals(rd.push("+" + p.slice(0, 5)), [{ kind: "ack", ok: true }]);
  assertEquals(rd.push(p.slice(5) + "\x03$g#00"), [{ kind: "packet", data: "X100,2:}#" }, { kind: "interrupt" }, { kind: "bad" }]);
  // A packet with no end is dropped once it outgrows the limit; the next one reads as usual.
  assertEquals(rd.push("$m" + "0".repeat(0x5000)), [{ kind: "bad" }]);
  assertEquals(rd.push(framePacket("?")), [{ kind: "packet", data: "?" }]);
});

test("gdb stub: malformed packets get an error reply and the session goes on", async () => {
  const { stub, c } = await session(LOOP, "interp");
  try {
    assertEquals(await c.send("mzz,4"), "E01");
    assertEquals(await c.send("m100000,zz"), "E01");
    assertEquals(await c.send("M100000,4:0102"), "E01", "length and data disagree");
    assertEquals(await c.send("G00"), "E01", "too few register bytes");
    assertEquals(await c.send("p99"), "E01", "no register 0x99");
    assertEquals(await c.send("P8=0102"), "E01", "eip is 4 bytes");
    assertEquals(await c.send("Z0,zz,1"), "E01");
    assertEquals(await c.send("qXfer:features:read:other.xml:0,100"), "E00");
    assertEquals(await c.send("vCont?"), "", "unknown packets: the empty reply");
    assertEquals(await c.send("m100000,2"), "b905", "and the stub still answers");
  } finally {
    c.close();
    stub.close();
  }
});
