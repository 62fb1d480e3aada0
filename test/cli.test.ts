import { execFile, spawn } from "node:child_process";
import { chmod, cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { asyncBufferFromFile, parquetMetadataAsync } from "hyparquet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packagePath } from "../core/package-root.js";
import { TASK_BIN, task } from "./helpers/cli.js";
import { waitUntilGone } from "./helpers/processes.js";

/*
 * The `task` command end to end, as a user runs it: real processes, the
 * embedded store in a temporary directory. Run through `npm test`, which
 * builds dist/ first.
 */

let cwd: string;

beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), "taskframe-cli-"));
  // tasks run jailed, as nobody: they must be able to reach their working directory
  await chmod(cwd, 0o755);
  await cp(packagePath("examples"), join(cwd, "examples"), { recursive: true });
});
afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

const write = (name: string, text: string) => writeFile(join(cwd, name), text);

describe("task run on the examples", () => {
  it("runs spawn.yaml: a shell task spawns children with task spawn; what needs it waits for them", async () => {
    const result = await task(["run", "examples/spawn.yaml", "--data", join(cwd, "spawn-data")], { cwd });
    expect(result.code).toBe(0);
    const summary = result.stdout.toString();
    for (const name of ["split/part-1", "split/part-2", "split/part-3", "split/merge", "report"]) {
      expect(summary).toMatch(new RegExp(`${name}\\s+SUCCEEDED`));
    }
    const merged = await task(["logs", "split/merge", "--data", join(cwd, "spawn-data")], { cwd });
    expect(merged.stdout.toString()).toBe("merged 3 parts\n");
  });

  it("task spawn outside a task says what is missing", async () => {
    const result = await task(["spawn", "x", "--", "true"], { cwd, env: { TASKFRAME_TASK_TOKEN: "" } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("task spawn runs inside a task: TASKFRAME_TASK_TOKEN is not set");
  });

  it("runs hello.yaml to the end: parallel tasks, one retried, exit 0", async () => {
    const result = await task(["run", "examples/hello.yaml"], { cwd });
    expect(result.stderr).toMatch(/flaky-upload RETRYING attempt 1 failed: exit code 75/);
    expect(result.code).toBe(0);
    const summary = result.stdout.toString();
    expect(summary).toMatch(/flaky-upload\s+SUCCEEDED\s+2\/3/);
    expect(summary).toMatch(/report\s+SUCCEEDED\s+1\/3/);
    expect(summary).toMatch(/SUCCEEDED in .*: 5 succeeded/);
  });

  it("then answers SQL about it with task query, as CSV and JSON, and refuses a write", async () => {
    const sql =
      "SELECT task_name, attempt, outcome, exit_code FROM attempts WHERE task_name = 'flaky-upload' ORDER BY attempt";
    const csv = await task(["query", sql, "--csv"], { cwd });
    expect(csv.code).toBe(0);
    expect(csv.stdout.toString()).toBe(
      "task_name,attempt,outcome,exit_code\nflaky-upload,1,RETRYING,75\nflaky-upload,2,SUCCEEDED,0\n",
    );
    const json = await task(["query", "SELECT count(*) AS n FROM tasks WHERE run_name = 'hello'", "--json"], {
      cwd,
    });
    expect(JSON.parse(json.stdout.toString())).toEqual([{ n: 5 }]);
    const write = await task(["query", "UPDATE tasks SET state = 'FAILED'"], { cwd });
    expect(write.code).toBe(2);
    expect(write.stderr).toContain("task query only reads");
  });

  it("then sums it up with task stats, as a table and as JSON; task export writes finished days", async () => {
    const table = await task(["stats", "--by", "name"], { cwd });
    expect(table.code).toBe(0);
    expect(table.stdout.toString()).toMatch(/^tasks that ended from /);
    expect(table.stdout.toString()).toMatch(/flaky-upload\s+1\s+\S+\s+0\.0%\s+1\s/);
    const json = JSON.parse((await task(["stats", "--json", "--since", "10m"], { cwd })).stdout.toString());
    expect(json.total.tasks).toBe("5");
    expect(json.total.retries).toBe("1");
    const past = await task(["export", "--day", "2020-01-01", "--out", "exported"], { cwd });
    expect(past.code).toBe(0);
    expect(past.stdout.toString()).toContain(join(cwd, "exported", "2020-01-01", "runs.ndjson"));
    expect(await readFile(join(cwd, "exported", "2020-01-01", "tasks.ndjson"), "utf8")).toBe("");
    // an empty day in Parquet: valid files with the views' columns and no rows
    const parquet = await task(
      ["export", "--day", "2020-01-01", "--out", "exported", "--format", "parquet"],
      { cwd },
    );
    expect(parquet.code).toBe(0);
    const tasksFile = await asyncBufferFromFile(join(cwd, "exported", "2020-01-01", "tasks.parquet"));
    const metadata = await parquetMetadataAsync(tasksFile);
    expect(metadata.num_rows).toBe(0n);
    expect(metadata.schema.map((column) => column.name)).toContain("exit_code");
    const csv = await task(["export", "--day", "2020-01-01", "--format", "csv"], { cwd });
    expect(csv.code).toBe(2);
    expect(csv.stderr).toContain("Allowed choices are ndjson, parquet");
    const today = await task(["export", "--day", new Date().toISOString().slice(0, 10)], { cwd });
    expect(today.code).toBe(2);
    expect(today.stderr).toContain("has not ended yet");
    const bad = await task(["stats", "--since", "soon"], { cwd });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--since: expected a duration");
  });

  it("then says how a task ended with task result, with its last log lines", async () => {
    const result = await task(["result", "flaky-upload"], { cwd });
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toMatch(
      /^flaky-upload \(run \w+\): SUCCEEDED, exit code 0, attempt 2 of 3\n/,
    );
    expect(result.stdout.toString()).toContain("stdout: uploaded on attempt 2");
    const json = JSON.parse((await task(["result", "flaky-upload", "--json"], { cwd })).stdout.toString());
    expect(json.last_lines).toEqual(["stdout: uploaded on attempt 2"]);
    expect(json.output).toBeNull();
    const recent = await task(["logs", "flaky-upload", "--since", "10m"], { cwd });
    expect(recent.stdout.toString()).toBe("uploaded on attempt 2\n");
    const future = await task(["logs", "flaky-upload", "--since", "2999-01-01T00:00Z"], { cwd });
    expect(future.stdout.toString()).toBe("");
    expect((await task(["logs", "flaky-upload", "--since", "whenever"], { cwd })).code).toBe(2);
    const unknown = await task(["result", "no-such-task"], { cwd });
    expect(unknown.code).toBe(2);
  });

  it("then shows the task's output with task logs, stdout and stderr apart", async () => {
    const result = await task(["logs", "flaky-upload"], { cwd });
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toBe("uploaded on attempt 2\n");
    expect(result.stderr).toContain("==> flaky-upload: attempt 1 <==");
    expect(result.stderr).toContain("upload: connection reset by peer (attempt 1)");
    expect(result.stderr).toContain("[taskframe] exit code 75");
    const first = await task(["logs", "flaky-upload", "--attempt", "1", "--stderr"], { cwd });
    expect(first.stderr).toBe(
      "upload: connection reset by peer (attempt 1)\n[taskframe] exit code 75 after " +
        first.stderr.split("after ")[1],
    );
  });

  it("and every state change with task audit", async () => {
    const result = await task(["audit", "flaky-upload", "--json"], { cwd });
    expect(result.code).toBe(0);
    const audit = JSON.parse(result.stdout.toString()) as {
      task: { state: string };
      events: { from: string | null; to: string; attempt: number; exit_code: number | null }[];
    };
    expect(audit.task.state).toBe("SUCCEEDED");
    expect(audit.events.map((e) => `${e.attempt}:${e.from ?? "-"}>${e.to}`)).toEqual([
      "0:->CREATED",
      "1:CREATED>PENDING",
      "1:PENDING>RUNNING",
      "1:RUNNING>RETRYING",
      "2:RETRYING>PENDING",
      "2:PENDING>RUNNING",
      "2:RUNNING>SUCCEEDED",
    ]);
    expect(audit.events[3]?.exit_code).toBe(75);
    const table = await task(["audit", "flaky-upload"], { cwd });
    expect(table.stdout.toString()).toMatch(
      /RUNNING -> RETRYING\s+embedded\s+75\s+attempt 1 failed: exit code 75/,
    );
  });

  it("lists runs and shows a run's status", async () => {
    await task(["run", "examples/etl.yaml"], { cwd });
    const ls = JSON.parse((await task(["ls", "--json"], { cwd })).stdout.toString()) as {
      name: string;
      state: string;
    }[];
    expect(ls.map((r) => `${r.name}:${r.state}`)).toEqual(["etl:SUCCEEDED", "hello:SUCCEEDED"]);
    const status = await task(["status"], { cwd });
    expect(status.stdout.toString()).toMatch(/^etl\s+run [0-9a-f-]{36}\s+SUCCEEDED/);
    expect(status.stdout.toString()).toMatch(/load-b\s+SUCCEEDED\s+1\/3/);
  });

  it("keeps a task's bytes exactly, invalid UTF-8 included", async () => {
    await write("bytes.yaml", "tasks:\n  raw: { run: printf '\\377\\376\\000A\\nno newline at end' }\n");
    expect((await task(["run", "bytes.yaml", "-q"], { cwd })).code).toBe(0);
    const logs = await task(["logs", "raw"], { cwd });
    expect(logs.stdout.toString("hex")).toBe(
      Buffer.from("\xff\xfe\x00A\nno newline at end", "latin1").toString("hex"),
    );
  });

  it("exits 1 when a task fails, and names where to look", async () => {
    await write(
      "fails.yaml",
      "tasks:\n  bad: { run: sh -c 'echo oops >&2; exit 4' }\n  after: { run: 'true', needs: [bad] }\n",
    );
    const result = await task(["run", "fails.yaml"], { cwd });
    expect(result.code).toBe(1);
    expect(result.stdout.toString()).toMatch(/bad\s+FAILED\s+1\/1\s+\S+\s+failed: exit code 4/);
    expect(result.stdout.toString()).toMatch(/after\s+SKIPPED\s+0\/1\s+upstream task bad ended FAILED/);
    expect(result.stdout.toString()).toContain("see: task logs bad");
  });

  it("follows a running task's output from another process with logs -f", async () => {
    const script = "for i in 1 2 3 4 5 6 7 8; do echo tick $i; sleep 0.4; done";
    await write("ticker.yaml", `tasks:\n  ticker: { run: sh -c '${script}' }\n`);
    const running = spawn(process.execPath, [TASK_BIN, "run", "ticker.yaml", "-q"], { cwd, stdio: "ignore" });
    const finished = new Promise((resolve) => running.on("close", resolve));
    const lock = join(cwd, ".taskframe", "lock");
    // follow once the run serves its hub (it announces the socket in its lock file)
    while (!(await readFile(lock, "utf8").catch(() => "")).includes("socketPath")) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const follow = await task(["logs", "-f", "ticker"], { cwd });
    const runExit = await finished;
    expect(follow.stderr).toBe("");
    expect(follow.code).toBe(0);
    expect(follow.stdout.toString()).toBe(Array.from({ length: 8 }, (_, i) => `tick ${i + 1}\n`).join(""));
    expect(runExit).toBe(0);
  });
});

describe("task run interrupted", () => {
  // a jailed task's own pid is its PID namespace's: find it on the host by its unique command line
  const waitForProcess = async (commandLine: string) => {
    for (let i = 0; i < 200; i++) {
      const pids = await new Promise<string>((resolve) =>
        execFile("pgrep", ["-f", "-x", commandLine], (_, stdout) => resolve(stdout.trim())),
      );
      if (pids) return Number(pids.split("\n")[0]);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`no process ${commandLine} appeared`);
  };
  const makeDir = async (prefix: string) => {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    await chmod(dir, 0o755);
    return dir;
  };

  it("cancels gracefully on Ctrl-C: the running task is stopped, the run ends CANCELLED, exit 130", async () => {
    const dir = await makeDir("taskframe-sigint-");
    await writeFile(
      join(dir, "long.yaml"),
      "tasks:\n  long: { run: sleep 60.1301 }\n  next: { run: 'true', needs: [long] }\n",
    );
    const running = spawn(process.execPath, [TASK_BIN, "run", "long.yaml"], { cwd: dir, stdio: "ignore" });
    const exited = new Promise<number | null>((resolve) => running.on("close", resolve));
    const pid = await waitForProcess("sleep 60.1301");
    running.kill("SIGINT");
    expect(await exited).toBe(130);
    expect(await waitUntilGone(pid)).toBe(true);
    const status = JSON.parse((await task(["status", "--json"], { cwd: dir })).stdout.toString());
    expect(status.run.state).toBe("CANCELLED");
    expect(status.tasks.map((t: { name: string; state: string }) => `${t.name}:${t.state}`)).toEqual([
      "long:CANCELLED",
      "next:CANCELLED",
    ]);
    await rm(dir, { recursive: true, force: true });
  });

  it("leaves no task behind when killed with SIGKILL, and the next run records the abandoned one", async () => {
    const dir = await makeDir("taskframe-sigkill-");
    await writeFile(join(dir, "long.yaml"), "tasks:\n  long: { run: sleep 60.1302 }\n");
    const running = spawn(process.execPath, [TASK_BIN, "run", "long.yaml", "-q"], {
      cwd: dir,
      stdio: "ignore",
    });
    const exited = new Promise((resolve) => running.on("close", resolve));
    const pid = await waitForProcess("sleep 60.1302");
    running.kill("SIGKILL");
    await exited;
    // the spawner sees its parent gone (stdin closes) and stops what it started
    expect(await waitUntilGone(pid, 10_000)).toBe(true);
    await writeFile(join(dir, "quick.yaml"), "tasks:\n  quick: { run: 'true' }\n");
    expect((await task(["run", "quick.yaml", "-q"], { cwd: dir })).code).toBe(0);
    const runs = JSON.parse((await task(["ls", "--json"], { cwd: dir })).stdout.toString()) as {
      id: string;
      state: string;
    }[];
    expect(runs.map((r) => r.state)).toEqual(["SUCCEEDED", "CANCELLED"]);
    const audit = JSON.parse((await task(["audit", "long", "--json"], { cwd: dir })).stdout.toString());
    expect(audit.events.at(-1)).toMatchObject({ from: "RUNNING", to: "CANCELLED" });
    expect(audit.events.at(-1).detail).toMatch(/abandoned: the task process running it exited/);
    await rm(dir, { recursive: true, force: true });
  });
});

describe("task run with bad input", () => {
  const cases: [string, string | undefined, RegExp][] = [
    ["missing.yaml", undefined, /^task: missing\.yaml: cannot read pipeline file: .*ENOENT/],
    ["malformed.yaml", "tasks:\n  a: { run: x\n", /^task: malformed\.yaml:\d+:\d+: .*YAML/i],
    [
      "unknown-key.yaml",
      "tasks:\n  a: { run: 'true', retires: 2 }\n",
      /^task: unknown-key\.yaml:2:\d+: tasks\.a\.retires: .*did you mean 'retries'/,
    ],
    [
      "bad-needs.yaml",
      "tasks:\n  a: { run: 'true', needs: [b] }\n",
      /^task: bad-needs\.yaml:2:\d+: tasks\.a\.needs\[0\]: no task named "b"/,
    ],
    [
      "empty.yaml",
      "name: nothing\n",
      /^task: empty\.yaml:1:1: the pipeline defines no tasks: expected a `tasks:` map or a `steps:` list/,
    ],
    [
      "cycle.yaml",
      "tasks:\n  a: { run: 'true', needs: [b] }\n  b: { run: 'true', needs: [a] }\n",
      /^task: cycle\.yaml:\d+:\d+: .*dependency cycle: (a -> b -> a|b -> a -> b)/,
    ],
  ];

  it.each(cases)(
    "%s: one line naming the file, the place and what was expected; exit 2",
    async (file, text, expected) => {
      if (text !== undefined) await write(file, text);
      const result = await task(["run", file], { cwd });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(expected);
      expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
    },
  );

  it("--pool-policy refuses a task asking for more than its pool allows: one line, exit 2, nothing run", async () => {
    await write("policy.yaml", 'pools:\n  "*": { max_memory: 1G }\n');
    await write("greedy.yaml", "tasks:\n  greedy: { run: 'touch ran', limits: { memory: 2G } }\n");
    const result = await task(["run", "greedy.yaml", "--pool-policy", "policy.yaml"], { cwd });
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd()).toMatch(
      /^task: .*greedy.*: limits\.memory_bytes: requested 2\.0 GiB \(2147483648 bytes\), the pool 'default' allows at most 1\.0 GiB \(1073741824 bytes\)$/,
    );
    await expect(readFile(join(cwd, "ran"))).rejects.toThrow(/ENOENT/);
    const unreadable = await task(["run", "greedy.yaml", "--pool-policy", "no-policy.yaml"], { cwd });
    expect(unreadable.code).toBe(2);
    expect(unreadable.stderr).toMatch(/^task: cannot read the pool policy no-policy\.yaml: .*ENOENT/);
  });

  it("a task name that does not exist is a one-line error with exit 2", async () => {
    const result = await task(["logs", "no-such-task"], { cwd });
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd()).toBe("task: no task 'no-such-task'");
  });

  it("prints --help for every command", async () => {
    for (const command of [[], ["run"], ["status"], ["ls"], ["logs"], ["audit"], ["cancel"]]) {
      const result = await task([...command, "--help"], { cwd });
      expect(result.code).toBe(0);
      expect(result.stdout.toString()).toContain("Usage: task");
    }
  });
});
