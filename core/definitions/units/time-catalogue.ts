/**
 * Times a large catalogue: `npx tsx core/definitions/units/time-catalogue.ts [units] [chains]`.
 * Writes UNITS unit files in CHAINS Requires chains (each unit requires the one before it, so
 * chains are UNITS/CHAINS deep) to a temporary directory, then times loading and compiling them.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { buildCatalogue, loadCatalogue } from "./catalogue.js";
import { loadUnitRun } from "./load-units.js";
import type { UnitText } from "./read-units.js";
import { compileUnitRun } from "./unit-run.js";

function unitText(chain: number, index: number): string {
  const requires = index === 0 ? "" : `Requires=c${chain}-u${index - 1}.service\n`;
  return (
    `[Dependencies]\n${requires}After=network.target # the network is up\n\n` +
    "[Service]\nRestart=on-failure\nLimitMem=512M\nMaxTime=1min 30s\n\n" +
    `[Checks]\ncheck-tool="./check-tool --quick"\n\n[Environment]\nSHARD="${chain}-${index}"\n\n` +
    `[Args]\nargs="--input data-${index}.csv --chain ${chain}"\n\n[Command]\ncommand="./job.sh"\n`
  );
}

async function time<T>(label: string, action: () => Promise<T> | T): Promise<T> {
  const started = performance.now();
  const result = await action();
  console.log(`${label}: ${(performance.now() - started).toFixed(0)} ms`);
  return result;
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 50_000);
  const chains = Number(process.argv[3] ?? 1);
  const depth = Math.ceil(count / chains);
  const files: UnitText[] = [];
  for (let chain = 0; chain < chains; chain++) {
    for (let index = 0; index < depth && files.length < count; index++) {
      files.push({ fileName: `c${chain}-u${index}.service`, text: unitText(chain, index) });
    }
  }
  const dir = await mkdtemp(join(tmpdir(), "taskframe-catalogue-"));
  try {
    for (const file of files) await writeFile(join(dir, file.fileName), "text" in file ? file.text : "");
    console.log(`${files.length} units in ${chains} chain(s) of ${depth}`);
    await time(
      "validate in memory (parse, schema, references, cycles)",
      () => buildCatalogue(dir, files).units.size,
    );
    const catalogue = await time("loadCatalogue from disk (read + validate)", () => loadCatalogue(dir));
    const run = await time("compileUnitRun of every unit", () => compileUnitRun(catalogue));
    console.log(`  ${run.tasks.length} tasks`);
    await time("loadUnitRun of the deepest unit (reads its closure only)", () =>
      loadUnitRun(join(dir, `c0-u${depth - 1}.service`)),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
