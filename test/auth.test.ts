import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { create, type DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { SignJWT } from "jose";
import { chromium } from "playwright-core";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer } from "../core/bearer.js";
import { HubService } from "../core/gen/taskframe/v1/hub_pb.js";
import { RunState } from "../core/states.js";
import { taskToken } from "../core/task-token.js";
import { startLocalCluster } from "../embedded/local-cluster.js";
import { RPC_PERMISSIONS } from "../hub/auth/rpc-permissions.js";
import { sha256 } from "../hub/auth/tokens-file.js";
import { task } from "./helpers/cli.js";
import { type Cluster, startCluster, TEST_NATS_URL } from "./helpers/cluster.js";
import { type HubClient, runSpec, shellTask, waitForRun } from "./helpers/engine.js";

/*
 * RELIABILITY.md test 38, the API's half: a hub with auth configured refuses
 * every RPC without valid credentials, keeps tenants apart, holds readers and
 * task tokens to what they may do, and audits each refusal; the positive
 * controls run a pipeline (and a task that spawns a child) to success.
 */

const TOKENS = {
  admin: `admin-${randomBytes(16).toString("hex")}`,
  alice: `alice-${randomBytes(16).toString("hex")}`,
  bob: `bob-${randomBytes(16).toString("hex")}`,
  readerA: `reader-${randomBytes(16).toString("hex")}`,
  sidecar: `sidecar-${randomBytes(16).toString("hex")}`,
};
const JWT_SECRET = new TextEncoder().encode(randomBytes(32).toString("hex"));
const TASK_SECRET = randomBytes(32).toString("hex");

let dir: string;
let cluster: Cluster;
let sql: postgres.Sql;

const clientWith = (token?: string): HubClient =>
  createClient(
    HubService,
    createConnectTransport({
      baseUrl: cluster.hubUrls[0]!,
      httpVersion: "1.1",
      interceptors: token ? [bearer(token)] : [],
    }),
  );

/** The Connect code a call ends with (streams: their first message), or "ok". */
async function codeOf(call: () => Promise<unknown> | AsyncIterable<unknown>): Promise<Code | "ok"> {
  try {
    const result = call();
    if (result && typeof result === "object" && Symbol.asyncIterator in result) {
      for await (const _ of result as AsyncIterable<unknown>) break;
    } else await result;
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

const jwt = (claims: Record<string, unknown>, expiresAt: number, key = JWT_SECRET) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setSubject("carol")
    .setExpirationTime(expiresAt)
    .sign(key);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "taskframe-auth-"));
  const entry = (name: string, token: string, role: string, tenants: string) =>
    `  - { name: ${name}, sha256: ${sha256(token).toString("hex")}, role: ${role}, tenants: ${tenants} }`;
  await writeFile(
    join(dir, "tokens.yaml"),
    [
      "tokens:",
      entry("admin", TOKENS.admin, "admin", '"*"'),
      entry("alice", TOKENS.alice, "submitter", "[team-a]"),
      entry("bob", TOKENS.bob, "submitter", "[team-b]"),
      entry("reader-a", TOKENS.readerA, "reader", "[team-a]"),
      entry("sidecar", TOKENS.sidecar, "sidecar", '"*"'),
    ].join("\n"),
  );
  await writeFile(join(dir, "jwt.secret"), Buffer.from(JWT_SECRET));
  await writeFile(join(dir, "task.secret"), TASK_SECRET);
  cluster = await startCluster({
    hubFlags: [
      "--auth-tokens",
      join(dir, "tokens.yaml"),
      "--auth-jwt-secret-file",
      join(dir, "jwt.secret"),
      "--task-token-secret-file",
      join(dir, "task.secret"),
    ],
    sidecarFlags: ["--hub-token", TOKENS.sidecar, "--task-token-secret-file", join(dir, "task.secret")],
  });
  const target = cluster.database.target;
  sql = postgres(target.kind === "postgres" ? target.url : "", { max: 1, onnotice: () => {} });
});

