import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { packagePath } from "../core/package-root.js";
import { defaultSlots } from "../sidecar/slots.js";
import { machineInfo } from "./machine.js";
import { type BenchContext, renderTable, type ScenarioResult } from "./scenario.js";
import { scenarios } from "./scenarios.js";

const USAGE = `Usage: npm run bench -- <scenario>... [options]

Scenarios (each prints a table comparing runners measured in the same run):
${scenarios.map((s) => `  ${s.name.padEnd(12)}${s.summary.replace(/\n/g, `\n${" ".repeat(14)}`)}${s.inAll === false ? " (not in all)" : ""}`).join("\n")}
  all         every scenario above but those marked "not in all", in this order (dag up to 100k)

Options:
  --tasks N        how many tasks (each scenario has its own default, in its summary)
  --seconds N      how long sustained scenarios run after warm-up
  --slots N        tasks run at once per sidecar (default: 8 per core); also xargs -P / make -j
  --concurrency N  each handler worker's concurrency, and BullMQ's (default 64)
  --db URL         Postgres (default: env TASKFRAME_BENCH_DB or postgres://postgres@127.0.0.1:5432/test;
                   a scratch database is created and dropped per run)
  --nats URL       NATS with JetStream (default: env TASKFRAME_BENCH_NATS or nats://127.0.0.1:4222)
  --redis URL      Redis for the BullMQ peer (default: env TASKFRAME_BENCH_REDIS or redis://127.0.0.1:6379)
  --profile DIR    write CPU profiles of the hub and sidecar processes to DIR (node --cpu-prof)
  --json           print the results as JSON instead of tables
  -h, --help       this text

Results are also written to bench/results/<scenario>-<time>.json with machine info.`;

function parse() {
  return parseArgs({
    allowPositionals: true,
    options: {
      tasks: { type: "string" },
      seconds: { type: "string" },
      slots: { type: "string" },
      db: {
        type: "string",
        default: process.env.TASKFRAME_BENCH_DB ?? "postgres://postgres@127.0.0.1:5432/test",
      },
      nats: { type: "string", default: process.env.TASKFRAME_BENCH_NATS ?? "nats://127.0.0.1:4222" },
      redis: { type: "string", default: process.env.TASKFRAME_BENCH_REDIS ?? "redis://127.0.0.1:6379" },
      concurrency: { type: "string", default: "64" },
      profile: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
}

function positiveInteger(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1)
    throw new UsageError(`--${name} expects a positive integer, got '${text}'`);
  return value;
}

class UsageError extends Error {}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse();
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const names = positionals.includes("all")
    ? scenarios.filter((s) => s.inAll !== false).map((s) => s.name)
    : positionals;
  const unknown = names.filter((name) => !scenarios.some((s) => s.name === name));
  if (unknown.length > 0) {
    process.stderr.write(
      `bench: unknown scenario '${unknown.join("', '")}' (expected one of: ${scenarios.map((s) => s.name).join(", ")}, all)\n`,
    );
    return 2;
  }
  let context: BenchContext;
  try {
    context = {
      tasks: positiveInteger("tasks", values.tasks),
      seconds: positiveInteger("seconds", values.seconds),
      slots: positiveInteger("slots", values.slots) ?? defaultSlots(),
      concurrency: positiveInteger("concurrency", values.concurrency) ?? 64,
      db: values.db,
      nats: values.nats,
      redis: values.redis,
      profileDir: values.profile ? resolve(values.profile) : undefined,
      partOfAll: positionals.includes("all"),
      progress: (text) => {
        if (!values.json) process.stderr.write(`${text}\n`);
      },
    };
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`bench: ${error.message}\n`);
    return 2;
  }
  const at = new Date().toISOString();
  const results: Record<string, ScenarioResult> = {};
  for (const name of names) {
    const scenario = scenarios.find((s) => s.name === name)!;
    context.progress(`\n${name}: ${scenario.summary.split("\n")[0]}`);
    const started = performance.now();
    results[name] = await scenario.run(context);
    context.progress(`${name}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    if (!values.json)
      for (const table of results[name].tables) process.stdout.write(`\n${renderTable(table)}\n`);
  }
  const record = {
    scenarios: names,
    at,
    machine: machineInfo(),
    options: {
      tasks: context.tasks,
      seconds: context.seconds,
      slots: context.slots,
      concurrency: context.concurrency,
    },
    results,
  };
  const label = positionals.includes("all") ? "all" : names.join("+");
  const file = packagePath("bench", "results", `${label}-${at.replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
    return 0;
  }
  const m = record.machine;
  process.stdout.write(
    `\n${m.cpus} cores, ${m.cpuModel}, node ${m.node}; saved bench/results/${file.split("/").pop()}\n`,
  );
  return 0;
}

process.exitCode = await main();
