/** What every bench scenario is given: the services to use and how big to go. */
export interface BenchContext {
  /** --tasks, when the user gave it; each scenario has its own default. */
  tasks: number | undefined;
  /** --slots: tasks run at once per sidecar (and xargs -P / make -j). */
  slots: number;
  /** --concurrency: each handler worker's concurrency (and BullMQ's). */
  concurrency: number;
  /** --seconds, when the user gave it: how long sustained scenarios run after warm-up. */
  seconds: number | undefined;
  db: string;
  nats: string;
  redis: string;
  /** Run as part of `all`: scenarios that would take many minutes at their full size use a smaller default. */
  partOfAll: boolean;
  /** --profile DIR: write CPU profiles of the hub and sidecar processes here. */
  profileDir: string | undefined;
  progress: (text: string) => void;
}

/** One printed table: a header and rows of cells, already formatted. */
export interface Table {
  title: string;
  header: string[];
  rows: string[][];
}

export interface ScenarioResult {
  tables: Table[];
  /** The raw numbers, for bench/results/*.json. */
  data: unknown;
}

export interface Scenario {
  name: string;
  /** One paragraph for --help. */
  summary: string;
  run(context: BenchContext): Promise<ScenarioResult>;
  /** false: only run when named (superseded by another scenario, kept for comparisons). */
  inAll?: boolean;
}

/** A runner's throughput: the common row of most scenarios. */
export interface ThroughputRow {
  runner: string;
  tasks: number;
  seconds: number;
  peakRss?: string;
  note?: string;
}

export const mb = (bytes: number | undefined) =>
  bytes === undefined ? "n/a" : `${Math.round(bytes / 2 ** 20)} MB`;

export const ms = (n: number) => (n < 10 ? `${n.toFixed(1)} ms` : `${Math.round(n)} ms`);

export function throughputTable(title: string, rows: readonly ThroughputRow[]): Table {
  return {
    title,
    header: ["runner", "items", "seconds", "items/s", "peak RSS", "note"],
    rows: rows.map((r) => [
      r.runner,
      String(r.tasks),
      r.seconds.toFixed(2),
      (r.tasks / r.seconds).toFixed(0),
      r.peakRss ?? "",
      r.note ?? "",
    ]),
  };
}

export function renderTable(table: Table): string {
  const widths = table.header.map((h, i) =>
    Math.max(h.length, ...table.rows.map((row) => row[i]?.length ?? 0)),
  );
  const line = (cells: string[]) => `| ${widths.map((w, i) => (cells[i] ?? "").padEnd(w)).join(" | ")} |`;
  return [
    table.title,
    line(table.header),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...table.rows.map(line),
  ].join("\n");
}

const rank = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

/** p50/p95/p99 of the samples (sorted in place). */
export function percentiles(samples: number[]): Percentiles {
  samples.sort((a, b) => a - b);
  return { p50: rank(samples, 50), p95: rank(samples, 95), p99: rank(samples, 99) };
}
