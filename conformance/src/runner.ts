import { createWriteStream, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AdapterProcess } from "./adapter-process.js";
import { matcher, readPatternFile } from "./patterns.js";
import { type ReferenceKind, startReference } from "./reference.js";
import { type CaseResult, isBad, printMatrix, type Verdict } from "./report.js";
import { runCase } from "./run-case.js";
import { loadSuites } from "./suites.js";

export interface AdapterUnderTest {
  /** Column name in the matrix, e.g. "python". */
  sdk: string;
  /** Shell command that starts the adapter. */
  command: string;
  /** Where the command runs. */
  cwd: string;
  /** Known-failing patterns for this SDK. */
  knownFailing?: string;
}

export interface ConformanceOptions {
  suitesDir: string;
  adapters: AdapterUnderTest[];
  /** Only cases matching these patterns. */
  run?: string[];
  skip?: string[];
  /** Adapter output is written here (one file per SDK); default: a temporary directory. */
  logDir?: string;
  /** What the adapters are tested against. @default embedded */
  reference?: ReferenceKind;
  progress: (text: string) => void;
  write: (text: string) => void;
}

/**
 * Runs every suite case against every adapter, each SDK on a fresh
 * reference hub + sidecar (embedded, or processes over Postgres and NATS),
 * and prints the matrix. Returns
 * whether every result was as expected.
 */
export async function runConformance(options: ConformanceOptions): Promise<boolean> {
  const cases = await loadSuites(options.suitesDir);
  const selected = cases.filter(
    (c) =>
      (!options.run?.length || matcher(options.run)(c.fullName)) &&
      !(options.skip?.length && matcher(options.skip)(c.fullName)),
  );
  if (selected.length === 0) throw new Error("no case matches --run/--skip");
  const results = new Map<string, CaseResult[]>();
  const logDir = options.logDir ?? mkdtempSync(join(tmpdir(), "taskframe-conformance-logs-"));
  mkdirSync(logDir, { recursive: true });
  for (const adapterSpec of options.adapters) {
    const knownFailing = matcher(
      adapterSpec.knownFailing ? await readPatternFile(adapterSpec.knownFailing) : [],
    );
    const log = createWriteStream(join(logDir, `${adapterSpec.sdk}.log`));
    const reference = await startReference(options.reference ?? { kind: "embedded" });
    options.progress(`${adapterSpec.sdk}: ${reference.description}; starting '${adapterSpec.command}'`);
    const adapter = new AdapterProcess({
      command: adapterSpec.command,
      cwd: adapterSpec.cwd,
      socketPath: reference.socketPath,
      registered: (name) => reference.registered(name),
      output: (chunk) => log.write(chunk),
    });
    const sdkResults: CaseResult[] = [];
    results.set(adapterSpec.sdk, sdkResults);
    try {
      await adapter.start();
      const client = reference.client;
      for (const { fullName, testCase } of selected) {
        let problems: string[];
        let ms = 0;
        try {
          ({ problems, ms } = await runCase(client, adapter, fullName, testCase));
        } catch (error) {
          problems = [`the runner failed: ${(error as Error).message}`];
        }
        const listed = knownFailing(fullName);
        const verdict: Verdict =
          problems.length === 0 ? (listed ? "unexpected-pass" : "pass") : listed ? "known-failing" : "fail";
        sdkResults.push({ name: fullName, verdict, problems, ms });
        options.progress(`${adapterSpec.sdk}: ${fullName} ${verdict} (${Math.round(ms)} ms)`);
      }
    } catch (error) {
      sdkResults.push({
        name: "adapter/starts",
        verdict: "fail",
        problems: [`${(error as Error).message} (adapter output: ${join(logDir, `${adapterSpec.sdk}.log`)})`],
        ms: 0,
      });
    } finally {
      await adapter.close();
      await reference[Symbol.asyncDispose]();
      log.end();
    }
  }
  printMatrix(results, options.write);
  options.write(`adapter output: ${logDir}\n`);
  return ![...results.values()].some((r) => r.some((c) => isBad(c.verdict)));
}
