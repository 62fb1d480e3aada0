import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { INVARIANTS, type InvariantId, type InvariantReport } from "./invariants.js";

/** Where each scenario leaves its report for the suite's summary (emptied when the suite starts). */
export const REPORTS_DIR = join(tmpdir(), "taskframe-chaos-reports");

export interface ScenarioReport {
  scenario: string;
  faults: string[];
  seconds: number;
  report: InvariantReport;
  [measure: string]: unknown;
}

export async function recordScenario(report: ScenarioReport): Promise<void> {
  await mkdir(REPORTS_DIR, { recursive: true });
  const file = `${report.scenario.replace(/[^A-Za-z0-9]+/g, "-")}.json`;
  await writeFile(join(REPORTS_DIR, file), JSON.stringify(report, null, 2));
}

export async function readReports(): Promise<ScenarioReport[]> {
  const files = (await readdir(REPORTS_DIR).catch(() => [])).filter((f) => f.endsWith(".json")).sort();
  const reports: ScenarioReport[] = await Promise.all(
    files.map(async (f) => JSON.parse(await readFile(join(REPORTS_DIR, f), "utf8"))),
  );
  // in the plan's order: scenarios are named after their test number
  return reports.sort((a, b) => Number.parseInt(a.scenario, 10) - Number.parseInt(b.scenario, 10));
}

/** The suite's summary as Markdown: a row per scenario, then every duplicate with its reason. */
export function summarize(reports: ScenarioReport[]): string {
  const ids = Object.keys(INVARIANTS) as InvariantId[];
  const lines = [
    `| scenario | tasks | executions | faults | duplicates | ${ids.join(" | ")} | seconds |`,
    `| --- | --: | --: | --: | --: | ${ids.map(() => ":-:").join(" | ")} | --: |`,
  ];
  let tasks = 0;
  let faults = 0;
  let failed = 0;
  for (const r of reports) {
    tasks += r.report.tasks;
    faults += r.faults.length;
    const cells = ids.map((id) =>
      r.report.violations[id].length === 0 ? "ok" : `**${r.report.violations[id].length} ✗**`,
    );
    if (cells.some((c) => c !== "ok")) failed++;
    lines.push(
      `| ${r.scenario} | ${r.report.tasks} | ${r.report.executions} | ${r.faults.length} | ${r.report.duplicates.length} | ${cells.join(" | ")} | ${r.seconds.toFixed(0)} |`,
    );
  }
  lines.push(
    "",
    `${reports.length} scenarios, ${tasks} tasks, ${faults} faults injected, ${failed} with violations.`,
  );
  const duplicates = reports.flatMap((r) => r.report.duplicates.map((d) => ({ ...d, scenario: r.scenario })));
  if (duplicates.length > 0) {
    lines.push("", "Duplicate executions and their recorded causes:", "");
    const byReason = new Map<string, number>();
    for (const d of duplicates) {
      // epochs and hosts' details vary per task: the reason without them groups alike duplicates
      const reason = `${d.scenario}: ${d.reason.replace(/\s*\([^)]*\)/g, "").replace(/\s+/g, " ")}`;
      byReason.set(reason, (byReason.get(reason) ?? 0) + d.executions - 1);
    }
    for (const [reason, count] of byReason) lines.push(`- ${count} × ${reason}`);
  }
  for (const r of reports) {
    const violations = ids.flatMap((id) =>
      r.report.violations[id].slice(0, 5).map((v) => `- ${r.scenario} ${id}: ${v}`),
    );
    if (violations.length > 0) lines.push("", ...violations);
  }
  lines.push(
    "",
    "Faults injected:",
    "",
    ...reports.map((r) => `- ${r.scenario}: ${r.faults.join(", ") || "none"}`),
  );
  return lines.join("\n");
}
