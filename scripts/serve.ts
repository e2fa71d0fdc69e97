/**
 * vmxlab's HTTP service (npm start): serves the API on 127.0.0.1:8787 with the bundled hook sets.
 *
 *   npm start -- [--port 8787] [--script path/to/hooks.ts] …   (--help lists the limits)
 *   node_modules/.bin/deno run -A scripts/serve.ts
 *   node_modules/.bin/bun scripts/serve.ts
 *
 * Exit status: 0 after SIGINT or SIGTERM, 2 when the service cannot start (a bad option, a port in
 * use): then the process ends at once, whatever workers or timers the failed start left behind.
 */
import { main } from "../api/serve.ts";

// Exit explicitly: nothing left over (a stuck connection, a timer) may keep a stopped server alive.
process.exit(await main(process.argv.slice(2)));
