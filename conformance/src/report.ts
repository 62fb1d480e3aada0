import pc from "picocolors";

export type Verdict = "pass" | "fail" | "known-failing" | "unexpected-pass";

export interface CaseResult {
  name: string;
  verdict: Verdict;
  problems: string[];
  ms: number;
}

const MARK: Record<Verdict, string> = {
  pass: pc.green("pass"),
  fail: pc.red("FAIL"),
  "known-failing": pc.yellow("xfail"),
  "unexpected-pass": pc.red("XPASS"),
};

/** Whether a verdict fails the run: a failure, or a listed failure that now passes (the list is stale). */
export const isBad = (verdict: Verdict) => verdict === "fail" || verdict === "unexpected-pass";

/** The pass/fail matrix: one row per case, one column per SDK; then every problem in full. */
export function printMatrix(results: ReadonlyMap<string, CaseResult[]>, write: (text: string) => void): void {
  const sdks = [...results.keys()];
  const names = [...new Set([...results.values()].flatMap((r) => r.map((c) => c.name)))];
  const width = Math.max(4, ...names.map((n) => n.length));
  const cell = (sdk: string) => Math.max(5, sdk.length);
  write(`${"CASE".padEnd(width)}  ${sdks.map((s) => s.toUpperCase().padEnd(cell(s))).join("  ")}\n`);
  for (const name of names) {
    const cells = sdks.map((sdk) => {
      const result = results.get(sdk)?.find((r) => r.name === name);
      const text = result ? MARK[result.verdict] : pc.dim("-");
      const visible = result
        ? result.verdict === "known-failing"
          ? 5
          : result.verdict.length > 4
            ? 5
            : 4
        : 1;
      return text + " ".repeat(Math.max(0, cell(sdk) - visible));
    });
    write(`${name.padEnd(width)}  ${cells.join("  ")}\n`);
  }
  for (const [sdk, cases] of results) {
    for (const result of cases.filter((c) => isBad(c.verdict))) {
      write(
        `\n${pc.red(`${sdk}: ${result.name}`)}${result.verdict === "unexpected-pass" ? " passes but is listed as known-failing: remove it from the list" : ""}\n`,
      );
      for (const problem of result.problems) write(`  - ${problem}\n`);
    }
  }
  for (const [sdk, cases] of results) {
    const count = (v: Verdict) => cases.filter((c) => c.verdict === v).length;
    write(
      `\n${sdk}: ${count("pass")} passed, ${count("fail")} failed, ${count("known-failing")} known failing, ${count("unexpected-pass")} unexpectedly passing`,
    );
  }
  write("\n");
}
