import { create } from "@bufbuild/protobuf";
import {
  ArtifactSchema,
  Backoff,
  type Check,
  CheckSchema,
  ExecTargetSchema,
  InstallSpecSchema,
  ResourceLimitsSchema,
  RetryPolicySchema,
  type TaskSpec,
  TaskSpecSchema,
} from "../../gen/taskframe/v1/spec_pb.js";
import type { CommandTemplate, TaskTemplate } from "./compiled-unit.js";

const check = (template: CommandTemplate): Check =>
  create(CheckSchema, { name: template.name, command: template.command, args: [...template.args] });

/** A fresh TaskSpec for a unit's task (nothing shared with the template, so it may be changed). */
export function taskSpecOf(task: TaskTemplate, needs: readonly string[], after: readonly string[]): TaskSpec {
  const spec = create(TaskSpecSchema, {
    name: task.name,
    retry: create(RetryPolicySchema, {
      retries: task.retries,
      intervalMs: BigInt(task.retryIntervalMs),
      backoff: Backoff.FIXED,
      nonRetryableExitCodes: [...task.nonRetryableExitCodes],
    }),
    timeoutMs: BigInt(task.timeoutMs),
    limits: create(ResourceLimitsSchema, {
      memoryBytes: task.memoryBytes,
      diskBytes: task.diskBytes,
      pids: task.pids,
      cpuMillis: task.cpuMillis,
    }),
    needs: [...needs],
    after: [...after],
    checks: task.checks.map(check),
    user: task.user,
    group: task.group,
    definedAt: task.definedAt,
    privateNetwork: task.privateNetwork,
    jail: task.jail,
  });
  if (task.command !== undefined) {
    spec.target = {
      case: "exec",
      value: create(ExecTargetSchema, {
        command: task.command,
        args: [...task.args],
        env: { ...task.env },
        cwd: task.cwd,
      }),
    };
  }
  if (task.condition) spec.condition = check(task.condition);
  if (task.install) {
    const { pip, npm, apt, from, artifacts } = task.install;
    spec.install = create(InstallSpecSchema, {
      pip: [...pip],
      npm: [...npm],
      apt: [...apt],
      from,
      artifacts: artifacts.map((artifact) => create(ArtifactSchema, artifact)),
    });
  }
  return spec;
}
