import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  FireCause,
  FireOutcome,
  OverlapPolicy,
  ScheduleSpecSchema,
} from "../core/gen/taskframe/v1/schedule_pb.js";
import { RunState } from "../core/states.js";
import { startCluster } from "./helpers/cluster.js";
import { runSpec, shellTask, waitForRun } from "./helpers/engine.js";

/*
 * Exactly once across hubs, on the real services: three `task hub`
 * processes share one Postgres, every one of them fires schedules, and the
 * one that leads is killed (SIGKILL) in the middle. The wall clock runs for
 * real here (20 s): the property is about real timers and real processes.
 */
describe("schedules across hubs", () => {
  it("a 1-second cron for 20 s on 3 hubs fires exactly 20 runs, the leading hub killed at second 10", async () => {
    await using cluster = await startCluster({ hubs: 3, sidecars: 1, slots: 16 });
    const startMs = Math.ceil((Date.now() + 3_000) / 1_000) * 1_000;
    await cluster.client().putSchedules({
      schedules: [
        create(ScheduleSpecSchema, {
          name: "every-second",
          run: runSpec("every-second", [shellTask("beat", "echo beat")]),
          trigger: { case: "cron", value: { expression: "* * * * * *" } },
          policy: {
            overlap: OverlapPolicy.ALLOW,
            startUnixMs: BigInt(startMs),
            endUnixMs: BigInt(startMs + 20_000),
          },
        }),
      ],
    });

    await sleep(startMs + 10_000 - Date.now());
    const leading = await Promise.all(
      cluster.hubUrls.map(async (url) =>
        (await (await fetch(`${url}/healthz`)).text()).includes("leader: yes"),
      ),
    );
    const victim = Math.max(0, leading.indexOf(true));
    cluster.hubs[victim]!.child.kill("SIGKILL");
    await cluster.hubs[victim]!.exited;

    await sleep(startMs + 22_000 - Date.now());
    const survivor = cluster.clientOf(victim === 0 ? 1 : 0);
    const { fires } = await survivor.getScheduleHistory({ name: "every-second", limit: 100 });
    const slots = fires.map((f) => Number(f.slotUnixMs)).sort((a, b) => a - b);
    expect(slots).toEqual(Array.from({ length: 20 }, (_, k) => startMs + k * 1_000));
    expect(fires.every((f) => f.outcome === FireOutcome.STARTED)).toBe(true);
    // on time, every one: the failover cost less than the misfire grace, so nothing was a late catch-up
    expect(fires.filter((f) => f.cause !== FireCause.SCHEDULE)).toEqual([]);
    const lateness = fires.map((f) => Number(f.firedAtUnixMs - f.slotUnixMs));
    console.info(`fired ${Math.min(...lateness)}..${Math.max(...lateness)} ms after their slots`);
    expect(new Set(fires.map((f) => f.runId)).size).toBe(20);

    const { runs } = await survivor.listRuns({ limit: 100 });
    expect(runs.filter((r) => r.labels["taskframe.schedule"] === "every-second")).toHaveLength(20);
    for (const fire of fires) {
      const finished = await waitForRun(survivor, fire.runId);
      expect(finished.run.state).toBe(RunState.SUCCEEDED);
    }
    const [schedule] = (await survivor.listSchedules({ names: ["every-second"] })).schedules;
    expect(schedule!.nextFireUnixMs).toBe(0n); // past its end
  }, 90_000);
});
