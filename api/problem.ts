/**
 * Errors as `application/problem+json` (RFC 9457). This is the only place that turns an error into
 * an HTTP status: the routes throw `ApiProblem`s, the workers send `WorkerError` values (one `kind`
 * per failure, as the VMM's error classes have), and `PROBLEM_TYPES` maps both to a status.
 */
import { HTTPException } from "hono/http-exception";
import type { z } from "zod";
import type { WorkerError } from "./protocol.ts";

/** Where a failing field sits in the request. */
export type FieldLocation = "body" | "query" | "path" | "header";

/** One failing field: `field` is a dotted path (`regs.eax`, `dumps.0.len`), `pointer` a JSON Pointer into the body. */
export interface FieldError {
  field: string;
  in: FieldLocation;
  detail: string;
  pointer?: string;
}

/** An RFC 9457 problem document with vmxlab's extension members. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  /** The failing fields (validation problems, and any problem one field caused). */
  errors?: FieldError[];
  [extension: string]: unknown;
}

/**
 * Every problem type: its status and title. The `type` URI points at the docs page, which lists
 * them all (`/docs#problem-<name>`).
 */
export const PROBLEM_TYPES = {
  "validation": { status: 400, title: "The request is not valid" },
  "malformed-json": { status: 400, title: "The request body is not valid JSON" },
  "unsupported-media-type": { status: 415, title: "The request body has an unsupported media type" },
  "body-too-large": { status: 413, title: "The request body is too large" },
  "not-found": { status: 404, title: "Not found" },
  "method-not-allowed": { status: 405, title: "Method not allowed" },
  "session-busy": { status: 409, title: "The session is running" },
  "too-many-runs": { status: 429, title: "Too many runs in progress" },
  "too-many-sessions": { status: 429, title: "Too many live sessions" },
  "too-many-streams": { status: 429, title: "Too many open event streams" },
  "quota-exceeded": { status: 429, title: "The tenant's quota is used up" },
  "unauthorized": { status: 401, title: "A valid API token is needed" },
  "memory-exhausted": { status: 503, title: "The service has no guest memory left" },
  "image": { status: 422, title: "The image cannot be loaded" },
  "unsupported": { status: 422, title: "Not supported" },
  "vm-state": { status: 422, title: "The VM refused the state" },
  "hook-conflict": { status: 422, title: "Hooks conflict" },
  "script": { status: 422, title: "The hook script cannot be set up" },
  "hook-failed": { status: 422, title: "A hook failed during the run" },
  "worker-lost": { status: 503, title: "The worker running the VM stopped" },
  "engine-loading": { status: 503, title: "The worker is loading the engine" },
  "busy": { status: 503, title: "No worker could start the run within its time limit" },
  "deadline-exceeded": { status: 503, title: "The run did not answer within its time limit" },
  "shutting-down": { status: 503, title: "The service is shutting down" },
  "internal": { status: 500, title: "Internal error" },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemType = keyof typeof PROBLEM_TYPES;

/** The `type` URI of a problem type. */
export function problemTypeUri(type: ProblemType): string {
  return `/docs#problem-${type}`;
}

/** Characters kept of a problem's detail. */
const MAX_DETAIL = 4096;

/** An error a route throws; `app.onError` renders its problem document. */
export class ApiProblem extends HTTPException {
  readonly problem: Problem;
  readonly headers: Record<string, string>;
  constructor(type: ProblemType, detail: string, extra: Partial<Problem> = {}, headers: Record<string, string> = {}) {
    const { status, title } = PROBLEM_TYPES[type];
    // Details quote requests and scripts: a problem stays small whatever they held.
    if (detail.length > MAX_DETAIL) detail = detail.slice(0, MAX_DETAIL) + "…";
    super(status as 400, { message: detail });
    this.name = "ApiProblem";
    this.problem = { type: problemTypeUri(type), title, status, detail, ...extra };
    this.headers = headers;
  }
  /** The problem as an HTTP response. */
  toResponse(instance?: string): Response {
    const body: Problem = instance && !this.problem.instance ? { ...this.problem, instance } : this.problem;
    return new Response(JSON.stringify(body), {
      status: body.status,
      headers: { "content-type": "application/problem+json", ...this.headers },
    });
  }
}

/** A problem for one failing field. */
export function fieldProblem(type: ProblemType, where: FieldLocation, field: string, detail: string, extra: Partial<Problem> = {}): ApiProblem {
  return new ApiProblem(type, detail, { errors: [fieldError(where, field, detail)], ...extra });
}

function fieldError(where: FieldLocation, field: string, detail: string): FieldError {
  const e: FieldError = { field, in: where, detail };
  if (where === "body") e.pointer = "/" + field.split(".").filter((s) => s !== "").map((s) => s.replace(/~/g, "~0").replace(/\//g, "~1")).join("/");
  return e;
}

/** A zod failure as a validation problem naming every failing field. */
export function fromZodError(error: z.ZodError, where: FieldLocation): ApiProblem {
  const errors: FieldError[] = [];
  for (const issue of error.issues) {
    // A body with thousands of bad entries gets the first 50 named.
    if (errors.length >= 50) break;
    const path = issue.path.map(String);
    // An unknown key is the key's own failure: name it.
    if (issue.code === "unrecognized_keys") {
      for (const k of issue.keys) errors.push(fieldError(where, [...path, k].join("."), `Unknown field "${k}"`));
      continue;
    }
    errors.push(fieldError(where, path.join(".") || (where === "body" ? "" : where), issue.message));
  }
  const names = [...new Set(errors.map((e) => e.field || "(body)"))];
  const what = where === "body" ? "body field" : where === "query" ? "query parameter" : where === "path" ? "path parameter" : "header";
  return new ApiProblem("validation", `Invalid ${what}${names.length > 1 ? "s" : ""}: ${names.join(", ")}`, { errors });
}

/**
 * A worker's error as a problem. The table says which status each kind of VMM failure is; an
 * unknown kind is an internal error, never a silent 200.
 */
const WORKER_ERROR_TYPES: Record<WorkerError["kind"], ProblemType> = {
  image: "image",
  unsupported: "unsupported",
  argument: "validation",
  state: "vm-state",
  conflict: "hook-conflict",
  script: "script",
  hook: "hook-failed",
  "not-found": "not-found",
  "engine-loading": "engine-loading",
  internal: "internal",
};

export function fromWorkerError(e: WorkerError): ApiProblem {
  const type = WORKER_ERROR_TYPES[e.kind] ?? "internal";
  const extra: Partial<Problem> = {};
  if (e.field) extra.errors = [fieldError(e.where ?? "body", e.field, e.message)];
  if (e.hook) extra.hook = e.hook;
  if (e.cause) extra.cause = e.cause;
  if (e.run) extra.run = e.run;
  if (e.imageKind) extra.imageKind = e.imageKind;
  return new ApiProblem(type, e.message, extra, type === "engine-loading" ? { "retry-after": "2" } : {});
}
