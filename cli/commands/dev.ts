import { setTimeout as sleep } from "node:timers/promises";
import pc from "picocolors";
import { loadDefinition } from "../../core/definitions/load.js";
import { loadWorkerPools, type WorkerPoolSpec } from "../../core/definitions/worker-pools.js";
import type { Run } from "../../core/gen/taskframe/v1/hub_pb.js";
import {
  EvaluationOutcome,
  type Schedule,
  type ScheduleFire,
} from "../../core/gen/taskframe/v1/schedule_pb.js";
import type { RunSpec } from "../../core/gen/taskframe/v1/spec_pb.js";
import { RunState } from "../../core/states.js";
import { SCHEDULE_LABEL } from "../../hub/schedules/schedule-spec.js";
import { type HubServer, startHubServer } from "../../hub/server.js";
import { CliError, ExitCode } from "../cli-error.js";
import { type EngineCommandOptions, engineOptionsOf } from "../engine-options.js";
import { type HubClient, toCliError } from "../hub-client.js";
import { shortId } from "../render/format.js";
import {
  clock,
  evaluationLine,
  evaluationOutcomeName,
  fireLine,
  registeredTable,
  runEndLine,
  runEndsLine,
} from "../render/schedules.js";
import { loadOptionsPerFile, loadScheduleFiles } from "./schedule.js";

export interface DevCommandOptions extends EngineCommandOptions {
  /** `--param NAME=VALUE` for `${{ params.NAME }}`. */
  param?: Record<string, string>;
  /** `--dashboard HOST:PORT`: the web dashboard and the hub API over HTTP. */
  dashboard?: string;
}

/** How often `task dev` asks the hub what fired and which runs ended. */
const POLL_MS = 1_000;

const out = (text: string) => process.stdout.write(`${text}\n`);
const note = (text: string) => process.stderr.write(pc.dim(`${text}\n`));

/**
 * `task dev [FILES...]`: hub and sidecar in this process on the embedded
 * store, firing schedules: those the files define (registered, or replaced,
 * at start), or with no files those already registered in the data
 * directory. A file that defines no schedule runs once at start. Prints a
 * line per fire and per finished run until Ctrl-C or SIGTERM, which stop
 * the firing and cancel the runs still going (a second one leaves at once).
 */
export async function devCommand(files: string[], options: DevCommandOptions): Promise<number> {
  const loadOptions = { params: options.param ?? {}, env: process.env };
  // everything is read first: a bad file stops task dev before it starts anything
  const { schedules, unscheduled } = await loadScheduleFiles(files, loadOptions);
  const once: { file: string; spec: RunSpec }[] = [];
  const perFile = await loadOptionsPerFile(files, loadOptions);
  for (const file of unscheduled)
    once.push({ file, spec: await loadDefinition(file, perFile.get(file) ?? loadOptions) });
  const workerPools = await loadPools(files);

  const since = Date.now();
  const { EmbeddedEngine } = await import("../../embedded/engine.js");
  const engine = await EmbeddedEngine.open({ ...engineOptionsOf(options, workerPools), schedules: true });
  const jail = engine.jail;
  if (jail && jail.profile === "none" && (options.jail ?? "auto") === "auto")
    process.stderr.write(pc.yellow(`warning: tasks run without a jail: ${jail.problems.join("; ")}\n`));
  const signals = new StopSignals();
  let dashboard: HubServer | undefined;
  try {
    const client = engine.client();
    // other task commands reach this hub through the data directory's socket
    await engine.serve();
    if (options.dashboard) {
      dashboard = await startHubServer(engine.hub, options.dashboard, async () => []).catch(
        (error: unknown) => {
          throw new CliError(
            `cannot serve the dashboard on ${options.dashboard}: ${String(error)}`,
            ExitCode.Usage,
          );
        },
      );
      out(`dashboard: http://${dashboard.address.replace(/^0\.0\.0\.0:/, "127.0.0.1:")}/`);
    }
    const monitor = new DevMonitor(client, since);
    const count = (n: number) => (n === 1 ? "1 schedule" : `${n} schedules`);
    const registered = schedules.length > 0 ? (await client.putSchedules({ schedules })).schedules : [];
    // the hub fires every schedule in the store, not only the files' ones
    const others = (await client.listSchedules({})).schedules.filter(
      (s) => !schedules.some((spec) => spec.name === s.spec?.name),
    );
    if (registered.length > 0) {
      out(`registered ${count(registered.length)}:`);
      out(registeredTable(registered, Date.now(), process.cwd()));
      if (others.length > 0) {
        const names = others.map((s) => s.spec?.name).join(", ");
        out(`also in ${options.data}, firing too: ${names} (task schedule ls)`);
      }
    } else if (others.length > 0) {
      out(`${count(others.length)} in ${options.data}:`);
      out(registeredTable(others, Date.now(), process.cwd()));
    } else {
      out(`no schedules in ${options.data} yet`);
      note("register some from another terminal with: task schedule apply FILE...");
    }
    for (const { file, spec } of once) {
      const { run } = await client.submitRun({ run: spec });
      if (!run) throw new CliError("the hub returned no run", ExitCode.Unavailable);
      out(
        `${pc.dim(clock(Date.now(), Date.now()))}  ${file}: no schedule in it: runs once, run ${shortId(run.id)}`,
      );
      monitor.watchRun(run.id, spec.name || file);
    }
    const data = options.data === ".taskframe" ? "" : ` --data ${options.data}`;
    note(
      `firing schedules; Ctrl-C stops. From another terminal: task schedule ls${data}, task ls${data}, ` +
        `task logs TASK${data}`,
    );
    while (!signals.stopped) {
      await monitor.tick(Date.now());
      // a stop ends the wait at once
      await sleep(POLL_MS, undefined, { signal: signals.signal }).catch(() => {});
    }
    engine.hub.stopFiring();
    const unfinished = (await client.listRuns({ limit: 1000 })).runs.filter(
      (r) => r.state === RunState.RUNNING,
    );
    for (const run of unfinished) await client.cancelRun({ runId: run.id, reason: "task dev stopped" });
    await settle(client, unfinished);
    out(stopMessage(unfinished));
    return ExitCode.Ok;
  } catch (error) {
    throw toCliError(error);
  } finally {
    signals.dispose();
    await dashboard?.close(1_000);
    await engine.close();
  }
}

