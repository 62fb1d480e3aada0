#!/usr/bin/env node
// The `task` command. The TypeScript sources are compiled to dist/ by `npm run build` (run by `npm ci`).
import { existsSync } from "node:fs";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write("task: dist/ is missing; run `npm run build` in the taskframe package first\n");
  process.exit(3);
}
// `task ... | head` closes our stdout early: that ends the output, it is not a crash
process.stdout.on("error", (error) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});
const { main } = await import(entry.href);
process.exitCode = await main(process.argv);
