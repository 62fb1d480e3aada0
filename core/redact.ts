/**
 * Log fields whose values are never written (pino's `redact`): credentials
 * passed in options, a task's environment, authorization headers.
 */
export const REDACTED_LOG_PATHS: readonly string[] = [
  "password",
  "*.password",
  "token",
  "*.token",
  "secret",
  "*.secret",
  "env",
  "*.env",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
];

/** A URL fit to show: its password (and a user that is a token) replaced by `***`. */
export function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    if (!url.password && !url.username) return text;
    if (url.password) url.password = "***";
    else url.username = "***";
    return url.toString();
  } catch {
    return text.replace(/\/\/[^/@\s]*@/, "//***@");
  }
}