/** Waits (a minute at most; a second Ctrl-C leaves at once) until the cancelled runs have ended. */
async function settle(client: HubClient, runs: readonly Run[]): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (const run of runs) {
    while (Date.now() < deadline) {
      const { run: now } = await client.getRun({ runId: run.id });
      if (!now || now.state !== RunState.RUNNING) break;
      await sleep(100);
    }
  }
}

/** What Ctrl-C did: no more fires, and the runs that were going cancelled. */
function stopMessage(cancelled: readonly Run[]): string {
  const head = `${pc.dim(clock(Date.now(), Date.now()))}  stopped: no more fires`;
  if (cancelled.length === 0) return `${head}; task ls lists the runs, task schedule history NAME the fires`;
  const ids = cancelled.slice(0, 5).map((r) => shortId(r.id));
  const more = cancelled.length > 5 ? `, +${cancelled.length - 5} more` : "";
  const runs = cancelled.length === 1 ? "1 run" : `${cancelled.length} runs`;
  return `${head}; ${runs} that were going cancelled (${ids.join(", ")}${more}); task ls lists every run`;
}

/** The worker pools of every file; a pool name declared by two files must be one pool. */
async function loadPools(files: readonly string[]): Promise<WorkerPoolSpec[]> {
  const pools = new Map<string, { spec: WorkerPoolSpec; file: string }>();
  for (const file of files) {
    for (const spec of await loadWorkerPools(file)) {
      const earlier = pools.get(spec.name);
      if (earlier && JSON.stringify(earlier.spec) !== JSON.stringify(spec, bigints))
        throw new CliError(
          `worker pool ${spec.name} is declared differently in ${earlier.file} and ${file}`,
          ExitCode.Usage,
        );
      pools.set(spec.name, { spec, file });
    }
  }
  return [...pools.values()].map((p) => p.spec);
}

const bigints = (_key: string, value: unknown) => (typeof value === "bigint" ? String(value) : value);