afterAll(async () => {
  await sql?.end();
  await cluster?.[Symbol.asyncDispose]();
  await rm(dir, { recursive: true, force: true });
});

describe("the permission table", () => {
  it("names every HubService method, and nothing else", () => {
    const methods = HubService.methods.map((m) => m.name).sort();
    expect(Object.keys(RPC_PERMISSIONS).sort()).toEqual(methods);
  });
});

describe("a hub with auth configured", () => {
  it("refuses every RPC without valid credentials with Unauthenticated", async () => {
    const now = Math.floor(Date.now() / 1000);
    const forgedTask = `${taskToken({ taskId: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", attempt: 1, leaseEpoch: 1 })}:${"ab".repeat(32)}`;
    const credentials: Record<string, string | undefined> = {
      none: undefined,
      empty: "",
      "Bearer nothing": "Bearer nothing",
      "Bearer (no token)": "Bearer ",
      basic: `Basic ${Buffer.from("alice:secret").toString("base64")}`,
      "a token without Bearer": TOKENS.admin,
      "expired JWT": `Bearer ${await jwt({ role: "admin", tenants: "*" }, now - 120)}`,
      "JWT with a bad signature": `Bearer ${await jwt({ role: "admin", tenants: "*" }, now + 600, new TextEncoder().encode("x".repeat(40)))}`,
      "JWT without role": `Bearer ${await jwt({ tenants: "*" }, now + 600)}`,
      "unsigned task token": `Bearer ${taskToken({ taskId: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", attempt: 1, leaseEpoch: 1 })}`,
      "forged task token": `Bearer ${forgedTask}`,
    };
    const client = clientWith();
    const generic = client as unknown as Record<string, (request: unknown, options: unknown) => unknown>;
    const outcomes: string[] = [];
    for (const method of HubService.methods as DescMethod[]) {
      const request = create(method.input);
      for (const [label, header] of Object.entries(credentials)) {
        const headers = header === undefined ? {} : { authorization: header };
        const code = await codeOf(
          () => generic[method.localName]!(request, { headers }) as Promise<unknown> | AsyncIterable<unknown>,
        );
        if (code !== Code.Unauthenticated) outcomes.push(`${method.name} with ${label}: ${code}`);
      }
    }
    expect(outcomes).toEqual([]);
  });

  it("takes a valid JWT, and answers /healthz to anyone but /metrics only to an admin", async () => {
    const now = Math.floor(Date.now() / 1000);
    const carol = clientWith(await jwt({ role: "reader", tenants: ["team-a"] }, now + 600));
    expect(await codeOf(() => carol.listRuns({}))).toBe("ok");
    expect(await codeOf(() => carol.submitRun({ run: runSpec("no", [shellTask("t", "true")]) }))).toBe(
      Code.PermissionDenied,
    );
    const url = cluster.hubUrls[0]!;
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/metrics`)).status).toBe(401);
    const asAlice = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKENS.alice}` } });
    expect(asAlice.status).toBe(403);
    const asAdmin = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
    expect(asAdmin.status).toBe(200);
  });

  it("keeps tenants apart: another tenant's runs are not found, its tenant cannot be submitted to", async () => {
    const alice = clientWith(TOKENS.alice);
    const bob = clientWith(TOKENS.bob);
    const { run: aliceRun } = await alice.submitRun({ run: runSpec("a", [shellTask("t", "echo from-a")]) });
    const { run: bobRun } = await bob.submitRun({ run: runSpec("b", [shellTask("t", "echo from-b")]) });
    expect(aliceRun?.tenant).toBe("team-a");
    expect(bobRun?.tenant).toBe("team-b");
    // positive control: submitted with a token, run to success by a sidecar that has its own
    const finished = await waitForRun(alice, aliceRun!.id);
    expect(finished.run.state).toBe(RunState.SUCCEEDED);
    await waitForRun(bob, bobRun!.id);

    const bobTask = (await bob.listTasks({ runId: bobRun!.id })).tasks[0]!;
    const runId = bobRun!.id;
    expect({
      getRun: await codeOf(() => alice.getRun({ runId })),
      getRunByPrefix: await codeOf(() => alice.getRun({ runId: runId.slice(0, 13) })),
      listTasks: await codeOf(() => alice.listTasks({ runId })),
      watchRun: await codeOf(() => alice.watchRun({ runId })),
      cancelRun: await codeOf(() => alice.cancelRun({ runId })),
      getTask: await codeOf(() => alice.getTask({ task: { taskId: bobTask.id } })),
      getLogs: await codeOf(() => alice.getLogs({ task: { taskId: bobTask.id } })),
      getAudit: await codeOf(() => alice.getAudit({ task: { taskId: bobTask.id } })),
      getAuditByName: await codeOf(() => alice.getAudit({ task: { runId, name: "t" } })),
      submitToB: await codeOf(() =>
        alice.submitRun({ run: runSpec("x", [shellTask("t", "true")]), tenant: "team-b" }),
      ),
    }).toEqual({
      getRun: Code.NotFound,
      getRunByPrefix: Code.NotFound,
      listTasks: Code.NotFound,
      watchRun: Code.NotFound,
      cancelRun: Code.NotFound,
      getTask: Code.NotFound,
      getLogs: Code.NotFound,
      getAudit: Code.NotFound,
      getAuditByName: Code.NotFound,
      submitToB: Code.PermissionDenied,
    });
    // the newest run, for alice, is her own; lists show only her tenant's runs
    expect((await alice.getRun({})).run?.id).toBe(aliceRun!.id);
    const listed = (await alice.listRuns({ limit: 100 })).runs;
    expect(listed.map((r) => r.tenant)).not.toContain("team-b");
    expect(listed.map((r) => r.id)).toContain(aliceRun!.id);
    const all = (await clientWith(TOKENS.admin).listRuns({ limit: 100 })).runs.map((r) => r.id);
    expect(all).toEqual(expect.arrayContaining([aliceRun!.id, bobRun!.id]));
    // bob's logs are still bob's
    const logs = [];
    for await (const chunk of bob.getLogs({ task: { taskId: bobTask.id } })) logs.push(...chunk.entries);
    expect(Buffer.concat(logs.map((e) => e.data)).toString()).toContain("from-b");

    // schedules: another tenant's is not found, and not listed; its runs are its tenant's
    const schedule = {
      name: `nightly-${randomBytes(3).toString("hex")}`,
      trigger: { case: "cron" as const, value: { expression: "0 3 * * *", timezone: "UTC" } },
      run: runSpec("s", [shellTask("t", "true")]),
    };
    expect((await bob.putSchedules({ schedules: [schedule] })).schedules[0]?.spec?.name).toBe(schedule.name);
    expect((await alice.listSchedules({})).schedules.map((s) => s.spec?.name)).not.toContain(schedule.name);
    expect((await bob.listSchedules({})).schedules.map((s) => s.spec?.name)).toContain(schedule.name);
    expect({
      pause: await codeOf(() => alice.pauseSchedule({ name: schedule.name })),
      trigger: await codeOf(() => alice.triggerSchedule({ name: schedule.name })),
      history: await codeOf(() => alice.getScheduleHistory({ name: schedule.name })),
      replace: await codeOf(() => alice.putSchedules({ schedules: [schedule] })),
    }).toEqual({
      pause: Code.NotFound,
      trigger: Code.NotFound,
      history: Code.NotFound,
      replace: Code.AlreadyExists,
    });
    const { run: fired } = await bob.triggerSchedule({ name: schedule.name });
    expect(fired?.tenant).toBe("team-b");
    await waitForRun(bob, fired!.id);
  });

  it("the CLI sends --token (or TASKFRAME_TOKEN) and --tenant, and says what to do when refused", async () => {
    const hub = cluster.hubUrls[0]!;
    await writeFile(join(dir, "cli.yaml"), "name: cli\nsteps:\n  - name: hello\n    run: echo hello\n");
    const refused = await task(["submit", join(dir, "cli.yaml"), "--hub", hub], { cwd: dir });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("give --token or set TASKFRAME_TOKEN");
    const submitted = await task(
      ["submit", join(dir, "cli.yaml"), "--hub", hub, "--tenant", "team-b", "--wait", "-q"],
      {
        cwd: dir,
        env: { TASKFRAME_TOKEN: TOKENS.bob },
      },
    );
    expect(submitted.stderr).not.toContain("refused");
    expect(submitted.code, `${submitted.stderr}\n${submitted.stdout}`).toBe(0);
    const wrongTenant = await task(["submit", join(dir, "cli.yaml"), "--hub", hub, "--tenant", "team-a"], {
      cwd: dir,
      env: { TASKFRAME_TOKEN: TOKENS.bob },
    });
    expect(wrongTenant.code).toBe(2);
    expect(wrongTenant.stderr).toContain("not allowed: tenant team-a");
    const listed = await task(["ls", "--hub", hub, "--token", TOKENS.bob, "--json"], { cwd: dir });
    expect(listed.code).toBe(0);
    expect(listed.stdout.toString()).toContain('"cli"');
  });

  it("holds readers, sidecars and submitters to their roles", async () => {
    const reader = clientWith(TOKENS.readerA);
    const alice = clientWith(TOKENS.alice);
    const sidecar = clientWith(TOKENS.sidecar);
    const { run } = await alice.submitRun({ run: runSpec("r", [shellTask("t", "true")]) });
    expect({
      readerGets: await codeOf(() => reader.getRun({ runId: run!.id })),
      readerSubmits: await codeOf(() => reader.submitRun({ run: runSpec("r", [shellTask("t", "true")]) })),
      readerCancels: await codeOf(() => reader.cancelRun({ runId: run!.id })),
      readerSchedules: await codeOf(() => reader.deleteSchedule({ name: "x" })),
      submitterQueries: await codeOf(() => alice.query({ sql: "select 1" })),
      submitterListsHosts: await codeOf(() => alice.listHosts({})),
      submitterStats: await codeOf(() => alice.getStats({})),
      submitterTaskStates: await codeOf(() => alice.getTaskStates({ taskIds: [] })),
      sidecarReads: await codeOf(() => sidecar.listRuns({})),
      sidecarSubmits: await codeOf(() => sidecar.submitRun({ run: runSpec("r", [shellTask("t", "true")]) })),
      sidecarTaskStates: await codeOf(() => sidecar.getTaskStates({ taskIds: [] })),
      sidecarQueries: await codeOf(() => sidecar.query({ sql: "select 1" })),
      sidecarListsHosts: await codeOf(() => sidecar.listHosts({})),
      sidecarCancels: await codeOf(() => sidecar.cancelRun({ runId: run!.id })),
      adminListsHosts: await codeOf(() => clientWith(TOKENS.admin).listHosts({})),
    }).toEqual({
      readerGets: "ok",
      readerSubmits: Code.PermissionDenied,
      readerCancels: Code.PermissionDenied,
      readerSchedules: Code.PermissionDenied,
      submitterQueries: Code.PermissionDenied,
      submitterListsHosts: Code.PermissionDenied,
      submitterStats: Code.PermissionDenied,
      submitterTaskStates: Code.PermissionDenied,
      sidecarReads: Code.PermissionDenied,
      sidecarSubmits: Code.PermissionDenied,
      sidecarTaskStates: "ok",
      sidecarQueries: Code.PermissionDenied,
      sidecarListsHosts: Code.PermissionDenied,
      sidecarCancels: Code.PermissionDenied,
      adminListsHosts: "ok",
    });
  });

  it("gives each task a signed token good for its own attempt only, and dead once the attempt ends", async () => {
    const alice = clientWith(TOKENS.alice);
    const tokenFile = join(dir, "task-token");
    const go = join(dir, "go");
    // the task spawns a child with its token (through `task spawn`), hands the token over, and waits
    const script =
      `task spawn child -- true && printf %s "$TASKFRAME_TASK_TOKEN" > ${tokenFile}.tmp && ` +
      `mv ${tokenFile}.tmp ${tokenFile} && while [ ! -e ${go} ]; do sleep 0.05; done`;
    const { run } = await alice.submitRun({ run: runSpec("spawner", [shellTask("parent", script)]) });
    const deadline = Date.now() + 30_000;
    while (!existsSync(tokenFile)) {
      if (Date.now() > deadline) throw new Error("the task did not write its token");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const token = await readFile(tokenFile, "utf8");
    const [taskId, attempt, leaseEpoch, signature] = token.split(":");
    expect(signature).toMatch(/^[0-9a-f]{64}$/);
    const asTask = clientWith(token);
    const spawn = (parentTaskId: string) => ({
      parentTaskId,
      attempt: Number(attempt),
      leaseEpoch: BigInt(leaseEpoch!),
      children: [{ key: "again", spec: shellTask("again", "true") }],
    });
    const forged = `${taskId}:${Number(attempt) + 1}:${leaseEpoch}:${signature}`;
    expect({
      spawnOwn: await codeOf(() => asTask.spawnTasks(spawn(taskId!))),
      spawnOther: await codeOf(() => asTask.spawnTasks(spawn("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"))),
      getRun: await codeOf(() => asTask.getRun({ runId: run!.id })),
      listRuns: await codeOf(() => asTask.listRuns({})),
      cancelRun: await codeOf(() => asTask.cancelRun({ runId: run!.id })),
      submitRun: await codeOf(() => asTask.submitRun({ run: runSpec("x", [shellTask("t", "true")]) })),
      query: await codeOf(() => asTask.query({ sql: "select 1" })),
      taskStates: await codeOf(() => asTask.getTaskStates({ taskIds: [taskId!] })),
      watchRun: await codeOf(() => asTask.watchRun({ runId: run!.id })),
      forged: await codeOf(() => clientWith(forged).spawnTasks(spawn(taskId!))),
    }).toEqual({
      spawnOwn: "ok",
      spawnOther: Code.PermissionDenied,
      getRun: Code.PermissionDenied,
      listRuns: Code.PermissionDenied,
      cancelRun: Code.PermissionDenied,
      submitRun: Code.PermissionDenied,
      query: Code.PermissionDenied,
      taskStates: Code.PermissionDenied,
      watchRun: Code.PermissionDenied,
      forged: Code.Unauthenticated,
    });
    // a MapReduce commit: with its own token it passes auth (and is refused as no job's), not with another's
    const commitOwn = await codeOf(() => asTask.commitMapReduce({ taskToken: token }));
    expect(commitOwn).not.toBe(Code.Unauthenticated);
    expect(commitOwn).not.toBe(Code.PermissionDenied);
    expect(await codeOf(() => asTask.commitMapReduce({ taskToken: forged }))).toBe(Code.PermissionDenied);
    await writeFile(go, "");
    const finished = await waitForRun(alice, run!.id);
    expect(finished.run.state).toBe(RunState.SUCCEEDED);
    expect([...finished.tasks.keys()].sort()).toEqual(["parent", "parent/again", "parent/child"]);
    // the attempt has ended: its token is dead
    expect(await codeOf(() => asTask.spawnTasks(spawn(taskId!)))).toBe(Code.Unauthenticated);
  });

  it("audits every refusal in auth_denials", async () => {
    const before = Number((await sql`select coalesce(max(id), 0)::int as n from auth_denials`)[0]!.n);
    expect(await codeOf(() => clientWith("nothing").listRuns({}))).toBe(Code.Unauthenticated);
    const { run } = await clientWith(TOKENS.bob).submitRun({ run: runSpec("b", [shellTask("t", "true")]) });
    expect(await codeOf(() => clientWith(TOKENS.alice).getRun({ runId: run!.id }))).toBe(Code.NotFound);
    expect(await codeOf(() => clientWith(TOKENS.readerA).cancelRun({ runId: run!.id }))).toBe(
      Code.PermissionDenied,
    );
    // written (in no particular order) as the refusals are sent: give them a moment
    const expected = [
      ["", "HubService/ListRuns", "unauthenticated"],
      ["alice", "HubService/GetRun", "not_found"],
      ["reader-a", "HubService/CancelRun", "permission_denied"],
    ];
    let rows: { principal: string; rpc: string; code: string; reason: string; peer: string }[] = [];
    const seen = () => rows.map((r) => [r.principal, r.rpc, r.code]);
    for (let i = 0; i < 50; i++) {
      rows =
        await sql`select principal, rpc, code, reason, peer from auth_denials where id > ${before} order by id`;
      if (expected.every((e) => seen().some((s) => s.join() === e.join()))) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(seen()).toEqual(expect.arrayContaining(expected));
    expect(rows.find((r) => r.principal === "alice")?.reason).toContain("another tenant");
    expect(rows.find((r) => r.rpc === "HubService/ListRuns")?.peer).toMatch(/127\.0\.0\.1/);
    // the refusals of the earlier tests are there too: every kind
    const kinds = await sql`select distinct code from auth_denials order by code`;
    expect(kinds.map((k) => k.code)).toEqual(["not_found", "permission_denied", "unauthenticated"]);
  });
});

