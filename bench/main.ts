import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { packagePath } from "../core/package-root.js";
import { defaultSlots } from "../embedded/engine.js";
import { catalogueRun } from "./catalogue.js";
import { distributedRun } from "./distributed.js";
import { embeddedRun } from "./embedded-fanout.js";
import { bullmqRun, handlersRun } from "./handlers.js";
import { machineInfo } from "./machine.js";
import { makeSeconds, xargsSeconds } from "./peers.js";

const USAGE = `Usage: npm run bench -- <scenario> [options]

Scenarios (each prints a table comparing runners measured in the same run):
  fanout        a fan-out of N /bin/true tasks between a root and a sink, in
                embedded mode (task run), beside xargs -P and make -j
  distributed   N independent /bin/true tasks through 1 hub + 2 sidecars
                (processes, over Postgres and NATS JetStream), the same
                through embedded mode, and xargs -P / make -j
  handlers      N no-op handler tasks through 1 hub + 1 sidecar (processes, over
                Postgres and NATS) served by one Python and one TypeScript SDK
                worker, beside the same jobs through BullMQ on Redis (default 50000)
  catalogue     validate a catalogue of N INI units in one Requires chain (default
                50000), beside the \`ini\` package only parsing the same files
  all           every scenario

Options:
  --tasks N      tasks (default: 10000 for fanout, 20000 for distributed)
  --slots N      tasks run at once per sidecar (default: 8 per core); also xargs -P / make -j
  --db URL       Postgres for the distributed scenario (default: env TASKFRAME_BENCH_DB or
                 postgres://postgres@127.0.0.1:5432/test; a scratch database is created and dropped)
  --nats URL     NATS for the distributed scenario (default: env TASKFRAME_BENCH_NATS or nats://127.0.0.1:4222)
  --redis URL    Redis for the BullMQ peer (default: env TASKFRAME_BENCH_REDIS or redis://127.0.0.1:6379)
  --concurrency N  handlers scenario: each worker's concurrency, and BullMQ's (default 64)
  --profile DIR  handlers: write a CPU profile of the hub and sidecar processes to DIR (node --cpu-prof)
  --json         print the results as JSON
  -h, --help     this text

Results are also written to bench/results/<scenario>-<time>.json.`;

interface Row {
  runner: string;
  tasks: number;
  seconds: number;
  peakRss: string;
  note: string;
}

const mb = (bytes: number | undefined) => (bytes === undefined ? "n/a" : `${Math.round(bytes / 2 ** 20)} MB`);

type Progress = (text: string) => void;

async function fanout(tasks: number, slots: number, progress: Progress): Promise<Row[]> {
  progress(`fanout: ${tasks} tasks, ${slots} at once`);
  progress("  taskframe embedded ...");
  const embedded = await embeddedRun(tasks, "fanout", slots);
  return [
    {
      runner: "taskframe embedded (task run)",
      tasks: embedded.tasks,
      seconds: embedded.totalSeconds,
      peakRss: `${mb(embedded.peakRssBytes)} + spawner ${mb(embedded.spawnerPeakRssBytes)}`,
      note: `run ${embedded.state}; submit ${embedded.submitSeconds.toFixed(2)}s; every transition recorded`,
    },
    ...peers(tasks, slots, progress),
  ];
}

async function distributed(
  tasks: number,
  slots: number,
  urls: { db: string; nats: string },
  progress: Progress,
): Promise<Row[]> {
  progress(`distributed: ${tasks} independent tasks, ${slots} slots per sidecar`);
  progress("  taskframe: 1 hub + 2 sidecars ...");
  const cluster = await distributedRun(tasks, "independent", {
    dbUrl: urls.db,
    natsUrl: urls.nats,
    hubs: 1,
    sidecars: 2,
    slots,
  });
  progress("  taskframe embedded ...");
  const embedded = await embeddedRun(tasks, "independent", 2 * slots);
  return [
    {
      runner: "taskframe 1 hub + 2 sidecars",
      tasks: cluster.tasks,
      seconds: cluster.totalSeconds,
      peakRss: `hub ${cluster.hubPeakRssBytes.map(mb).join(", ")}; sidecars ${cluster.sidecarPeakRssBytes.map(mb).join(", ")}`,
      note: `run ${cluster.state}; submit ${cluster.submitSeconds.toFixed(2)}s; Postgres + NATS on this box`,
    },
    {
      runner: `taskframe embedded (${2 * slots} slots)`,
      tasks: embedded.tasks,
      seconds: embedded.totalSeconds,
      peakRss: `${mb(embedded.peakRssBytes)} + spawner ${mb(embedded.spawnerPeakRssBytes)}`,
      note: `run ${embedded.state}; submit ${embedded.submitSeconds.toFixed(2)}s`,
    },
    ...peers(tasks, 2 * slots, progress),
  ];
}

