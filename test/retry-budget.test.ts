import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { RunState, TaskState } from "../core/states.js";
import { runSpec, runToEnd, shellTask, startEngine } from "./helpers/engine.js";

/*
 * RELIABILITY.md test 37's budget: however many retries fall due together
 * (a dependency that failed them all, then recovered), the hub releases at
 * most --retry-budget of them per second.
 */

const PER_SECOND = 5;
const TASKS = 20;

describe("a retry budget", () => {
  it(`releases ${TASKS} retries due at once at ${PER_SECOND} per second, and every task still succeeds`, async () => {
    await using engine = await startEngine("pglite", { retryBudget: { perSecond: PER_SECOND } });
    const { run, tasks } = await runToEnd(
      engine.client,
      runSpec(
        "storm",
        Array.from({ length: TASKS }, (_, i) =>
          // fails its first attempt, as against a dependency that is down; the retry is due at once
          shellTask(`call-${i}`, '[ "$TASKFRAME_ATTEMPT" -gt 1 ]', { retry: { retries: 1 } }),
        ),
      ),
    );
    expect(run.state).toBe(RunState.SUCCEEDED);
    expect([...tasks.values()].map((t) => [t.state, t.attempt])).toEqual(
      Array.from({ length: TASKS }, () => [TaskState.SUCCEEDED, 2]),
    );
    const released = (
      await engine.engine.store.database.rows<{ ms: number }>(
        sql`select (extract(epoch from at) * 1000)::float8 as ms from task_events
            where detail = 'attempt 2 queued' order by at`,
      )
    ).map((r) => r.ms);
    expect(released).toHaveLength(TASKS);
    // one second's worth at once, then PER_SECOND a second
    const spanMs = released.at(-1)! - released[0]!;
    expect(spanMs).toBeGreaterThanOrEqual(((TASKS - 2 * PER_SECOND) / PER_SECOND) * 1_000);
    for (const start of released) {
      const inOneSecond = released.filter((ms) => ms >= start && ms < start + 1_000).length;
      expect(inOneSecond).toBeLessThanOrEqual(2 * PER_SECOND);
    }
  });
});
