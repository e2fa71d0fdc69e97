/**
 * `VMXLAB_ENGINE=jit|auto` makes jit or auto the default engine of every Machine in the process
 * (tests run a second time this way, scripts/test.sh). Then binaryen is loaded here, while the
 * module graph loads, so `new Machine()` can attach the JIT synchronously in scripts, child
 * processes and workers alike. Without the variable nothing is loaded.
 *
 * Kept apart from `engines.ts`: tiering.ts imports that one, and a module awaiting an import of a
 * module that imports it back would wait for itself.
 */
import { defaultEngine, engineFactory } from "./engines.ts";

if (defaultEngine() !== "interp" && engineFactory() === null) {
  const { loadJit } = await import("./tiering.ts");
  await loadJit();
}
