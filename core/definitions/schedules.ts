import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { DefinitionError } from "../errors.js";
import {
  CatchUpPolicy,
  ConditionMode,
  ConditionTriggerSchema,
  type CronTrigger,
  CronTriggerSchema,
  OverlapPolicy,
  type SchedulePolicy,
  SchedulePolicySchema,
  type ScheduleSpec,
  ScheduleSpecSchema,
} from "../gen/taskframe/v1/schedule_pb.js";
import type { RunSpec } from "../gen/taskframe/v1/spec_pb.js";
import { knownDefinitionKind, type LoadOptions } from "./load.js";
import {
  type CatchUp,
  DEFAULT_CONDITION_INTERVAL_MS,
  type Overlap,
  type ScheduleSettings,
} from "./schedule-values.js";
import {
  type Catalogue,
  type CompiledUnit,
  compileUnitRun,
  loadDirectoryCatalogue,
  loadUnitCatalogue,
  loadUnitClosure,
} from "./units/index.js";
import { loadPipeline } from "./yaml-pipeline.js";

/**
 * The schedules a definition declares, each with the run it starts:
 *
 * - a unit (`.task`, `.service`, `.target`) with `[RunIf] cron=` (a cron schedule) or `Requires=`
 *   (a condition evaluated every `Interval=`, 1 minute by default): one schedule named after the
 *   unit's task, whose run is the unit and the units it pulls in (as `task run UNIT`); a unit
 *   without either: none;
 * - a directory of units: one schedule per unit with `cron=` or `Interval=`, each with its own
 *   run. A unit with `Requires=` but no `Interval=` is not a schedule there: its condition is only
 *   checked when a run of it starts;
 * - a YAML pipeline with `schedule:`: one schedule named after the pipeline (its `name:`, else its
 *   file name), whose run is the pipeline; without `schedule:`, none.
 *
 * Problems are DefinitionError(s) naming file, line and key, as for `loadDefinition`.
 */
export async function loadSchedules(path: string, options: LoadOptions = {}): Promise<ScheduleSpec[]> {
  const kind = await knownDefinitionKind(path);
  if (kind === "pipeline") {
    const { run, schedule } = await loadPipeline(path, {
      ...options,
      env: options.env ?? process.env,
      loadUnitClosure,
    });
    if (schedule === undefined) return [];
    const { cron, ...settings } = schedule;
    return [
      create(ScheduleSpecSchema, {
        name: run.name,
        run,
        trigger: { case: "cron", value: cronTrigger(cron, settings.timezone) },
        policy: policyOf(settings),
        source: path,
      }),
    ];
  }
  if (options.params && Object.keys(options.params).length > 0) {
    throw new DefinitionError(
      { file: path },
      `--param applies to YAML pipelines (\${{ params.NAME }}); ${kind === "unit" ? "a unit" : "a directory of units"} has no params`,
    );
  }
  if (kind === "unit") {
    const { catalogue, root } = loadUnitCatalogue(path);
    const unit = catalogue.units.get(root)!;
    if (unit.cron === undefined && unit.task.condition === undefined) return [];
    return [unitSchedule(unit, compileUnitRun(catalogue, [root], { source: path }), path)];
  }
  return catalogueSchedules(await loadDirectoryCatalogue(path));
}

/** A schedule per unit of the directory with cron= or Interval=; two of the same name are an error. */
function catalogueSchedules(catalogue: Catalogue): ScheduleSpec[] {
  const scheduled = [...catalogue.units.values()]
    .filter((unit) => !unit.builtin && (unit.cron !== undefined || unit.intervalMs !== undefined))
    .sort((a, b) => (a.fileName < b.fileName ? -1 : 1));
  const byName = new Map<string, CompiledUnit>();
  for (const unit of scheduled) {
    const earlier = byName.get(unit.name);
    if (earlier) {
      throw new DefinitionError(
        { file: unit.file, line: 1, column: 1 },
        `units ${earlier.fileName} and ${unit.fileName} would both be the schedule "${unit.name}"; rename one`,
      );
    }
    byName.set(unit.name, unit);
  }
  return scheduled.map((unit) => {
    const source = join(catalogue.dir, unit.fileName);
    return unitSchedule(unit, compileUnitRun(catalogue, [unit.fileName], { source }), source);
  });
}

/** The schedule of a unit that has cron= or a condition. */
function unitSchedule(unit: CompiledUnit, run: RunSpec, source: string): ScheduleSpec {
  const settings = unit.schedule ?? {};
  const policy = policyOf(settings);
  if (unit.cron !== undefined) {
    return create(ScheduleSpecSchema, {
      name: unit.name,
      run,
      trigger: { case: "cron", value: cronTrigger(unit.cron, settings.timezone) },
      policy,
      source,
    });
  }
  const condition = create(ConditionTriggerSchema, {
    task: unit.name,
    intervalMs: BigInt(unit.intervalMs ?? DEFAULT_CONDITION_INTERVAL_MS),
    timeoutMs: BigInt(settings.conditionTimeoutMs ?? 0),
    mode: settings.conditionMode === "level" ? ConditionMode.LEVEL : ConditionMode.EDGE,
  });
  return create(ScheduleSpecSchema, {
    name: unit.name,
    run,
    trigger: { case: "condition", value: condition },
    policy,
    source,
  });
}

const cronTrigger = (expression: string, timezone = ""): CronTrigger =>
  create(CronTriggerSchema, { expression, timezone });

const OVERLAP: Readonly<Record<Overlap, OverlapPolicy>> = {
  skip: OverlapPolicy.SKIP,
  queue: OverlapPolicy.QUEUE,
  allow: OverlapPolicy.ALLOW,
  "cancel-previous": OverlapPolicy.CANCEL_PREVIOUS,
};

const CATCH_UP: Readonly<Record<CatchUp["policy"], CatchUpPolicy>> = {
  skip: CatchUpPolicy.SKIP,
  latest: CatchUpPolicy.LATEST,
  backfill: CatchUpPolicy.BACKFILL,
};

/** The policy, every default written out: skip, latest, no jitter, no start or end. */
function policyOf(settings: ScheduleSettings): SchedulePolicy {
  const catchUp = settings.catchUp ?? { policy: "latest" };
  return create(SchedulePolicySchema, {
    overlap: OVERLAP[settings.overlap ?? "skip"],
    catchUp: CATCH_UP[catchUp.policy],
    backfillMax: catchUp.policy === "backfill" ? (catchUp.max ?? 0) : 0,
    jitterMs: BigInt(settings.jitterMs ?? 0),
    startUnixMs: BigInt(settings.startMs ?? 0),
    endUnixMs: BigInt(settings.endMs ?? 0),
  });
}