const CHROMIUM = process.env.TASKFRAME_TEST_CHROMIUM ?? "/usr/bin/chromium";

describe("the dashboard on a hub with auth", () => {
  it.skipIf(!existsSync(CHROMIUM))("asks for a token, then shows only that token's tenant", async () => {
    const { run: aliceRun } = await clientWith(TOKENS.alice).submitRun({
      run: runSpec("seen-by-alice", [shellTask("t", "true")]),
    });
    const { run: bobRun } = await clientWith(TOKENS.bob).submitRun({
      run: runSpec("hidden-from-alice", [shellTask("t", "true")]),
    });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu"],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`${cluster.hubUrls[0]}/`);
      const prompt = page.getByLabel("API token");
      await expect.poll(() => prompt.textContent()).toContain("needs an API token");
      await prompt.locator("input").fill(TOKENS.alice);
      await prompt.getByRole("button").click();
      const aliceRow = page.locator(`tr[data-run-id="${aliceRun!.id}"]`);
      await expect.poll(() => aliceRow.count(), { timeout: 10_000 }).toBe(1);
      expect(await page.locator(`tr[data-run-id="${bobRun!.id}"]`).count()).toBe(0);
      expect(await prompt.count()).toBe(0);
    } finally {
      await browser.close();
    }
  });
});

describe("a hub without auth (protected mode)", () => {
  const address = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === "IPv4" && !i.internal)?.address;

  it.skipIf(!address)("serves loopback callers and refuses others with Unauthenticated", async () => {
    const local = await startLocalCluster({
      dbUrl: cluster.database.target.kind === "postgres" ? cluster.database.target.url : "",
      natsUrl: TEST_NATS_URL,
      namespace: cluster.namespace,
      dir,
      sidecars: 0,
      hubFlags: ["--listen", "0.0.0.0:0"],
    });
    try {
      const port = new URL(local.hubUrls[0]!).port;
      const at = (host: string) =>
        createClient(
          HubService,
          createConnectTransport({ baseUrl: `http://${host}:${port}`, httpVersion: "1.1" }),
        );
      expect(await codeOf(() => at("127.0.0.1").listRuns({}))).toBe("ok");
      const error = await at(address!)
        .listRuns({})
        .then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
      expect(error?.code).toBe(Code.Unauthenticated);
      expect(error?.rawMessage).toContain("protected mode");
      expect(local.hubs[0]!.stderr()).toContain("protected mode");
    } finally {
      await local.stop();
    }
  });
});
