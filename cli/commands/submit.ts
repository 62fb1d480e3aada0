import pc from "picocolors";
import { loadDefinition } from "../../core/definitions/load.js";
import { CliError, ExitCode } from "../cli-error.js";
import { followRunToEnd } from "../follow-run.js";
import { withHubClient } from "../hub-client.js";
import type { StoreOptions } from "../options.js";
import { printJson, runJson } from "../render/json.js";

export interface SubmitOptions extends StoreOptions {
  wait?: boolean;
  quiet?: boolean;
  idempotencyKey?: string;
  /** The run's tenant; empty: the token's only tenant, else default. */
  tenant?: string;
  /** `--param NAME=VALUE` for `${{ params.NAME }}`. */
  param?: Record<string, string>;
}

/**
 * `task submit FILE --hub URL`: hands a pipeline to a running hub and prints
 * the run id; with --wait, follows the run to its end and exits 0 only if
 * every task succeeded (Ctrl-C stops waiting, not the run).
 */
export async function submitCommand(file: string, options: SubmitOptions): Promise<number> {
  if (!options.hub) {
    throw new CliError(
      "task submit sends the run to a hub: give --hub URL (or set TASKFRAME_HUB)",
      ExitCode.Usage,
    );
  }
  const spec = await loadDefinition(file, { params: options.param ?? {}, env: process.env });
  return withHubClient(options, async (client) => {
    const { run, existing } = await client.submitRun({
      run: spec,
      idempotencyKey: options.idempotencyKey ?? "",
      tenant: options.tenant ?? "",
    });
    if (!run) throw new CliError("the hub returned no run", ExitCode.Unavailable);
    if (!options.wait) {
      if (options.json) printJson({ run: runJson(run), existing });
      else {
        process.stdout.write(`${run.id}\n`);
        const note = existing ? "already submitted with this idempotency key:" : "submitted";
        process.stderr.write(
          pc.dim(`${note} run ${run.id} (${run.totalTasks} tasks); task status ${run.id.slice(0, 8)}\n`),
        );
      }
      return ExitCode.Ok;
    }
    if (!options.json) process.stderr.write(pc.dim(`run ${run.id} (${run.totalTasks} tasks)\n`));
    return followRunToEnd(client, run.id, spec.tasks.length, { ...options, source: file });
  });
}
