import { Command, CommanderError, Option } from "commander";
import pc from "picocolors";
import { TaskframeError, TaskframeErrorCode } from "../core/errors.js";
import { CliError, ExitCode } from "./cli-error.js";
import { conformanceCommand } from "./commands/conformance.js";
import { addDefinitionCommands, DEFINITION_ARGUMENT, paramOption } from "./commands/definitions.js";
import { devCommand } from "./commands/dev.js";
import { doctorCommand } from "./commands/doctor.js";
import { EXPORT_FORMATS, exportCommand } from "./commands/export.js";
import { addFakeDatacenterCommand } from "./commands/fake-datacenter.js";
import { hostsCommand, hostsHistoryCommand } from "./commands/hosts.js";
import { mapReduceCommitCommand } from "./commands/mapreduce.js";
import { mapReducePhaseCommand } from "./commands/mapreduce-phase.js";
import { queryCommand } from "./commands/query.js";
import {
  auditCommand,
  cancelCommand,
  listRunsCommand,
  logsCommand,
  statusCommand,
} from "./commands/read-commands.js";
import { resultCommand } from "./commands/result.js";
import { runCommand } from "./commands/run.js";
import {
  backfillCommand,
  scheduleApplyCommand,
  scheduleHistoryCommand,
  scheduleListCommand,
  schedulePauseCommand,
  scheduleRemoveCommand,
  scheduleResumeCommand,
  scheduleTriggerCommand,
} from "./commands/schedule.js";
import { addServiceCommands } from "./commands/services.js";
import { spawnCommand } from "./commands/spawn.js";
import { statsCommand } from "./commands/stats.js";
import { submitCommand } from "./commands/submit.js";
import { parsePositiveInt, storeOptionDefaults } from "./options.js";

function withStoreOptions(command: Command): Command {
  const defaults = storeOptionDefaults();
  return command
    .addOption(
      new Option("--data <dir>", "embedded data directory").default(defaults.data).env("TASKFRAME_DATA"),
    )
    .addOption(new Option("--hub <url>", "talk to the hub at this URL instead").env("TASKFRAME_HUB"))
    .addOption(
      new Option("--token <token>", "bearer token for the hub's API (docs/security-auth.md)").env(
        "TASKFRAME_TOKEN",
      ),
    )
    .addOption(
      new Option("--hub-tls-ca <file>", "PEM CA to trust for an https:// hub (else the system's)").env(
        "TASKFRAME_HUB_TLS_CA",
      ),
    )
    .addOption(
      new Option("--hub-tls-cert <file>", "PEM client certificate for a hub that requires one").env(
        "TASKFRAME_HUB_TLS_CERT",
      ),
    )
    .addOption(
      new Option("--hub-tls-key <file>", "the PEM key of --hub-tls-cert").env("TASKFRAME_HUB_TLS_KEY"),
    )
    .option("--json", "print JSON instead of a table");
}

/** The embedded engine's options, as `task run` and `task dev` take them. */
function withEngineOptions(command: Command): Command {
  return command
    .addOption(
      new Option("--data <dir>", "embedded data directory")
        .default(storeOptionDefaults().data)
        .env("TASKFRAME_DATA"),
    )
    .option("--slots <n>", "tasks that may run at once (default: 8 per core)", parsePositiveInt("--slots"))
    .addOption(
      new Option(
        "--jail <profile>",
        "jail of the tasks: auto (standard where the host supports it), none, standard, strict",
      )
        .choices(["auto", "none", "standard", "strict"])
        .default("auto")
        .env("TASKFRAME_JAIL"),
    )
    .addOption(
      new Option("--jail-user <user>", "who runs jailed tasks that set no User= (as root)")
        .default("nobody")
        .env("TASKFRAME_JAIL_USER"),
    )
    .addOption(
      new Option(
        "--pool-policy <file>",
        "YAML: per pool (or '*') the most a task may ask for, as task hub --pool-policy (SECURITY.md)",
      ).env("TASKFRAME_POOL_POLICY"),
    );
}

