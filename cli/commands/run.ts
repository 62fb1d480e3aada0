import pc from "picocolors";
import { loadDefinition } from "../../core/definitions/load.js";
import { loadWorkerPools } from "../../core/definitions/worker-pools.js";
import { ExitCode } from "../cli-error.js";
import { type EngineCommandOptions, engineOptionsOf } from "../engine-options.js";
import { followRunToEnd } from "../follow-run.js";
import { toCliError } from "../hub-client.js";

export interface RunCommandOptions extends EngineCommandOptions {
  json?: boolean;
  quiet?: boolean;
  /** `--param NAME=VALUE` for `${{ params.NAME }}`. */
  param?: Record<string, string>;
}

/**
 * `task run FILE`: hub and sidecar in this process on the embedded store;
 * runs the pipeline to the end with a live display; exits 0 only if every
 * task succeeded.
 */
export async function runCommand(file: string, options: RunCommandOptions): Promise<number> {
  const spec = await loadDefinition(file, { params: options.param ?? {}, env: process.env });
  const workerPools = await loadWorkerPools(file);
  const { EmbeddedEngine } = await import("../../embedded/engine.js");
  const engine = await EmbeddedEngine.open(engineOptionsOf(options, workerPools));
  const jail = engine.jail;
  if (jail && jail.profile === "none" && (options.jail ?? "auto") === "auto" && !options.quiet)
    process.stderr.write(pc.yellow(`warning: tasks run without a jail: ${jail.problems.join("; ")}\n`));
  const interrupts = new InterruptHandler();
  try {
    const client = engine.client();
    const { run } = await client.submitRun({ run: spec });
    if (!run) throw new Error("the hub returned no run");
    // announced once the run exists, so that `task logs -f NAME` elsewhere finds it
    await engine.serve();
    interrupts.onFirst(() => {
      process.stderr.write(pc.yellow("\ncancelling the run (press Ctrl-C again to stop at once)...\n"));
      void client.cancelRun({ runId: run.id, reason: "interrupted (Ctrl-C)" });
    });
    const status = await followRunToEnd(client, run.id, spec.tasks.length, { ...options, source: file });
    return interrupts.count > 0 ? ExitCode.Interrupted : status;
  } catch (error) {
    throw toCliError(error);
  } finally {
    interrupts.dispose();
    await engine.close();
  }
}

/** First Ctrl-C: a graceful cancel. Second: leave at once (the engine's close still kills every task). */
class InterruptHandler {
  count = 0;
  #first: (() => void) | undefined;
  readonly #listener = () => {
    this.count++;
    if (this.count === 1 && this.#first) this.#first();
    else process.exit(ExitCode.Interrupted);
  };

  constructor() {
    process.on("SIGINT", this.#listener);
    process.on("SIGTERM", this.#listener);
  }

  onFirst(action: () => void): void {
    this.#first = action;
  }

  dispose(): void {
    process.off("SIGINT", this.#listener);
    process.off("SIGTERM", this.#listener);
  }
}
