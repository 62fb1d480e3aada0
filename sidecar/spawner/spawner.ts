import { type ChildProcessByStdio, spawn } from "node:child_process";
import { extname } from "node:path";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { sizeDelimitedDecodeStream } from "@bufbuild/protobuf/wire";
import { errorMessage } from "../../core/errors.js";
import {
  type ProcessExit,
  SpawnerEventSchema,
  SpawnerRequestSchema,
} from "../../core/gen/taskframe/v1/spawner_pb.js";
import { LogStream } from "../../core/gen/taskframe/v1/state_pb.js";
import { type Logger, silentLogger } from "../../core/logger.js";
import type { ProcessOutcome, RunProcessOptions } from "../process-runner.js";
import { FrameWriter } from "./frames.js";

/** What runs a task process: `runProcess` itself, or a Spawner's `run`. */
export type ProcessLauncher = (
  options: RunProcessOptions & { outputLimitBytes?: number },
) => Promise<ProcessOutcome & { droppedOutputBytes: number }>;

interface Pending {
  options: RunProcessOptions;
  resolve: (outcome: ProcessOutcome & { droppedOutputBytes: number }) => void;
  onAbort: () => void;
}

type Helper = ChildProcessByStdio<Writable, Readable, null>;

/**
 * Starts task processes through a lean helper process (spawner-process.ts),
 * so that fork() is cheap whatever the size of this one. The helper is
 * started on first use and again if it dies; tasks it was running when it
 * died fail with a clear error (and are retried by policy).
 */
export class Spawner implements AsyncDisposable {
  #helper: Helper | undefined;
  #requests: FrameWriter<typeof SpawnerRequestSchema> | undefined;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;

  readonly #logger: Logger;
  readonly #ledgerDir: string | undefined;

  /** `ledgerDir`: where the helper writes down the process groups it runs (see ProcessLedger). */
  constructor(options: { logger?: Logger; ledgerDir?: string } = {}) {
    this.#logger = options.logger ?? silentLogger;
    this.#ledgerDir = options.ledgerDir;
  }

  /** The helper's pid while it runs (for measurements). */
  get pid(): number | undefined {
    return this.#helper?.pid;
  }

  readonly run: ProcessLauncher = (options) => {
    if (this.#closed) return Promise.reject(new Error("the spawner is closed"));
    const requests = this.#ensureHelper();
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffff_ffff ? 1 : this.#nextId + 1;
    return new Promise((resolve) => {
      const onAbort = () =>
        requests.write(create(SpawnerRequestSchema, { request: { case: "stop", value: { id } } }));
      this.#pending.set(id, { options, resolve, onAbort });
      options.signal?.addEventListener("abort", onAbort, { once: true });
      requests.write(
        create(SpawnerRequestSchema, {
          request: {
            case: "spawn",
            value: {
              id,
              command: options.command,
              args: [...options.args],
              env: options.env,
              cwd: options.cwd,
              timeoutMs: BigInt(options.timeoutMs ?? 0),
              killGraceMs: BigInt(options.killGraceMs ?? 5_000),
              outputLimitBytes: BigInt(options.outputLimitBytes ?? 0),
            },
          },
        }),
      );
      if (options.signal?.aborted) onAbort();
    });
  };

  /** Ends the helper: it stops whatever is still running (SIGTERM, then SIGKILL) and exits. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const helper = this.#helper;
    if (!helper) return;
    const exited = new Promise<void>((resolve) => helper.once("close", () => resolve()));
    this.#requests?.flush();
    helper.stdin.end();
    await exited;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #ensureHelper(): FrameWriter<typeof SpawnerRequestSchema> {
    if (this.#helper && this.#requests) return this.#requests;
    const entry = fileURLToPath(
      new URL(`./spawner-process${extname(fileURLToPath(import.meta.url))}`, import.meta.url),
    );
    // from source (tests), the helper is TypeScript too
    const loader = entry.endsWith(".ts") ? ["--import", "tsx"] : [];
    const env = this.#ledgerDir ? { ...process.env, TASKFRAME_SPAWNER_LEDGER: this.#ledgerDir } : process.env;
    const helper: Helper = spawn(process.execPath, [...loader, entry], {
      env,
      stdio: ["pipe", "pipe", "inherit"],
    });
    this.#helper = helper;
    this.#requests = new FrameWriter(SpawnerRequestSchema, helper.stdin);
    helper.stdin.on("error", () => {}); // reported through "close"
    helper.on("close", (code, signal) =>
      this.#lost(helper, `the spawner exited (${signal ?? `code ${code}`})`),
    );
    void this.#readEvents(helper);
    return this.#requests;
  }

  async #readEvents(helper: Helper): Promise<void> {
    try {
      for await (const event of sizeDelimitedDecodeStream(SpawnerEventSchema, helper.stdout)) {
        const pending = this.#pending.get(event.id);
        if (!pending) continue;
        if (event.event.case === "output") {
          const { stream, data } = event.event.value;
          pending.options.onOutput(
            stream === LogStream.STDERR ? "stderr" : "stdout",
            Buffer.from(data.buffer, data.byteOffset, data.length),
          );
        } else if (event.event.case === "exit") {
          this.#settle(event.id, outcomeOf(event.event.value));
        }
      }
    } catch (error) {
      this.#logger.error({ err: error }, `reading from the spawner failed: ${errorMessage(error)}`);
      helper.kill("SIGKILL");
    }
  }

  #settle(id: number, outcome: ProcessOutcome & { droppedOutputBytes: number }): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    pending.options.signal?.removeEventListener("abort", pending.onAbort);
    pending.resolve(outcome);
  }

  #lost(helper: Helper, reason: string): void {
    if (this.#helper !== helper) return;
    this.#helper = undefined;
    this.#requests = undefined;
    if (!this.#closed) this.#logger.error(reason);
    for (const id of [...this.#pending.keys()]) {
      this.#settle(id, {
        pid: undefined,
        exitCode: null,
        signal: null,
        timedOut: false,
        cancelled: false,
        spawnError: { code: "ESPAWNER", message: `${reason} while the task ran; its result is unknown` },
        startedAtMs: Date.now(),
        durationMs: 0,
        droppedOutputBytes: 0,
      });
    }
  }
}

function outcomeOf(exit: ProcessExit): ProcessOutcome & { droppedOutputBytes: number } {
  return {
    pid: exit.pid,
    exitCode: exit.exitCode ?? null,
    signal: (exit.signal || null) as NodeJS.Signals | null,
    timedOut: exit.timedOut,
    cancelled: exit.cancelled,
    ...(exit.spawnErrorCode
      ? { spawnError: { code: exit.spawnErrorCode, message: exit.spawnErrorMessage } }
      : {}),
    startedAtMs: Number(exit.startedAtUnixMs),
    durationMs: exit.durationMs,
    droppedOutputBytes: Number(exit.droppedOutputBytes),
  };
}
