import { rm, writeFile } from "node:fs/promises";
import { REPORTS_DIR, readReports, summarize } from "./harness/reports.js";

/** Empties the reports of an earlier run; at the end, prints the summary and keeps it in chaos-summary.md. */
export default async function setup(): Promise<() => Promise<void>> {
  await rm(REPORTS_DIR, { recursive: true, force: true });
  return async () => {
    const reports = await readReports();
    if (reports.length === 0) return;
    const summary = summarize(reports);
    await writeFile("chaos-summary.md", `# Chaos suite summary\n\n${summary}\n`);
    process.stdout.write(`\n${summary}\n\n(also in chaos-summary.md)\n`);
  };
}
