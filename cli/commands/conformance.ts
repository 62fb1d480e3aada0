import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { ReferenceKind } from "../../conformance/src/reference.js";
import type { AdapterUnderTest } from "../../conformance/src/runner.js";
import { BUILT_IN_ADAPTERS, knownFailingFile } from "../../conformance/src/sdks.js";
import { packagePath } from "../../core/package-root.js";
import { CliError, ExitCode } from "../cli-error.js";

export interface ConformanceCommandOptions {
  sdk?: string[];
  name?: string;
  knownFailing?: string;
  suites?: string;
  run?: string[];
  skip?: string[];
  logs?: string;
  postgres?: string;
  nats?: string;
  quiet?: boolean;
}

/**
 * `task conformance -- <adapter command>` or `task conformance --sdk python --sdk go`:
 * checks SDK workers against the Runner protocol's conformance suite.
 */
export async function conformanceCommand(
  command: string[],
  options: ConformanceCommandOptions,
): Promise<number> {
  const adapters: AdapterUnderTest[] = [];
  if (command.length > 0) {
    adapters.push({
      sdk: options.name ?? "adapter",
      command: command.map(shellQuote).join(" "),
      cwd: process.cwd(),
      ...(options.knownFailing ? { knownFailing: resolve(options.knownFailing) } : {}),
    });
  }
  for (const sdk of options.sdk ?? []) {
    const builtIn = BUILT_IN_ADAPTERS[sdk];
    if (!builtIn) {
      throw new CliError(
        `no SDK named '${sdk}': expected one of ${Object.keys(BUILT_IN_ADAPTERS).join(", ")} (or an adapter command after --)`,
        ExitCode.Usage,
      );
    }
    const knownFailing = knownFailingFile(sdk);
    adapters.push({
      sdk,
      ...builtIn,
      cwd: packagePath("."),
      ...(existsSync(knownFailing) ? { knownFailing } : {}),
    });
  }
  if (adapters.length === 0) {
    throw new CliError("nothing to test: give --sdk NAME or an adapter command after --", ExitCode.Usage);
  }
  const { runConformance } = await import("../../conformance/src/runner.js");
  const passed = await runConformance({
    suitesDir: options.suites ? resolve(options.suites) : packagePath("conformance/suites"),
    adapters,
    ...(options.run ? { run: options.run } : {}),
    ...(options.skip ? { skip: options.skip } : {}),
    ...(options.logs ? { logDir: resolve(options.logs) } : {}),
    reference: referenceOf(options),
    progress: options.quiet ? () => {} : (text) => process.stderr.write(`${text}\n`),
    write: (text) => process.stdout.write(text),
  });
  return passed ? ExitCode.Ok : ExitCode.Failed;
}

const shellQuote = (word: string) =>
  /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;

function referenceOf(options: ConformanceCommandOptions): ReferenceKind {
  if (!options.postgres && !options.nats) return { kind: "embedded" };
  if (!options.postgres || !options.nats) {
    throw new CliError("a distributed reference needs both --postgres URL and --nats URL", ExitCode.Usage);
  }
  return { kind: "distributed", postgresUrl: options.postgres, natsUrl: options.nats };
}
