import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { v4 as uuidv4 } from "uuid";
import { TaskframeError, TaskframeErrorCode } from "../../core/errors.js";
import {
  ConditionMode,
  EvaluationOutcome,
  FireCause,
  FireOutcome,
  OverlapPolicy,
  type Schedule,
  type ScheduleSpec,
  ScheduleSpecSchema,
} from "../../core/gen/taskframe/v1/schedule_pb.js";
import { keepRunning } from "../../core/keep-running.js";
import { type Logger, silentLogger } from "../../core/logger.js";
import { TaskState } from "../../core/states.js";
import { WakeUp } from "../../core/wake-up.js";
import type { Admission } from "../admission.js";
import type { Tx } from "../store/database.js";
import type { HubStore } from "../store/hub-store.js";
import { databaseNowMs } from "../store/queries/database-clock.js";
import { writeRun } from "../store/queries/insert-run.js";
import type { ReadyWork } from "../store/queries/ready-work.js";
import * as rows from "../store/queries/schedules.js";
import { scheduleToProto } from "./schedule-proto.js";
import { evaluationRunSpec, firedRunSpec, sameTiming, validateScheduleSpec } from "./schedule-spec.js";
import { dueAt, firstSlot, planCronSlots, planEvaluation, slotTimesOf } from "./slot-plan.js";

export interface SchedulerOptions {
  store: HubStore;
  /** Publishes work a committed transaction made ready. */
  publish: (ready: ReadyWork[]) => Promise<void>;
  /** Cancels a run (overlap policy cancel-previous). */
  cancelRun: (runId: string, reason: string) => Promise<unknown>;
  logger?: Logger;
  /**
   * The time slots are compared with. Postgres' clock by default, so that
   * hubs on hosts with skewed clocks agree; tests inject their own.
   */
  clock?: () => Promise<number>;
  /** The longest sleep between passes (queued slots and evaluations are noticed this often). @default 1000 */
  maxSleepMs?: number;
  /** Pool policies and size limits the runs of a schedule must meet when it is put. @default DEFAULT_ADMISSION */
  admission?: Admission;
}

/** Schedules locked per transaction. */
const BATCH = 50;
/** When something is due but locked by another hub, look again this soon. */
const MIN_SLEEP_MS = 25;
const DEFAULT_BACKFILL_SLOTS = 1_000;
const BACKFILL_BATCH = 100;
/** A schedule that failed to fire is looked at again this much later. */
const RETRY_BROKEN_MS = 60_000;

interface Effects {
  ready: ReadyWork[];
  cancels: { runId: string; reason: string }[];
}

/** Where a schedule stands while one transaction works on it. */
interface Standing {
  spec: ScheduleSpec;
  lastRunId: string | null;
  previousRunning: boolean;
  queued: number;
}

export interface BackfillProgress {
  slots: number;
  done: number;
  started: number;
  alreadyFired: number;
  runIds: string[];
}

/**
 * Fires schedules. Every hub runs one: a pass locks the schedules that have
 * work (`for update skip locked`), so hubs share them, and records each slot
 * once (unique (schedule, slot)) in the transaction that writes its run: a
 * hub killed mid-fire rolls back, and another hub fires the slot. Times come
 * from `clock` (Postgres by default); the sleeps between passes are
 * monotonic timers.
 */
export class Scheduler {
  readonly #store: HubStore;
  readonly #options: SchedulerOptions;
  readonly #logger: Logger;
  readonly #wakeUp = new WakeUp();
  readonly #clock: () => Promise<number>;

