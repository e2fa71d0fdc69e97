/**
 * zod schemas for every body, path and query the service accepts and every body it returns. The
 * OpenAPI document (`openapi.ts`) is generated from these, so the schemas are the contract. They
 * are built from the limits, so the documented maxima are the configured ones.
 */
import { z } from "zod";
import type { Limits } from "./config.ts";
import { REG_NAMES } from "./protocol.ts";

const U32_MAX = 0xffffffff;

/** A 32-bit guest-physical address: a number, or a "0x…" string. */
const address = (what: string) =>
  z.union([z.int().min(0).max(U32_MAX), z.string().regex(/^0x[0-9a-fA-F]{1,8}$/, "Expected a 0x-hex string of at most 8 digits")])
    .describe(`${what}: a number or a 0x-hex string`);

/** A number or "0x…" string in a query (query values are strings). */
const queryNumber = (what: string) => z.string().regex(/^(0x[0-9a-fA-F]{1,8}|[0-9]{1,10})$/, "Expected a decimal or 0x-hex number").describe(what);

export function toNumber(v: number | string): number {
  return typeof v === "number" ? v : Number(v);
}

/** Schema metadata: the component name in the OpenAPI document. */
export interface SchemaMeta {
  id: string;
  description?: string;
  [k: string]: unknown;
}

