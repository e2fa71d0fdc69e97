/**
 * Problem documents: each worker error kind maps to its status, zod failures name their fields,
 * and the responses are application/problem+json.
 */
import { test } from "node:test";
import { z } from "zod";
import { assertEquals } from "../tests/assert.ts";
import { ApiProblem, fieldProblem, fromWorkerError, fromZodError, PROBLEM_TYPES } from "./problem.ts";
import type { WorkerError } from "./protocol.ts";

test("fromWorkerError() maps every kind of VMM failure to its status", () => {
  const table: [WorkerError["kind"], number, string][] = [
    ["image", 422, "image"], ["unsupported", 422, "unsupported"], ["argument", 400, "validation"], ["state", 422, "vm-state"],
    ["conflict", 422, "hook-conflict"], ["script", 422, "script"], ["hook", 422, "hook-failed"], ["not-found", 404, "not-found"],
    ["internal", 500, "internal"],
  ];
  for (const [kind, status, type] of table) {
    const p = fromWorkerError({ kind, message: "m", field: "f" });
    assertEquals([p.status, p.problem.type, p.problem.errors?.[0].field], [status, `/docs#problem-${type}`, "f"], kind);
  }
  assertEquals(fromWorkerError({ kind: "bogus" as never, message: "m" }).status, 500, "an unknown kind is an internal error");
});

test("fromZodError() names each failing field with a JSON pointer, unknown keys included", () => {
  const s = z.strictObject({ a: z.int(), b: z.object({ "x/y": z.string() }) });
  const r = s.safeParse({ a: "1", b: { "x/y": 2 }, c: 1 });
  const p = fromZodError(r.error!, "body");
  assertEquals(p.problem.errors!.map((e) => [e.field, e.pointer]), [["a", "/a"], ["b.x/y", "/b/x~1y"], ["c", "/c"]]);
  assertEquals(p.problem.detail, "Invalid body fields: a, b.x/y, c");
});

test("An ApiProblem renders as application/problem+json with its headers and instance", async () => {
  const res = new ApiProblem("too-many-runs", "busy", {}, { "retry-after": "1" }).toResponse("/v1/runs");
  assertEquals(res.status, 429);
  assertEquals(res.headers.get("content-type"), "application/problem+json");
  assertEquals(res.headers.get("retry-after"), "1");
  assertEquals(await res.json(), { type: "/docs#problem-too-many-runs", title: PROBLEM_TYPES["too-many-runs"].title, status: 429, detail: "busy", instance: "/v1/runs" });
  const q = fieldProblem("validation", "query", "len", "bad");
  assertEquals(q.problem.errors, [{ field: "len", in: "query", detail: "bad" }]);
});
