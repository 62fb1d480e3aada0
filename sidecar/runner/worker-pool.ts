import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import type { WorkerPoolSpec } from "../../core/definitions/worker-pools.js";
import { errorMessage } from "../../core/errors.js";
import { TaskSpecSchema } from "../../core/gen/taskframe/v1/spec_pb.js";
import type { Logger } from "../../core/logger.js";
import type { Jail } from "../jail/jail.js";
import type { ProcessLauncher } from "../spawner/spawner.js";

/** The sidecar's own credentials for the hub: never a worker's (docs/security-auth.md). */
const SIDECAR_SECRETS = new Set(["TASKFRAME_HUB_TOKEN", "TASKFRAME_TASK_TOKEN_SECRET"]);

function definedEnvironment(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      (entry): entry is [string, string] => entry[1] !== undefined && !SIDECAR_SECRETS.has(entry[0]),
    ),
  );
}

/** Where a jailed worker finds the sidecar's Runner socket. */
const RUNNER_SOCKET_INSIDE = "/run/taskframe/runner.sock";

/** What a jailed worker inherits from the sidecar: the basics a program needs, no credentials. */
function workerEnvironment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of [
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "PYTHONPATH",
    "NODE_PATH",
  ]) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

export interface WorkerPoolOptions {
  /** The sidecar's Runner socket: every worker gets it as TASKFRAME_SOCKET. */
  socketPath: string;
  logger: Logger;
  /** Where each worker's stdout and stderr go (`<pool>-<n>.log`); undefined: this process's stderr. */
  logDir?: string;
  /** Starts allowed per instance within `startLimitIntervalMs` before the pool is unhealthy. @default 5 */
  startLimitBurst?: number;
  /** @default 10_000 */
  startLimitIntervalMs?: number;
  /** SIGTERM to SIGKILL when stopping. @default 5_000 */
  stopGraceMs?: number;
  /**
   * Run every worker in this jail, with the pool's account and limits, through
   * this launcher (the spawner, which joins cgroups and switches accounts
   * between fork and exec). Without it, workers run as the sidecar's user.
   */
  jail?: { jail: Jail; launch: ProcessLauncher; host: string };
}

/**
 * - `running`    every instance is up or being restarted
 * - `unhealthy`  an instance crashed too often (StartLimitBurst within StartLimitIntervalSec, as systemd):
 *                it is not restarted again; the others keep running
 * - `stopped`
 */
export type PoolHealth = "running" | "unhealthy" | "stopped";

interface Instance {
  index: number;
  child: ChildProcess | undefined;
  /** A jailed worker: stopping it aborts this; `exited` settles when it is gone. */
  jailed: { stop: AbortController; exited: Promise<void> } | undefined;
  starts: number[];
  restartTimer: NodeJS.Timeout | undefined;
}

/**
 * Keeps a pool of SDK worker processes running for the sidecar: restarts
 * one that exits (after a short backoff), and gives up on an instance that
 * keeps crashing instead of restarting it in a hot loop.
 */
export class WorkerPool {
  readonly #instances: Instance[];
  readonly #logs: WriteStream[] = [];
  #health: PoolHealth = "running";
  #stopping = false;