/** First SIGINT/SIGTERM: stop firing and close cleanly. A second one: leave at once. */
class StopSignals {
  readonly #stop = new AbortController();
  readonly #listener = () => {
    if (this.stopped) process.exit(ExitCode.Interrupted);
    process.stderr.write(pc.yellow("\nstopping (press Ctrl-C again to leave at once)...\n"));
    this.#stop.abort();
  };

  constructor() {
    process.on("SIGINT", this.#listener);
    process.on("SIGTERM", this.#listener);
  }

  get stopped(): boolean {
    return this.#stop.signal.aborted;
  }

  /** Aborted at the first signal. */
  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  dispose(): void {
    process.off("SIGINT", this.#listener);
    process.off("SIGTERM", this.#listener);
  }
}

/** Fires read per schedule and poll (the newest slots). */
const HISTORY_READ = 50;
/** At most this many fires of one schedule are printed per poll; the rest are counted. */
const FIRES_SHOWN = 10;
/** More runs of one schedule ending in one poll than this print as one line of counts. */
const RUN_ENDS_SHOWN = 5;
const FAILED_EVALUATIONS = new Set([EvaluationOutcome.FAILED, EvaluationOutcome.TIMED_OUT]);

/** Runs read when looking for those started for slots older than a schedule's newest fires. */
const RUNS_READ = 500;

/**
 * Polls the hub for what happened since `since`: new fires (and slots that
 * changed, a queued one starting), runs that ended, condition checks that
 * started or stopped failing. Asks for a schedule's history only when its
 * last fire, queue or row changed, so an idle poll is one ListSchedules.
 *
 * History lists the newest slots: runs started for older ones (a backfill)
 * are found among the newest runs by their schedule label, and counted.
 */
export class DevMonitor {
  /** Per schedule: what its last fire and queue looked like at the previous poll. */
  readonly #signatures = new Map<string, string>();
  /** Per schedule: the fires of its latest history read, by slot and cause, with outcome and run. */
  readonly #fires = new Map<string, Map<string, string>>();
  /** Per condition schedule: the last evaluation seen, and whether checks are failing. */
  readonly #evaluations = new Map<string, { key: string; failing: boolean }>();
  /** Runs not finished yet, with what to call them. */
  readonly #runs = new Map<string, string>();
  /** Runs already said to have started. */
  #reported = new Set<string>();
  #lastError = "";

  constructor(
    private readonly client: HubClient,
    private readonly since: number,
    private readonly print: (line: string) => void = out,
  ) {}

  watchRun(runId: string, label: string): void {
    this.#runs.set(runId, label);
    this.#reported.add(runId);
  }

  async tick(nowMs: number): Promise<void> {
    try {
      const tickStart = Date.now();
      let changed = false;
      const { schedules } = await this.client.listSchedules({});
      for (const schedule of schedules) {
        const name = schedule.spec?.name ?? "";
        const fire = schedule.lastFire;
        // the last fire is the newest slot: a backfill's older slots show only in updated_at
        const signature = fire
          ? `${fire.slotUnixMs}/${fire.firedAtUnixMs}/${fire.outcome}/${fire.runId}/${schedule.queued}/${schedule.updatedAtUnixMs}`
          : `/${schedule.queued}`;
        if (this.#signatures.get(name) !== signature) {
          this.#signatures.set(name, signature);
          changed = true;
          if (fire) await this.#readFires(name, nowMs);
        }
        this.#checkEvaluation(name, schedule, nowMs);
      }
      // a run and its schedule's row change in one transaction: a run started before this poll
      // that no fire read above told of was for an older slot
      if (changed) await this.#findOlderSlotRuns(tickStart, nowMs);
      await this.#readRuns(nowMs);
      this.#lastError = "";
    } catch (error) {
      // a hiccup is said once, not every second
      const message = error instanceof Error ? error.message : String(error);
      if (message !== this.#lastError) process.stderr.write(pc.yellow(`task dev: ${message}\n`));
      this.#lastError = message;
    }
  }

  async #readFires(name: string, nowMs: number): Promise<void> {
    const { fires } = await this.client.getScheduleHistory({ name, limit: HISTORY_READ });
    const previous = this.#fires.get(name) ?? new Map<string, string>();
    const current = new Map<string, string>();
    const fresh: { fire: ScheduleFire; changed: boolean }[] = [];
    for (const fire of [...fires].reverse()) {
      const key = `${fire.slotUnixMs}/${fire.cause}`;
      const state = `${fire.outcome}/${fire.runId}`;
      current.set(key, state);
      const before = previous.get(key);
      if (before === state) continue;
      // Fires from before task dev started are not news, unless their run is running: opening the
      // store ended every unfinished run, so a running one was started here (a slot that waited).
      const recent =
        Number(fire.firedAtUnixMs || fire.slotUnixMs) >= this.since || fire.runState === RunState.RUNNING;
      if (before === undefined && !recent) continue;
      fresh.push({ fire, changed: before !== undefined });
    }
    this.#fires.set(name, current);
    if (fresh.length > FIRES_SHOWN) {
      // every fire read was new: more may have come than one read holds
      const more = fresh.length === fires.length && fires.length === HISTORY_READ ? " or more" : "";
      this.print(
        `${pc.dim(clock(nowMs, nowMs))}  ${name}  ${fresh.length - FIRES_SHOWN}${more} fires not shown ` +
          `(task schedule history ${name})`,
      );
    }
    // a slot seen before that changed (a queued one starting) is news now, not when it fired
    for (const { fire, changed } of fresh.slice(-FIRES_SHOWN))
      this.print(fireLine(name, fire, nowMs, changed ? nowMs : undefined));
    for (const { fire } of fresh) if (fire.runId) this.watchRun(fire.runId, name);
    // the runs of older fires (before task dev, or not news) are not told of by the scan either
    for (const fire of fires) if (fire.runId) this.#reported.add(fire.runId);
  }

  async #findOlderSlotRuns(before: number, nowMs: number): Promise<void> {
    const { runs } = await this.client.listRuns({ limit: RUNS_READ });
    const started = new Map<string, number>();
    let cut = false;
    for (const [index, run] of runs.entries()) {
      const schedule = run.labels[SCHEDULE_LABEL];
      const created = Number(run.createdAtUnixMs);
      if (!schedule || this.#reported.has(run.id) || created < this.since || created >= before) continue;
      started.set(schedule, (started.get(schedule) ?? 0) + 1);
      this.watchRun(run.id, schedule);
      // the oldest run read is one of them: older ones may not have been read
      if (index === RUNS_READ - 1) cut = true;
    }
    for (const [schedule, count] of started) {
      const more = cut ? " or more" : "";
      const runsText = count === 1 && !more ? "1 run" : `${count}${more} runs`;
      this.print(
        `${pc.dim(clock(nowMs, nowMs))}  ${schedule}  ${runsText} started for older slots ` +
          `(task schedule history ${schedule})`,
      );
    }
    // what the newest runs do not hold will not be asked about again
    if (this.#reported.size > 4 * RUNS_READ) {
      const window = new Set(runs.map((r) => r.id));
      this.#reported = new Set([...this.#reported].filter((id) => window.has(id) || this.#runs.has(id)));
    }
  }

  #checkEvaluation(name: string, schedule: Schedule, nowMs: number): void {
    const evaluation = schedule.lastEvaluation;
    if (!evaluation?.outcome) return;
    const key = `${evaluation.slotUnixMs}/${evaluation.startedAtUnixMs}/${evaluation.outcome}`;
    const seen = this.#evaluations.get(name);
    if (seen?.key === key) return;
    const failing = FAILED_EVALUATIONS.has(evaluation.outcome);
    this.#evaluations.set(name, { key, failing });
    if (Number(evaluation.startedAtUnixMs || evaluation.slotUnixMs) < this.since) return;
    // a failing check is said when it starts failing and when it works again, not at every interval
    if (failing && !seen?.failing) {
      this.print(evaluationLine(name, evaluation, nowMs));
      this.print(pc.dim(`  (further failures of this check are not shown until it works again)`));
    } else if (!failing && seen?.failing) {
      const outcome = evaluationOutcomeName(evaluation.outcome);
      this.print(`${pc.dim(clock(nowMs, nowMs))}  ${name}  condition check works again (${outcome})`);
    }
  }

  async #readRuns(nowMs: number): Promise<void> {
    if (this.#runs.size === 0) return;
    const found = new Map<string, Run>();
    if (this.#runs.size > 20) {
      // many runs at once (a backfill): one list instead of a read per run
      const { runs } = await this.client.listRuns({ limit: 1000 });
      for (const run of runs) if (this.#runs.has(run.id)) found.set(run.id, run);
    }
    const ended = new Map<string, Run[]>();
    for (const [id, label] of this.#runs) {
      let run = found.get(id);
      try {
        run ??= (await this.client.getRun({ runId: id })).run;
      } catch {
        run = undefined;
      }
      if (!run) {
        this.#runs.delete(id); // gone (or unreadable): not watched any longer
        continue;
      }
      if (run.state === RunState.RUNNING || run.state === RunState.UNSPECIFIED) continue;
      this.#runs.delete(id);
      ended.set(label, [...(ended.get(label) ?? []), run]);
    }
    for (const [label, runs] of ended) {
      if (runs.length > RUN_ENDS_SHOWN) this.print(runEndsLine(label, runs, nowMs));
      else for (const run of runs) this.print(runEndLine(label, run, nowMs));
    }
  }
}
