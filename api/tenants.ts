/**
 * Tenants and their API tokens (`npm start -- --tokens FILE`): the file holds one `TENANT TOKEN`
 * pair per line (blank lines and lines starting with # are skipped). A request names its tenant by
 * `Authorization: Bearer TOKEN`. Tokens are looked up by their SHA-256, so the lookup's time does
 * not depend on how much of a guessed token is right.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

/** The tenant of every request when the service has no tokens (it then listens on loopback only). */
export const LOCAL_TENANT = "local";

const TENANT = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const TOKEN = /^[\x21-\x7e]{16,256}$/;

/** Tenants by the SHA-256 (hex) of their tokens. */
export type TokenTable = Map<string, string>;

export function tokenDigest(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/**
 * Parse a tokens file's text.
 * @throws Error naming the line: a malformed line, a bad tenant name, a short token, a token used twice
 */
export function parseTokens(text: string, where = "tokens file"): TokenTable {
  const table: TokenTable = new Map();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const parts = line.split(/\s+/);
    const at = `${where}, line ${i + 1}`;
    if (parts.length !== 2) throw new Error(`${at}: expected "TENANT TOKEN"`);
    const [tenant, token] = parts;
    if (!TENANT.test(tenant)) throw new Error(`${at}: invalid tenant name ${JSON.stringify(tenant)} (letters, digits, _ . -; at most 64)`);
    if (!TOKEN.test(token)) throw new Error(`${at}: the token must be 16 to 256 printable characters`);
    const d = tokenDigest(token);
    if (table.has(d)) throw new Error(`${at}: this token is already given to tenant ${table.get(d)}`);
    table.set(d, tenant);
  });
  if (table.size === 0) throw new Error(`${where}: no tokens`);
  return table;
}

export function loadTokens(path: string): TokenTable {
  return parseTokens(readFileSync(path, "utf8"), path);
}

/** The tenant an Authorization header names, or null. */
export function tenantOf(table: TokenTable, authorization: string | undefined): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
  if (!m) return null;
  return table.get(tokenDigest(m[1])) ?? null;
}

/** Whether a listen address is loopback only. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
