import { quote } from "shlex";
import type { Check, TaskSpec } from "../core/gen/taskframe/v1/spec_pb.js";
import { TaskState } from "../core/states.js";
import { type AttemptResult, resultOf } from "./outcome.js";
import type { ProcessOutcome } from "./process-runner.js";

/** Runs one check as a process with the task's environment, in what is left of the attempt's time. */
export type RunCheck = (check: Check) => Promise<ProcessOutcome>;

const commandLine = (check: Check) => [check.command, ...check.args].map((word) => quote(word)).join(" ");

/**
 * The condition, then the dependency checks, in order, before the command.
 * Returns how the attempt ends if one of them ends it, undefined if the
 * command may run. A condition that exits 1 means "not now": the task is
 * SKIPPED; any other failure of a condition or a check is CHECK_FAILED.
 */
export async function runPreChecks(
  spec: TaskSpec,
  runCheck: RunCheck,
  timing: { timeoutMs: number; killGraceMs: number; stopReason: () => string },
): Promise<AttemptResult | undefined> {
  const steps: { check: Check; kind: "condition" | "check" }[] = [
    ...(spec.condition ? [{ check: spec.condition, kind: "condition" as const }] : []),
    ...spec.checks.map((check) => ({ check, kind: "check" as const })),
  ];
  for (const { check, kind } of steps) {
    const outcome = await runCheck(check);
    const label = `${kind} ${check.name || check.command}`;
    if (outcome.timedOut || outcome.cancelled) {
      const result = resultOf(outcome, timing.timeoutMs, timing.killGraceMs, timing.stopReason());
      return { ...result, detail: `${label}: ${result.detail}`.replace(/: $/, "") };
    }
    if (outcome.exitCode === 0) continue;
    if (kind === "condition" && outcome.exitCode === 1) {
      const detail = `${label} not met (exit 1): not run`;
      return {
        state: TaskState.SKIPPED,
        exitCode: 1,
        signal: "",
        detail,
        systemLine: `[taskframe] ${detail}`,
      };
    }
    const how = outcome.spawnError
      ? `could not start: ${outcome.spawnError.message}`
      : outcome.signal
        ? `killed by ${outcome.signal}`
        : `exit code ${outcome.exitCode}`;
    const detail = `${label} failed: ${how}`;
    return {
      state: TaskState.CHECK_FAILED,
      ...(outcome.exitCode === null ? {} : { exitCode: outcome.exitCode }),
      signal: outcome.signal ?? "",
      detail,
      systemLine: `[taskframe] ${detail} (${commandLine(check)})`,
    };
  }
  return undefined;
}

/** Settings that need a jail, for a sidecar started without one (tests and embedders). */
export function unenforcedSettings(spec: TaskSpec): string[] {
  const notes: string[] = [];
  if (spec.user || spec.group) notes.push(`User=${spec.user || "-"} Group=${spec.group || "-"}`);
  const limits = spec.limits;
  if (limits && (limits.memoryBytes > 0n || limits.diskBytes > 0n || limits.pids > 0 || limits.cpuMillis > 0))
    notes.push("limits");
  if (spec.privateNetwork) notes.push("PrivateNetwork=");
  if (spec.jail) notes.push(`Jail=${spec.jail}`);
  return notes;
}
