import { type ChildProcess, spawn } from "node:child_process";
export interface AdapterOptions {
  /** Shell command that starts the adapter. */
  command: string;
  cwd: string;
  socketPath: string;
  /** Whether a worker registered under this name serves tasks now. */
  registered: (workerName: string) => Promise<boolean>;
  /** The adapter's stderr and stdout go here. */
  output: (chunk: Buffer) => void;
}

const REGISTER_TIMEOUT_MS = 60_000;

/**
 * The adapter under test, as a process: started with the sidecar's socket,
 * restarted after it exits unexpectedly (crash cases), stopped gracefully or
 * killed on request. `ready()` resolves once its worker has registered.
 */
export class AdapterProcess {
  #child: ChildProcess | undefined;
  #generation = 0;
  #concurrency = 4;
  #exits: { code: number | null; signal: NodeJS.Signals | null; expected: boolean }[] = [];
  #expectingExit = false;
  #closed = false;

  constructor(private readonly options: AdapterOptions) {}

  get workerName(): string {
    return `conformance-${this.#generation}`;
  }

  /** Unexpected exits so far (crash steps make some). */
  get exits() {
    return this.#exits;
  }

  async start(concurrency = this.#concurrency): Promise<void> {
    this.#concurrency = concurrency;
    this.#generation += 1;
    this.#expectingExit = false;
    const child = spawn(this.options.command, {
      shell: true,
      cwd: this.options.cwd,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        TASKFRAME_SOCKET: this.options.socketPath,
        TASKFRAME_CONFORMANCE_CONCURRENCY: String(concurrency),
        TASKFRAME_WORKER_NAME: this.workerName,
      },
    });
    child.stdout?.on("data", this.options.output);
    child.stderr?.on("data", this.options.output);
    this.#child = child;
    child.once("exit", (code, signal) => {
      this.#exits.push({ code, signal, expected: this.#expectingExit });
      if (this.#child === child) this.#child = undefined;
      // a crash step ends the process: the next case needs a worker again
      if (!this.#expectingExit && !this.#closed) void this.start().catch(() => {});
    });
    await this.ready();
  }

  /** Waits until the current generation's worker has registered with the sidecar. */
  async ready(timeoutMs = REGISTER_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const name = this.workerName;
    while (!(await this.options.registered(name))) {
      if (this.#closed) throw new Error("the adapter was closed");
      if (Date.now() > deadline) {
        throw new Error(`the adapter did not register a worker named ${name} within ${timeoutMs} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Restarts the adapter with another concurrency, if it differs. */
  async ensureConcurrency(concurrency: number): Promise<void> {
    if (concurrency === this.#concurrency && this.#child) return this.ready();
    await this.stop();
    await this.start(concurrency);
  }

  /** kill -9 the whole process group, then start it again. */
  async killAndRestart(): Promise<void> {
    const child = this.#child;
    if (child?.pid) {
      this.#expectingExit = true;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      process.kill(-child.pid, "SIGKILL");
      await exited;
    }
    await this.start();
  }

  /** SIGTERM: the adapter must drain and exit. Resolves with its exit code (null: killed after the grace). */
  async stop(graceMs = 20_000): Promise<number | null> {
    const child = this.#child;
    if (!child?.pid || child.exitCode !== null) return child?.exitCode ?? 0;
    this.#expectingExit = true;
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    process.kill(-child.pid, "SIGTERM");
    const timer = setTimeout(() => child.pid && process.kill(-child.pid, "SIGKILL"), graceMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.stop(5_000).catch(() => {});
  }
}
