import { create } from "@bufbuild/protobuf";
import { MemoryControlBus, MemoryEventBus } from "../core/event-bus.js";
import { OverlapPolicy, ScheduleSpecSchema } from "../core/gen/taskframe/v1/schedule_pb.js";
import { RunSpecSchema } from "../core/gen/taskframe/v1/spec_pb.js";
import { MemoryWorkQueue } from "../core/memory-work-queue.js";
import { Hub } from "../hub/hub.js";
import { HubStore } from "../hub/store/hub-store.js";
import { createScratchDatabase } from "../hub/store/scratch-database.js";
import { type Scenario, throughputTable } from "./scenario.js";

const FIRE_AT = Date.parse("2026-03-01T10:01:00Z");

const runOf = (name: string) =>
  create(RunSpecSchema, {
    name,
    tasks: [{ name: "beat", target: { case: "exec", value: { command: "true", cwd: "/" } } }],
  });

export interface ScheduleBenchResult {
  schedules: number;
  /** One scheduler pass firing every schedule's slot. */
  firePassSeconds: number;
  /** The same runs through Hub.submit with idempotency keys, one after another (an external cron's path). */
  submitSeconds: number;
  /** Registering the schedules (one PutSchedules). */
  registerSeconds: number;
}

/**
 * `count` cron schedules due in the same second on one hub over Postgres,
 * fired by one scheduler pass (the clock is injected, so nothing waits for
 * the minute), beside the same runs submitted one by one.
 */
export async function scheduleBench(dbUrl: string, count: number): Promise<ScheduleBenchResult> {
  await using database = await createScratchDatabase(dbUrl, "taskframe_bench");
  await using store = await HubStore.open({ kind: "postgres", url: database.url });
  let now = FIRE_AT - 30_000;
  const hub = new Hub({
    store,
    queue: new MemoryWorkQueue(),
    events: new MemoryEventBus(),
    control: new MemoryControlBus(),
    schedules: { fire: false, clock: async () => now },
  });
  await using _ = hub;
  const specs = Array.from({ length: count }, (_, i) =>
    create(ScheduleSpecSchema, {
      name: `beat-${i}`,
      run: runOf(`beat-${i}`),
      trigger: { case: "cron", value: { expression: "* * * * *" } },
      policy: { overlap: OverlapPolicy.ALLOW },
    }),
  );
  let started = performance.now();
  await hub.schedules.put(specs);
  const registerSeconds = (performance.now() - started) / 1000;

  now = FIRE_AT + 100;
  started = performance.now();
  const fired = await hub.schedules.tick(now);
  const firePassSeconds = (performance.now() - started) / 1000;
  if (fired !== count) throw new Error(`the pass fired ${fired} schedules, expected ${count}`);

  started = performance.now();
  for (let i = 0; i < count; i++) await hub.submit(runOf(`beat-${i}`), `external:${i}:${FIRE_AT}`);
  const submitSeconds = (performance.now() - started) / 1000;
  return { schedules: count, firePassSeconds, submitSeconds, registerSeconds };
}

export const schedulesScenario: Scenario = {
  name: "schedules",
  summary:
    "N cron schedules due in the same second fired by one hub's scheduler pass on Postgres, beside\nthe same runs submitted one by one with idempotency keys (default 2000)",
  async run({ tasks = 2_000, db, progress }) {
    progress(`schedules: ${tasks} schedules due at once`);
    const result = await scheduleBench(db, tasks);
    return {
      data: result,
      tables: [
        throughputTable(`schedules: ${tasks} one-task cron schedules due in the same second`, [
          {
            runner: "taskframe scheduler pass",
            tasks: result.schedules,
            seconds: result.firePassSeconds,
            note: "lock, record the slot, write the run and its outbox row, advance",
          },
          {
            runner: "Hub.submit, one by one",
            tasks: result.schedules,
            seconds: result.submitSeconds,
            note: "what an external cron calling the API costs the hub",
          },
          {
            runner: "PutSchedules (register)",
            tasks: result.schedules,
            seconds: result.registerSeconds,
            note: "validate, compute first slots, insert",
          },
        ]),
      ],
    };
  },
};
