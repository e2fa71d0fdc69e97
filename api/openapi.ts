/**
 * The OpenAPI 3.1 document, generated from the route table and the zod schemas: every route the
 * app serves is declared once (`RouteDoc`) and both registered with Hono and described here, so the
 * document cannot miss a route. Components come from the schemas' registries (`z.toJSONSchema`).
 */
import { z } from "zod";
import type { Schemas } from "./schemas.ts";
import { PROBLEM_TYPES } from "./problem.ts";

type Json = Record<string, unknown>;

/** A documented response: a JSON schema, another media type, or none (204). */
export interface ResponseDoc {
  description: string;
  schema?: z.ZodType;
  /** Default application/json; application/problem+json for errors. */
  contentType?: string;
  /** For bodies that are not described by a schema (text/html, text/event-stream, a JSON document of its own). */
  raw?: { type: string; format?: string };
  /** The same answer as raw bytes with `Accept: application/octet-stream`. */
  alsoOctetStream?: boolean;
}

/** One route: what Hono serves and what the document says about it. */
export interface RouteDoc {
  method: "get" | "post" | "put" | "delete";
  /** Hono's form, `/v1/vms/:id`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: { schema: z.ZodType; required: boolean; alsoOctetStream?: boolean };
  responses: Record<number, ResponseDoc>;
}

/** `/v1/vms/:id` → `/v1/vms/{id}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}

function strip(s: Json): Json {
  const { $schema: _s, $id: _i, ...rest } = s;
  return rest;
}

/** Components from both registries: requests as their input, responses as their output. */
function components(schemas: Schemas): Record<string, Json> {
  const uri = (id: string) => `#/components/schemas/${id}`;
  const out: Record<string, Json> = {};
  const req = z.toJSONSchema(schemas.registries.req, { io: "input", uri, unrepresentable: "any" }) as { schemas: Record<string, Json> };
  const res = z.toJSONSchema(schemas.registries.res, { io: "output", uri, unrepresentable: "any" }) as { schemas: Record<string, Json> };
  for (const [k, v] of Object.entries(req.schemas)) out[k] = strip(v);
  for (const [k, v] of Object.entries(res.schemas)) out[k] = strip(v);
  return out;
}

/** A schema reference when the schema is a component, its inline JSON schema otherwise. */
function schemaRef(s: z.ZodType, schemas: Schemas, io: "input" | "output"): Json {
  const meta = schemas.registries.req.get(s) ?? schemas.registries.res.get(s);
  if (meta) return { $ref: `#/components/schemas/${meta.id}` };
  return strip(z.toJSONSchema(s, { io, unrepresentable: "any" }) as Json);
}

function parameters(obj: z.ZodObject | undefined, where: "path" | "query"): Json[] {
  if (!obj) return [];
  return Object.entries(obj.shape).map(([name, field]) => {
    const f = field as z.ZodType;
    const optional = f.safeParse(undefined).success;
    const schema = strip(z.toJSONSchema(f, { io: "input", unrepresentable: "any" }) as Json);
    const p: Json = { name, in: where, required: where === "path" || !optional, schema };
    if (typeof schema.description === "string") p.description = schema.description;
    return p;
  });
}

/** Build the document. */
export function buildOpenApi(routes: RouteDoc[], schemas: Schemas, info: { version: string; description: string }): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const r of routes) {
    const op: Json = {
      operationId: r.operationId,
      summary: r.summary,
      tags: r.tags,
    };
    if (r.description) op.description = r.description;
    const params = [...parameters(r.params, "path"), ...parameters(r.query, "query")];
    if (params.length) op.parameters = params;
    if (r.body) {
      const content: Json = { "application/json": { schema: schemaRef(r.body.schema, schemas, "input") } };
      if (r.body.alsoOctetStream) content["application/octet-stream"] = { schema: { type: "string", format: "binary" } };
      op.requestBody = { required: r.body.required, content };
    }
    const responses: Record<string, Json> = {};
    for (const [status, d] of Object.entries(r.responses)) {
      const resp: Json = { description: d.description };
      if (d.schema) resp.content = { [d.contentType ?? "application/json"]: { schema: schemaRef(d.schema, schemas, "output") } };
      else if (d.raw) resp.content = { [d.raw.type]: { schema: d.raw.type === "application/json" ? { type: "object" } : { type: "string", ...(d.raw.format ? { format: d.raw.format } : {}) } } };
      if (d.alsoOctetStream) (resp.content as Json)["application/octet-stream"] = { schema: { type: "string", format: "binary" } };
      responses[status] = resp;
    }
    // Every route can also answer with a problem: 401 without a token (when the service has
    // tokens), 429 and 503 when the service is full or stopping, 500 on a bug. Their bodies are
    // problem documents; x-problem-types lists every type with its status.
    responses.default = {
      description: "Any other status (401 unauthorized, 413, 429, 500, 503, …), as a problem document",
      content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
    };
    op.responses = responses;
    (paths[openApiPath(r.path)] ??= {})[r.method] = op;
  }
  return {
    openapi: "3.1.0",
    info: { title: "vmxlab", version: info.version, description: info.description },
    servers: [{ url: "/" }],
    tags: [
      { name: "service", description: "Health, information, this document" },
      { name: "runs", description: "One-shot runs" },
      { name: "sessions", description: "VMs that live across requests" },
    ],
    paths,
    components: {
      schemas: components(schemas),
      // Each problem type, so clients and the docs page can list them.
      "x-problem-types": Object.fromEntries(Object.entries(PROBLEM_TYPES).map(([k, v]) => [k, { ...v, type: `/docs#problem-${k}` }])),
    },
  };
}
