/**
 * The `@std/assert` names over `node:assert/strict`, so the same test files run under
 * `deno test` and `bun test` without JSR.
 */
import assert from "node:assert/strict";

export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.deepStrictEqual(actual, expected, msg as string);
}
export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.notDeepStrictEqual(actual, expected, msg as string);
}
export function assertStrictEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.strictEqual(actual, expected, msg as string);
}
export function assert_(cond: unknown, msg?: string): asserts cond {
  assert.ok(cond, msg as string);
}
export { assert_ as assert };
export function assertMatch(actual: string, re: RegExp, msg?: string): void {
  assert.match(actual, re, msg as string);
}
export function assertStringIncludes(actual: string, expected: string, msg?: string): void {
  if (!actual.includes(expected)) {
    assert.fail(msg ?? `Expected ${JSON.stringify(actual)} to include ${JSON.stringify(expected)}`);
  }
}
export function assertThrows(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  errorClass?: new (...args: any[]) => Error,
  msgIncludes?: string,
): Error {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  if (caught === undefined) assert.fail("Expected function to throw");
  const err = caught as Error;
  const who = (err as { constructor?: { name?: string } })?.constructor?.name;
  if (errorClass && !(err instanceof errorClass)) {
    assert.fail(`Expected error to be instance of ${errorClass.name}, got ${who}: ${(err as Error)?.message}`);
  }
  if (msgIncludes !== undefined && !String(err?.message).includes(msgIncludes)) {
    assert.fail(`Expected error message to include ${JSON.stringify(msgIncludes)}, got ${JSON.stringify(err?.message)}`);
  }
  return err;
}
export async function assertRejects(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  errorClass?: new (...args: any[]) => Error,
  msgIncludes?: string,
): Promise<Error> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  if (caught === undefined) assert.fail("Expected promise to reject");
  const err = caught as Error;
  const who = (err as { constructor?: { name?: string } })?.constructor?.name;
  if (errorClass && !(err instanceof errorClass)) {
    assert.fail(`Expected error to be instance of ${errorClass.name}, got ${who}`);
  }
  if (msgIncludes !== undefined && !String(err?.message).includes(msgIncludes)) {
    assert.fail(`Expected error message to include ${JSON.stringify(msgIncludes)}, got ${JSON.stringify(err?.message)}`);
  }
  return err;
}
