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
// a MapReduce job's map and reduce tasks start by the thousand: they skip loading the whole CLI
const [command, phase, descriptor] = process.argv.slice(2);
const phaseOnly =
  command === "mapreduce" &&
  (phase === "map" || phase === "reduce") &&
  process.argv.length === 5 &&
  !descriptor.startsWith("-");
const { main } = await import(
  phaseOnly ? new URL("../dist/cli/mapreduce-phase-main.js", import.meta.url).href : entry.href
);
process.exitCode = await main(process.argv);
