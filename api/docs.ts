/**
 * The docs page: the OpenAPI document rendered to one self-contained HTML page (no scripts, fonts or
 * styles from anywhere else), so it works offline. Problem types have anchors (`#problem-<name>`)
 * that the problems' `type` URIs point at.
 */

type Json = Record<string, unknown>;

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]!);

function refName(s: Json | undefined): string | null {
  const ref = s?.$ref;
  return typeof ref === "string" ? ref.replace("#/components/schemas/", "") : null;
}

function schemaLink(s: Json | undefined): string {
  const name = refName(s);
  if (name) return `<a href="#schema-${esc(name)}"><code>${esc(name)}</code></a>`;
  return s ? `<code>${esc(typeLabel(s))}</code>` : "";
}

function typeLabel(s: Json): string {
  if (refName(s)) return refName(s)!;
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (Array.isArray(s.anyOf)) return (s.anyOf as Json[]).map(typeLabel).join(" | ");
  if (s.type === "array" && s.items) return `${typeLabel(s.items as Json)}[]`;
  if (s.const !== undefined) return JSON.stringify(s.const);
  let t = String(s.type ?? "any");
  if (s.pattern) t += ` /${s.pattern}/`;
  if (s.minimum !== undefined || s.maximum !== undefined) {
    const min = s.minimum !== undefined && Math.abs(s.minimum as number) < 2 ** 53 - 1 ? s.minimum : "";
    const max = s.maximum !== undefined && Math.abs(s.maximum as number) < 2 ** 53 - 1 ? s.maximum : "";
    if (min !== "" || max !== "") t += ` ${min}…${max}`;
  }
  if (s.maxLength !== undefined) t += ` (≤ ${s.maxLength} chars)`;
  return t;
}

function propertiesTable(s: Json): string {
  const props = s.properties as Record<string, Json> | undefined;
  if (!props) return `<pre>${esc(JSON.stringify(s, null, 2))}</pre>`;
  const req = new Set((s.required as string[] | undefined) ?? []);
  const rows = Object.entries(props).map(([k, v]) => {
    const inner = refName(v) ? schemaLink(v) : `<code>${esc(typeLabel(v))}</code>`;
    return `<tr><td><code>${esc(k)}</code>${req.has(k) ? " <b>required</b>" : ""}</td><td>${inner}</td><td>${esc(v.description ?? "")}</td></tr>`;
  }).join("");
  return `<table><tr><th>field</th><th>type</th><th>meaning</th></tr>${rows}</table>`;
}

/** Render the page. */
export function renderDocs(doc: Json): string {
  const info = doc.info as Json;
  const paths = doc.paths as Record<string, Record<string, Json>>;
  const components = doc.components as { schemas: Record<string, Json>; "x-problem-types": Record<string, Json> };
  const ops: string[] = [];
  const toc: string[] = [];
  for (const [path, methods] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const id = `op-${op.operationId}`;
      toc.push(`<li><a href="#${id}"><span class="m ${method}">${method.toUpperCase()}</span> ${esc(path)}</a></li>`);
      const params = (op.parameters as Json[] | undefined) ?? [];
      const paramRows = params.map((p) =>
        `<tr><td><code>${esc(p.name)}</code>${p.required ? " <b>required</b>" : ""}</td><td>${esc(p.in)}</td><td><code>${esc(typeLabel(p.schema as Json))}</code></td><td>${esc(p.description ?? "")}</td></tr>`
      ).join("");
      const body = op.requestBody as Json | undefined;
      const bodyHtml = body
        ? `<h4>Body${body.required ? "" : " (optional)"}</h4><ul>${Object.entries(body.content as Record<string, Json>).map(([t, c]) => `<li><code>${esc(t)}</code> ${schemaLink(c.schema as Json)}</li>`).join("")}</ul>`
        : "";
      const responses = Object.entries(op.responses as Record<string, Json>).map(([status, r]) => {
        const content = r.content as Record<string, Json> | undefined;
        const what = content ? Object.entries(content).map(([t, c]) => `<code>${esc(t)}</code> ${schemaLink(c.schema as Json)}`).join(", ") : "";
        return `<tr><td>${esc(status)}</td><td>${esc(r.description)}</td><td>${what}</td></tr>`;
      }).join("");
      ops.push(`<section id="${id}">
<h3><span class="m ${method}">${method.toUpperCase()}</span> <code>${esc(path)}</code></h3>
<p><b>${esc(op.summary)}</b></p>${op.description ? `<p>${esc(op.description)}</p>` : ""}
${paramRows ? `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>meaning</th></tr>${paramRows}</table>` : ""}
${bodyHtml}
<h4>Responses</h4><table><tr><th>status</th><th>meaning</th><th>body</th></tr>${responses}</table>
</section>`);
    }
  }
  const schemas = Object.entries(components.schemas).map(([name, s]) =>
    `<section id="schema-${esc(name)}"><h3><code>${esc(name)}</code></h3>${s.description ? `<p>${esc(s.description)}</p>` : ""}${propertiesTable(s)}
<details><summary>JSON Schema</summary><pre>${esc(JSON.stringify(s, null, 2))}</pre></details></section>`
  ).join("\n");
  const problems = Object.entries(components["x-problem-types"]).map(([name, p]) =>
    `<tr id="problem-${esc(name)}"><td><code>${esc(name)}</code></td><td>${esc(p.status)}</td><td>${esc(p.title)}</td></tr>`
  ).join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>vmxlab API ${esc(info.version)}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;display:flex;color:#1d1d1f}
nav{position:sticky;top:0;height:100vh;overflow:auto;width:19rem;flex:none;background:#f5f5f7;padding:1rem;box-sizing:border-box;font-size:13px}
nav ul{list-style:none;padding:0}nav a{text-decoration:none;color:inherit}
main{padding:1rem 2rem;max-width:60rem;min-width:0}
table{border-collapse:collapse;margin:.5rem 0;width:100%}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
pre{background:#f5f5f7;padding:.5rem;overflow:auto;font-size:12px}
code{font-family:ui-monospace,monospace;font-size:13px}
.m{display:inline-block;min-width:3.5rem;font:bold 11px ui-monospace,monospace;padding:1px 4px;border-radius:3px;color:#fff;text-align:center}
.get{background:#2a7}.post{background:#27c}.put{background:#c80}.delete{background:#c33}
section{border-top:1px solid #eee;padding-top:.5rem}
</style></head><body>
<nav><h2>vmxlab API</h2><p>${esc(info.version)} · <a href="/v1/openapi.json">openapi.json</a></p>
<ul>${toc.join("")}</ul><p><a href="#schemas">Schemas</a> · <a href="#problems">Problem types</a></p></nav>
<main>
<h1>vmxlab HTTP API</h1>
<p>${esc(info.description)}</p>
<p>Errors are <code>application/problem+json</code> (RFC 9457): <code>type</code>, <code>title</code>, <code>status</code>, <code>detail</code>, and
<code>errors</code> naming each failing field (<code>field</code>, <code>in</code>, <code>detail</code>, <code>pointer</code>).</p>
<pre>curl -s localhost:8787/v1/runs -H 'content-type: application/json' \\
  -d '{"image":"'$(base64 -w0 tests/guests/hello16.bin)'","regs":{"eax":2,"ebx":2}}'</pre>
<h2>Operations</h2>
${ops.join("\n")}
<h2 id="problems">Problem types</h2>
<table><tr><th>type</th><th>status</th><th>title</th></tr>${problems}</table>
<h2 id="schemas">Schemas</h2>
${schemas}
</main></body></html>`;
}
