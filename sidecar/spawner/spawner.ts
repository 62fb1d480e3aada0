import { type ChildProcessByStdio, execFile, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
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
import { packagePath } from "../../core/package-root.js";
import {
  describeSpawnError,
  type ProcessOutcome,
  type RunProcessOptions,
  runProcess,
} from "../process-runner.js";
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

/** Where `npm install` builds the native helper (sidecar/spawner/native/build.mjs). */
export const INSTALLED_NATIVE_HELPER = packagePath("sidecar", "spawner", "native", "taskframe-spawner");

export interface SpawnerOptions {
  logger?: Logger;
  /** Where the helper writes down the process groups it runs (see ProcessLedger). */
  ledgerDir?: string;
  /**
   * The native helper to use (taskframe-spawner.c, same protocol): by default
   * the installed one, when it was built; `false`, or TASKFRAME_SPAWNER_HELPER=node
   * in the environment, for spawner-process.ts on Node.
   */
  nativeHelper?: string | false;
}

/**
 * Starts task processes through a lean helper process, so that fork() is
 * cheap whatever the size of this one: the native helper when it was built
 * at install (a spawn costs a fraction of Node's), else spawner-process.ts.
 * The helper is started on first use and again if it dies; tasks it was
 * running when it died fail with a clear error (and are retried by policy).
 */
export class Spawner implements AsyncDisposable {
  #helper: Helper | undefined;
  #requests: FrameWriter<typeof SpawnerRequestSchema> | undefined;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;
  #native: string | undefined;
  /** Helpers that sent at least one event. */
  readonly #heard = new WeakSet<Helper>();

  readonly #logger: Logger;
  readonly #ledgerDir: string | undefined;

  constructor(options: SpawnerOptions = {}) {
    this.#logger = options.logger ?? silentLogger;
    this.#ledgerDir = options.ledgerDir;
    const wanted =
      process.env.TASKFRAME_SPAWNER_HELPER === "node"
        ? false
        : (options.nativeHelper ?? (isExecutable(INSTALLED_NATIVE_HELPER) ? INSTALLED_NATIVE_HELPER : false));
    this.#native = wanted === false ? undefined : wanted;
  }

  /** The helper's pid while it runs (for measurements). */
  get pid(): number | undefined {
    return this.#helper?.pid;
  }

  /** Which helper starts the processes: the native one, or spawner-process.ts. */
  get helperKind(): "native" | "node" {
    return this.#native === undefined ? "node" : "native";
  }

  /**
   * Whether the native helper starts the processes, so that confinement (cgroups, seccomp) can be
   * applied. It can turn false later, should the native helper turn out not to work.
   */
  get native(): boolean {
    return this.#native !== undefined;
  }

  readonly run: ProcessLauncher = (options) => {
    if (this.#closed) return Promise.reject(new Error("the spawner is closed"));
    // runProcess refuses these before it forks anything, with Node's own error (not its ENOTSUP for
    // confinement it cannot apply: nothing would run anyway)
    if (!spawnable(options))
      return runProcess({ ...options, confine: undefined }).then((outcome) => ({
        ...outcome,
        droppedOutputBytes: 0,
      }));
    const { confine } = options;
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
              cgroupProcsFiles: [...(confine?.cgroupProcsFiles ?? [])],
              seccompFilterPath: confine?.seccompFilterPath ?? "",
              noCoreDumps: confine?.noCoreDumps ?? false,
              ...(confine?.account
                ? {
                    uid: confine.account.uid,
                    gid: confine.account.gid,
                    groups: [...confine.account.groups],
                  }
                : {}),
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
    const env = this.#ledgerDir ? { ...process.env, TASKFRAME_SPAWNER_LEDGER: this.#ledgerDir } : process.env;
    const native = this.#native;
    let helper: Helper;
    if (native !== undefined) {
      // a process group of its own (detached): a Ctrl-C meant for `task dev` or `task run` must
      // not kill the helper under running tasks; it ends when its stdin closes with this process
      helper = spawn(native, [], { env, stdio: ["pipe", "pipe", "inherit"], detached: true });
      // one that cannot start, or ends before it said a word (not a helper, built for another
      // machine...), is not tried again: Node's spawn from now on
      const giveUp = (why: string) => {
        if (this.#native !== native || this.#closed) return;
        this.#logger.warn(`the native spawner helper ${native} ${why}; using spawner-process.ts`);
        this.#native = undefined;
      };
      helper.once("error", (error) => giveUp(`cannot start (${errorMessage(error)})`));
      helper.once("close", (code, signal) => {
        if (!this.#heard.has(helper)) giveUp(`ended before it answered (${signal ?? `code ${code}`})`);
      });
    } else {
      const entry = fileURLToPath(
        new URL(`./spawner-process${extname(fileURLToPath(import.meta.url))}`, import.meta.url),
      );
      // from source (tests), the helper is TypeScript too
      const loader = entry.endsWith(".ts") ? ["--import", "tsx"] : [];
      // e.g. "--cpu-prof --cpu-prof-dir=DIR" to profile the helper (NODE_OPTIONS refuses --cpu-prof)
      const nodeArgs = process.env.TASKFRAME_SPAWNER_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
      helper = spawn(process.execPath, [...nodeArgs, ...loader, entry], {
        env,
        stdio: ["pipe", "pipe", "inherit"],
        detached: true,
      });
    }
    this.#helper = helper;
    this.#requests = new FrameWriter(SpawnerRequestSchema, helper.stdin);
    helper.stdin.on("error", () => {}); // reported through "close"
    helper.on("close", (code, signal) =>
      this.#lost(helper, `the spawner exited (${signal ?? `code ${code}`})`),
    );
    void this.#readEvents(helper, native !== undefined);
    return this.#requests;
  }

  /**
   * The native helper sends an errno name and strerror text for exec and chdir: described here as
   * runProcess would. A confinement step that failed comes described ("cannot join cgroup ...: ...").
   */
  async #settleSpawnError(id: number, pending: Pending, exit: ProcessExit): Promise<void> {
    const { command, cwd } = pending.options;
    const spawnError = exit.spawnErrorMessage.startsWith("cannot ")
      ? {
          code: exit.spawnErrorCode,
          message: `cannot start ${JSON.stringify(command)}: ${exit.spawnErrorMessage}`,
        }
      : await describeSpawnError(
          Object.assign(new Error(exit.spawnErrorMessage), { code: exit.spawnErrorCode }),
          command,
          cwd,
        );
    this.#settle(id, { ...outcomeOf(exit), spawnError });
  }

  async #readEvents(helper: Helper, native: boolean): Promise<void> {
    try {
      for await (const event of sizeDelimitedDecodeStream(SpawnerEventSchema, helper.stdout)) {
        this.#heard.add(helper);
        const pending = this.#pending.get(event.id);
        if (!pending) continue;
        if (event.event.case === "output") {
          const { stream, data } = event.event.value;
          pending.options.onOutput(
            stream === LogStream.STDERR ? "stderr" : "stdout",
            Buffer.from(data.buffer, data.byteOffset, data.length),
          );
        } else if (event.event.case === "exit") {
          const exit = event.event.value;
          if (exit.spawnErrorCode && native) void this.#settleSpawnError(event.id, pending, exit);
          else this.#settle(event.id, outcomeOf(exit));
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

/**
 * Writes the seccomp filter for confined tasks (`bwrap --seccomp 3`) to `path`,
 * compiled by the native helper with libseccomp (see write_seccomp_filter in
 * taskframe-spawner.c). Rejects with the helper's stderr when it fails
 * (libseccomp.so.2 missing...), or when the native helper was not built.
 */
export async function writeSeccompFilter(
  path: string,
  nativeHelper: string = INSTALLED_NATIVE_HELPER,
): Promise<void> {
  if (!isExecutable(nativeHelper)) {
    throw new Error(
      `cannot write a seccomp filter: the native spawner helper ${nativeHelper} was not built (it is built at install with a C compiler)`,
    );
  }
  await new Promise<void>((resolve, reject) => {
    execFile(
      nativeHelper,
      ["--write-seccomp-filter", path],
      { encoding: "utf8" },
      (error, _stdout, stderr) => {
        if (!error) resolve();
        else reject(new Error(stderr.trim() || `cannot write a seccomp filter: ${errorMessage(error)}`));
      },
    );
  });
}

/** Whether a process can be asked for at all: Node's spawn refuses an empty command and null bytes. */
function spawnable(options: RunProcessOptions): boolean {
  const clean = (text: string) => !text.includes("\0");
  return (
    options.command !== "" &&
    clean(options.command) &&
    clean(options.cwd) &&
    options.args.every(clean) &&
    Object.entries(options.env).every(([key, value]) => clean(key) && clean(value))
  );
}

export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
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
