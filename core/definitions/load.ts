import { stat } from "node:fs/promises";
import { basename, extname } from "node:path";
import { DefinitionError, errorMessage } from "../errors.js";
import type { RunSpec } from "../gen/taskframe/v1/spec_pb.js";
import { UNIT_EXTENSIONS } from "./pipeline-tasks.js";
import { loadCatalogueRun, loadUnitClosure, loadUnitRun } from "./units/index.js";
import { loadPipelineFile } from "./yaml-pipeline.js";

const YAML_EXTENSIONS = [".yaml", ".yml"];
export const ACCEPTED_KINDS =
  "a YAML pipeline (.yaml, .yml), a unit (.task, .service, .target) or a directory of units";

export interface LoadOptions {
  /** `--param NAME=VALUE`: values of `${{ params.NAME }}` in a YAML pipeline. */
  params?: Readonly<Record<string, string>>;
  /** What `${{ env.NAME }}` reads; the `task` command passes its own environment. Default: process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** A given param that a pipeline neither declares nor uses is an error unless this is false. */
  rejectUnknownParams?: boolean;
  /** Return a YAML pipeline whose dependencies form a cycle instead of failing (`task graph`). */
  allowCycles?: boolean;
}

export type DefinitionKind = "pipeline" | "unit" | "catalogue";

/** What a path holds, by its extension, or a directory; undefined for anything else. */
export async function definitionKind(path: string): Promise<DefinitionKind | undefined> {
  const extension = extname(path).toLowerCase();
  if (YAML_EXTENSIONS.includes(extension)) return "pipeline";
  if (UNIT_EXTENSIONS.includes(extension)) return "unit";
  const info = await stat(path).catch((cause: unknown) => {
    throw new DefinitionError({ file: path }, `cannot read the definition: ${errorMessage(cause)}`, {
      cause,
    });
  });
  return info.isDirectory() ? "catalogue" : undefined;
}

/** What `path` holds; anything but a definition is a DefinitionError saying what was expected. */
export async function knownDefinitionKind(path: string): Promise<DefinitionKind> {
  const kind = await definitionKind(path);
  if (kind === undefined) {
    throw new DefinitionError(
      { file: path },
      `expected ${ACCEPTED_KINDS}, got the file ${JSON.stringify(basename(path))}`,
    );
  }
  return kind;
}

/**
 * Compiles whatever `path` holds into a run: a YAML pipeline, a unit with the units it requires,
 * or every unit of a directory. Problems are DefinitionError(s) naming file, line and field.
 */
export async function loadDefinition(path: string, options: LoadOptions = {}): Promise<RunSpec> {
  const kind = await knownDefinitionKind(path);
  if (kind === "pipeline") {
    return loadPipelineFile(path, {
      ...options,
      env: options.env ?? process.env,
      loadUnitClosure,
    });
  }
  if (options.params && Object.keys(options.params).length > 0) {
    throw new DefinitionError(
      { file: path },
      `--param applies to YAML pipelines (\${{ params.NAME }}); ${kind === "unit" ? "a unit" : "a directory of units"} has no params`,
    );
  }
  return kind === "unit" ? loadUnitRun(path) : loadCatalogueRun(path);
}
