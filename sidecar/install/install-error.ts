/** Which installer an InstallError comes from. */
export type Ecosystem = "pip" | "npm" | "apt" | "artifact";

export interface InstallErrorDetails {
  ecosystem?: Ecosystem;
  /** The exit code of the command that failed, when one did. */
  exitCode?: number;
}

/**
 * A task's declared dependencies could not be installed: a bad declaration or
 * dependency file, a failing command, a fetch or checksum failure. The message
 * says which ecosystem and command failed, and how.
 */
export class InstallError extends Error {
  override name = "InstallError";
  readonly ecosystem: Ecosystem | undefined;
  readonly exitCode: number | undefined;

  constructor(message: string, details: InstallErrorDetails = {}, options?: ErrorOptions) {
    super(message, options);
    this.ecosystem = details.ecosystem;
    this.exitCode = details.exitCode;
  }
}
