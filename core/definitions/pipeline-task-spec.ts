import { isAbsolute, resolve } from "node:path";
import { create } from "@bufbuild/protobuf";
import {
  ArtifactSchema,
  type Check,
  CheckSchema,
  HandlerTargetSchema,
  InstallSpecSchema,
  ResourceLimitsSchema,
  type TaskSpec,
  TaskSpecSchema,
} from "../gen/taskframe/v1/spec_pb.js";
import type { FieldPath } from "./field-path.js";
import { encodeInput } from "./pipeline-handler.js";
import type {
  CheckFields,
  DefaultSettings,
  HandlerTaskFields,
  InstallFields,
  LimitFields,
  RunTaskFields,
} from "./pipeline-schema.js";
import type { Substituter } from "./pipeline-scope.js";
import { NameAllocator, nameFromCommand } from "./task-names.js";
import { execTaskSpec, mergeSettings, retryPolicy } from "./task-spec.js";
import type { YamlSource } from "./yaml-source.js";

/** What every task of one pipeline file shares. */
export interface SpecContext {
  source: YamlSource;
  /** The pipeline file's directory: relative commands and cwds resolve against it. */
  baseDir: string;
  /** `defaults:`, already substituted. */
  defaults: DefaultSettings;
}

/** Where a task was written, as `file:line`, for the messages of later stages. */
export function definedAt(source: YamlSource, path: FieldPath, anchor: "key" | "value"): string {
  const line = source.lineOf(path, anchor);
  return line === undefined ? source.file : `${source.file}:${line}`;
}

/** A `run:` task's spec (edges are set later), its strings substituted. */
export function runTaskSpec(
  context: SpecContext,
  name: string,
  fields: RunTaskFields,
  path: FieldPath,
  sub: Substituter,
): TaskSpec {
  const { defaults, baseDir } = context;
  const own = {
    ...fields,
    env: sub.map(fields.env, [...path, "env"]),
    cwd: sub.optional(fields.cwd, [...path, "cwd"]),
    pool: sub.optional(fields.pool, [...path, "pool"]),
    labels: sub.map(fields.labels, [...path, "labels"]),
  };
  // A shorthand step (`- ./a.sh`) is its own `run:`.
  const runPath = context.source.offsetOf([...path, "run"]) === undefined ? path : [...path, "run"];
  const argv = sub.words(fields.run, runPath);
  const spec = execTaskSpec(
    {
      name,
      argv,
      args: (fields.args ?? []).map((arg, index) => sub.text(arg, [...path, "args", index])),
      needs: [],
      settings: mergeSettings(defaults, own),
    },
    baseDir,
  );
  spec.user = sub.optional(fields.user, [...path, "user"]) ?? defaults.user ?? "";
  spec.group = sub.optional(fields.group, [...path, "group"]) ?? defaults.group ?? "";
  spec.checks = checks(context, fields.checks ?? [], [...path, "checks"], sub);
  setJailSettings(spec, defaults, fields, baseDir);
  if (fields.condition) {
    spec.condition = toCheck("condition", sub.words(fields.condition, [...path, "condition"]), baseDir);
  }
  sub.check();
  if (argv[0] === "") {
    context.source.fail(runPath, "expected a command, got an empty first word after substitution");
  }
  return spec;
}

/** A `handler:` task's spec (edges are set later); only `input:` strings are substituted. */
export function handlerTaskSpec(
  context: SpecContext,
  name: string,
  fields: HandlerTaskFields,
  hasInput: boolean,
  path: FieldPath,
  sub: Substituter,
): TaskSpec {
  const { defaults } = context;
  const own = {
    ...fields,
    pool: sub.optional(fields.pool, [...path, "pool"]),
    labels: sub.map(fields.labels, [...path, "labels"]),
  };
  const settings = mergeSettings(defaults, own);
  const input = hasInput ? sub.deep(fields.input, [...path, "input"]) : undefined;
  sub.check();
  const encoded = encodeInput(context.source, input, hasInput, fields.content_type, path);
  return create(TaskSpecSchema, {
    name,
    target: {
      case: "handler",
      value: create(HandlerTargetSchema, {
        handler: fields.handler,
        input: encoded.input,
        contentType: encoded.contentType,
      }),
    },
    retry: retryPolicy(settings),
    timeoutMs: BigInt(settings.timeout ?? 0),
    labels: settings.labels ?? {},
    pool: settings.pool ?? "",
  });
}

/**
 * `limits:` (each limit from the task, else from `defaults:`), `private_network:`, `jail:` and
 * `install:` (the task's own). Without `limits:` anywhere the spec has none, which is the same as
 * every limit at 0: the pool's defaults, no memory limit and no CPU quota.
 */
function setJailSettings(
  spec: TaskSpec,
  defaults: DefaultSettings,
  fields: RunTaskFields,
  baseDir: string,
): void {
  const limits: LimitFields | undefined =
    defaults.limits || fields.limits ? { ...defaults.limits, ...fields.limits } : undefined;
  if (limits) {
    spec.limits = create(ResourceLimitsSchema, {
      memoryBytes: limits.memory ?? 0n,
      diskBytes: limits.disk ?? 0n,
      pids: limits.pids ?? 0,
      cpuMillis: limits.cpu ?? 0,
    });
  }
  spec.privateNetwork = fields.private_network ?? defaults.private_network ?? false;
  spec.jail = fields.jail ?? defaults.jail ?? "";
  if (fields.install) spec.install = installSpec(fields.install, baseDir);
}

/** `install:` as an INI unit's [Install]: `from:` is relative to the pipeline file's directory. */
function installSpec(install: InstallFields, baseDir: string) {
  return create(InstallSpecSchema, {
    pip: install.pip ?? [],
    npm: install.npm ?? [],
    apt: install.apt ?? [],
    from: install.from === undefined ? "" : resolve(baseDir, install.from),
    artifacts: (install.artifacts ?? []).map((artifact) => create(ArtifactSchema, artifact)),
  });
}

function checks(
  context: SpecContext,
  written: readonly CheckFields[],
  path: FieldPath,
  sub: Substituter,
): Check[] {
  const explicit = new Set(
    written.flatMap((check) => (!Array.isArray(check) && check.name ? [check.name] : [])),
  );
  const names = new NameAllocator(explicit);
  return written.map((check, index) => {
    const listed = Array.isArray(check);
    const argv = sub.words(listed ? check : check.run, listed ? [...path, index] : [...path, index, "run"]);
    const name = (!listed && check.name) || names.allocate(nameFromCommand(argv[0] ?? ""));
    return toCheck(name, argv, context.baseDir);
  });
}

function toCheck(name: string, argv: readonly string[], baseDir: string): Check {
  const [command = "", ...args] = argv;
  return create(CheckSchema, {
    name,
    command: command.includes("/") && !isAbsolute(command) ? resolve(baseDir, command) : command,
    args,
  });
}