  constructor(options: SchedulerOptions) {
    this.#options = options;
    this.#store = options.store;
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? (() => databaseNowMs(this.#store.database));
  }

  get #database() {
    return this.#store.database;
  }

  /** Fires until `signal` aborts. */
  run(signal: AbortSignal): Promise<void> {
    return keepRunning("the scheduler", signal, (s) => this.#loop(s), this.#logger);
  }

  async #loop(signal: AbortSignal): Promise<void> {
    const maxSleepMs = this.#options.maxSleepMs ?? 1_000;
    while (!signal.aborted) {
      await this.tick();
      const [now, due] = await Promise.all([this.#clock(), rows.nextDueMs(this.#database)]);
      const sleepMs =
        due === undefined ? maxSleepMs : Math.min(maxSleepMs, Math.max(MIN_SLEEP_MS, due - now));
      await this.#wakeUp.wait({ signal, maxWaitMs: sleepMs });
    }
  }

  /** Ends a sleep between passes (a schedule changed). */
  wake(): void {
    this.#wakeUp.notify();
  }

  close(): void {
    this.#wakeUp.close();
  }

  /** One pass at `nowMs` (default: the clock): everything due fires. Returns the schedules worked on. */
  async tick(nowMs?: number): Promise<number> {
    const now = nowMs ?? (await this.#clock());
    // each schedule once per pass, even one whose work is never done (it cannot fire)
    const seen: string[] = [];
    for (;;) {
      const effects: Effects = { ready: [], cancels: [] };
      const processed = await this.#database.transaction(async (tx) => {
        effects.ready = [];
        effects.cancels = [];
        const due = await rows.lockSchedulesWithWork(this.#database, tx, now, BATCH, seen);
        for (const row of due) await this.#processAlone(tx, row, now, effects);
        return due.map((row) => row.name);
      });
      await this.#afterCommit(effects);
      seen.push(...processed);
      if (processed.length < BATCH) return seen.length;
    }
  }

  async #afterCommit(effects: Effects): Promise<void> {
    if (effects.ready.length > 0) await this.#options.publish(effects.ready);
    for (const { runId, reason } of effects.cancels) {
      await this.#options.cancelRun(runId, reason).catch((error: unknown) => {
        this.#logger.warn({ err: error, runId }, "could not cancel the previous run of a schedule");
      });
    }
  }

  /**
   * One schedule in a savepoint of its own: one that cannot fire (a stored spec this version
   * cannot read, a run its checks refuse) is logged and looked at again a minute later, and the
   * others fire.
   */
  async #processAlone(tx: Tx, row: rows.ScheduleRow, now: number, effects: Effects): Promise<void> {
    const own: Effects = { ready: [], cancels: [] };
    try {
      await tx.transaction((savepoint) => this.#process(savepoint, row, now, own));
    } catch (error) {
      this.#logger.error(
        { err: error, schedule: row.name },
        `schedule ${row.name} cannot fire; trying again in a minute`,
      );
      await rows.updateSchedule(this.#database, tx, row.name, { nextDueMs: now + RETRY_BROKEN_MS });
      return;
    }
    effects.ready.push(...own.ready);
    effects.cancels.push(...own.cancels);
  }

  async #process(tx: Tx, row: rows.ScheduleRow, now: number, effects: Effects): Promise<void> {
    const standing = standingOf(row);
    const { spec } = standing;
    const update: rows.ScheduleUpdate = {};
    if (spec.trigger.case === "condition") {
      update.conditionHeld = await this.#resolveEvaluations(tx, standing, row.condition_held, effects);
    }
    if (standing.queued > 0 && !standing.previousRunning) await this.#startQueued(tx, standing, effects);

    if (row.next_slot_ms !== null && row.next_due_ms !== null && row.next_due_ms <= now) {
      const times = slotTimesOf(spec);
      if (spec.trigger.case === "cron") {
        const plan = planCronSlots(spec, times, row.next_slot_ms, now);
        for (const slot of plan.slots) {
          if (slot.fire) await this.#fire(tx, standing, slot.slotMs, slot.cause, slot.detail, effects);
          else await this.#recordMissed(tx, spec.name, slot.slotMs, slot.detail);
        }
        update.nextSlotMs = plan.nextSlotMs;
      } else {
        const plan = planEvaluation(spec, times, row.next_slot_ms, now);
        for (const slot of plan.slots) await this.#evaluate(tx, spec, slot.slotMs, effects);
        update.nextSlotMs = plan.nextSlotMs;
      }
      update.nextDueMs = update.nextSlotMs === undefined ? undefined : dueAt(spec, update.nextSlotMs);
    }
    if (standing.lastRunId && standing.lastRunId !== row.last_run_id) update.lastRunId = standing.lastRunId;
    if (standing.queued !== row.queued) update.queued = standing.queued;
    await rows.updateSchedule(this.#database, tx, spec.name, update);
  }