export function makeSchemas(limits: Limits, defaultEngine: "interp" | "jit" | "auto" = "interp", hookNames: readonly string[] = []) {
  /** Request and response components; the OpenAPI generator reads them as input and output. */
  const req = z.registry<SchemaMeta>();
  const res = z.registry<SchemaMeta>();
  const Mode = z.enum(["real", "protected", "paged", "long"]).describe("CPU mode at entry, as vmrun --mode (long is not built yet)");
  const Format = z.enum(["raw", "elf", "multiboot", "rom", "bzimage", "auto"])
    .describe("Image format (auto detects ELF, multiboot and Linux bzImage headers); a bzImage boots through Linux's 32-bit boot protocol with the PC devices (RTC, i8042, UART on IRQ4)");
  const Engine = z.enum(["interp", "jit", "auto", "kvm"])
    .describe(`Execution engine (default ${defaultEngine}): interp interprets; jit compiles guest code to WebAssembly the first time it runs; ` +
      "auto interprets cold code and compiles hot blocks; kvm is not built yet. The guest's exits, counts and state are the same " +
      "under each (/v1/info says which are available)");
  const TraceKind = z.union([z.boolean(), z.enum(["off", "exits", "path"])])
    .describe('"exits": every userspace exit; "path": every stage of the kernel paths; true means "exits"');

  const regShape: Record<string, z.ZodType> = {};
  for (const n of REG_NAMES) regShape[n] = z.int().min(0).max(Number.MAX_SAFE_INTEGER).optional();
  const Regs = z.strictObject(regShape).describe("Registers by vmrun's names (eax…edi, 16-bit and 64-bit names, eip, eflags)").register(req, { id: "Regs" });

  const Dump = z.strictObject({
    addr: address("Guest-physical address"),
    len: z.int().min(1).max(limits.maxMemoryAccessBytes),
  }).register(req, { id: "Dump" });

  const runFields = {
    budget: z.int().min(1).max(limits.maxBudget).optional()
      .describe(`Instruction budget (the VMX preemption timer); default ${limits.defaultBudget}`),
    timeoutMs: z.int().min(1).max(limits.maxTimeoutMs).optional()
      .describe(`Wall-time limit in milliseconds; default ${limits.defaultTimeoutMs}`),
    serialInput: z.string().max(65536).optional().describe("Bytes (UTF-8) fed to the UART's receive FIFO before the run"),
    dumps: z.array(Dump).max(16)
      .refine((d) => d.reduce((n, x) => n + x.len, 0) <= limits.maxMemoryAccessBytes, { message: `The dumps' lengths add up to more than ${limits.maxMemoryAccessBytes} bytes` })
      .optional().describe(`Guest memory to include in the result, as hex; at most ${limits.maxMemoryAccessBytes} bytes in all`),
  };

  const machineFields = {
    image: z.base64().min(1).max(Math.ceil(limits.maxBodyBytes / 3) * 4).describe("The guest image, base64"),
    format: Format.optional(),
    mode: Mode.optional(),
    load: address("Load address of a raw image (default 0x1000 in real mode, 0x100000 otherwise)").optional(),
    entry: address("Entry point (default: the load address or the ELF/multiboot entry)").optional(),
    mem: z.union([z.int().min(4096).max(limits.maxMemBytes).multipleOf(4096), z.string().regex(/^[0-9]+[KMG]?$/i, "Expected a size such as 16M")]).optional()
      .describe(`Guest RAM in bytes or with a K/M/G suffix; default ${limits.defaultMemBytes}, at most ${limits.maxMemBytes}`),
    engine: Engine.optional(),
    regs: Regs.optional(),
    // The loaded hook sets' names, so the document lists them (any name when none is loaded: then every name is refused).
    hooks: z.array(hookNames.length
      ? z.enum(hookNames as [string, ...string[]], { error: (i) => `Unknown hook set ${JSON.stringify(i.input)} (known: ${hookNames.join(", ")})` })
      : z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, "Expected a hook set name")).max(Math.max(1, Math.min(16, hookNames.length))).optional()
      .describe("Operator hook sets by name (see /v1/info)"),
    script: z.string().max(limits.hookScript.maxSourceBytes).optional()
      .describe("A hook script (JavaScript) run in a QuickJS sandbox: vm.onIo, vm.onHypercall, vm.onExit, vm.onMmio"),
    trace: TraceKind.optional(),
    initrd: z.base64().min(1).max(Math.ceil(limits.maxBodyBytes / 3) * 4).optional().describe("A bzImage's initial RAM disk, base64"),
    cmdline: z.string().max(2048).regex(/^[\x20-\x7e]*$/, "Expected printable ASCII").optional().describe("A bzImage's kernel command line (e.g. console=ttyS0)"),
  };

  const RunRequest = z.strictObject({ ...machineFields, ...runFields }).register(req, { id: "RunRequest", description: "A one-shot run" });
  const CreateVmRequest = z.strictObject({ ...machineFields, ...runFields })
    .register(req, { id: "CreateVmRequest", description: "A session's machine; budget, timeoutMs and dumps become its runs' defaults" });
  const SessionRunRequest = z.strictObject(runFields).register(req, { id: "SessionRunRequest" });
  const ConsoleInput = z.strictObject({ input: z.string().min(1).max(65536).describe("Bytes (UTF-8) for the UART's receive FIFO") })
    .register(req, { id: "ConsoleInput" });
  const ConsoleQueued = z.object({ pendingInput: z.int().min(0).describe("Bytes waiting in the receive FIFO for the guest to read") })
    .register(res, { id: "ConsoleQueued" });

  const RegsReport = z.object(Object.fromEntries(
    ["eax", "ebx", "ecx", "edx", "esi", "edi", "esp", "ebp", "eip", "eflags", "cs", "ds", "es", "fs", "gs", "ss"].map((k) => [k, z.int().min(0)]),
  )).register(res, { id: "RegsReport", description: "Registers as KVM_GET_REGS/KVM_GET_SREGS show them (32-bit values, selectors)" });

  const Exit = z.looseObject({ reason: z.string() }).register(res, { id: "Exit", description: 'How the run ended: "hlt", "shutdown", "budget", "timeout", "mmio", "stopped", "hook_error", … with the exit\'s fields' });

  const RunReport = z.object({
    exit: Exit,
    regs: RegsReport,
    instructions: z.int().min(0),
    exits: z.record(z.string(), z.int()).describe("VM exits by VMX basic exit reason"),
    userspaceExits: z.record(z.string(), z.int()).describe("Exits that reached userspace, by KVM exit name"),
    ports: z.record(z.string(), z.object({ in: z.int().optional(), out: z.int().optional() })).describe("Port accesses since the VM was made"),
    memory: z.record(z.string(), z.string()).describe("The requested dumps, as hex"),
    console: z.string(),
    consoleTruncated: z.boolean(),
    engine: z.string().describe("The engine the run used"),
    jit: z.object({
      regions: z.int().describe("Regions (wasm modules) compiled"),
      cachedRegions: z.int().describe("Of those, regions whose module came from the worker's code cache (the same code compiled by an earlier run)"),
      blocks: z.int().describe("Blocks compiled"),
      compiledInstructions: z.int().describe("Instructions retired by compiled code"), compileMs: z.number(),
      failures: z.int().describe("Regions that failed to compile (a JIT bug or a limit) and ran interpreted"),
    }).optional().describe("Under jit or auto: the JIT's counters since the VM was made"),
    wallMs: z.number(),
    timings: z.object({
      setupMs: z.number(), runMs: z.number(), workerMs: z.number(), queueMs: z.number().optional(), totalMs: z.number().optional(),
    }),
    logs: z.array(z.string()).describe("Lines logged by hook sets and the hook script"),
    trace: z.object({ kind: z.enum(["exits", "path"]), events: z.array(z.record(z.string(), z.unknown())), dropped: z.int() }).optional(),
    truncated: z.boolean().optional().describe(`Present and true when the report was cut to its caps: ports past ${limits.maxReportPorts}, or trace events, logs and console past ${limits.maxAnswerBytes} bytes of JSON`),
  }).register(res, { id: "RunReport" });

  const FieldError = z.object({
    field: z.string(), in: z.enum(["body", "query", "path", "header"]), detail: z.string(), pointer: z.string().optional(),
  }).register(res, { id: "FieldError" });
  const Problem = z.looseObject({
    type: z.string(), title: z.string(), status: z.int(), detail: z.string(), instance: z.string().optional(),
    errors: z.array(FieldError).optional(),
    hook: z.string().optional().describe("hook-failed: the hook that failed"),
    cause: z.string().optional().describe('hook-failed and script: "exception", "timeout" or "memory"'),
    run: RunReport.optional().describe("hook-failed: the run up to the failure"),
  }).register(res, { id: "Problem", description: "RFC 9457 problem details" });

  const Health = z.object({
    status: z.enum(["ok", "degraded"]).describe("degraded: fewer worker processes answer than the service has (one is being replaced after a kill)"),
    uptimeMs: z.number(), runsInFlight: z.int(), sessions: z.int(),
    workers: z.object({ size: z.int(), ready: z.int(), killed: z.int().describe("Workers killed since start because a job overran its limits") }),
  }).register(res, { id: "Health" });

  const HookSetInfo = z.object({ name: z.string(), description: z.string(), script: z.string() }).register(res, { id: "HookSetInfo" });
  const Info = z.object({
    name: z.literal("vmxlab"),
    version: z.string(),
    runtime: z.string(),
    engines: z.array(z.object({ name: z.string(), available: z.boolean(), note: z.string().optional() })),
    defaultEngine: z.enum(["interp", "jit", "auto"]).describe("The engine of a request that names none"),
    modes: z.array(z.object({ name: z.string(), available: z.boolean() })),
    formats: z.array(z.string()),
    workers: z.int(),
    limits: z.record(z.string(), z.unknown()),
    hookSets: z.array(HookSetInfo),
    hookScript: z.object({ engine: z.string(), api: z.array(z.string()) }),
  }).register(res, { id: "Info" });

  const Session = z.object({
    id: z.string(),
    mode: z.string(),
    engine: z.string(),
    memBytes: z.int(),
    hooks: z.array(z.string()),
    script: z.boolean(),
    createdAt: z.string(),
    lastUsedAt: z.string(),
    expiresAt: z.string(),
    runs: z.int(),
    instructions: z.int(),
    running: z.boolean(),
    lastExit: Exit.nullable(),
    regs: RegsReport.optional(),
  }).register(res, { id: "Session" });
  const SessionList = z.object({ sessions: z.array(Session) }).register(res, { id: "SessionList" });
  const RegsResponse = z.object({ regs: RegsReport }).register(res, { id: "RegsResponse" });

  const SessionId = z.object({ id: z.string().regex(/^vm-[0-9a-f]{16}$/, "Expected a session id such as vm-0123456789abcdef") });
  const MemoryQuery = z.strictObject({ addr: queryNumber("Guest-physical address"), len: z.string().regex(/^[0-9]{1,8}$/, "Expected a decimal length").describe(`Bytes, 1…${limits.maxMemoryAccessBytes}`) });
  const MemoryWriteQuery = z.strictObject({ addr: queryNumber("Guest-physical address") });
  const MemoryRead = z.object({ addr: z.int(), len: z.int(), data: z.string().describe("base64") }).register(res, { id: "MemoryRead" });
  const MemoryWrite = z.strictObject({ data: z.base64().max(Math.ceil(limits.maxMemoryAccessBytes / 3) * 4).describe("The bytes, base64") }).register(req, { id: "MemoryWrite" });
  const MemoryWritten = z.object({ addr: z.int(), len: z.int() }).register(res, { id: "MemoryWritten" });
  const DisasmQuery = z.strictObject({
    addr: queryNumber("Guest-physical address (default CS:EIP)").optional(),
    count: z.string().regex(/^[0-9]{1,6}$/, "Expected a decimal count").describe(`Instructions, 1…${limits.maxDisasmCount} (default 10)`).optional(),
    bits: z.enum(["16", "32"]).describe("Code size (default from CS.D)").optional(),
  });
  const Disasm = z.object({
    addr: z.int(), bits: z.int(),
    instructions: z.array(z.object({ address: z.int(), bytes: z.string(), text: z.string() })),
  }).register(res, { id: "Disasm" });

  return {
    registries: { req, res },
    RunRequest, CreateVmRequest, SessionRunRequest, ConsoleInput, ConsoleQueued, RunReport, Problem, Health, Info, Session, SessionList, RegsResponse,
    Regs, SessionId, MemoryQuery, MemoryWriteQuery, MemoryRead, MemoryWrite, MemoryWritten, DisasmQuery, Disasm,
  };
}

export type Schemas = ReturnType<typeof makeSchemas>;
export type RunRequest = z.infer<Schemas["RunRequest"]>;
export type SessionRunRequest = z.infer<Schemas["SessionRunRequest"]>;
