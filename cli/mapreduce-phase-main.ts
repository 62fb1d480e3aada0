import { CliError, ExitCode } from "./cli-error.js";
import { mapReducePhaseCommand } from "./commands/mapreduce-phase.js";

/**
 * `task mapreduce map|reduce DESCRIPTOR` without the rest of the CLI: a job's
 * map and reduce tasks start by the thousand, and loading every command (the
 * hub client, the store) would cost each of them a second. bin/task.js comes
 * here only for exactly that command line; `--help` and the rest go through main.ts.
 */
export async function main(argv: string[]): Promise<number> {
  const [, , , phase, descriptor] = argv;
  try {
    return await mapReducePhaseCommand(phase === "map" ? "map" : "reduce", descriptor ?? "");
  } catch (error) {
    process.stderr.write(`task: ${error instanceof Error ? error.message : String(error)}\n`);
    return error instanceof CliError ? error.exitCode : ExitCode.Failed;
  }
}
