/**
 * A Linux session over HTTP: a session from the test kernel and initramfs (base64, as images are
 * sent), its console streamed as server-sent events, a command typed by POST /v1/vms/:id/console
 * and answered on the stream.
 */
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { assert, assertEquals, assertMatch } from "../tests/assert.ts";
import { createService } from "./app.ts";
import { withLimits } from "./config.ts";
import { call, REPO } from "./_testing.ts";

const service = await createService({ workers: 1, limits: withLimits({ maxBudget: 1_000_000_000, maxTimeoutMs: 600_000 }) });
const kernel = readFileSync(`${REPO}tests/guests/linux/bzImage`).toString("base64");
const initrd = readFileSync(`${REPO}tests/guests/linux/initramfs.cpio.gz`).toString("base64");

/** Collect the `console` events' text until `done(text)` holds. */
async function consoleUntil(res: Response, done: (text: string) => boolean): Promise<string> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = "", text = "";
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) return text;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!/^event: console$/m.test(block)) continue;
      const data = /^data: (.*)$/m.exec(block);
      if (data) text += JSON.parse(data[1]).text;
      if (done(text)) {
        await reader.cancel();
        return text;
      }
    }
  }
}

test("a session boots Linux from a kernel and an initrd, streams its console, and answers a command typed by POST /v1/vms/:id/console", async () => {
  const created = await call(service, "POST", "/v1/vms", {
    image: kernel, initrd, cmdline: "console=ttyS0 quiet", mem: "128M", engine: "interp", budget: 250_000_000, timeoutMs: 600_000,
  });
  assertEquals(created.status, 201, created.text);
  const id = created.body.id;
  const stream = await service.app.request(`/v1/vms/${id}/events`);
  assertEquals(stream.headers.get("content-type"), "text/event-stream");
  const answered = consoleUntil(stream, (t) => /\n42\r?\n/.test(t));

  // The boot: the prompt comes after ~160M instructions; the rest of the budget the guest idles.
  const boot = await call(service, "POST", `/v1/vms/${id}/run`, {});
  assertEquals(boot.status, 200, boot.text);
  assertEquals(boot.body.exit.reason, "budget");
  assertMatch(boot.body.console, /vmxlab initramfs: Linux 6\.1/);
  assert(boot.body.console.includes("vmxlab# "), boot.body.console.slice(-500));

  const typed = await call(service, "POST", `/v1/vms/${id}/console`, { input: "echo $((6*7))\n" });
  assertEquals(typed.status, 200, typed.text);
  assertEquals(typed.body, { pendingInput: 14 });
  const run = await call(service, "POST", `/v1/vms/${id}/run`, { budget: 20_000_000 });
  assertEquals(run.status, 200, run.text);
  assertMatch(run.body.console, /echo \$\(\(6\*7\)\)\r?\n42\r?\n/);
  assertMatch(await answered, /vmxlab# [^\n]*echo \$\(\(6\*7\)\)\r?\n42\r?\n/);

  // Bad input is refused with a problem naming the field; an initrd without a kernel too.
  const bad = await call(service, "POST", `/v1/vms/${id}/console`, { input: "" });
  assertEquals(bad.status, 400);
  const notKernel = await call(service, "POST", "/v1/runs", { image: "9A==", initrd });
  assertEquals(notKernel.status, 400);
  assertMatch(notKernel.text, /initrd and cmdline go with a Linux bzImage/);
  assertEquals((await call(service, "DELETE", `/v1/vms/${id}`)).status, 204);
  await service.close();
});
