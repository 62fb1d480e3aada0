import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { PROVIDER_HOST_ID_ENV } from "../../core/host-channel.js";
import type { Logger } from "../../core/logger.js";
import { packagePath } from "../../core/package-root.js";
import type { CreateHostRequest, HostProvider, ProvidedHost } from "./provider.js";

export interface LocalProviderOptions {
  /** Flags for every `task sidecar` (NATS servers, namespace…); `--pool` and `--host` are added. */
  sidecarArgs: readonly string[];
  /** More environment for every sidecar (secrets kept off the command line). */
  env?: Record<string, string>;
  /** After SIGTERM, how long a sidecar may take before SIGKILL. @default 30_000 */
  stopGraceMs?: number;
  logger: Logger;
}

interface LocalHost {
  host: ProvidedHost;
  child: ChildProcess;
  exited: Promise<unknown>;
}

/**
 * Hosts as `task sidecar` processes on this machine: for development,
 * demos and tests. A host is running while its process is; a process that
 * ends by itself (it drained) shows as terminating until it is deleted.
 */
export class LocalHostProvider implements HostProvider {
  readonly kind = "local";
  readonly #options: LocalProviderOptions;
  readonly #byToken = new Map<string, LocalHost>();
  #made = 0;

  constructor(options: LocalProviderOptions) {
    this.#options = options;
  }

  async create(request: CreateHostRequest): Promise<ProvidedHost> {
    const existing = this.#byToken.get(request.token);
    if (existing) return { ...existing.host };
    this.#made += 1;
    const id = `local-${request.pool}-${process.pid}-${this.#made}`;
    const labels = Object.entries(request.labels).map(([k, v]) => `${k}=${v}`);
    const child = spawn(
      process.execPath,
      [
        packagePath("bin", "task.js"),
        "sidecar",
        ...this.#options.sidecarArgs,
        "--pool",
        request.pool,
        "--host",
        id,
        ...(labels.length > 0 ? ["--labels", labels.join(",")] : []),
      ],
      {
        env: { ...process.env, ...this.#options.env, [PROVIDER_HOST_ID_ENV]: id },
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    const host: ProvidedHost = {
      id,
      pool: request.pool,
      state: "running",
      labels: { ...request.labels },
      token: request.token,
      createdAtMs: Date.now(),
    };
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4_000);
    });
    const exited = once(child, "exit").then(([code, signal]) => {
      if (host.state !== "terminating")
        this.#options.logger.info({ host: id, code, signal }, "a local sidecar exited (drained, or failed)");
      host.state = "terminating";
      if (code !== 0 && code !== null)
        host.detail = `exit code ${code}: ${stderr.trim().split("\n").at(-1) ?? ""}`;
    });
    this.#byToken.set(request.token, { host, child, exited });
    return { ...host };
  }

  async get(id: string): Promise<ProvidedHost | undefined> {
    const local = this.#find(id);
    return local ? { ...local.host } : undefined;
  }

  async list(pool: string): Promise<ProvidedHost[]> {
    return [...this.#byToken.values()].filter((l) => l.host.pool === pool).map((l) => ({ ...l.host }));
  }

  async delete(id: string): Promise<void> {
    const local = this.#find(id);
    if (!local) return;
    await this.#stop(local);
    this.#byToken.delete(local.host.token);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#byToken.values()].map((local) => this.#stop(local)));
    this.#byToken.clear();
  }

  #find(id: string): LocalHost | undefined {
    return [...this.#byToken.values()].find((l) => l.host.id === id);
  }

  async #stop(local: LocalHost): Promise<void> {
    if (local.child.exitCode === null && local.child.signalCode === null) {
      local.host.state = "terminating";
      local.child.kill("SIGTERM");
      const timer = setTimeout(() => local.child.kill("SIGKILL"), this.#options.stopGraceMs ?? 30_000);
      await local.exited;
      clearTimeout(timer);
    }
  }
}
