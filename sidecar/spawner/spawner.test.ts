import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Logger, silentLogger } from "../../core/logger.js";
import { buildNativeSpawner, nativeSpawnerSupported } from "../../test/helpers/native-spawner.js";
import { waitUntilGone } from "../../test/helpers/processes.js";
import type { RunProcessOptions } from "../process-runner.js";
import { killLeftovers } from "./process-ledger.js";
import { Spawner, type SpawnerOptions } from "./spawner.js";

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
// generous: a shared, noisy 2-core box
const SLACK_MS = 4000;

let native: ReturnType<typeof buildNativeSpawner> | undefined;
beforeAll(() => {
  if (nativeSpawnerSupported) native = buildNativeSpawner();
});
afterAll(() => native?.remove());

const HELPERS = nativeSpawnerSupported ? (["node", "native"] as const) : (["node"] as const);
const helperOption = (kind: "node" | "native"): SpawnerOptions["nativeHelper"] =>
  kind === "native" ? native!.path : false;

describe.each(HELPERS)("Spawner with the %s helper", (kind) => {
  let spawner: Spawner;
  let dir: string;

  beforeEach(async () => {
    spawner = new Spawner({ nativeHelper: helperOption(kind) });
    expect(spawner.helperKind).toBe(kind);
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
    const recording = new Spawner({ ledgerDir, nativeHelper: helperOption(kind) });
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

  it("leaves an empty ledger directory when it ends with nothing running", async () => {
    const ledgerDir = join(dir, "ledger");
    const recording = new Spawner({ ledgerDir, nativeHelper: helperOption(kind) });
    const run = (script: string) =>
      recording.run({ command: "/bin/sh", args: ["-c", script], env, cwd: dir, onOutput: () => {} });
    await Promise.all([run("exit 0"), run("sleep 0.2"), run("kill -9 $$")]);
    expect((await readdir(ledgerDir)).length).toBe(1); // the helper's file, all records blank
    await recording.close();
    expect(await readdir(ledgerDir)).toEqual([]);
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

  it("on timeout, kills a group that ignores SIGTERM, grandchild included", async () => {
    const pidFile = join(dir, "grandchild.pid");
    const { outcome } = await sh(`trap '' TERM; sleep 1000 & echo $! > "${pidFile}"; wait; wait; wait`, {
      timeoutMs: 500,
    });
    expect(outcome).toMatchObject({ timedOut: true, cancelled: false, exitCode: null, signal: "SIGKILL" });
    expect(outcome.durationMs).toBeGreaterThanOrEqual(500 + 300 - 50);
    expect(outcome.durationMs).toBeLessThan(500 + 300 + SLACK_MS);
    expect(await waitUntilGone(Number(await readFile(pidFile, "utf8")))).toBe(true);
  });

  it("kills what the main process left behind when it exits", async () => {
    const pidFile = join(dir, "child.pid");
    const { outcome, stdout } = await sh(`sleep 1000 & echo $! > "${pidFile}"; echo done; exit 0`);
    expect(outcome).toMatchObject({ exitCode: 0, signal: null, timedOut: false });
    expect(stdout).toBe("done\n");
    expect(await waitUntilGone(Number(await readFile(pidFile, "utf8")))).toBe(true);
  });

  it("stops waiting for pipes held open by a process that left the group", async () => {
    const pidFile = join(dir, "escaped.pid");
    let escaped: number | undefined;
    try {
      const { outcome, stdout } = await sh(
        `setsid sh -c 'echo $$ > "${pidFile}.tmp"; mv "${pidFile}.tmp" "${pidFile}"; exec sleep 30' &
         while [ ! -e "${pidFile}" ]; do sleep 0.01; done; echo hi; exit 3`,
      );
      expect(outcome.exitCode).toBe(3);
      expect(stdout).toBe("hi\n");
      expect(outcome.durationMs).toBeGreaterThanOrEqual(1000 - 50);
      expect(outcome.durationMs).toBeLessThan(1000 + SLACK_MS);
      escaped = Number(await readFile(pidFile, "utf8"));
    } finally {
      if (escaped !== undefined) process.kill(escaped, "SIGKILL");
    }
  });

  it("cancels a task whose signal is already aborted", async () => {
    const { outcome } = await sh("sleep 30", { signal: AbortSignal.abort() });
    expect(outcome).toMatchObject({ cancelled: true, exitCode: null });
  });

  it("runs many at once and keeps every task's output apart", async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => sh(`echo out${i}; echo err${i} >&2; exit ${i % 7}`)),
    );
    results.forEach(({ outcome, stdout, stderr }, i) => {
      expect({ stdout, stderr, exitCode: outcome.exitCode }).toEqual({
        stdout: `out${i}\n`,
        stderr: `err${i}\n`,
        exitCode: i % 7,
      });
    });
  });

  it("relays large output byte for byte", async () => {
    const { stdout, outcome } = await sh("head -c 3000000 /dev/zero | tr '\\0' 'x'");
    expect(outcome.exitCode).toBe(0);
    expect(stdout.length).toBe(3_000_000);
    expect(/^x+$/.test(stdout)).toBe(true);
  });
});

/**
 * The native helper must start processes exactly as spawner-process.ts
 * (Node's spawn) does: the same outcome, output and error for every case.
 */
describe.skipIf(!nativeSpawnerSupported)("the native helper and the Node helper agree", () => {
  let dir: string;
  const spawners: Record<"node" | "native", Spawner> = {} as Record<"node" | "native", Spawner>;

  beforeAll(async () => {
    spawners.node = new Spawner({ nativeHelper: false });
    spawners.native = new Spawner({ nativeHelper: native!.path });
    dir = await mkdtemp(join(tmpdir(), "taskframe-spawner-parity-"));
    await writeFile(join(dir, "no-shebang.sh"), "echo ran by $0 with $# args: $*\n");
    await writeFile(join(dir, "not-executable.sh"), "#!/bin/sh\necho hi\n");
    await writeFile(join(dir, "no-interpreter.sh"), "#!/taskframe/no/such/interpreter\n");
    await writeFile(join(dir, "a-file"), "");
    await mkdir(join(dir, "bin"));
    await writeFile(join(dir, "bin", "in-bin"), "#!/bin/sh\necho in-bin $PWD\n");
    await chmod(join(dir, "no-shebang.sh"), 0o755);
    await chmod(join(dir, "no-interpreter.sh"), 0o755);
    await chmod(join(dir, "bin", "in-bin"), 0o755);
  });
  afterAll(async () => {
    await spawners.node.close();
    await spawners.native.close();
    await rm(dir, { recursive: true, force: true });
  });

  type Case = Partial<RunProcessOptions> & Pick<RunProcessOptions, "command" | "args">;
  const cases: [string, () => Case][] = [
    ["an exit code", () => ({ command: "/bin/sh", args: ["-c", "exit 42"] })],
    ["a signal", () => ({ command: "/bin/sh", args: ["-c", "kill -TERM $$"] })],
    [
      "PATH from the task's environment",
      () => ({ command: "true", args: [], env: { PATH: "/nonexistent" } }),
    ],
    ["no PATH at all", () => ({ command: "sh", args: ["-c", "echo $0"], env: {} })],
    ["a relative PATH entry", () => ({ command: "in-bin", args: [], env: { PATH: "/nonexistent:bin" } })],
    [
      "an empty PATH entry",
      () => ({ command: "no-shebang.sh", args: ["x"], env: { PATH: "/nonexistent:" } }),
    ],
    ["a relative command", () => ({ command: "./bin/in-bin", args: [] })],
    ["a script without #!", () => ({ command: "./no-shebang.sh", args: ["a", "b c"] })],
    ["a directory", () => ({ command: dir, args: [] })],
    ["a directory found in PATH", () => ({ command: "bin", args: [], env: { PATH: dir } })],
    ["a file that is not executable", () => ({ command: join(dir, "not-executable.sh"), args: [] })],
    ["a missing interpreter", () => ({ command: join(dir, "no-interpreter.sh"), args: [] })],
    ["a missing command", () => ({ command: "taskframe-no-such-command", args: [] })],
    ["a missing cwd", () => ({ command: "/bin/true", args: [], cwd: join(dir, "missing") })],
    ["a cwd that is a file", () => ({ command: "/bin/true", args: [], cwd: join(dir, "a-file") })],
    ["a null byte in an argument", () => ({ command: "/bin/echo", args: ["a\0b"] })],
    ["a null byte in the environment", () => ({ command: "/bin/true", args: [], env: { A: "x\0y" } })],
    ["an empty command", () => ({ command: "", args: [] })],
    [
      "odd variable names",
      () => ({ command: "/usr/bin/env", args: [], env: { "A=B": "c", "": "d", É: "é" } }),
    ],
    [
      "argv, stdin, session, signal dispositions and open descriptors",
      () => ({
        command: "/bin/sh",
        args: [
          "-c",
          `echo "$0|$1|$2"; read line; echo "stdin $?"; set -- $(cut -d' ' -f1,5,6 /proc/$$/stat);
           [ "$1" = "$2" ] && [ "$2" = "$3" ] && echo "leads its session and group";
           grep -E '^Sig(Ign|Blk)' /proc/self/status; ls /proc/self/fd | wc -l`,
          "one",
          "two three",
        ],
      }),
    ],
  ];

  it.each(cases)("%s", async (_name, make) => {
    const results = await Promise.all(
      (["node", "native"] as const).map(async (kind) => {
        const output: Record<string, string> = { stdout: "", stderr: "" };
        const { pid, startedAtMs, durationMs, ...outcome } = await spawners[kind].run({
          env,
          cwd: dir,
          killGraceMs: 300,
          onOutput: (stream, data) => {
            output[stream] += data.toString();
          },
          ...make(),
        });
        expect(durationMs).toBeGreaterThanOrEqual(0);
        expect(Math.abs(startedAtMs - Date.now())).toBeLessThan(60_000);
        return { started: pid !== undefined, ...outcome, ...output };
      }),
    );
    expect(results[1]).toEqual(results[0]);
  });
});

describe("a native helper that does not work", () => {
  it.each([
    ["is missing", async (_dir: string) => "/taskframe/no/such/helper"],
    [
      "is not a helper",
      async (dir: string) => {
        const path = join(dir, "not-a-helper");
        await writeFile(path, "exit 3\n");
        await chmod(path, 0o755);
        return path;
      },
    ],
  ])(
    "%s: the first task fails as with a lost helper, and the Node helper takes over",
    async (_name, make) => {
      const dir = await mkdtemp(join(tmpdir(), "taskframe-spawner-broken-"));
      const warnings: string[] = [];
      const logger: Logger = Object.create(silentLogger);
      logger.warn = ((message: string) => warnings.push(message)) as Logger["warn"];
      const spawner = new Spawner({ nativeHelper: await make(dir), logger });
      const run = () =>
        spawner.run({ command: "/bin/echo", args: ["hi"], env, cwd: dir, onOutput: () => {} });
      try {
        expect(spawner.helperKind).toBe("native");
        expect((await run()).spawnError?.code).toBe("ESPAWNER");
        expect(spawner.helperKind).toBe("node");
        expect((await run()).exitCode).toBe(0);
        expect(warnings.join("\n")).toContain("using spawner-process.ts");
      } finally {
        await spawner.close();
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});
