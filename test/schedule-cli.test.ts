import { type ChildProcess, spawn } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TASK_BIN, task } from "./helpers/cli.js";

/*
 * Schedules end to end, as a user runs them: `task schedule ...` on the
 * embedded store, and `task dev` firing a 1-second cron and a condition while
 * other `task` commands reach it through the data directory's socket. Run
 * through `npm test`, which builds dist/ first.
 */

let cwd: string;
const write = (name: string, text: string) => writeFile(join(cwd, name), text);

beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), "taskframe-schedules-"));
  // tasks run jailed, as nobody: they must be able to reach their working directory
  await chmod(cwd, 0o755);
  await write(
    "tick.task",
    '[RunIf]\ncron="* * * * * *"\n\n[Command]\ncommand="echo"\n\n[Args]\nargs="tick"\n',
  );
  await write("nightly.task", '[RunIf]\ncron="0 3 * * *"\n\n[Command]\ncommand="true"\n');
  await write("ready.task", '[RunIf]\nRequires="./ready.sh"\nInterval=1s\n\n[Command]\ncommand="true"\n');
  await write("ready.sh", "#!/bin/sh\nexit 0\n");
  await chmod(join(cwd, "ready.sh"), 0o755);
  await write("hello.yaml", "tasks:\n  hi: { run: echo hi }\n");
});
afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

const json = <T>(result: { stdout: Buffer }): T => JSON.parse(result.stdout.toString()) as T;

interface ScheduleJson {
  name: string;
  paused: boolean;
  paused_reason: string | null;
  next_fire: string | null;
  last_fire: { outcome: string; cause: string; run_id: string | null } | null;
}

describe("task schedule on the embedded store", () => {
  const data = () => ["--data", join(cwd, "store")];

  it("registers schedules in a new data directory and lists them", async () => {
    const applied = await task(["schedule", "apply", "nightly.task", ...data()], { cwd });
    expect(applied.stderr).toContain("registered 1 schedule in");
    expect(applied.code).toBe(0);
    expect(applied.stdout.toString()).toMatch(/nightly\s+cron "0 3 \* \* \*" UTC\s+skip\/latest\s+\d{4}-/);
    const [listed] = json<ScheduleJson[]>(await task(["schedule", "ls", "--json", ...data()], { cwd }));
    expect(listed).toMatchObject({ name: "nightly", paused: false, last_fire: null });
    expect(Date.parse(listed?.next_fire ?? "")).toBeGreaterThan(Date.now());
  });

  it("says what is wrong: a file without a schedule, a bad time, no running hub", async () => {
    const plain = await task(["schedule", "apply", "hello.yaml", ...data()], { cwd });
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain("no schedule in hello.yaml");

    const badTime = await task(["backfill", "nightly", "--from", "yesterday", ...data()], { cwd });
    expect(badTime.code).toBe(2);
    expect(badTime.stderr).toContain("--from: expected an ISO 8601 date or date-time such as 2026-12-01");
    const backwards = await task(["backfill", "nightly", "--from", "2026-11-02", "--to", "2026-11-01"], {
      cwd,
    });
    expect(backwards.code).toBe(2);
    expect(backwards.stderr).toContain("--from must be before --to");
    const future = await task(["backfill", "nightly", "--from", "2026-11-01", "--to", "2999-01-01"], { cwd });
    expect(future.code).toBe(2);
    expect(future.stderr).toContain("--to 2999-01-01T");

    const idle = await task(["schedule", "trigger", "nightly", ...data()], { cwd });
    expect(idle.code).toBe(3);
    expect(idle.stderr).toContain("needs a running hub: start 'task dev'");
  });

  it("has --help for every command", async () => {
    const help = await task(["schedule", "--help"], { cwd });
    for (const sub of ["ls", "apply", "pause", "resume", "trigger", "history", "rm"])
      expect(help.stdout.toString()).toMatch(new RegExp(`^  ${sub} `, "m"));
    expect((await task(["dev", "--help"], { cwd })).stdout.toString()).toContain("--jail <profile>");
    expect((await task(["backfill", "--help"], { cwd })).stdout.toString()).toContain("--from <time>");
  });
});

