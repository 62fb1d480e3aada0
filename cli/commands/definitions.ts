import { readdir, readFile, writeFile } from "node:fs/promises";
import { basename, extname, join, resolve } from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import pc from "picocolors";
import { formatGraph, GRAPH_FORMATS, type GraphFormat } from "../../core/definitions/graph-format.js";
import { type DefinitionKind, definitionKind, loadDefinition } from "../../core/definitions/load.js";
import { runGraph } from "../../core/definitions/run-graph.js";
import { importSystemd } from "../../core/definitions/systemd-import.js";
import { listUnitFiles } from "../../core/definitions/units/index.js";
import { DefinitionError, DefinitionErrors, errorMessage } from "../../core/errors.js";
import { CliError, ExitCode } from "../cli-error.js";
import { printJson } from "../render/json.js";

export type Params = Record<string, string>;

const PARAM = /^([A-Za-z_][A-Za-z0-9_-]*)=([\s\S]*)$/;

/** Commander collector for `--param NAME=VALUE`, repeatable; a name given twice is an error. */
export function collectParam(value: string, previous: Params | undefined): Params {
  const match = PARAM.exec(value);
  if (!match) throw new InvalidArgumentError(`expected NAME=VALUE, got '${value}'`);
  const [, name = "", given = ""] = match;
  if (previous && name in previous) throw new InvalidArgumentError(`'${name}' is given twice`);
  return { ...previous, [name]: given };
}

/** `--param NAME=VALUE` for the commands that compile a definition. */
export const paramOption = (): Option =>
  new Option(
    "--param <name=value>",
    `value of \${{ params.NAME }} in a YAML pipeline (repeatable)`,
  ).argParser(collectParam);

export const DEFINITION_ARGUMENT =
  "YAML pipeline (.yaml), unit (.task, .service, .target) or directory of units";

/** Registers `task validate`, `task graph` and `task import-systemd`. */
export function addDefinitionCommands(program: Command, setExit: (code: number) => void): void {
  program
    .command("validate")
    .description(
      "check definitions without running them: every problem with its place, or ok and the task count",
    )
    .argument(
      "<path...>",
      `${DEFINITION_ARGUMENT}; a directory: its units as one catalogue and each YAML file in it`,
    )
    .addOption(paramOption())
    .option("--json", "print the result as JSON")
    .addHelpText("after", "\nExit status: 0 if every definition is valid, 2 otherwise.")
    .action(async (paths: string[], options: ValidateOptions) =>
      setExit(await validateCommand(paths, options)),
    );

  program
    .command("graph")
    .description("print a definition's DAG: levels, edges and any dependency cycle")
    .argument("<path>", DEFINITION_ARGUMENT)
    .addOption(new Option("--format <format>", "output format").choices(GRAPH_FORMATS).default("text"))
    .addOption(paramOption())
    .action(async (path: string, options: GraphOptions) => setExit(await graphCommand(path, options)));

  program
    .command("import-systemd")
    .description("convert a systemd service (and its timer) into a Taskframe unit")
    .argument("<service>", "the .service file")
    .argument(
      "[timer]",
      "its .timer file: OnCalendar= (and OnUnitActiveSec= that divides a day) becomes [RunIf] cron=; Persistent= CatchUp=; RandomizedDelaySec= Jitter=",
    )
    .option("-o, --output <file>", "write the unit here (NAME.service, NAME.task) instead of stdout")
    .addHelpText("after", "\nDirectives without an equivalent are kept as `# not converted:` comments.")
    .action(async (service: string, timer: string | undefined, options: ImportOptions) =>
      setExit(await importSystemdCommand(service, timer, options)),
    );
}

export interface ValidateOptions {
  param?: Params;
  json?: boolean;
}

interface Checked {
  path: string;
  tasks: number | undefined;
  problems: readonly DefinitionError[];
}

/** `task validate PATH...`: exit 0 if every definition compiles, 2 otherwise. */
export async function validateCommand(paths: readonly string[], options: ValidateOptions): Promise<number> {
  const targets = (await Promise.all(paths.map(expandPath))).flat();
  const loadable = targets.filter((target) => target.problem === undefined);
  const results: Checked[] = [];
  for (const target of targets) {
    if (target.problem) {
      results.push({ path: target.path, tasks: undefined, problems: [target.problem] });
      continue;
    }
    results.push(await check(target, options.param, loadable.length === 1));
  }
  const valid = results.every((result) => result.problems.length === 0);
  if (options.json) {
    printJson({
      ok: valid,
      definitions: results.map((result) => ({
        path: result.path,
        ok: result.problems.length === 0,
        tasks: result.tasks ?? null,
        problems: result.problems.map(problemJson),
      })),
    });
  } else {
    for (const result of results) {
      if (result.problems.length === 0)
        process.stdout.write(`ok: ${result.path} (${plural(result.tasks ?? 0, "task")})\n`);
      for (const problem of result.problems) process.stdout.write(`${problem.message}\n`);
    }
    const bad = results.filter((result) => result.problems.length > 0).length;
    if (bad > 0)
      process.stderr.write(pc.red(`${bad} of ${plural(results.length, "definition")} not valid\n`));
  }
  return valid ? ExitCode.Ok : ExitCode.Usage;
}