export function buildProgram(): Command {
  const program = new Command("task")
    .description(
      "Taskframe: run executables as a DAG of tasks, with retries, timeouts, logs and an audit trail.",
    )
    .version(process.env.npm_package_version ?? "0.1.0", "-V, --version")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();

  withEngineOptions(
    program
      .command("run")
      .description("run a pipeline file to the end on this machine (embedded mode: no services needed)")
      .argument("<file>", DEFINITION_ARGUMENT)
      .addOption(paramOption()),
  )
    .option("--json", "print the final state as JSON instead of a table")
    .option("-q, --quiet", "no live progress; only the summary")
    .addHelpText(
      "after",
      "\nExit status: 0 if every task succeeded, 1 if not, 2 for a bad pipeline, 130 if interrupted.",
    )
    .action(async (file: string, options) => setExit(await runCommand(file, options)));

  withEngineOptions(
    program
      .command("dev")
      .description(
        "fire schedules on this machine (embedded hub and sidecar in the foreground), printing each fire and run",
      )
      .argument(
        "[files...]",
        `${DEFINITION_ARGUMENT} with schedules (none: those registered in the data directory)`,
      )
      .addOption(paramOption())
      .option(
        "--dashboard <host:port>",
        "also serve the web dashboard and the hub API over HTTP there (e.g. 127.0.0.1:7070)",
      ),
  )
    .addHelpText(
      "after",
      "\nThe files' schedules are registered (replacing those of the same name) and fire, with those\n" +
        "registered before, while task dev runs; a file without a schedule runs once at start. Other task\n" +
        "commands on the same --data reach this process: task schedule ls, task ls, task logs TASK.\n" +
        "Ctrl-C (or SIGTERM) stops the firing and cancels the runs still going (a second Ctrl-C leaves at\n" +
        "once); every run stays for task ls. Examples:\n" +
        "  task dev units/backup.task pipelines/report.yaml\n  task dev\n" +
        "  task dev --dashboard 127.0.0.1:7070   (then open http://127.0.0.1:7070/)\n" +
        "\nExit status: 0 when stopped, 2 for a bad definition, 3 if the data directory is busy.",
    )
    .action(async (files: string[], options) => setExit(await devCommand(files, options)));

  const schedule = program
    .command("schedule")
    .description("list, register, pause, resume, trigger and remove schedules (cron and condition triggers)")
    .addHelpText(
      "after",
      "\nEach subcommand takes --data DIR (the embedded store, or the task dev running on it), --hub URL\n" +
        "and --json. Examples:\n  task schedule apply units/backup.task\n  task schedule ls\n" +
        "  task schedule pause backup --reason 'disk swap'\n  task schedule history backup --limit 10",
    );

  withStoreOptions(schedule.command("ls"))
    .description("list schedules: trigger, policies, next fire, last fire and its run, paused")
    .argument("[names...]", "only these schedules")
    .action(async (names: string[], options) => setExit(await scheduleListCommand(names, options)));

  withStoreOptions(schedule.command("apply"))
    .description("register the schedules the files define (replacing those of the same name)")
    .argument("<files...>", `${DEFINITION_ARGUMENT} with schedules`)
    .addOption(paramOption())
    .option("--tenant <name>", "the tenant of the schedules and their runs (default: the token's only one)")
    .addHelpText(
      "after",
      "\nA unit schedules with [RunIf] cron= (or Requires= with Interval=); a directory, each such unit in it;\n" +
        "a YAML pipeline with a schedule: block. A replaced schedule keeps its history and paused state.\n" +
        "In the embedded store, schedules fire while task dev runs on it.",
    )
    .action(async (files: string[], options) => setExit(await scheduleApplyCommand(files, options)));

  withStoreOptions(schedule.command("pause"))
    .description("stop a schedule from firing until it is resumed")
    .argument("<name>", "the schedule")
    .option("--reason <text>", "why, shown by task schedule ls")
    .action(async (name: string, options) => setExit(await schedulePauseCommand(name, options)));

  withStoreOptions(schedule.command("resume"))
    .description(
      "let a paused schedule fire again, from now on (the slots it missed while paused do not fire)",
    )
    .argument("<name>", "the schedule")
    .action(async (name: string, options) => setExit(await scheduleResumeCommand(name, options)));

  withStoreOptions(schedule.command("trigger"))
    .description(
      "start a run of a schedule now, whatever its trigger and overlap policy say; prints the run id",
    )
    .argument("<name>", "the schedule")
    .option("-f, --follow", "follow the run to its end; exit 0 only if every task succeeded")
    .option("-q, --quiet", "with --follow: no live progress, only the summary")
    .action(async (name: string, options) => setExit(await scheduleTriggerCommand(name, options)));

  withStoreOptions(schedule.command("history"))
    .description("a schedule's fires (slot, cause, outcome, run) and condition evaluations, newest first")
    .argument("<name>", "the schedule")
    .option("-n, --limit <n>", "how many fires and evaluations (default 50)", parsePositiveInt("--limit"))
    .action(async (name: string, options) => setExit(await scheduleHistoryCommand(name, options)));

  withStoreOptions(schedule.command("rm"))
    .description("remove a schedule (its runs stay)")
    .argument("<name>", "the schedule")
    .action(async (name: string, options) => setExit(await scheduleRemoveCommand(name, options)));

  withStoreOptions(program.command("backfill"))
    .description("fire every slot of a cron schedule in [--from, --to) that has not fired yet, oldest first")
    .argument("<name>", "the schedule")
    .requiredOption(
      "--from <time>",
      "ISO 8601 (2026-11-27, 2026-11-27T14:05, ...Z or +01:00); no offset: local",
    )
    .option("--to <time>", "ISO 8601, as --from (default: now)")
    .option("--max <n>", "refuse a range with more slots than this (default 1000)", parsePositiveInt("--max"))
    .addHelpText(
      "after",
      "\nSlots that fired before are counted, not fired again. Needs a running hub: task dev on --data, or\n" +
        "--hub URL. Example: task backfill nightly --from 2026-11-01 --to 2026-11-08\n" +
        "Exit status: 0 when every slot is done, 2 for a bad time or an unknown schedule.",
    )
    .action(async (name: string, options) => setExit(await backfillCommand(name, options)));

  withStoreOptions(program.command("submit"))
    .description("send a pipeline to a hub (--hub URL) and print the run id")
    .argument("<file>", DEFINITION_ARGUMENT)
    .addOption(paramOption())
    .option("-w, --wait", "follow the run to its end; exit 0 only if every task succeeded")
    .option("-q, --quiet", "with --wait: no live progress, only the summary")
    .option("--idempotency-key <key>", "submitting again with the same key returns the first run")
    .option("--tenant <name>", "the tenant the run belongs to (default: the token's only tenant, or default)")
    .action(async (file: string, options) => setExit(await submitCommand(file, options)));

  withStoreOptions(program.command("spawn"))
    .description("from inside a running task: add a child task <task>/<key> to its run")
    .argument("<key>", "the child's key, unique among this task's children")
    .argument("[command...]", "the child's command and arguments, after --")
    .option("--handler <name>", "a handler child (served by an SDK worker) instead of a command")
    .option("--input <json>", "the handler child's input, as JSON")
    .option("--needs <key...>", "sibling children that must succeed first")
    .option("--after <key...>", "sibling children that must end first (however they end)")
    .option("--retries <n>", "extra attempts after a failure", parsePositiveInt("--retries"))
    .option("--retry-interval <duration>", "wait between attempts, e.g. 5s")
    .option("--timeout <duration>", "limit per attempt, e.g. 10m")
    .addHelpText(
      "after",
      "\nThe sidecar sets TASKFRAME_TASK_TOKEN and TASKFRAME_HUB for every task; spawning the same key again\n" +
        "(e.g. from a retried attempt) returns the existing child. Tasks that need the spawning task wait\n" +
        "for its whole subtree. Example: task spawn part-1 --retries 2 -- ./process.sh 1",
    )
    .action(async (key: string, command: string[], options) =>
      setExit(await spawnCommand(key, command, options)),
    );

  const mapreduce = program
    .command("mapreduce")
    .description("the steps of a MapReduce job's tasks (docs/mapreduce.md); the job's tasks run these");
  mapreduce
    .command("map")
    .description("one map partition: its input through the map command, split by key into reduce partitions")
    .argument("<descriptor>", "the partition's descriptor, as JSON")
    .action(async (descriptor: string) => setExit(await mapReducePhaseCommand("map", descriptor)));
  mapreduce
    .command("reduce")
    .description(
      "one reduce partition: every map's records for it, sorted by key, through the reduce command",
    )
    .argument("<descriptor>", "the partition's descriptor, as JSON")
    .action(async (descriptor: string) => setExit(await mapReducePhaseCommand("reduce", descriptor)));
  withStoreOptions(mapreduce.command("commit"))
    .description("from a job's commit task: ask the hub to commit the job (fenced by TASKFRAME_TASK_TOKEN)")
    .action(async (options) => setExit(await mapReduceCommitCommand(options)));

  program
    .command("conformance")
    .description("check SDK workers against the Runner protocol's conformance suite")
    .argument("[command...]", "after --: a command that starts an adapter (docs/conformance-adapter.md)")
    .option("--sdk <name...>", "test a built-in SDK's adapter: typescript, python, go, java")
    .option("--name <sdk>", "column name for the adapter given after -- (default: adapter)")
    .option("--known-failing <file>", "patterns of cases the adapter after -- is known to fail")
    .option("--suites <dir>", "suite files to run (default: the package's conformance/suites)")
    .option("--run <pattern...>", "only cases matching these (`*` within a name segment, `**` across)")
    .option("--skip <pattern...>", "leave out cases matching these")
    .option("--logs <dir>", "write each adapter's output to DIR/<sdk>.log (default: a temporary directory)")
    .option(
      "--postgres <url>",
      "test against hub and sidecar processes over this Postgres (a scratch database)",
    )
    .option("--nats <url>", "... and this NATS with JetStream (a scratch namespace); default: embedded")
    .option("-q, --quiet", "no progress lines; only the matrix")
    .addHelpText(
      "after",
      "\nEach SDK runs against a fresh reference hub and sidecar (embedded). A case listed as known-failing\n" +
        "that passes fails the run, so lists cannot go stale. Exit status: 0 if every result was as expected.\n" +
        "Examples:\n  task conformance --sdk typescript python\n  task conformance --name ruby -- ruby adapter.rb",
    )
    .action(async (command: string[], options) => setExit(await conformanceCommand(command, options)));

  program
    .command("doctor")
    .description("show what this host can enforce for tasks: jail, namespaces, cgroups, limits, accounts")
    .option("--jail-user <user>", "the account jailed tasks run as by default (default nobody)")
    .option("--json", "print JSON instead of a table")
    .addHelpText(
      "after",
      "\nEnds by starting `true` in the default jail, as a sidecar would. Exit status: 0 if the standard jail\n" +
        "and every limit can be enforced here, 1 if not (the table says what is missing and how to get it).",
    )
    .action(async (options) => setExit(await doctorCommand(options)));

  withStoreOptions(program.command("status"))
    .description("show a run and its tasks (default: the newest run)")
    .argument("[run]", "run id or a unique prefix of it")
    .option("--state <state...>", "only tasks in these states (e.g. failed skipped)")
    .action(async (run: string | undefined, options) => setExit(await statusCommand(run, options)));

  withStoreOptions(program.command("ls"))
    .description("list runs, newest first")
    .option("-n, --limit <n>", "how many runs", parsePositiveInt("--limit"), 20)
    .option("-a, --all", "also the runs that evaluate schedules' conditions")
    .action(async (options) => setExit(await listRunsCommand(options)));

  withStoreOptions(program.command("logs"))
    .description("print a task's output (stdout to stdout; stderr and Taskframe's notes to stderr)")
    .argument("<task>", "task name (newest run that has it) or task id")
    .option("--run <run>", "the run to look in (id or prefix)")
    .option("--attempt <n>", "only this attempt", parsePositiveInt("--attempt"))
    .option("-f, --follow", "keep printing new output until the task finishes")
    .option("--stdout", "only stdout")
    .option("--stderr", "only stderr")
    .option("-t, --timestamps", "prefix each line with the time it was read")
    .option("--since <when>", "only output read since then: 10m (back from now) or 2026-11-27T14:00")
    .action(async (task: string, options) => setExit(await logsCommand(task, options)));

  withStoreOptions(program.command("audit"))
    .description("print every state change of a task, with time, attempt, host and reason")
    .argument("<task>", "task name (newest run that has it) or task id")
    .option("--run <run>", "the run to look in (id or prefix)")
    .action(async (task: string, options) => setExit(await auditCommand(task, options)));

  withStoreOptions(program.command("query"))
    .description(
      "run one read-only SQL SELECT over the views runs, tasks, attempts, task_events, schedules, schedule_fires, hosts",
    )
    .argument("<sql>", 'e.g. "SELECT state, count(*) FROM tasks GROUP BY state"')
    .option("--csv", "print CSV (with a header) instead of a table")
    .option(
      "--limit <n>",
      "at most this many rows (default 1000, at most 100000)",
      parsePositiveInt("--limit"),
    )
    .option(
      "--timeout <ms>",
      "statement timeout in ms (default 5000, at most 60000)",
      parsePositiveInt("--timeout"),
    )
    .addHelpText(
      "after",
      "\nThe query runs in a read-only transaction, as a role that can read only the views (docs/query.md\n" +
        "lists their columns); writes, a second statement and the tables under the views are refused.\n" +
        "Examples:\n" +
        '  task query "SELECT name, state, run_ms FROM tasks ORDER BY run_ms DESC NULLS LAST LIMIT 10"\n' +
        "  task query \"SELECT task_name, count(*) FROM attempts WHERE outcome = 'FAILED' GROUP BY 1\" --csv\n" +
        "\nExit status: 0 with the rows, 2 for a query refused or wrong.",
    )
    .action(async (sql: string, options) => setExit(await queryCommand(sql, options)));

  withStoreOptions(program.command("stats"))
    .description(
      "throughput, failures, retries, queue wait and run time percentiles of the tasks that ended lately",
    )
    .addOption(
      new Option(
        "--since <duration>",
        "the window: tasks that ended in the last ... (e.g. 15m, 24h)",
      ).default("1h"),
    )
    .addOption(
      new Option("--by <grouping>", "one row per task name, pool, host or end state").choices([
        "name",
        "pool",
        "host",
        "state",
      ]),
    )
    .option("--limit <n>", "groups at most, the busiest first (default 20)", parsePositiveInt("--limit"))
    .option("-w, --watch", "redraw every 2 s until Ctrl-C")
    .addHelpText(
      "after",
      "\nQueue wait is the time from queued (PENDING) to started (RUNNING), per attempt; run time is the\n" +
        "last attempt's. FAILED counts FAILED, TIMED_OUT and CHECK_FAILED. Examples:\n" +
        "  task stats --since 24h --by name\n  task stats --by host --watch",
    )
    .action(async (options) => setExit(await statsCommand(options)));

  withStoreOptions(program.command("result"))
    .description(
      "a task's result: a handler's output (to stdout), or an executable's end and its last log lines",
    )
    .argument("<task>", "task name (newest run that has it) or task id")
    .option("--run <run>", "the run to look in (id or prefix)")
    .option(
      "-n, --lines <n>",
      "log lines shown for a task without an output (default 10)",
      parsePositiveInt("--lines"),
    )
    .addHelpText(
      "after",
      "\nExit status: 0 if the task succeeded, 1 if it ended otherwise, 2 for an unknown task, 4 if it has\n" +
        "not ended yet.",
    )
    .action(async (name: string, options) => setExit(await resultCommand(name, options)));

  withStoreOptions(program.command("export"))
    .description("write a finished day (UTC) of runs, tasks and audit events as NDJSON or Parquet files")
    .requiredOption("--day <YYYY-MM-DD>", "the UTC day, once it has ended")
    .option("-o, --out <dir>", "the files go to DIR/DAY/{runs,tasks,task_events}.FORMAT", "export")
    .addOption(new Option("--format <format>", "file format").choices(EXPORT_FORMATS).default("ndjson"))
    .addHelpText(
      "after",
      "\nThe runs created that day, their tasks, and the state changes recorded that day, with the columns\n" +
        "of the query views (docs/query.md), typed in Parquet as in Postgres (times as timestamps, JSON as\n" +
        "JSON). Example: task export --day 2026-11-26 --format parquet --out /data/taskframe",
    )
    .action(async (options) => setExit(await exportCommand(options)));

  withStoreOptions(program.command("cancel"))
    .description("cancel a run: stop its running tasks and cancel the rest (default: the newest run)")
    .argument("[run]", "run id or a unique prefix of it")
    .option("--reason <text>", "recorded with every cancelled task")
    .action(async (run: string | undefined, options) => setExit(await cancelCommand(run, options)));

  const hosts = withStoreOptions(program.command("hosts"))
    .description("sidecar hosts by pool: state, load (running/slots), age; and hosts being provisioned")
    .option("--pool <pool>", "only this pool")
    .addHelpText(
      "after",
      "\nStates: ready (heartbeats arrive), draining, lost (no heartbeat for 10s), stopped, and for hosts the\n" +
        "autoscaler asked for: requested, provisioning, running (no sidecar yet), deleting. docs/autoscaling.md.",
    )
    .action(async (options) => setExit(await hostsCommand(options)));
  hosts
    .command("history")
    .description("every provisioning decision and provider call, oldest first")
    .option("-n, --limit <n>", "the newest N events (default 100)", parsePositiveInt("--limit"))
    .addHelpText("after", "\nTakes task hosts' options too: task hosts history --pool default --hub URL")
    // --data, --hub, --json and --pool are task hosts' own: they may stand before or after `history`
    .action(async (_options, command: Command) =>
      setExit(await hostsHistoryCommand(command.optsWithGlobals())),
    );

  addServiceCommands(program, setExit);
  addFakeDatacenterCommand(program, setExit);
  addDefinitionCommands(program, setExit);
  return program;
}

let exitCode: number = ExitCode.Ok;
const setExit = (code: number) => {
  exitCode = code;
};

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // help and version exit 0; usage errors were already printed by commander
      return error.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    }
    // one line per problem (a definition can have several), each grep-able on its own
    for (const line of describe(error).split("\n")) process.stderr.write(`${pc.red("task:")} ${line}\n`);
    return exitCodeOf(error);
  }
}

function describe(error: unknown): string {
  if (error instanceof CliError || error instanceof TaskframeError) return error.message;
  if (process.env.TASKFRAME_DEBUG && error instanceof Error) return error.stack ?? error.message;
  return error instanceof Error ? error.message : String(error);
}

function exitCodeOf(error: unknown): number {
  if (error instanceof CliError) return error.exitCode;
  if (error instanceof TaskframeError) {
    return error.code === TaskframeErrorCode.Unavailable ? ExitCode.Unavailable : ExitCode.Usage;
  }
  return ExitCode.Failed;
}
