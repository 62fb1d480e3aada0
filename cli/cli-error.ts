/** Exit codes of the `task` command. */
export const ExitCode = {
  Ok: 0,
  /** The run (or the thing asked about) did not succeed. */
  Failed: 1,
  /** Bad input: a definition, an argument, a name that does not exist. */
  Usage: 2,
  /** The command could not reach what it needs (store busy, hub down). */
  Unavailable: 3,
  /** The task asked about has not ended yet (`task result`). */
  NotFinished: 4,
  Interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error the CLI reports as one line on stderr, then exits with `exitCode`. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
  }
}
