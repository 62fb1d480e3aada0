import { DefinitionError, DefinitionErrors } from "../errors.js";

/** Past this many problems the compiler stops: the first ones are the ones to fix. */
export const PROBLEM_LIMIT = 20;

/** Thrown to stop compiling once the limit is reached; caught by `ProblemList.collect`. */
class Enough extends Error {}

/**
 * The problems found in one pass over a definition. Each step of the compiler runs under `attempt`,
 * so one bad task does not hide the problems of the next; the same problem found twice (a task
 * fanned out by for_each) is kept once.
 */
export class ProblemList {
  private readonly found: DefinitionError[] = [];
  private readonly seen = new Set<string>();
  private truncated = false;

  constructor(
    private readonly file: string,
    private readonly limit = PROBLEM_LIMIT,
  ) {}

  get count(): number {
    return this.found.length;
  }

  add(problem: DefinitionError | DefinitionErrors): void {
    const list = problem instanceof DefinitionErrors ? problem.problems : [problem];
    for (const one of list) {
      if (this.seen.has(one.message)) continue;
      if (this.found.length >= this.limit) {
        this.truncated = true;
        throw new Enough();
      }
      this.seen.add(one.message);
      this.found.push(one);
    }
  }

  /** Runs `step`; a DefinitionError it throws is recorded and `undefined` returned instead. */
  attempt<T>(step: () => T): T | undefined {
    try {
      return step();
    } catch (error) {
      if (error instanceof DefinitionError || error instanceof DefinitionErrors) {
        this.add(error);
        return undefined;
      }
      throw error;
    }
  }

  async attemptAsync<T>(step: () => Promise<T>): Promise<T | undefined> {
    try {
      return await step();
    } catch (error) {
      if (error instanceof DefinitionError || error instanceof DefinitionErrors) {
        this.add(error);
        return undefined;
      }
      throw error;
    }
  }

  /** Runs the whole compilation, then throws what was found: in file order, capped at the limit. */
  async collect<T>(compile: () => Promise<T>): Promise<T> {
    let result: T | undefined;
    try {
      result = await compile();
    } catch (error) {
      if (error instanceof DefinitionError || error instanceof DefinitionErrors) {
        try {
          this.add(error);
        } catch (stop) {
          if (!(stop instanceof Enough)) throw stop;
        }
      } else if (!(error instanceof Enough)) throw error;
    }
    this.throwIfAny();
    return result as T;
  }

  throwIfAny(): void {
    // File-wide problems (no line) first, then by file in order of appearance, line and column.
    const fileOrder = new Map<string, number>();
    for (const problem of this.found) {
      if (!fileOrder.has(problem.location.file)) fileOrder.set(problem.location.file, fileOrder.size);
    }
    const key = (problem: DefinitionError): number[] => [
      problem.location.line === undefined ? 0 : 1,
      fileOrder.get(problem.location.file)!,
      problem.location.line ?? 0,
      problem.location.column ?? 0,
    ];
    const sorted = [...this.found].sort((a, b) => {
      const ka = key(a);
      const kb = key(b);
      for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! - kb[i]!;
      return 0;
    });
    if (this.truncated) {
      sorted.push(
        new DefinitionError(
          { file: this.file },
          `stopped after ${this.limit} problems; fix these and run again to see the rest`,
        ),
      );
    }
    DefinitionErrors.throwIfAny(sorted);
  }
}
