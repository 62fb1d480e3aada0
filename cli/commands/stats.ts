import { setTimeout as sleep } from "node:timers/promises";
import { toJson } from "@bufbuild/protobuf";
import logUpdate from "log-update";
import pc from "picocolors";
import { parseDurationMs } from "../../core/definitions/duration.js";
import {
  type GetStatsResponse,
  GetStatsResponseSchema,
  type Percentiles,
  StatsGrouping,
  type StatsRow,
} from "../../core/gen/taskframe/v1/hub_pb.js";
import { CliError, ExitCode } from "../cli-error.js";
import { withHubClient } from "../hub-client.js";
import type { StoreOptions } from "../options.js";
import { formatDuration, timestamp } from "../render/format.js";
import { renderTable } from "../render/table.js";

export interface StatsCommandOptions extends StoreOptions {
  since: string;
  by?: "name" | "pool" | "host" | "state";
  limit?: number;
  watch?: boolean;
}

const GROUPINGS = {
  name: StatsGrouping.NAME,
  pool: StatsGrouping.POOL,
  host: StatsGrouping.HOST,
  state: StatsGrouping.STATE,
};
const WATCH_EVERY_MS = 2_000;

/**
 * `task stats`: what ended in the last `--since`: throughput, failures and
 * retries, queue wait and run time percentiles, by a grouping; the tasks
 * that failed most. `--watch` redraws it until Ctrl-C.
 */
export async function statsCommand(options: StatsCommandOptions): Promise<number> {
  let sinceMs: number;
  try {
    sinceMs = parseDurationMs(options.since);
  } catch (error) {
    throw new CliError(`--since: ${(error as Error).message}`, ExitCode.Usage);
  }
  if (sinceMs <= 0)
    throw new CliError("--since: expected a window longer than 0, e.g. 15m or 24h", ExitCode.Usage);
  const by = options.by ? GROUPINGS[options.by] : StatsGrouping.UNSPECIFIED;
  const read = () =>
    withHubClient(options, (client) =>
      client.getStats({ sinceMs: BigInt(sinceMs), by, limit: options.limit ?? 0 }),
    );
  if (!options.watch) {
    const stats = await read();
    process.stdout.write(
      options.json
        ? `${JSON.stringify(toJson(GetStatsResponseSchema, stats), null, 2)}\n`
        : `${renderStats(stats, options.by)}\n`,
    );
    return ExitCode.Ok;
  }
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  try {
    while (!stop.signal.aborted) {
      logUpdate(
        `${renderStats(await read(), options.by)}\n${pc.dim(`every ${WATCH_EVERY_MS / 1000}s; Ctrl-C stops`)}`,
      );
      await sleep(WATCH_EVERY_MS, undefined, { signal: stop.signal }).catch(() => {});
    }
  } finally {
    process.off("SIGINT", onSignal);
    logUpdate.done();
  }
  return ExitCode.Ok;
}

const ms = (value: number) => formatDuration(value);
const percentiles = (p: Percentiles | undefined) => (p ? [ms(p.p50), ms(p.p95), ms(p.p99)] : ["", "", ""]);

function statsLine(row: StatsRow, label: string): string[] {
  const tasks = Number(row.tasks);
  const rate = (n: bigint) => (tasks === 0 ? "" : `${((Number(n) / tasks) * 100).toFixed(1)}%`);
  return [
    label,
    String(tasks),
    row.perSecond === 0 || row.perSecond >= 10 ? row.perSecond.toFixed(0) : row.perSecond.toPrecision(2),
    rate(row.failed),
    String(row.retries),
    ...percentiles(row.queueWait),
    ...percentiles(row.runTime),
  ];
}

/** The stats as tables: the totals (and groups), then the tasks that failed most. */
export function renderStats(stats: GetStatsResponse, by?: string): string {
  const from = Number(stats.fromUnixMs);
  const to = Number(stats.toUnixMs);
  const lines = [
    pc.bold(`tasks that ended from ${timestamp(from)} to ${timestamp(to)} (${formatDuration(to - from)})`),
  ];
  const head = [
    by ? by.toUpperCase() : "",
    "TASKS",
    "PER S",
    "FAILED",
    "RETRIES",
    "WAIT P50",
    "P95",
    "P99",
    "RUN P50",
    "P95",
    "P99",
  ];
  const rows = stats.total ? [statsLine(stats.total, "all")] : [];
  for (const row of stats.rows) rows.push(statsLine(row, row.key || "-"));
  lines.push(renderTable(head, rows));
  if (stats.topFailing.length > 0) {
    lines.push("", pc.bold("failing most"));
    lines.push(
      renderTable(
        ["NAME", "FAILED", "OF", "LAST FAILURE"],
        stats.topFailing.map((f) => [f.name, String(f.failed), String(f.tasks), f.lastDetail.slice(0, 80)]),
      ),
    );
  }
  return lines.join("\n");
}
