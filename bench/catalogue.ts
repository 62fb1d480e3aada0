import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseIni } from "ini";
import { loadCatalogue } from "../core/definitions/units/catalogue.js";
import { compileUnitRun } from "../core/definitions/units/unit-run.js";
import { type Scenario, throughputTable } from "./scenario.js";

/** A unit of a Requires chain: each one requires the one before it. */
function unitText(chain: number, index: number): string {
  const requires = index === 0 ? "" : `Requires=c${chain}-u${index - 1}.service\n`;
  return (
    `[Dependencies]\n${requires}After=network.target # the network is up\n\n` +
    "[Service]\nRestart=on-failure\nLimitMem=512M\nMaxTime=1min 30s\n\n" +
    `[Checks]\ncheck-tool="./check-tool --quick"\n\n[Environment]\nSHARD="${chain}-${index}"\n\n` +
    `[Args]\nargs="--input data-${index}.csv --chain ${chain}"\n\n[Command]\ncommand="./job.sh"\n`
  );
}

export interface CatalogueResult {
  units: number;
  chains: number;
  validateSeconds: number;
  compileSeconds: number;
  /** The `ini` package reading and parsing the same files, no validation: a floor for any INI tool. */
  iniParseSeconds: number;
}

/** Writes `count` units in `chains` Requires chains to a scratch directory and times validating them. */
export async function catalogueRun(count: number, chains: number): Promise<CatalogueResult> {
  const depth = Math.ceil(count / chains);
  const dir = await mkdtemp(join(tmpdir(), "taskframe-catalogue-"));
  try {
    let written = 0;
    for (let chain = 0; chain < chains; chain++) {
      for (let index = 0; index < depth && written < count; index++, written++) {
        await writeFile(join(dir, `c${chain}-u${index}.service`), unitText(chain, index));
      }
    }
    let started = performance.now();
    const catalogue = await loadCatalogue(dir);
    const validateSeconds = (performance.now() - started) / 1000;
    started = performance.now();
    compileUnitRun(catalogue);
    const compileSeconds = (performance.now() - started) / 1000;
    started = performance.now();
    for (const file of readdirSync(dir)) parseIni(readFileSync(join(dir, file), "utf8"));
    const iniParseSeconds = (performance.now() - started) / 1000;
    return { units: written, chains, validateSeconds, compileSeconds, iniParseSeconds };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const catalogueScenario: Scenario = {
  name: "catalogue",
  summary:
    "validate a catalogue of N INI units in one Requires chain, beside the `ini` package\nonly parsing the same files (default 50000)",
  async run({ tasks = 50_000 }) {
    const result = await catalogueRun(tasks, 1);
    return {
      data: result,
      tables: [
        throughputTable(`catalogue: ${tasks} units in one Requires chain`, [
          {
            runner: "taskframe loadCatalogue",
            tasks: result.units,
            seconds: result.validateSeconds,
            note: "read, parse, validate every key, resolve references, find cycles",
          },
          {
            runner: "taskframe compileUnitRun",
            tasks: result.units,
            seconds: result.compileSeconds,
            note: "the whole catalogue into one RunSpec",
          },
          {
            runner: "ini package (parse only)",
            tasks: result.units,
            seconds: result.iniParseSeconds,
            note: "read + ini.parse, no validation, no positions",
          },
        ]),
      ],
    };
  },
};
