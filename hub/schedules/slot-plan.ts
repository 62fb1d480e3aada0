import { createHash } from "node:crypto";
import {
  CatchUpPolicy,
  FireCause,
  type SchedulePolicy,
  type ScheduleSpec,
} from "../../core/gen/taskframe/v1/schedule_pb.js";
import { CronSchedule } from "../../core/schedules/cron-schedule.js";

/**
 * A slot this much late still fires as usual: a hub's failover, a slow
 * transaction. Older slots were missed (no hub ran) and follow the catch-up
 * policy.
 */
export const MISFIRE_GRACE_MS = 15_000;
/** CatchUp=backfill without max=. */
export const DEFAULT_BACKFILL_MAX = 10;
/** How many missed slots a history line counts before it says "10000+". */
const MISSED_COUNT_LIMIT = 10_000;

/** When a schedule's slots are: a cron expression, or a condition's evaluation grid. */
export interface SlotTimes {
  /** The first slot strictly after `afterMs`; undefined if none. */
  next(afterMs: number): number | undefined;
  /** The last `count` slots strictly before `beforeMs`, oldest first. */
  latest(count: number, beforeMs: number): number[];
}

class CronTimes implements SlotTimes {
  constructor(readonly cron: CronSchedule) {}
  next(afterMs: number): number | undefined {
    return this.cron.next(new Date(afterMs))?.getTime();
  }
  latest(count: number, beforeMs: number): number[] {
    return this.cron
      .previous(count, new Date(beforeMs))
      .map((date) => date.getTime())
      .reverse();
  }
}

/** Evaluations on a grid of `intervalMs` from the Unix epoch, so that every hub agrees on it. */
class IntervalTimes implements SlotTimes {
  constructor(readonly intervalMs: number) {}
  next(afterMs: number): number {
    return (Math.floor(afterMs / this.intervalMs) + 1) * this.intervalMs;
  }
  latest(count: number, beforeMs: number): number[] {
    const last = Math.ceil(beforeMs / this.intervalMs) - 1;
    const slots: number[] = [];
    for (let k = Math.max(0, last - count + 1); k <= last; k++) slots.push(k * this.intervalMs);
    return slots;
  }
}

export function slotTimesOf(spec: ScheduleSpec): SlotTimes {
  const trigger = spec.trigger;
  if (trigger.case === "cron")
    return new CronTimes(CronSchedule.parse(trigger.value.expression, trigger.value.timezone || "UTC"));
  if (trigger.case === "condition") return new IntervalTimes(Number(trigger.value.intervalMs));
  throw new Error(`schedule ${spec.name} has no trigger`);
}

/**
 * The first slot of a schedule registered (or resumed) at `nowMs`: the next
 * cron time, or at once for a condition. Undefined when the schedule has
 * ended.
 */
export function firstSlot(spec: ScheduleSpec, times: SlotTimes, nowMs: number): number | undefined {
  const policy = spec.policy;
  const start = Number(policy?.startUnixMs ?? 0n);
  const from = Math.max(nowMs, start);
  const slot = spec.trigger.case === "condition" ? from : times.next(from - 1);
  return withinEnd(policy, slot);
}

function withinEnd(policy: SchedulePolicy | undefined, slot: number | undefined): number | undefined {
  const end = Number(policy?.endUnixMs ?? 0n);
  return slot === undefined || (end > 0 && slot >= end) ? undefined : slot;
}

/** When a slot fires: the slot plus a delay below the jitter, the same on every hub. */
export function dueAt(spec: ScheduleSpec, slotMs: number): number {
  const jitter = Number(spec.policy?.jitterMs ?? 0n);
  if (jitter <= 0) return slotMs;
  const hash = createHash("sha256").update(`${spec.name}\0${slotMs}`).digest();
  return slotMs + (hash.readUInt32BE(0) % jitter);
}

export interface PlannedSlot {
  slotMs: number;
  cause: FireCause;
  /** False: recorded as missed, not fired. */
  fire: boolean;
  detail: string;
}

export interface SlotPlan {
  /** Oldest first. */
  slots: PlannedSlot[];
  /** The slot to wait for next; undefined once the schedule has ended. */
  nextSlotMs: number | undefined;
}

