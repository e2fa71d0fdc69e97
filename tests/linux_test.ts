/**
 * Linux boots to a shell: the committed test kernel and initramfs (tests/guests/linux, built by
 * scripts/build_linux.sh from Debian's linux-source-6.1 and busybox-static:i386) boot under each
 * engine, and commands typed on the serial console answer as Linux says they should. Linux is the
 * oracle here: it reads the processor's identity, the RTC, the e820 map and the devices itself.
 *
 * Each engine must reach the shell's first prompt after the same number of instructions.
 */
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { assert, assertEquals, assertMatch } from "./assert.ts";
import { REPO } from "./run_cli.ts";
import { type EngineName, Machine, PC_DEVICES, type RunResult } from "../runtime/vmm/machine.ts";
import { ConsoleWatch, runSliced, SerialInput } from "../runtime/vmm/serial_console.ts";

const DIR = `${REPO}/tests/guests/linux`;
const kernel = new Uint8Array(readFileSync(`${DIR}/bzImage`));
const initrd = new Uint8Array(readFileSync(`${DIR}/initramfs.cpio.gz`));
const PROMPT = "vmxlab# ";
const CMDLINE = "console=ttyS0 quiet";

/** The commands, each with what its output must be (a line-anchored pattern per line of output). */
const SESSION: { cmd: string; expect: RegExp[] }[] = [
  { cmd: "uname -a", expect: [/^Linux \(none\) 6\.1\.\d+ #1 2026-01-01 00:00:00 UTC i686 GNU\/Linux$/] },
  {
    // (Short enough for one line of the 80-column terminal the line editor assumes.)
    cmd: "grep -E '^(vendor|cpu f|model|stepp|micro|fpu|flags)' /proc/cpuinfo",
    expect: [/^vendor_id\t: GenuineIntel$/, /^cpu family\t: 15$/, /^model\t\t: 3$/, /^model name\t: /, /^stepping\t: 4$/,
      /^microcode\t: 0x1$/, /^fpu\t\t: yes$/, /^fpu_exception\t: yes$/,
      // What CPUID reports, as Linux names it (pni: SSE3).
      /^flags\t\t: fpu pse tsc msr cx8 cmov clflush mmx fxsr sse sse2 constant_tsc cpuid pni hypervisor$/],
  },
  { cmd: "echo $(( (1<<20) % 1000 + 123*456 - 7/2 ))", expect: [new RegExp(`^${(1 << 20) % 1000 + 123 * 456 - 3}$`)] },
  { cmd: "echo vmxlab-$((3+4)) > /tmp/f; cat /tmp/f; wc -c < /tmp/f", expect: [/^vmxlab-7$/, /^9$/] },
  // The date comes from the RTC (rtc_cmos at boot, RTC_HCTOSYS), which starts at 2026-01-01T00:00:00Z;
  // sleep waits on the PIT's ticks (busybox parses "2" with x87 code that Linux's math-emu runs).
  { cmd: "date -u +%Y-%m-%d; sleep 2; cat /proc/uptime", expect: [/^2026-01-01$/, /^[2-9]\.\d\d \d+\.\d\d$/] },
  // rtc-cmos reads the clock, which has run on with virtual time, and holds IRQ8.
  {
    cmd: "grep -E 'rtc_(time|date)' /proc/driver/rtc; grep rtc /proc/int*",
    expect: [/^rtc_time\t: 00:00:0[2-9]$/, /^rtc_date\t: 2026-01-01$/, /^ +8: +0 +XT-PIC +rtc0$/],
  },
  { cmd: "cat /proc/cmdline", expect: [new RegExp(`^${CMDLINE}$`)] },
];

interface Boot {
  result: RunResult;
  promptAt: number | null;
  console: string;
}

async function boot(engine: EngineName, commands: string[]): Promise<Boot> {
  const m = await Machine.create({ mode: "protected", memSize: 128 << 20, devices: { ...PC_DEVICES }, engine });
  m.load(kernel, { format: "bzimage", initrd, cmdline: CMDLINE });
  const watch = new ConsoleWatch(m, PROMPT);
  new SerialInput(m, commands.map((c) => c + "\n").join(""), { prompt: PROMPT, stopWhenDone: true });
  const result = await runSliced(m, { budget: 3_000_000_000, timeoutMs: 600_000, slice: 50_000_000 });
  return { result, promptAt: watch.instructions, console: m.console };
}

/** Split the console after the first prompt into [command, output lines] per prompt. */
function transcript(console: string): { cmd: string; out: string[] }[] {
  // busybox's line editor asks the terminal for the cursor position (ESC [ 6 n) after each prompt.
  const parts = console.replace(/\x1b\[6n/g, "").split(PROMPT).slice(1);
  return parts.map((p) => {
    const lines = p.split(/\r?\n/).map((l) => l.replace(/\r/g, ""));
    return { cmd: lines[0], out: lines.slice(1).filter((l, i, a) => i < a.length - 1 || l !== "") };
  });
}

function checkSession(b: Boot): void {
  assertEquals(b.result.exit, { reason: "stopped", detail: "serial input done" }, b.console.slice(-2000));
  assert(b.promptAt !== null, "the shell printed its prompt");
  const t = transcript(b.console);
  assertEquals(t.length, SESSION.length + 1, b.console.slice(-2000)); // a prompt per command, and the last one
  SESSION.forEach(({ cmd, expect }, k) => {
    assertEquals(t[k].cmd, cmd, "the shell echoes the command");
    assertEquals(t[k].out.length, expect.length, `${cmd}: ${JSON.stringify(t[k].out)}`);
    expect.forEach((re, j) => assertMatch(t[k].out[j], re));
  });
}

let interpPromptAt: number | null = null;

test("Linux boots to a busybox shell under interp, and the shell answers commands on the serial console", async () => {
  const b = await boot("interp", SESSION.map((s) => s.cmd));
  // Boot messages that show the devices and the loader at work.
  assertMatch(b.console, /vmxlab initramfs: Linux 6\.1\.\d+/);
  checkSession(b);
  interpPromptAt = b.promptAt;
});

test("vmrun --kernel --serial-input runs a session from the command line and reaches the prompt after the same instructions", () => {
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  const args = [...(isDeno ? ["run", "-A", "--no-check"] : []), "scripts/vmrun.ts", "--kernel", `${DIR}/bzImage`, "--initrd", `${DIR}/initramfs.cpio.gz`,
    "--append", CMDLINE, "--prompt", PROMPT, "--serial-input", "echo $((6*7))\n", "--json"];
  const r = spawnSync(process.execPath, args, { cwd: REPO, encoding: "utf8", timeout: 600_000, stdio: ["ignore", "pipe", "pipe"] });
  assertEquals(r.status, 0, r.stderr);
  assertMatch(r.stdout, /echo \$\(\(6\*7\)\)\r?\n42\r?\n/);
  const report = JSON.parse(r.stdout.trimEnd().split("\n").pop()!);
  assertEquals(report.exit, { reason: "stopped", detail: "serial input done" });
  if (interpPromptAt !== null) assertEquals(report.prompt.instructions, interpPromptAt);
  assertEquals(report.prompt.text, PROMPT);
});

test("Linux reboots through the i8042's reset pulse, which ends the run with a reset exit", async () => {
  const b = await boot("interp", ["reboot -f"]);
  assertEquals(b.result.exit.reason, "reset");
  assertMatch((b.result.exit as { source: string }).source, /^i8042 command 0xfe/);
  assertEquals(b.promptAt, interpPromptAt, "the same instruction count to the prompt as the first boot");
});

// `auto` reaches the prompt after the same instructions, but compiles ~1,600 regions on the way
// (90–150 s on this project's 2-core host, 8x the interpreter's time: the JIT issue's work); it runs
// in Deno's pass only, to keep the suite's time reasonable.
const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
test("Linux boots to the same shell under auto, with the same instruction count to the prompt", {
  skip: isBun ? "run under deno test only: the auto boot compiles ~1,600 regions (90-150 s)" : false,
}, async () => {
  const b = await boot("auto", SESSION.map((s) => s.cmd));
  checkSession(b);
  if (interpPromptAt !== null) assertEquals(b.promptAt, interpPromptAt);
});

// `jit` compiles every block on first sight: ~12,000 regions on the way to the prompt (about 90 s on
// this project's 2-core host, almost all of it compiling), so it runs in Deno's pass only. It used to
// abort the process (binaryen's Relooper asserted on a Jcc whose two targets are the same block).
test("Linux boots to the same shell under jit, with the same instruction count to the prompt", {
  skip: isBun ? "run under deno test only: the jit boot compiles ~12,000 regions (about 90 s)" : false,
}, async () => {
  const b = await boot("jit", SESSION.map((s) => s.cmd));
  checkSession(b);
  if (interpPromptAt !== null) assertEquals(b.promptAt, interpPromptAt);
});
