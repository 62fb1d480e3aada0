import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { waitUntilGone } from "../test/helpers/processes.js";
import { LogCapture } from "./log-capture.js";
import { type ProcessOutcome, type RunProcessOptions, runProcess } from "./process-runner.js";

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
// generous: a shared, noisy 2-core box
const SLACK_MS = 4000;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "taskframe-runner-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  outcome: ProcessOutcome;
  stdout: Buffer;
  stderr: Buffer;
}

async function run(
  options: Partial<RunProcessOptions> & Pick<RunProcessOptions, "command" | "args">,
): Promise<Run> {
  const output = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  const outcome = await runProcess({
    env,
    cwd: dir,
    killGraceMs: 300,
    onOutput: (stream, data) => output[stream].push(data),
    ...options,
  });
  return { outcome, stdout: Buffer.concat(output.stdout), stderr: Buffer.concat(output.stderr) };
}

const sh = (script: string, options: Partial<RunProcessOptions> = {}) =>
  run({ command: "sh", args: ["-c", script], ...options });

async function readPid(file: string): Promise<number> {
  const pid = Number.parseInt(await readFile(file, "utf8"), 10);
  expect(pid).toBeGreaterThan(1);
  return pid;
}

describe("runProcess", () => {
  it.each([0, 1, 42])("reports exit code %i", async (code) => {
    const { outcome } = await sh(`exit ${code}`);
    expect(outcome).toMatchObject({ exitCode: code, signal: null, timedOut: false, cancelled: false });
    expect(outcome.spawnError).toBeUndefined();
    expect(outcome.pid).toBeGreaterThan(0);
    expect(outcome.durationMs).toBeGreaterThanOrEqual(0);
    expect(Math.abs(outcome.startedAtMs - Date.now())).toBeLessThan(60_000);
  });

  it.each([
    ["SIGKILL", "kill -9 $$"],
    ["SIGTERM", "kill -TERM $$"],
  ])("reports a process killed by %s", async (signal, script) => {
    const { outcome } = await sh(script);
    expect(outcome).toMatchObject({ exitCode: null, signal, timedOut: false, cancelled: false });
  });

  it("keeps stdout and stderr in order within each stream", async () => {
    const { stdout, stderr } = await sh(
      'i=0; while [ $i -lt 300 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done',
    );
    const lines = (prefix: string) => Array.from({ length: 300 }, (_, i) => `${prefix} ${i}\n`).join("");
    expect(stdout.toString()).toBe(lines("out"));
    expect(stderr.toString()).toBe(lines("err"));
  });

  it("passes argv literally, without a shell", async () => {
    const args = [
      "a b",
      `"quoted"`,
      "'single'",
      "$HOME",
      "*",
      "; echo injected",
      "back\\slash",
      "",
      "new\nline",
    ];
    const { outcome, stdout } = await run({
      command: process.execPath,
      args: ["-e", "process.stdout.write(JSON.stringify(process.argv.slice(1)))", ...args],
    });
    expect(outcome.exitCode).toBe(0);
    expect(JSON.parse(stdout.toString())).toEqual(args);
  });

  it("gives the child exactly the environment and working directory asked for", async () => {
    const { stdout } = await sh('printf "%s|%s|%s" "$(pwd)" "$ONLY" "$(env | grep -c ^HOME=)"', {
      env: { ...env, ONLY: "x y" },
    });
    expect(stdout.toString()).toBe(`${dir}|x y|0`);
  });

  it("keeps invalid UTF-8 byte for byte", async () => {
    // dash's printf knows octal escapes only: \377\376\000 is \xff\xfe\x00
    const capture = new LogCapture({ maxBytes: 1024, chunkBytes: 64 });
    const { outcome, stdout } = await sh("printf '\\377\\376\\000A\\n'", {
      onOutput: (stream, data) => capture.append(stream, data),
    });
    expect(outcome.exitCode).toBe(0);
    expect(stdout).toEqual(Buffer.alloc(0));
    const chunks = capture.takeChunks(true);
    expect(chunks).toHaveLength(1);
    expect(Buffer.from(chunks[0]!.data)).toEqual(Buffer.from([0xff, 0xfe, 0x00, 0x41, 0x0a]));
  });

  it("drains 200 MB without newlines in bounded memory", async () => {
    const total = 200_000_000;
    const maxBytes = 1024 * 1024;
    const capture = new LogCapture({ maxBytes, chunkBytes: 64 * 1024 });
    const taken: Uint8Array[] = [];
    const ticker = setInterval(() => {
      for (const chunk of capture.takeChunks()) taken.push(chunk.data);
    }, 50);
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    let calls = 0;
    try {
      const { outcome } = await run({
        command: "head",
        args: ["-c", String(total), "/dev/zero"],
        timeoutMs: 60_000,
        onOutput: (stream, data) => {
          capture.append(stream, data);
          if (++calls % 64 === 0) rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
        },
      });
      expect(outcome).toMatchObject({ exitCode: 0, timedOut: false });
    } finally {
      clearInterval(ticker);
    }
    const final = capture.takeChunks(true);
    const kept = Buffer.concat([
      ...taken,
      ...final.filter((chunk) => chunk.stream === "stdout").map((c) => c.data),
    ]);
    // Buffer.equals: a deep toEqual over a megabyte takes seconds
    expect(kept.equals(Buffer.alloc(maxBytes))).toBe(true);
    expect(capture.capturedBytes).toBe(maxBytes);
    expect(capture.droppedBytes).toBe(total - maxBytes);
    const marker = final.find((chunk) => chunk.stream === "system");
    expect(marker?.droppedBytes).toBe(total - maxBytes);
    expect(rssPeak - rssBefore).toBeLessThan(100 * 1024 * 1024);
  });

  it("on timeout, kills a group that ignores SIGTERM, grandchild included", async () => {
    const pidFile = join(dir, "grandchild.pid");
    const timeoutMs = 1000;
    const killGraceMs = 300;
    // SIG_IGN is inherited, so the background sleep ignores SIGTERM too
    const { outcome } = await sh(`trap '' TERM; sleep 1000 & echo $! > "${pidFile}"; wait; wait; wait`, {
      timeoutMs,
      killGraceMs,
    });
    expect(outcome).toMatchObject({ timedOut: true, cancelled: false, exitCode: null, signal: "SIGKILL" });
    expect(outcome.durationMs).toBeGreaterThanOrEqual(timeoutMs + killGraceMs - 50);
    expect(outcome.durationMs).toBeLessThan(timeoutMs + killGraceMs + SLACK_MS);
    expect(await waitUntilGone(await readPid(pidFile))).toBe(true);
  });

  it("on timeout, lets a task that exits on SIGTERM go without waiting for the grace", async () => {
    const { outcome } = await sh("sleep 1000 & wait", { timeoutMs: 300, killGraceMs: 30_000 });
    expect(outcome).toMatchObject({ timedOut: true, signal: "SIGTERM" });
    expect(outcome.durationMs).toBeLessThan(300 + SLACK_MS);
  });

  it("kills what the main process left behind when it exits", async () => {
    const pidFile = join(dir, "child.pid");
    const { outcome } = await sh(`sleep 1000 & echo $! > "${pidFile}"; echo done; exit 0`);
    expect(outcome).toMatchObject({ exitCode: 0, signal: null, timedOut: false });
    expect(outcome.durationMs).toBeLessThan(SLACK_MS);
    expect(await waitUntilGone(await readPid(pidFile))).toBe(true);
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
      expect(stdout.toString()).toBe("hi\n");
      expect(outcome.durationMs).toBeLessThan(1000 + SLACK_MS);
      escaped = await readPid(pidFile);
    } finally {
      if (escaped !== undefined) process.kill(escaped, "SIGKILL");
    }
  });

  it("cancels through an AbortSignal", async () => {
    const controller = new AbortController();
    const pidFile = join(dir, "child.pid");
    const { outcome } = await sh(
      `trap '' TERM; sleep 1000 & echo $! > "${pidFile}"; echo ready; wait; wait`,
      {
        signal: controller.signal,
        onOutput: (_stream, data) => {
          if (data.toString().includes("ready")) controller.abort();
        },
      },
    );
    expect(outcome).toMatchObject({ cancelled: true, timedOut: false, exitCode: null, signal: "SIGKILL" });
    expect(outcome.durationMs).toBeLessThan(SLACK_MS);
    expect(await waitUntilGone(await readPid(pidFile))).toBe(true);
  });

  it("starts nothing when the signal is already aborted", async () => {
    const { outcome } = await sh(`touch "${join(dir, "ran")}"`, { signal: AbortSignal.abort() });
    expect(outcome).toMatchObject({ pid: undefined, cancelled: true, exitCode: null });
    await expect(readFile(join(dir, "ran"))).rejects.toThrow();
  });

  it("kills the task and rejects when onOutput throws", async () => {
    const pidFile = join(dir, "child.pid");
    const failure = new Error("consumer broke");
    const started = performance.now();
    await expect(
      sh(`sleep 1000 & echo $! > "${pidFile}"; echo hi; wait`, {
        onOutput: () => {
          throw failure;
        },
      }),
    ).rejects.toBe(failure);
    expect(performance.now() - started).toBeLessThan(SLACK_MS);
    expect(await waitUntilGone(await readPid(pidFile))).toBe(true);
  });

  it("reports a command that does not exist", async () => {
    const { outcome } = await run({ command: "taskframe-no-such-command", args: [] });
    expect(outcome).toMatchObject({
      pid: undefined,
      exitCode: null,
      signal: null,
      timedOut: false,
      cancelled: false,
    });
    expect(outcome.spawnError?.code).toBe("ENOENT");
    expect(outcome.spawnError?.message).toContain('"taskframe-no-such-command"');
    expect(outcome.spawnError?.message).toContain("not found");
  });

  it("reports a file that is not executable", async () => {
    const script = join(dir, "script.sh");
    await writeFile(script, "#!/bin/sh\necho hi\n");
    await chmod(script, 0o644);
    const { outcome } = await run({ command: script, args: [] });
    expect(outcome.spawnError?.code).toBe("EACCES");
    expect(outcome.spawnError?.message).toContain(script);
  });

  it("reports a script whose interpreter is missing", async () => {
    const script = join(dir, "script.sh");
    await writeFile(script, "#!/taskframe/no/such/interpreter\n");
    await chmod(script, 0o755);
    const { outcome } = await run({ command: script, args: [] });
    expect(outcome.spawnError?.code).toBe("ENOENT");
    expect(outcome.spawnError?.message).toContain("interpreter");
  });

  it("reports a working directory that does not exist", async () => {
    const cwd = join(dir, "missing");
    const { outcome } = await run({ command: "sh", args: ["-c", "true"], cwd });
    expect(outcome.exitCode).toBeNull();
    expect(outcome.spawnError?.code).toBe("ENOENT");
    expect(outcome.spawnError?.message).toContain(`working directory "${cwd}" does not exist`);
  });

  it("reports a working directory that is a file", async () => {
    const cwd = join(dir, "file");
    await writeFile(cwd, "");
    const { outcome } = await run({ command: "sh", args: ["-c", "true"], cwd });
    expect(outcome.exitCode).toBeNull();
    expect(outcome.spawnError?.code).toBe("ENOTDIR");
    expect(outcome.spawnError?.message).toContain(`working directory "${cwd}" is not a directory`);
  });

  it("reports an argument no process can receive instead of throwing", async () => {
    const { outcome } = await run({ command: "echo", args: ["a\0b"] });
    expect(outcome.exitCode).toBeNull();
    expect(outcome.spawnError?.code).toBe("ERR_INVALID_ARG_VALUE");
  });

  it("rejects a negative timeout", async () => {
    await expect(sh("true", { timeoutMs: -1 })).rejects.toThrow(RangeError);
  });
});