/**
 * What a cron schedule whose next slot is `nextSlotMs` does at `nowMs`:
 * the slots that are due fire, those missed by more than the grace follow
 * the catch-up policy. Pure (tests inject any time).
 *
 * - skip: the missed slots are recorded as one missed line;
 * - latest: the most recent missed slot fires, unless a slot on time fires
 *   anyway; the rest are recorded as missed;
 * - backfill(max=N): the N most recent missed slots fire, oldest first.
 */
export function planCronSlots(
  spec: ScheduleSpec,
  times: SlotTimes,
  nextSlotMs: number,
  nowMs: number,
): SlotPlan {
  const policy = spec.policy;
  const slots: PlannedSlot[] = [];
  const graceStart = nowMs - MISFIRE_GRACE_MS;
  const end = Number(policy?.endUnixMs ?? 0n) || Number.POSITIVE_INFINITY;
  const onTime: number[] = [];
  let at = nextSlotMs < graceStart ? (times.next(graceStart - 1) ?? Number.POSITIVE_INFINITY) : nextSlotMs;
  while (at <= nowMs && at < end) {
    onTime.push(at);
    at = times.next(at) ?? Number.POSITIVE_INFINITY;
  }
  if (nextSlotMs < graceStart) {
    const catchUp = policy?.catchUp || CatchUpPolicy.LATEST;
    const wanted =
      catchUp === CatchUpPolicy.SKIP
        ? 0
        : catchUp === CatchUpPolicy.BACKFILL
          ? policy?.backfillMax || DEFAULT_BACKFILL_MAX
          : onTime.length > 0
            ? 0
            : 1;
    const caught =
      wanted > 0 ? times.latest(wanted, Math.min(graceStart, end)).filter((slot) => slot >= nextSlotMs) : [];
    const firstCaught = caught[0] ?? Math.min(graceStart, end);
    if (nextSlotMs < firstCaught) {
      slots.push({
        slotMs: nextSlotMs,
        cause: FireCause.SCHEDULE,
        fire: false,
        detail: missedDetail(times, nextSlotMs, firstCaught, catchUp),
      });
    }
    for (const slot of caught)
      slots.push({ slotMs: slot, cause: FireCause.CATCH_UP, fire: true, detail: "caught up after downtime" });
  }
  for (const slot of onTime) slots.push({ slotMs: slot, cause: FireCause.SCHEDULE, fire: true, detail: "" });
  return {
    slots: slots.filter((slot) => slot.slotMs < end),
    nextSlotMs: withinEnd(policy, times.next(nowMs)),
  };
}

function missedDetail(times: SlotTimes, fromMs: number, beforeMs: number, catchUp: CatchUpPolicy): string {
  let count = 1;
  let last = fromMs;
  for (let at = times.next(fromMs); at !== undefined && at < beforeMs; at = times.next(at)) {
    last = at;
    if (++count >= MISSED_COUNT_LIMIT) break;
  }
  const counted = count >= MISSED_COUNT_LIMIT ? `${MISSED_COUNT_LIMIT}+` : String(count);
  const why = catchUp === CatchUpPolicy.SKIP ? "CatchUp=skip" : "older than what catch-up fires";
  return count === 1
    ? `missed while no hub could fire it (${why})`
    : `${counted} slots missed, ${new Date(fromMs).toISOString()} to ${new Date(last).toISOString()} (${why})`;
}

/**
 * The condition evaluation a schedule due at `nowMs` starts: one, at the
 * latest grid slot (evaluations missed during downtime are not made up: the
 * condition is about now).
 */
export function planEvaluation(
  spec: ScheduleSpec,
  times: SlotTimes,
  nextSlotMs: number,
  nowMs: number,
): SlotPlan {
  const latest = times.latest(1, nowMs + 1)[0] ?? nowMs;
  const slot = Math.max(nextSlotMs, latest);
  const end = Number(spec.policy?.endUnixMs ?? 0n);
  return {
    slots:
      end > 0 && slot >= end ? [] : [{ slotMs: slot, cause: FireCause.CONDITION, fire: true, detail: "" }],
    nextSlotMs: withinEnd(spec.policy, times.next(nowMs)),
  };
}