const plural = (count: number, word: string): string => `${count} ${word}${count === 1 ? "" : "s"}`;

interface Target {
  path: string;
  kind?: DefinitionKind;
  problem?: DefinitionError;
}

/** A path to check, or why it cannot be. A directory is its units (one catalogue) and its YAML files. */
async function expandPath(path: string): Promise<Target[]> {
  let kind: DefinitionKind | undefined;
  try {
    kind = await definitionKind(path);
  } catch (error) {
    if (error instanceof DefinitionError) return [{ path, problem: error }];
    throw error;
  }
  if (kind !== "catalogue") return [{ path, ...(kind ? { kind } : {}) }];
  const names = await readdir(path, { withFileTypes: true });
  const pipelines = names
    .filter((entry) => entry.isFile() && !entry.name.startsWith(".") && /\.ya?ml$/i.test(entry.name))
    .map((entry) => join(path, entry.name))
    .sort();
  const units = await listUnitFiles(path);
  const found: Target[] = [
    ...(units.length > 0 ? [{ path, kind: "catalogue" as const }] : []),
    ...pipelines.map((file) => ({ path: file, kind: "pipeline" as const })),
  ];
  if (found.length > 0) return found;
  const problem = new DefinitionError(
    { file: path },
    "no definitions here: expected *.yaml or *.yml pipelines, or *.task, *.service or *.target units (subdirectories are not read)",
  );
  return [{ path, problem }];
}

/** Compiles one definition; --param values go to YAML pipelines only, as several may be checked at once. */
async function check({ path, kind }: Target, params: Params | undefined, only: boolean): Promise<Checked> {
  try {
    const spec = await loadDefinition(path, {
      params: kind === "pipeline" || only ? (params ?? {}) : {},
      env: process.env,
      rejectUnknownParams: only,
    });
    return { path, tasks: spec.tasks.length, problems: [] };
  } catch (error) {
    if (error instanceof DefinitionErrors) return { path, tasks: undefined, problems: error.problems };
    if (error instanceof DefinitionError) return { path, tasks: undefined, problems: [error] };
    throw error;
  }
}

function problemJson(problem: DefinitionError) {
  return {
    file: problem.location.file,
    line: problem.location.line ?? null,
    column: problem.location.column ?? null,
    path: problem.location.path ?? null,
    problem: problem.problem,
    message: problem.message,
  };
}

export interface GraphOptions {
  format: GraphFormat;
  param?: Params;
}

/** `task graph PATH`: prints the DAG; a definition with a cycle still prints, the cycle marked. */
export async function graphCommand(path: string, options: GraphOptions): Promise<number> {
  const spec = await loadDefinition(path, {
    params: options.param ?? {},
    env: process.env,
    allowCycles: true,
  });
  process.stdout.write(formatGraph(runGraph(spec), options.format));
  return ExitCode.Ok;
}

export interface ImportOptions {
  output?: string;
}

const UNIT_OUTPUT = /\.(?:task|service|target)$/;

/** `task import-systemd FILE.service [FILE.timer] [-o OUT]`. */
export async function importSystemdCommand(
  first: string,
  second: string | undefined,
  options: ImportOptions,
): Promise<number> {
  const files = [first, ...(second === undefined ? [] : [second])];
  const service = files.find((file) => extname(file) === ".service");
  const timer = files.find((file) => extname(file) === ".timer");
  const other = files.find((file) => file !== service && file !== timer);
  if (!service || other !== undefined || (second !== undefined && !timer)) {
    throw new CliError(
      `expected a systemd .service file and optionally its .timer, got ${files.map((file) => `'${file}'`).join(" and ")}`,
      ExitCode.Usage,
    );
  }
  if (options.output !== undefined) {
    if (!UNIT_OUTPUT.test(options.output)) {
      throw new CliError(
        `-o expects a unit file name ending in .task, .service or .target (its name is the task's), got '${options.output}'`,
        ExitCode.Usage,
      );
    }
    if (files.some((file) => resolve(file) === resolve(options.output!))) {
      throw new CliError(`-o ${options.output} would overwrite the systemd file it converts`, ExitCode.Usage);
    }
  }
  const read = async (file: string) => {
    try {
      return { file, text: await readFile(file, "utf8") };
    } catch (cause) {
      throw new DefinitionError({ file }, `cannot read the systemd unit: ${errorMessage(cause)}`, { cause });
    }
  };
  const unit = importSystemd(await read(service), timer === undefined ? undefined : await read(timer));
  if (options.output === undefined) process.stdout.write(unit.text);
  else {
    await writeFile(options.output, unit.text).catch((cause: unknown) => {
      throw new CliError(`cannot write ${options.output}: ${errorMessage(cause)}`, ExitCode.Usage);
    });
  }
  const where = options.output === undefined ? basename(service) : `wrote ${options.output}`;
  const notes =
    unit.notConverted === 0
      ? "every directive converted"
      : `${plural(unit.notConverted, "directive")} not converted (see the \`# not converted:\` comments)`;
  process.stderr.write(pc.dim(`${where}: ${notes}\n`));
  return ExitCode.Ok;
}
