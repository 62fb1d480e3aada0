import { describe, expect, it } from "vitest";
import { allSteps, CommandFailedError } from "./commands.js";

const failed = (label: string, exitCode: number | null, signal: NodeJS.Signals | null = null) =>
  Promise.reject(new CommandFailedError(label, [label], exitCode, signal));

describe("allSteps", () => {
  it("reports the command that quit, not the one whose pipe it broke, whichever ended first", async () => {
    // sort's "Broken pipe" (exit 2) can be seen before the reducer's own exit 3
    await expect(
      allSteps([failed("sort", 2), failed("reduce", 3)], new AbortController()),
    ).rejects.toMatchObject({
      exitCode: 3,
      message: expect.stringMatching(/^reduce /),
    });
  });

  it("reports an upstream failure over the commands its stop killed", async () => {
    const steps = [
      failed("map", 5),
      Promise.reject(new Error("sort stopped: aborted")),
      failed("combine", null, "SIGTERM"),
    ];
    await expect(allSteps(steps, new AbortController())).rejects.toMatchObject({ exitCode: 5 });
  });

  it("stops the other steps at the first failure", async () => {
    const stop = new AbortController();
    await expect(allSteps([failed("map", 1), Promise.resolve()], stop)).rejects.toThrow(/map/);
    expect(stop.signal.aborted).toBe(true);
  });
});
