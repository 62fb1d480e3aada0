import { describe, expect, it } from "vitest";
import { startCluster } from "./helpers/cluster.js";
import { runSpec, runToEnd, shellTask, startEngine } from "./helpers/engine.js";
import { freePort } from "./helpers/processes.js";

/** A sample's value from the Prometheus text format, 0 when it is not there. */
function sample(text: string, name: string, labels = ""): number {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const [key, value] = line.split(" ");
    if (key === name || (key?.startsWith(`${name}{`) && key.includes(labels))) return Number(value);
  }
  return 0;
}

describe("Prometheus metrics", () => {
  it("an embedded hub counts the state changes, run times and queued tasks of what it records", async () => {
    await using engine = await startEngine("pglite");
    await runToEnd(
      engine.client,
      runSpec("measured", [
        shellTask("ok", "true"),
        shellTask("bad", "exit 2"),
        shellTask("next", "true", { needs: ["ok"] }),
      ]),
    );
    const text = await engine.engine.hub.metrics.registry.metrics();
    expect(sample(text, "taskframe_task_state_changes_total", 'state="SUCCEEDED"')).toBe(2);
    expect(sample(text, "taskframe_task_state_changes_total", 'state="FAILED"')).toBe(1);
    expect(sample(text, "taskframe_task_run_seconds_count", 'state="SUCCEEDED"')).toBe(2);
    expect(sample(text, "taskframe_work_published_total", 'pool="default"')).toBe(3);
    expect(text).toContain("# TYPE taskframe_tasks gauge");
  });

  it("a hub serves /metrics on its API port and a sidecar on --metrics-listen", async () => {
    const port = await freePort();
    await using cluster = await startCluster({ sidecarFlags: ["--metrics-listen", `127.0.0.1:${port}`] });
    await runToEnd(cluster.client(), runSpec("measured", [shellTask("a", "true"), shellTask("b", "exit 3")]));
    const hub = await fetch(`${cluster.hubUrls[0]}/metrics`);
    expect(hub.headers.get("content-type")).toContain("text/plain");
    const hubText = await hub.text();
    expect(sample(hubText, "taskframe_task_state_changes_total", 'state="FAILED"')).toBe(1);
    expect(sample(hubText, "taskframe_recorder_batch_size_count")).toBeGreaterThan(0);
    expect(hubText).toContain('role="hub"');
    expect(hubText).toContain("taskframe_process_cpu_seconds_total");
    const sidecar = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(sample(sidecar, "taskframe_sidecar_attempts_total", 'state="SUCCEEDED"')).toBe(1);
    expect(sample(sidecar, "taskframe_sidecar_attempts_total", 'state="FAILED"')).toBe(1);
    expect(sample(sidecar, "taskframe_sidecar_leases_in_flight")).toBe(0);
    expect(sidecar).toContain('role="sidecar"');
  });
});