  async #recordMissed(tx: Tx, schedule: string, slotMs: number, detail: string): Promise<void> {
    await rows.insertFire(this.#database, tx, {
      schedule,
      slotMs,
      outcome: FireOutcome.MISSED,
      cause: FireCause.SCHEDULE,
      detail,
    });
  }

  /** A slot under the overlap policy. Returns whether it started or queued a run. */
  async #fire(
    tx: Tx,
    standing: Standing,
    slotMs: number,
    cause: FireCause,
    detail: string,
    effects: Effects,
  ): Promise<boolean> {
    const { spec } = standing;
    const overlap = spec.policy?.overlap || OverlapPolicy.SKIP;
    const busy = standing.previousRunning || (overlap === OverlapPolicy.QUEUE && standing.queued > 0);
    if (busy && overlap === OverlapPolicy.SKIP) {
      await rows.insertFire(this.#database, tx, {
        schedule: spec.name,
        slotMs,
        outcome: FireOutcome.SKIPPED,
        cause,
        detail: `run ${standing.lastRunId} was still running (Overlap=skip)`,
      });
      return false;
    }
    if (busy && overlap === OverlapPolicy.QUEUE) {
      const queued = await rows.insertFire(this.#database, tx, {
        schedule: spec.name,
        slotMs,
        outcome: FireOutcome.QUEUED,
        cause,
        detail: `waiting for run ${standing.lastRunId} (Overlap=queue)`,
      });
      if (queued) standing.queued++;
      return queued;
    }
    const previous = standing.previousRunning ? standing.lastRunId : null;
    const started = await this.#start(tx, standing, slotMs, cause, detail, effects);
    if (started && previous && overlap === OverlapPolicy.CANCEL_PREVIOUS) {
      effects.cancels.push({
        runId: previous,
        reason: `replaced by the run of slot ${new Date(slotMs).toISOString()} (Overlap=cancel-previous)`,
      });
    }
    return started !== undefined;
  }

  /** Records the slot and writes its run; undefined if the slot was recorded before. */
  async #start(
    tx: Tx,
    standing: Standing,
    slotMs: number,
    cause: FireCause,
    detail: string,
    effects: Effects,
  ): Promise<string | undefined> {
    const { spec } = standing;
    const runId = uuidv4();
    const claimed = await rows.insertFire(this.#database, tx, {
      schedule: spec.name,
      slotMs,
      outcome: FireOutcome.STARTED,
      cause,
      runId,
      detail,
    });
    if (!claimed) return undefined;
    await this.#writeRun(tx, spec, slotMs, effects, runId);
    standing.lastRunId = runId;
    standing.previousRunning = true;
    return runId;
  }

  async #writeRun(
    tx: Tx,
    spec: ScheduleSpec,
    slotMs: number,
    effects: Effects,
    runId?: string,
  ): Promise<string> {
    const inserted = await writeRun(
      this.#database,
      tx,
      firedRunSpec(spec, slotMs),
      `schedule:${spec.name}:${slotMs}`,
      runId,
      rows.tenantOf(spec.name),
    );
    effects.ready.push(...inserted.ready);
    return inserted.runId;
  }

  async #startQueued(tx: Tx, standing: Standing, effects: Effects): Promise<void> {
    const slotMs = await rows.oldestQueuedSlot(this.#database, tx, standing.spec.name);
    if (slotMs === undefined) {
      standing.queued = 0;
      return;
    }
    const runId = await this.#writeRun(tx, standing.spec, slotMs, effects);
    await rows.startedFire(
      this.#database,
      tx,
      standing.spec.name,
      slotMs,
      runId,
      `started after run ${standing.lastRunId} finished (Overlap=queue)`,
    );
    standing.queued--;
    standing.lastRunId = runId;
    standing.previousRunning = true;
  }

  /** Starts the run that evaluates the condition, unless the previous evaluation is still going. */
  async #evaluate(tx: Tx, spec: ScheduleSpec, slotMs: number, effects: Effects): Promise<void> {
    if (await rows.hasPendingEvaluation(this.#database, tx, spec.name)) {
      this.#logger.debug(
        { schedule: spec.name },
        "the previous evaluation is still running; not starting another",
      );
      return;
    }
    const inserted = await writeRun(
      this.#database,
      tx,
      evaluationRunSpec(spec, slotMs),
      `schedule:${spec.name}:evaluation:${slotMs}`,
      undefined,
      rows.tenantOf(spec.name),
    );
    const taskId = inserted.ready[0]?.item.taskId;
    if (!taskId) return; // written before, under this key: that evaluation stands
    await rows.insertEvaluation(this.#database, tx, {
      schedule: spec.name,
      slotMs,
      runId: inserted.runId,
      taskId,
    });
    effects.ready.push(...inserted.ready);
  }

  /** Records the evaluations that ended and fires on those that held. Returns whether the condition holds. */
  async #resolveEvaluations(tx: Tx, standing: Standing, held: boolean, effects: Effects): Promise<boolean> {
    const { spec } = standing;
    if (spec.trigger.case !== "condition") return held;
    const mode = spec.trigger.value.mode || ConditionMode.EDGE;
    for (const ended of await rows.endedEvaluations(this.#database, tx, spec.name)) {
      const outcome = evaluationOutcomeOf(ended.task_state);
      const met = outcome === EvaluationOutcome.MET;
      const fire = met && (mode === ConditionMode.LEVEL || !held);
      if (outcome === EvaluationOutcome.MET || outcome === EvaluationOutcome.NOT_MET) held = met;
      const fired =
        fire &&
        (await this.#fire(tx, standing, ended.slot_ms, FireCause.CONDITION, "the condition held", effects));
      const durationMs =
        ended.started_at_ms !== null && ended.finished_at_ms !== null
          ? Math.max(0, Math.round(ended.finished_at_ms - ended.started_at_ms))
          : 0;
      await rows.resolveEvaluation(this.#database, tx, spec.name, ended.slot_ms, {
        outcome,
        exitCode:
          outcome === EvaluationOutcome.NOT_MET ? 1 : outcome === EvaluationOutcome.MET ? 0 : ended.exit_code,
        host: ended.host ?? "",
        startedAtMs: ended.started_at_ms,
        durationMs,
        detail: ended.detail ?? "",
        fired,
      });
    }
    return held;
  }

  // --- what the API asks ---

  /**
   * Registers schedules of `tenant` or replaces those of the same name (see PutSchedules in
   * hub.proto); a name another tenant holds is refused.
   */
  async put(specs: readonly ScheduleSpec[], tenant = "default"): Promise<Schedule[]> {
    const kinds = specs.map((spec) => validateScheduleSpec(spec, this.#options.admission));
    const names = specs.map((spec) => spec.name);
    const duplicate = names.find((name, index) => names.indexOf(name) !== index);
    if (duplicate)
      throw new TaskframeError(TaskframeErrorCode.InvalidArgument, `schedule ${duplicate} is given twice`);
    const now = await this.#clock();
    await this.#database.transaction(async (tx) => {
      const existing = new Map(
        (await rows.readSchedules(this.#database, names, tx, true)).map((row) => [row.name, row]),
      );
      for (const [index, spec] of specs.entries()) {
        const bytes = toBinary(ScheduleSpecSchema, spec);
        const kind = kinds[index]!;
        const old = existing.get(spec.name);
        if (old && old.tenant !== tenant) {
          throw new TaskframeError(
            TaskframeErrorCode.Conflict,
            `the schedule name ${spec.name} is taken (by another tenant): choose another`,
          );
        }
        if (old && sameTiming(fromBinary(ScheduleSpecSchema, old.spec), spec)) {
          await rows.updateSchedule(this.#database, tx, spec.name, { spec: { bytes, kind } });
          continue;
        }
        const nextSlotMs = firstSlot(spec, slotTimesOf(spec), now);
        const nextDueMs = nextSlotMs === undefined ? undefined : dueAt(spec, nextSlotMs);
        if (old) {
          await rows.updateSchedule(this.#database, tx, spec.name, {
            spec: { bytes, kind },
            nextSlotMs,
            nextDueMs,
            conditionHeld: false,
          });
        } else
          await rows.insertSchedule(this.#database, tx, {
            tenant,
            name: spec.name,
            bytes,
            kind,
            nextSlotMs,
            nextDueMs,
          });
      }
    });
    this.wake();
    return this.list(names);
  }

  /** The named schedules (all when none are named), by name; `tenants`: only theirs. */
  async list(names?: readonly string[], tenants?: readonly string[]): Promise<Schedule[]> {
    const found = await rows.readSchedules(
      this.#database,
      names && names.length > 0 ? names : undefined,
      undefined,
      false,
      tenants,
    );
    const missing = names?.find((name) => !found.some((row) => row.name === name));
    if (missing) throw rows.notFound(missing);
    const latest = await rows.latestOfSchedules(
      this.#database,
      found.map((row) => row.name),
    );
    return found.map((row) =>
      scheduleToProto(row, latest.fires.get(row.name), latest.evaluations.get(row.name)),
    );
  }

  async delete(name: string): Promise<void> {
    await rows.deleteSchedule(this.#database, name);
  }

  async pause(name: string, reason: string): Promise<Schedule> {
    await this.#locked(name, (tx) =>
      rows.updateSchedule(this.#database, tx, name, { paused: { paused: true, reason } }),
    );
    return (await this.list([name]))[0]!;
  }

  /** Resumes from now: the slots that passed while paused do not fire. */
  async resume(name: string): Promise<Schedule> {
    const now = await this.#clock();
    await this.#locked(name, async (tx, row) => {
      if (!row.paused) return;
      const spec = fromBinary(ScheduleSpecSchema, row.spec);
      const nextSlotMs = firstSlot(spec, slotTimesOf(spec), now);
      await rows.updateSchedule(this.#database, tx, name, {
        paused: { paused: false, reason: "" },
        nextSlotMs,
        nextDueMs: nextSlotMs === undefined ? undefined : dueAt(spec, nextSlotMs),
        conditionHeld: false,
      });
    });
    this.wake();
    return (await this.list([name]))[0]!;
  }

  /** Starts a run now, whatever the trigger and overlap policy say. Returns its id. */
  async trigger(name: string): Promise<string> {
    const now = await this.#clock();
    const effects: Effects = { ready: [], cancels: [] };
    const runId = await this.#locked(name, async (tx, row) => {
      const standing = standingOf(row);
      for (let slotMs = now; ; slotMs++) {
        const started = await this.#start(
          tx,
          standing,
          slotMs,
          FireCause.MANUAL,
          "task schedule trigger",
          effects,
        );
        if (started) {
          await rows.updateSchedule(this.#database, tx, name, { lastRunId: started });
          return started;
        }
      }
    });
    await this.#afterCommit(effects);
    return runId;
  }

  /** Fires every slot of a cron schedule in [from, to) that has not fired, oldest first; `to` is capped at now. */
  async *backfill(
    name: string,
    fromMs: number,
    toMs: number,
    maxSlots = 0,
  ): AsyncGenerator<BackfillProgress> {
    const limit = maxSlots || DEFAULT_BACKFILL_SLOTS;
    const [row] = await rows.readSchedules(this.#database, [name]);
    if (!row) throw rows.notFound(name);
    const spec = fromBinary(ScheduleSpecSchema, row.spec);
    if (spec.trigger.case !== "cron")
      throw new TaskframeError(
        TaskframeErrorCode.InvalidArgument,
        `schedule ${name} fires on a condition; backfill applies to cron schedules`,
      );
    if (toMs <= fromMs)
      throw new TaskframeError(TaskframeErrorCode.InvalidArgument, "backfill: --to must come after --from");
    // slots to come fire at their time: claimed now, they would not
    const endMs = Math.min(toMs, (await this.#clock()) + 1);
    const times = slotTimesOf(spec);
    const slots: number[] = [];
    for (let at = times.next(fromMs - 1); at !== undefined && at < endMs; at = times.next(at)) {
      if (slots.length === limit)
        throw new TaskframeError(
          TaskframeErrorCode.InvalidArgument,
          `backfill: more than ${limit} slots of ${name} between ${new Date(fromMs).toISOString()} and ${new Date(toMs).toISOString()}; narrow the range or raise --max`,
        );
      slots.push(at);
    }
    const progress: BackfillProgress = {
      slots: slots.length,
      done: 0,
      started: 0,
      alreadyFired: 0,
      runIds: [],
    };
    yield { ...progress };
    for (let first = 0; first < slots.length; first += BACKFILL_BATCH) {
      const effects: Effects = { ready: [], cancels: [] };
      const runIds = await this.#locked(name, async (tx, locked) => {
        const standing = standingOf(locked);
        const started: string[] = [];
        for (const slotMs of slots.slice(first, first + BACKFILL_BATCH)) {
          const runId = await this.#start(tx, standing, slotMs, FireCause.BACKFILL, "task backfill", effects);
          if (runId) started.push(runId);
        }
        if (standing.lastRunId && standing.lastRunId !== locked.last_run_id)
          await rows.updateSchedule(this.#database, tx, name, { lastRunId: standing.lastRunId });
        return started;
      });
      await this.#afterCommit(effects);
      const batch = Math.min(BACKFILL_BATCH, slots.length - first);
      progress.done += batch;
      progress.started += runIds.length;
      progress.alreadyFired += batch - runIds.length;
      yield { ...progress, runIds };
    }
  }

  async history(name: string, limit: number) {
    const [schedule] = await this.list([name]);
    const history = await rows.scheduleHistory(this.#database, name, limit);
    return { schedule: schedule!, ...history };
  }

  /** Runs `work` holding the schedule's row lock (waiting for another hub's pass). */
  #locked<T>(name: string, work: (tx: Tx, row: rows.ScheduleRow) => Promise<T>): Promise<T> {
    return this.#database.transaction(async (tx) => {
      const [row] = await rows.readSchedules(this.#database, [name], tx, true);
      if (!row) throw rows.notFound(name);
      return work(tx, row);
    });
  }
}

function standingOf(row: rows.ScheduleRow): Standing {
  return {
    spec: fromBinary(ScheduleSpecSchema, row.spec),
    lastRunId: row.last_run_id,
    previousRunning: row.previous_running,
    queued: row.queued,
  };
}

function evaluationOutcomeOf(state: TaskState): EvaluationOutcome {
  switch (state) {
    case TaskState.SUCCEEDED:
      return EvaluationOutcome.MET;
    case TaskState.SKIPPED:
      return EvaluationOutcome.NOT_MET;
    case TaskState.TIMED_OUT:
      return EvaluationOutcome.TIMED_OUT;
    case TaskState.CANCELLED:
      return EvaluationOutcome.CANCELLED;
    default:
      return EvaluationOutcome.FAILED;
  }
}