async function handlers(
  tasks: number,
  concurrency: number,
  urls: { db: string; nats: string; redis: string; profile?: string | undefined },
  progress: Progress,
): Promise<Row[]> {
  progress(`handlers: ${tasks} no-op handler tasks, workers at concurrency ${concurrency}`);
  progress("  taskframe: 1 hub + 1 sidecar, one Python and one TypeScript worker ...");
  const ours = await handlersRun(tasks, {
    dbUrl: urls.db,
    natsUrl: urls.nats,
    concurrency,
    ...(urls.profile ? { profileDir: resolve(urls.profile) } : {}),
  });
  progress("  BullMQ on Redis ...");
  const bull = await bullmqRun(tasks, { redisUrl: urls.redis, concurrency });
  const ms = (n: number) => `${Math.round(n)} ms`;
  return [
    {
      runner: "taskframe hub + sidecar + Python & TS workers",
      tasks: ours.tasks,
      seconds: ours.totalSeconds,
      peakRss: `hub ${mb(ours.hubPeakRssBytes)}; sidecar ${mb(ours.sidecarPeakRssBytes)}`,
      note: `run ${ours.state}; submit ${ours.submitSeconds.toFixed(2)}s; submit->start p50 ${ms(ours.latency.p50)} p99 ${ms(ours.latency.p99)}; every transition in Postgres`,
    },
    {
      runner: `BullMQ (Redis), 1 worker x ${concurrency}`,
      tasks: bull.tasks,
      seconds: bull.totalSeconds,
      peakRss: "",
      note: `addBulk ${bull.submitSeconds.toFixed(2)}s; add->start p50 ${ms(bull.latency.p50)} p99 ${ms(bull.latency.p99)}; completed jobs removed`,
    },
  ];
}

async function catalogue(units: number, progress: Progress): Promise<Row[]> {
  progress(`catalogue: ${units} units in one Requires chain`);
  const result = await catalogueRun(units, 1);
  return [
    {
      runner: "taskframe loadCatalogue",
      tasks: result.units,
      seconds: result.validateSeconds,
      peakRss: "",
      note: "read, parse, validate every key, resolve references, find cycles",
    },
    {
      runner: "taskframe compileUnitRun",
      tasks: result.units,
      seconds: result.compileSeconds,
      peakRss: "",
      note: "the whole catalogue into one RunSpec",
    },
    {
      runner: "ini package (parse only)",
      tasks: result.units,
      seconds: result.iniParseSeconds,
      peakRss: "",
      note: "read + ini.parse, no validation, no positions",
    },
  ];
}

function peers(tasks: number, parallel: number, progress: Progress): Row[] {
  progress("  xargs -P ...");
  const xargs = xargsSeconds(tasks, parallel);
  progress("  make -j ...");
  const make = makeSeconds(tasks, parallel);
  return [
    {
      runner: `xargs -P ${parallel} /bin/true`,
      tasks,
      seconds: xargs,
      peakRss: "",
      note: "no record, no logs",
    },
    { runner: `make -j ${parallel}`, tasks, seconds: make, peakRss: "", note: "no record, no logs" },
  ];
}

function printTable(title: string, rows: Row[]): void {
  const header = ["runner", "items", "seconds", "items/s", "peak RSS", "note"];
  const body = rows.map((r) => [
    r.runner,
    String(r.tasks),
    r.seconds.toFixed(2),
    (r.tasks / r.seconds).toFixed(0),
    r.peakRss,
    r.note,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  process.stdout.write(
    `\n${title}\n${[line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...body.map(line)].join("\n")}\n`,
  );
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      tasks: { type: "string" },
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
  const scenario = positionals[0];
  if (values.help || !scenario) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  if (!["fanout", "distributed", "handlers", "catalogue", "all"].includes(scenario)) {
    process.stderr.write(`bench: unknown scenario '${scenario}'\n${USAGE}\n`);
    return 2;
  }
  const slots = values.slots ? Number(values.slots) : defaultSlots();
  const tasksFor = (fallback: number) => (values.tasks ? Number(values.tasks) : fallback);
  if (!Number.isInteger(slots) || slots < 1 || !Number.isInteger(tasksFor(1)) || tasksFor(1) < 1) {
    process.stderr.write("bench: --tasks and --slots expect positive integers\n");
    return 2;
  }
  const progress: Progress = (text) => {
    if (!values.json) process.stderr.write(`${text}\n`);
  };
  const results: Record<string, Row[]> = {};
  if (scenario === "fanout" || scenario === "all")
    results.fanout = await fanout(tasksFor(10_000), slots, progress);
  if (scenario === "distributed" || scenario === "all") {
    results.distributed = await distributed(
      tasksFor(20_000),
      slots,
      { db: values.db, nats: values.nats },
      progress,
    );
  }
  if (scenario === "handlers" || scenario === "all") {
    results.handlers = await handlers(
      tasksFor(50_000),
      Number(values.concurrency),
      { db: values.db, nats: values.nats, redis: values.redis, profile: values.profile },
      progress,
    );
  }
  if (scenario === "catalogue" || scenario === "all")
    results.catalogue = await catalogue(tasksFor(50_000), progress);
  const record = { scenario, at: new Date().toISOString(), machine: machineInfo(), slots, results };
  const file = packagePath("bench", "results", `${scenario}-${record.at.replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
    return 0;
  }
  for (const [name, rows] of Object.entries(results)) printTable(name, rows);
  const m = record.machine;
  process.stdout.write(
    `\n${m.cpus} cores, ${m.cpuModel}, node ${m.node}; saved bench/results/${file.split("/").pop()}\n`,
  );
  return 0;
}

process.exitCode = await main();