  constructor(
    readonly spec: WorkerPoolSpec,
    private readonly options: WorkerPoolOptions,
  ) {
    this.#instances = Array.from({ length: spec.instances }, (_, index) => ({
      index,
      child: undefined,
      jailed: undefined,
      starts: [],
      restartTimer: undefined,
    }));
  }

  get health(): PoolHealth {
    return this.#health;
  }

  /** Instances running right now. */
  get running(): number {
    return this.#instances.filter(
      (i) => i.jailed !== undefined || (i.child && i.child.exitCode === null && i.child.signalCode === null),
    ).length;
  }

  start(): void {
    for (const instance of this.#instances) this.#launch(instance);
  }

  /** From now on, a worker that exits stays down (the sidecar is draining them). */
  stopRestarting(): void {
    this.#stopping = true;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#health = "stopped";
    await Promise.all(this.#instances.map((instance) => this.#terminate(instance)));
    for (const log of this.#logs) log.end();
  }

  #launch(instance: Instance): void {
    const { spec, options } = this;
    const now = performance.now();
    const windowMs = options.startLimitIntervalMs ?? 10_000;
    instance.starts = instance.starts.filter((at) => now - at < windowMs);
    if (instance.starts.length >= (options.startLimitBurst ?? 5)) {
      this.#health = "unhealthy";
      options.logger.error(
        { pool: spec.name, instance: instance.index },
        `worker ${spec.name}-${instance.index} crashed ${instance.starts.length} times within ${windowMs} ms: not restarting it`,
      );
      return;
    }
    instance.starts.push(now);
    if (options.jail) {
      this.#launchJailed(instance, options.jail);
      return;
    }
    const output = this.#output(instance);
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: {
        ...definedEnvironment(),
        ...spec.env,
        TASKFRAME_SOCKET: options.socketPath,
        TASKFRAME_WORKER_POOL: spec.name,
      },
      stdio: ["ignore", output ? "pipe" : "inherit", output ? "pipe" : "inherit"],
      detached: true,
    });
    if (output) {
      child.stdout?.pipe(output, { end: false });
      child.stderr?.pipe(output, { end: false });
    }
    instance.child = child;
    child.once("error", (error) => {
      options.logger.error(
        { pool: spec.name },
        `cannot start worker ${spec.command}: ${errorMessage(error)}`,
      );
    });
    child.once("exit", (code, signal) => {
      instance.child = undefined;
      this.#exited(instance, signal ?? `code ${code}`);
    });
  }

  #exited(instance: Instance, how: string): void {
    if (this.#stopping) return;
    this.options.logger.warn(
      { pool: this.spec.name, instance: instance.index, how },
      `worker ${this.spec.name}-${instance.index} exited (${how}); restarting`,
    );
    // a little backoff, so that a worker that cannot start does not spin
    instance.restartTimer = setTimeout(
      () => this.#launch(instance),
      Math.min(2_000, 100 * 2 ** instance.starts.length),
    );
    instance.restartTimer.unref();
  }

  /** One worker in the sidecar's jail: the runner socket bound in, the pool's account and limits. */
  #launchJailed(instance: Instance, { jail, launch, host }: NonNullable<WorkerPoolOptions["jail"]>): void {
    const { spec, options } = this;
    const stop = new AbortController();
    const output = this.#output(instance);
    const run = async (): Promise<string> => {
      const limits = spec.limits;
      const attempt = await jail.prepare({
        spec: create(TaskSpecSchema, {
          name: `worker ${spec.name}-${instance.index}`,
          user: spec.user ?? "",
          group: spec.group ?? "",
          ...(limits ? { limits } : {}),
        }),
        cwd: spec.cwd,
        host,
        key: `w-${spec.name}-${instance.index}`,
        runId: "",
        sockets: [{ host: options.socketPath, inside: RUNNER_SOCKET_INSIDE }],
      });
      try {
        const jailed = attempt.profile !== "none";
        const wrapped = attempt.wrap(spec.command, spec.args);
        const outcome = await launch({
          command: wrapped.command,
          args: wrapped.args,
          env: attempt.env({
            // unjailed, a worker inherits the sidecar's environment as it always did
            ...(jailed ? workerEnvironment() : definedEnvironment()),
            ...spec.env,
            TASKFRAME_SOCKET: jailed ? RUNNER_SOCKET_INSIDE : options.socketPath,
            TASKFRAME_WORKER_POOL: spec.name,
          }),
          cwd: spec.cwd,
          killGraceMs: options.stopGraceMs ?? 5_000,
          signal: stop.signal,
          outputLimitBytes: Number.MAX_SAFE_INTEGER,
          onOutput: (_, data) => (output ? output.write(data) : process.stderr.write(data)),
          ...(wrapped.confine ? { confine: wrapped.confine } : {}),
        });
        if (outcome.spawnError) return `could not start: ${outcome.spawnError.message}`;
        return outcome.signal ?? `code ${outcome.exitCode}`;
      } finally {
        await attempt.release();
      }
    };
    const exited = run().then(
      (how) => {
        instance.jailed = undefined;
        this.#exited(instance, how);
      },
      (error: unknown) => {
        instance.jailed = undefined;
        options.logger.error(
          { pool: spec.name },
          `cannot start worker ${spec.command}: ${errorMessage(error)}`,
        );
        this.#exited(instance, errorMessage(error));
      },
    );
    instance.jailed = { stop, exited };
  }

  #output(instance: Instance): WriteStream | undefined {
    if (!this.options.logDir) return undefined;
    mkdirSync(this.options.logDir, { recursive: true });
    const log = createWriteStream(join(this.options.logDir, `${this.spec.name}-${instance.index}.log`), {
      flags: "a",
    });
    this.#logs.push(log);
    return log;
  }

  async #terminate(instance: Instance): Promise<void> {
    clearTimeout(instance.restartTimer);
    if (instance.jailed) {
      instance.jailed.stop.abort();
      await instance.jailed.exited;
      return;
    }
    const child = instance.child;
    if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    signalGroup(child.pid, "SIGTERM");
    const timer = setTimeout(() => signalGroup(child.pid!, "SIGKILL"), this.options.stopGraceMs ?? 5_000);
    await exited;
    clearTimeout(timer);
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}
