import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { packagePath } from "../core/package-root.js";
import { defaultSlots } from "../embedded/engine.js";
import { embeddedFanout } from "./embedded-fanout.js";
import { machineInfo } from "./machine.js";
import { makeSeconds, xargsSeconds } from "./peers.js";

const USAGE = `Usage: npm run bench -- <scenario> [options]

Scenarios:
  fanout     embedded mode (task run): a fan-out of N /bin/true tasks between a
             root and a sink, every transition recorded; beside it, xargs -P and
             make -j running /bin/true N times on the same machine, same run.

Options:
  --tasks N     tasks in the fan-out (default 10000)
  --slots N     tasks run at once (default: 8 per core); also xargs -P / make -j
  --json        print the results as JSON
  -h, --help    this text

Results are also written to bench/results/<scenario>-<time>.json.`;

interface Row {
  runner: string;
  tasks: number;
  seconds: number;
  tasksPerSecond: number;
  peakRss: string;
  note: string;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      tasks: { type: "string", default: "10000" },
      slots: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const scenario = positionals[0];
  if (values.help || !scenario) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  if (scenario !== "fanout" && scenario !== "all") {
    process.stderr.write(`bench: unknown scenario '${scenario}'\n${USAGE}\n`);
    return 2;
  }
  const tasks = Number(values.tasks);
  const slots = values.slots ? Number(values.slots) : defaultSlots();
  if (!Number.isInteger(tasks) || tasks < 1 || !Number.isInteger(slots) || slots < 1) {
    process.stderr.write("bench: --tasks and --slots expect positive integers\n");
    return 2;
  }

  const progress = (text: string) => {
    if (!values.json) process.stderr.write(`${text}\n`);
  };
  progress(`fanout: ${tasks} tasks, ${slots} at once`);
  progress("  taskframe embedded ...");
  const taskframe = await embeddedFanout(tasks, slots);
  progress("  xargs -P ...");
  const xargs = xargsSeconds(tasks, slots);
  progress("  make -j ...");
  const make = makeSeconds(tasks, slots);

  const mb = (bytes: number | undefined) =>
    bytes === undefined ? "n/a" : `${Math.round(bytes / 2 ** 20)} MB`;
  const rows: Row[] = [
    {
      runner: "taskframe embedded (task run)",
      tasks: taskframe.tasks,
      seconds: taskframe.totalSeconds,
      tasksPerSecond: taskframe.tasksPerSecond,
      peakRss: `${mb(taskframe.peakRssBytes)} + spawner ${mb(taskframe.spawnerPeakRssBytes)}`,
      note: `run ${taskframe.state}; submit ${taskframe.submitSeconds.toFixed(2)}s; every transition recorded`,
    },
    {
      runner: `xargs -P ${slots} /bin/true`,
      tasks,
      seconds: xargs,
      tasksPerSecond: tasks / xargs,
      peakRss: "",
      note: "no record, no logs",
    },
    {
      runner: `make -j ${slots}`,
      tasks,
      seconds: make,
      tasksPerSecond: tasks / make,
      peakRss: "",
      note: "no record, no logs",
    },
  ];
  const result = {
    scenario: "fanout",
    at: new Date().toISOString(),
    machine: machineInfo(),
    slots,
    taskframe,
    rows,
  };
  const file = packagePath("bench", "results", `fanout-${result.at.replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);

  if (values.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  }
  const header = ["runner", "tasks", "seconds", "tasks/s", "peak RSS", "note"];
  const body = rows.map((r) => [
    r.runner,
    String(r.tasks),
    r.seconds.toFixed(2),
    r.tasksPerSecond.toFixed(0),
    r.peakRss,
    r.note,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  process.stdout.write(
    [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...body.map(line)].join("\n") +
      `\n\n${result.machine.cpus} cores, ${result.machine.cpuModel}, node ${result.machine.node}; saved ${join("bench", "results", file.split("/").pop()!)}\n`,
  );
  return 0;
}

process.exitCode = await main();