describe("task dev", () => {
  const dataDir = () => join(cwd, "dev");
  const data = () => ["--data", dataDir()];
  let dev: ChildProcess;
  let output = "";
  let exited: Promise<number | null>;

  /** Waits until task dev has printed what `pattern` matches. */
  const printed = async (pattern: RegExp, timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(output)) {
      if (Date.now() > deadline) throw new Error(`task dev did not print ${pattern}; it printed:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return pattern.exec(output)!;
  };

  let startedAt = 0;

  beforeAll(async () => {
    startedAt = Date.now();
    const { TASKFRAME_DATA: _data, TASKFRAME_HUB: _hub, ...env } = process.env;
    dev = spawn(
      process.execPath,
      [
        TASK_BIN,
        "dev",
        "tick.task",
        "nightly.task",
        "ready.task",
        "hello.yaml",
        ...data(),
        "--dashboard",
        "127.0.0.1:0",
      ],
      { cwd, env: { ...env, NO_COLOR: "1" } },
    );
    dev.stdout?.on("data", (d: Buffer) => {
      output += d.toString();
    });
    dev.stderr?.on("data", (d: Buffer) => {
      output += d.toString();
    });
    exited = new Promise((resolve) => dev.on("close", resolve));
    // the first open of a data directory creates its database: slow on a loaded machine
    await printed(/firing schedules; Ctrl-C stops/, 45_000);
  });
  afterAll(async () => {
    if (dev.exitCode === null) dev.kill("SIGKILL");
    await exited;
  });

  it("registers the files' schedules and runs the file without one once", async () => {
    expect(output).toContain("registered 3 schedules:");
    expect(output).toMatch(
      /tick\s+cron "\* \* \* \* \* \*" UTC\s+skip\/latest\s+\d{4}-\d\d-\d\d \S+ \((in|now)/,
    );
    expect(output).toMatch(/ready\s+if \.\/ready\.sh every 1s/);
    expect(output).toMatch(/hello\.yaml: no schedule in it: runs once, run [0-9a-f]{8}/);
    await printed(/hello\s+run [0-9a-f]{8} SUCCEEDED/);
  });

  it("serves the web dashboard and the hub API over HTTP with --dashboard", async () => {
    const [, url] = await printed(/dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/);
    const page = await fetch(url!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<title>Taskframe</title>");
    const listed = await fetch(`${url}taskframe.v1.HubService/ListRuns`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(listed.status).toBe(200);
    const { runs } = (await listed.json()) as { runs: { name: string }[] };
    expect(runs.map((r) => r.name)).toContain("hello");
  });

  it("prints each fire of the 1-second cron and each run's end", async () => {
    const [, run] = await printed(/tick\s+slot \d\d:\d\d:\d\d\s+STARTED run ([0-9a-f]{8})/);
    await printed(new RegExp(`tick\\s+run ${run} SUCCEEDED in`));
  });

  it("fires the condition when it holds, and keeps its evaluations out of task ls unless --all", async () => {
    await printed(/ready\s+slot \S+\s+STARTED run [0-9a-f]{8} \(condition\)/);
    const history = json<{ fires: { cause: string }[]; evaluations: { outcome: string; fired: boolean }[] }>(
      await task(["schedule", "history", "ready", "--json", ...data()], { cwd }),
    );
    expect(history.fires.map((f) => f.cause)).toContain("CONDITION");
    expect(history.evaluations.some((e) => e.outcome === "MET" && e.fired)).toBe(true);
    const table = await task(["schedule", "history", "ready", ...data()], { cwd });
    expect(table.stdout.toString()).toMatch(/Condition evaluations\nTIME\s+HOST\s+EXIT\s+DURATION\s+OUTCOME/);

    const runs = json<{ id: string }[]>(await task(["ls", "--json", "-n", "500", ...data()], { cwd }));
    const all = json<{ id: string }[]>(
      await task(["ls", "--all", "--json", "-n", "500", ...data()], { cwd }),
    );
    expect(all.length).toBeGreaterThan(runs.length);
  });

  it("is reached by task schedule ls and trigger from another process", async () => {
    const listed = json<ScheduleJson[]>(await task(["schedule", "ls", "--json", ...data()], { cwd }));
    expect(listed.map((s) => s.name).sort()).toEqual(["nightly", "ready", "tick"]);
    // (SKIPPED if a slot came while the previous run still ran, on a loaded machine)
    expect(listed.find((s) => s.name === "tick")?.last_fire?.outcome).toMatch(/^(STARTED|SKIPPED)$/);

    const triggered = await task(["schedule", "trigger", "nightly", ...data()], { cwd });
    expect(triggered.code).toBe(0);
    const id = triggered.stdout.toString().trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await printed(new RegExp(`nightly\\s+slot \\S+\\s+STARTED run ${id.slice(0, 8)} \\(manual\\)`));
    await printed(new RegExp(`nightly\\s+run ${id.slice(0, 8)} SUCCEEDED`));
  });

  it("backfills a cron schedule's missed slots once", async () => {
    const from = new Date(Date.now() - 3 * 86_400_000).toISOString();
    const first = await task(["backfill", "nightly", "--from", from, ...data()], { cwd });
    expect(first.stderr).toContain("backfill nightly: 3/3 slots, 3 started, 0 already fired");
    expect(first.stdout.toString()).toMatch(/^backfill nightly: 3\/3 slots from .*: 3 runs started, 0 had/);
    expect(first.code).toBe(0);
    const again = await task(["backfill", "nightly", "--from", from, "--json", ...data()], { cwd });
    expect(json(again)).toMatchObject({ slots: 3, done: 3, started: 0, already_fired: 3, run_ids: [] });
    await printed(/nightly\s+slot \d{4}-\d\d-\d\d 0\d:00:00\s+STARTED run [0-9a-f]{8} \(backfill\)/);
  });

  it("tells of a backfill's runs beyond the newest fires it reads", async () => {
    // 60 slots of the 1-second cron from before task dev started: older than its newest 50 fires
    const iso = (ms: number) => new Date(ms).toISOString();
    const range = ["--from", iso(startedAt - 150_000), "--to", iso(startedAt - 90_000)];
    const result = await task(["backfill", "tick", ...range, ...data()], { cwd });
    expect(result.stdout.toString()).toMatch(/^backfill tick: 60\/60 slots from .*: 60 runs started/);
    await printed(/tick\s+\d+ runs started for older slots \(task schedule history tick\)/);
  });

  it("pauses, resumes, shows the history of and removes a schedule", async () => {
    const paused = await task(["schedule", "pause", "nightly", "--reason", "disk swap", ...data()], { cwd });
    expect(paused.stdout.toString()).toBe("paused nightly (disk swap): it fires nothing until resumed\n");
    const table = await task(["schedule", "ls", "nightly", ...data()], { cwd });
    expect(table.stdout.toString()).toMatch(
      /nightly\s+.*\s+- \(paused\)\s+STARTED \S+ ago\s+.*yes: disk swap$/m,
    );
    const resumed = await task(["schedule", "resume", "nightly", ...data()], { cwd });
    expect(resumed.stdout.toString()).toMatch(/^resumed nightly: next fire \d{4}-\d\d-\d\d 0\d:00:00 \(in /);

    const history = await task(["schedule", "history", "nightly", "--limit", "2", ...data()], { cwd });
    const lines = history.stdout.toString().split("\n");
    expect(lines[0]).toMatch(/^nightly\s+cron "0 3 \* \* \*" UTC\s+skip\/latest$/);
    expect(lines.slice(3, 5).join("\n")).toMatch(
      /^(\S+ \S+\s+\S+ \S+\s+(manual|backfill)\s+STARTED\s+[0-9a-f]{8}\s+SUCCEEDED.*\n?){2}$/,
    );
    expect(lines).toHaveLength(6);

    const unknown = await task(["schedule", "history", "nope", ...data()], { cwd });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^task: .*nope/);

    expect((await task(["schedule", "rm", "nightly", ...data()], { cwd })).code).toBe(0);
    const gone = await task(["schedule", "ls", "nightly", ...data()], { cwd });
    expect(gone.code).toBe(2);
  });

  it("stops on Ctrl-C: no more fires, the runs still going cancelled, every run listed", async () => {
    dev.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(output).toMatch(/stopped: no more fires/);
    const lock = await readFile(join(dataDir(), "lock"), "utf8").catch(() => "");
    expect(lock).toBe("");
    const runs = json<{ name: string; state: string }[]>(
      await task(["ls", "--json", "-n", "500", ...data()], { cwd }),
    );
    expect(runs.filter((r) => r.name === "tick").length).toBeGreaterThan(1);
    expect(runs.filter((r) => r.state === "RUNNING")).toEqual([]);
  });
});
