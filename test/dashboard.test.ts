import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunState } from "../core/states.js";
import { type Cluster, startCluster } from "./helpers/cluster.js";
import { runSpec, shellTask, waitForRun } from "./helpers/engine.js";
import { compile, makeCorpus, writeJob } from "./helpers/mapreduce.js";

/** Debian's Chromium, installed by sdks/install-toolchains.sh. */
const CHROMIUM = process.env.TASKFRAME_TEST_CHROMIUM ?? "/usr/bin/chromium";
/** Screenshots and timings, kept after the run (git ignores the directory). */
const ARTIFACTS = resolve("test-artifacts/dashboard");
const WIDTH = 2_000;
/** A bigger run, opened while none of it has run: the 5,000 nodes of the issue. */
const BIG = 5_000;
const HOSTILE = `<img src=x onerror="window.__xss=1">`;

/**
 * The web dashboard, served by a real hub (a process, on Postgres and NATS,
 * with a sidecar), driven end to end in headless Chromium.
 */
describe("web dashboard", () => {
  let cluster: Cluster;
  let browser: Browser;
  let page: Page;
  let wideRunId: string;
  let brokenRunId: string;
  let bigRunId: string;
  const timings: Record<string, unknown> = {};
  const gate = () => join(cluster.dir, "open-the-gate");

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: run sdks/install-toolchains.sh (Debian's chromium package)`);
    await mkdir(ARTIFACTS, { recursive: true });
    cluster = await startCluster({ sidecarFlags: ["--slots", "32"] });
    const client = cluster.client();
    // the fan-out waits behind a gate, so that the page is open before any of it runs
    const work = Array.from({ length: WIDTH }, (_, i) => shellTask(`work-${i}`, "true", { needs: ["gate"] }));
    const wide = runSpec("wide", [
      shellTask("gate", `while [ ! -e '${gate()}' ]; do sleep 0.1; done`),
      ...work,
      shellTask("report", "echo all done", { needs: work.map((t) => t.name) }),
    ]);
    wideRunId = (await client.submitRun({ run: wide })).run!.id;
    // stored text that looks like markup: its name must render as text
    const broken = runSpec(`broken ${HOSTILE}`, [
      shellTask("setup", "echo setting up"),
      shellTask("load", `echo 'step 1 of 2'; echo '${HOSTILE}' >&2; exit 3`, { needs: ["setup"] }),
    ]);
    brokenRunId = (await client.submitRun({ run: broken })).run!.id;
    const shards = Array.from({ length: BIG }, (_, i) =>
      shellTask(`shard-${i}`, "true", { needs: [`split-${i % 50}`] }),
    );
    const big = runSpec("big", [
      shellTask("never", `while [ ! -e '${join(cluster.dir, "never")}' ]; do sleep 1; done`),
      ...Array.from({ length: 50 }, (_, i) => shellTask(`split-${i}`, "true", { needs: ["never"] })),
      ...shards,
    ]);
    bigRunId = (await client.submitRun({ run: big })).run!.id;
    await waitForRun(client, brokenRunId);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu"],
    });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  }, 120_000);

  afterAll(async () => {
    if (bigRunId) await cluster.client().cancelRun({ runId: bigRunId, reason: "test over" });
    if (Object.keys(timings).length > 0)
      await writeFile(join(ARTIFACTS, "timings.json"), `${JSON.stringify(timings, null, 2)}\n`);
    await browser?.close();
    await cluster?.[Symbol.asyncDispose]();
  });

  const hubUrl = () => cluster.hubUrls[0]!;
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });

  it("lists the runs with their states and task counts", async () => {
    await page.goto(`${hubUrl()}/`);
    const wideRow = page.locator(`tr[data-run-id="${wideRunId}"]`);
    await expect.poll(() => wideRow.textContent()).toContain(`${WIDTH + 2}`);
    await expect.poll(() => wideRow.textContent()).toContain("running");
    const brokenRow = page.locator(`tr[data-run-id="${brokenRunId}"]`);
    await expect.poll(() => brokenRow.textContent()).toContain("failed");
    // the run's name is text on the page, never an element, and never ran
    expect(await brokenRow.textContent()).toContain(`broken ${HOSTILE}`);
    expect(await page.locator("img").count()).toBe(0);
    expect(await page.evaluate("window.__xss")).toBeUndefined();
    // the name filter hides what does not match
    await page.getByLabel("filter runs by name").fill("brok");
    await expect.poll(() => wideRow.count()).toBe(0);
    await expect.poll(() => brokenRow.count()).toBe(1);
    await page.getByLabel("filter runs by name").fill("");
    await shot("runs-list");
  });

  it(`opens a run of ${WIDTH + 2} tasks, grouped in its graph, and follows its states live`, async () => {
    // a cold load: a new tab straight at the run
    await page.close();
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const opened = Date.now();
    await page.goto(`${hubUrl()}/#/runs/${wideRunId}`);
    await page.locator('.dag[data-laid-out="yes"]').waitFor({ timeout: 30_000 });
    const interactiveMs = Date.now() - opened;
    const pageTimings = JSON.parse(
      (await page.evaluate<string | undefined>("document.body.dataset.dagInteractive")) ?? "{}",
    );
    // the fan-out is one node (work-# ×2000) between the gate and the report
    const group = page.locator('[data-node="work-#"]');
    await expect.poll(() => group.textContent()).toContain(`×${WIDTH}`);
    await expect.poll(() => page.locator(".dag-node").count()).toBe(3);
    // the list beside it holds every task, but only the rows in view are in the page
    await expect.poll(() => page.locator("[data-shown]").getAttribute("data-shown")).toBe(String(WIDTH + 2));
    expect(await page.locator(".task-row").count()).toBeLessThan(100);
    await shot("run-2000-waiting");

    const succeeded = async () =>
      Number(
        (await page.locator('.run-summary [data-state="succeeded"]').textContent())?.match(/\d+/)?.[0] ?? 0,
      );
    await writeFile(gate(), "");
    // live: the count climbs through values between the start and the end
    const seen = new Set<number>();
    let liveShot = false;
    await expect
      .poll(
        async () => {
          const now = await succeeded();
          seen.add(now);
          if (!liveShot && now > 10 && now < WIDTH / 2) {
            liveShot = true;
            await shot("run-2000-live");
          }
          return page.locator("[data-run-state]").getAttribute("data-run-state");
        },
        { timeout: 90_000, interval: 100 },
      )
      .toBe("succeeded");
    seen.add(await succeeded());
    expect(Math.max(...seen)).toBe(WIDTH + 2);
    expect([...seen].filter((n) => n > 1 && n < WIDTH).length).toBeGreaterThan(0);
    await shot("run-2000-succeeded");

    // picking the group node filters the list to its tasks; the name filter narrows it
    await group.click();
    await expect.poll(() => page.locator("[data-shown]").getAttribute("data-shown")).toBe(String(WIDTH));
    await page.getByLabel("filter tasks by name").fill("work-1999");
    await expect.poll(() => page.locator(".task-row").count()).toBe(1);
    timings[`run of ${WIDTH + 2} tasks`] = { interactiveMs, page: pageTimings };
    console.log(
      `dashboard: a run of ${WIDTH + 2} tasks was interactive ${interactiveMs} ms after navigation ` +
        `(by the page's own clock: ${JSON.stringify(pageTimings)}); screenshots in ${ARTIFACTS}`,
    );
  }, 150_000);

  it(`stays responsive on a run of ${BIG + 51} tasks: graph, list, filters`, async () => {
    await page.close();
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const opened = Date.now();
    await page.goto(`${hubUrl()}/#/runs/${bigRunId}`);
    await page.locator('.dag[data-laid-out="yes"]').waitFor({ timeout: 30_000 });
    const interactiveMs = Date.now() - opened;
    await expect.poll(() => page.locator("[data-shown]").getAttribute("data-shown")).toBe(String(BIG + 51));
    await expect.poll(() => page.locator('[data-node="shard-#"]').textContent()).toContain(`×${BIG}`);
    await shot(`run-${BIG}`);
    const filterStarted = Date.now();
    await page.getByLabel("filter tasks by name").fill("shard-4999");
    await expect.poll(() => page.locator(".task-row").count(), { interval: 20 }).toBe(1);
    const filterMs = Date.now() - filterStarted;
    await page.getByLabel("filter tasks by name").fill("");
    const scrollStarted = Date.now();
    await page.locator(".task-list").evaluate((list) => list.scrollTo(0, list.scrollHeight));
    await expect
      .poll(() => page.locator('.task-row[data-task="shard-4999"]').count(), { interval: 20 })
      .toBe(1);
    const scrollMs = Date.now() - scrollStarted;
    const pageTimings = JSON.parse(
      (await page.evaluate<string | undefined>("document.body.dataset.dagInteractive")) ?? "{}",
    );
    timings[`run of ${BIG + 51} tasks`] = {
      interactiveMs,
      page: pageTimings,
      filterMs,
      scrollToEndMs: scrollMs,
    };
    console.log(
      `dashboard: a run of ${BIG + 51} tasks: ${JSON.stringify(timings[`run of ${BIG + 51} tasks`])}`,
    );
  }, 60_000);

  it("opens a failed task: exit code, attempts, audit trail and logs, stored text shown as text", async () => {
    const { tasks } = await waitForRun(cluster.client(), brokenRunId);
    const load = tasks.get("load")!;
    await page.goto(`${hubUrl()}/#/runs/${brokenRunId}`);
    await page.locator('.task-row[data-task="load"]').click();
    await expect.poll(() => page.url()).toContain(`/tasks/${load.id}`);
    const panel = page.getByLabel("task detail");
    await expect.poll(() => panel.locator("[data-task-state]").textContent()).toBe("failed");
    await expect.poll(() => panel.locator("[data-exit-code]").textContent()).toBe("3");
    const logs = panel.getByRole("log");
    await expect.poll(() => logs.textContent()).toContain("step 1 of 2");
    // the hostile line is text on the page, never an element, and never ran
    await expect.poll(() => logs.textContent()).toContain(HOSTILE);
    expect(await page.locator("img").count()).toBe(0);
    expect(await page.evaluate("window.__xss")).toBeUndefined();
    await expect.poll(() => panel.textContent()).toContain("Audit trail");
    expect(await panel.textContent()).toMatch(/running → failed/);
    await shot("failed-task");
  });

  it("shows a MapReduce job's state and counters on its run page", async () => {
    const corpus = await makeCorpus(join(cluster.dir, "corpus"), 64, 2);
    const job = await writeJob(join(cluster.dir, "wordcount"), corpus, { partitions: 2, reducers: 2 });
    const { run } = await cluster.client().submitRun({ run: await compile(job.definition) });
    await waitForRun(cluster.client(), run!.id);
    await page.goto(`${hubUrl()}/#/runs/${run!.id}`);
    const badge = page.locator("[data-mapreduce-state]");
    await badge.waitFor({ timeout: 10_000 });
    expect(await badge.getAttribute("data-mapreduce-state")).toBe("committed");
    await expect.poll(() => badge.textContent()).toMatch(/2 maps · 2 reducers → .*counts\.txt.*shuffled/);
    await shot("mapreduce-run");
  });

  it("shows analytics, schedules and hosts", async () => {
    await page.goto(`${hubUrl()}/#/stats`);
    await expect.poll(() => page.locator(".tile").first().textContent()).toMatch(/\d/);
    await expect.poll(() => page.locator("table.stats").textContent()).toContain("work-");
    await expect.poll(() => page.locator(".chart canvas").count()).toBeGreaterThan(0);
    await shot("analytics");
    await page.goto(`${hubUrl()}/#/hosts`);
    await expect.poll(() => page.locator("tr[data-host]").count()).toBeGreaterThan(0);
    await page.goto(`${hubUrl()}/#/schedules`);
    await expect.poll(() => page.locator(".empty").textContent()).toContain("No schedules");
  });

  it("serves the page with a content security policy and refuses paths outside it", async () => {
    const index = await fetch(`${hubUrl()}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(index.headers.get("cache-control")).toBe("no-cache");
    expect(await index.text()).toContain('<div id="root">');
    for (const path of [
      "/../package.json",
      "/assets/../../package.json",
      "/%2e%2e/package.json",
      "/nothing",
    ]) {
      const response = await fetch(`${hubUrl()}${path}`);
      expect({ path, status: response.status }).toEqual({ path, status: 404 });
    }
    const run = await cluster.client().getRun({ runId: wideRunId });
    expect(run.run?.state).toBe(RunState.SUCCEEDED);
  });
});
