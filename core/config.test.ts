import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadHubConfig, loadSidecarConfig } from "./config.js";

describe("process configuration", () => {
  let dir: string;
  const saved = { ...process.env };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "taskframe-config-"));
    for (const key of Object.keys(process.env)) if (key.startsWith("TASKFRAME_")) delete process.env[key];
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    process.env = { ...saved };
  });

  const file = (text: string) => {
    const path = join(dir, "taskframe.yaml");
    writeFileSync(path, text);
    return path;
  };

  it("takes flags over environment over file, and fills defaults", () => {
    const path = file("db: postgres://file/db\nnats: nats://file:4222\nlisten: 0.0.0.0:1\nack-wait: 10s\n");
    process.env.TASKFRAME_LISTEN = "127.0.0.1:2";
    process.env.TASKFRAME_NATS = "nats://env:4222,nats://env2:4222";
    const config = loadHubConfig({ listen: "127.0.0.1:3" }, path);
    expect(config).toMatchObject({
      db: "postgres://file/db",
      nats: ["nats://env:4222", "nats://env2:4222"],
      listen: "127.0.0.1:3",
      "ack-wait": 10_000,
      "max-deliveries": 5,
      namespace: "taskframe",
      replicas: 1,
      storage: "file",
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("names every bad setting and what was expected", () => {
    const bad = () => loadHubConfig({ db: "mysql://x", nats: "nats://n", "ack-wait": "soon" });
    expect(bad).toThrow(/^hub configuration: .*'db': a postgres:\/\/ URL/);
    expect(bad).toThrow(/'ack-wait': expected a duration such as .*, got "soon"/);
    expect(() => loadHubConfig({ nats: "nats://n" }, file("db: postgres://x\nretires: 3\n"))).toThrow(
      "hub configuration: unknown setting 'retires'",
    );
  });

  it("parses a sidecar's pools, slots and labels", () => {
    process.env.TASKFRAME_SLOTS = "64";
    const config = loadSidecarConfig({ nats: "nats://n", pool: "default,gpu", labels: "gpu=true,zone=a" });
    expect(config).toMatchObject({ pool: ["default", "gpu"], slots: 64, labels: { gpu: "true", zone: "a" } });
    expect(config.ledgerDir).toContain("taskframe-sidecar-");
    expect(() => loadSidecarConfig({ nats: "nats://n", pool: "bad pool" })).toThrow(
      /'pool.0': pool names are/,
    );
  });
});
