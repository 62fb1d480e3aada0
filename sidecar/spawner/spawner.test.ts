import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { waitUntilGone } from "../../test/helpers/processes.js";
import { killLeftovers } from "./process-ledger.js";
import { Spawner } from "./spawner.js";

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin" };

describe("Spawner", () => {
  let spawner: Spawner;
  let dir: string;

  beforeEach(async () => {
    spawner = new Spawner();
    dir = await mkdtemp(join(tmpdir(), "taskframe-spawner-"));
  });
  afterEach(async () => {
    await spawner.close();
    await rm(dir, { recursive: true, force: true });
  });

  const sh = (
    script: string,
    extra: { signal?: AbortSignal; outputLimitBytes?: number; timeoutMs?: number } = {},
  ) => {
    const output: Record<string, Buffer[]> = { stdout: [], stderr: [] };
    const done = spawner.run({
      command: "/bin/sh",
      args: ["-c", script],
      env,
      cwd: dir,
      killGraceMs: 300,
      onOutput: (stream, data) => output[stream]!.push(Buffer.from(data)),
      ...extra,
    });
    return done.then((outcome) => ({
      outcome,
      stdout: Buffer.concat(output.stdout!).toString(),
      stderr: Buffer.concat(output.stderr!).toString(),
    }));
  };

  it("runs processes in the helper and relays their output and exit", async () => {
    const results = await Promise.all([
      sh("echo out; echo err >&2; exit 7"),
      sh("printf 'a\\nb'"),
      sh("kill -9 $$"),
    ]);
    expect(results[0]).toMatchObject({
      stdout: "out\n",
      stderr: "err\n",
      outcome: { exitCode: 7, signal: null },
    });
    expect(results[1]).toMatchObject({ stdout: "a\nb", outcome: { exitCode: 0 } });
    expect(results[2]?.outcome).toMatchObject({ exitCode: null, signal: "SIGKILL" });
  });

  it("reports a command that cannot start as a spawn error", async () => {
    const outcome = await spawner.run({
      command: "/no/such/program",
      args: [],
      env,
      cwd: dir,
      onOutput: () => {},
    });
    expect(outcome.spawnError?.code).toBe("ENOENT");
    expect(outcome.spawnError?.message).toContain("/no/such/program");
  });

  it("stops a process when its signal aborts, and times out like runProcess", async () => {
    const stop = new AbortController();
    const cancelled = sh("sleep 30", { signal: stop.signal });
    setTimeout(() => stop.abort(), 200);
    expect((await cancelled).outcome).toMatchObject({ cancelled: true, signal: "SIGTERM" });
    expect((await sh("sleep 30", { timeoutMs: 200 })).outcome.timedOut).toBe(true);
  });

  it("forwards at most outputLimitBytes and counts the rest", async () => {
    const { stdout, outcome } = await sh("head -c 100000 /dev/zero", { outputLimitBytes: 1000 });
    expect(stdout).toHaveLength(1000);
    expect(outcome.droppedOutputBytes).toBe(99_000);
  });

  it("leaves a ledger from which a successor kills what a killed spawner left running", async () => {
    const ledgerDir = join(dir, "ledger");
    const recording = new Spawner({ ledgerDir });
    const pidFile = join(dir, "orphan");
    const running = recording.run({
      command: "/bin/sh",
      args: ["-c", `echo $$ > ${pidFile}; exec sleep 30`],
      env,
      cwd: dir,
      onOutput: () => {},
    });
    let pid = 0;
    while (!pid) {
      pid = Number(await readFile(pidFile, "utf8").catch(() => "0"));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    process.kill(recording.pid!, "SIGKILL"); // the helper dies without cleaning up
    expect((await running).spawnError?.code).toBe("ESPAWNER");
    expect(await waitUntilGone(pid, 300)).toBe(false); // the task survived it
    expect(killLeftovers(ledgerDir)).toEqual([pid]);
    expect(await waitUntilGone(pid)).toBe(true);
    expect(killLeftovers(ledgerDir)).toEqual([]);
    await recording.close();
  });

  it("kills what it started when the sidecar closes it", async () => {
    const pidFile = join(dir, "pid");
    const running = sh(`echo $$ > ${pidFile}; exec sleep 30`);
    let pid = 0;
    while (!pid) {
      pid = Number(await readFile(pidFile, "utf8").catch(() => "0"));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await spawner.close();
    expect(await waitUntilGone(pid)).toBe(true);
    expect((await running).outcome.cancelled).toBe(true);
  });
});
