/** Closed set of domain error codes; mapped to Connect codes at the API boundary. */
export const TaskframeErrorCode = {
  InvalidDefinition: "invalid_definition",
  InvalidArgument: "invalid_argument",
  NotFound: "not_found",
  Conflict: "conflict",
  Unavailable: "unavailable",
  /** A report about an attempt or lease that is no longer current (fencing). */
  Stale: "stale",
  /** Too large: a request, a task's spec, an output (names the size and the limit). */
  ResourceExhausted: "resource_exhausted",
} as const;
export type TaskframeErrorCode = (typeof TaskframeErrorCode)[keyof typeof TaskframeErrorCode];

export class TaskframeError extends Error {
  override name = "TaskframeError";
  constructor(
    readonly code: TaskframeErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Where in a definition file a problem is: 1-based line and column, and the field path. */
export interface SourceLocation {
  file: string;
  line?: number;
  column?: number;
  /** Dotted field path, e.g. `tasks.extract.retries`. */
  path?: string;
}

/**
 * A definition (pipeline file, unit) that cannot be accepted. The message is
 * one line: `FILE:LINE:COL: PATH: what is wrong, what was expected`.
 */
export class DefinitionError extends TaskframeError {
  override name = "DefinitionError";
  constructor(
    readonly location: SourceLocation,
    readonly problem: string,
    options?: ErrorOptions,
  ) {
    super(TaskframeErrorCode.InvalidDefinition, formatDefinitionProblem(location, problem), options);
  }
}

export function formatDefinitionProblem(location: SourceLocation, problem: string): string {
  let where = location.file;
  if (location.line !== undefined) {
    where += `:${location.line}`;
    if (location.column !== undefined) where += `:${location.column}`;
  }
  return location.path ? `${where}: ${location.path}: ${problem}` : `${where}: ${problem}`;
}

export const errorMessage = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

/** Several problems found in one pass over definitions; the message has one line per problem. */
export class DefinitionErrors extends TaskframeError {
  override name = "DefinitionErrors";
  constructor(readonly problems: readonly DefinitionError[]) {
    super(TaskframeErrorCode.InvalidDefinition, problems.map((p) => p.message).join("\n"));
  }

  /** Throws the problems collected, if any: one as itself, several together. */
  static throwIfAny(problems: readonly DefinitionError[]): void {
    if (problems.length === 1) throw problems[0];
    if (problems.length > 1) throw new DefinitionErrors(problems);
  }
}
