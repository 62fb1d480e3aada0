import { isAbsolute, resolve } from "node:path";
import { create } from "@bufbuild/protobuf";
import {
  Backoff,
  ExecTargetSchema,
  type RetryPolicy,
  RetryPolicySchema,
  type TaskSpec,
  TaskSpecSchema,
} from "../gen/taskframe/v1/spec_pb.js";
import type { TaskSettings } from "./pipeline-schema.js";

const DEFAULT_RETRY_INTERVAL_MS = 1000;

/** A task's own settings on top of `defaults:`; env and labels are merged key by key, the task winning. */
export function mergeSettings(defaults: TaskSettings, own: TaskSettings): TaskSettings {
  return {
    retries: own.retries ?? defaults.retries,
    retry_interval: own.retry_interval ?? defaults.retry_interval,
    retry_backoff: own.retry_backoff ?? defaults.retry_backoff,
    retry_max_interval: own.retry_max_interval ?? defaults.retry_max_interval,
    retry_jitter: own.retry_jitter ?? defaults.retry_jitter,
    retry_prevent_exit_codes: own.retry_prevent_exit_codes ?? defaults.retry_prevent_exit_codes,
    timeout: own.timeout ?? defaults.timeout,
    env: { ...defaults.env, ...own.env },
    cwd: own.cwd ?? defaults.cwd,
    pool: own.pool ?? defaults.pool,
    labels: { ...defaults.labels, ...own.labels },
  };
}

/** The retry policy of a task's settings: no retries, a fixed 1 s interval unless they say otherwise. */
export function retryPolicy(settings: TaskSettings): RetryPolicy {
  return create(RetryPolicySchema, {
    retries: settings.retries ?? 0,
    intervalMs: BigInt(settings.retry_interval ?? DEFAULT_RETRY_INTERVAL_MS),
    backoff: settings.retry_backoff === "exponential" ? Backoff.EXPONENTIAL : Backoff.FIXED,
    maxIntervalMs: BigInt(settings.retry_max_interval ?? 0),
    jitter: settings.retry_jitter ?? 0,
    nonRetryableExitCodes: settings.retry_prevent_exit_codes ?? [],
  });
}

export interface ExecTaskInput {
  name: string;
  /** The run command's words; the first is the executable. */
  argv: readonly string[];
  args: readonly string[];
  needs: readonly string[];
  settings: TaskSettings;
}

/**
 * Builds the TaskSpec for an exec task. Relative paths (a command containing "/" and the cwd)
 * resolve against `baseDir`, the pipeline file's directory; bare command names stay for PATH lookup.
 */
export function execTaskSpec(input: ExecTaskInput, baseDir: string): TaskSpec {
  const [command = "", ...words] = input.argv;
  const { settings } = input;
  return create(TaskSpecSchema, {
    name: input.name,
    target: {
      case: "exec",
      value: create(ExecTargetSchema, {
        command: command.includes("/") && !isAbsolute(command) ? resolve(baseDir, command) : command,
        args: [...words, ...input.args],
        env: settings.env ?? {},
        cwd: settings.cwd === undefined ? baseDir : resolve(baseDir, settings.cwd),
      }),
    },
    retry: retryPolicy(settings),
    timeoutMs: BigInt(settings.timeout ?? 0),
    labels: settings.labels ?? {},
    pool: settings.pool ?? "",
    needs: [...new Set(input.needs)],
  });
}
