/**
 * Text a task or a worker wrote (an error message, a detail, a log line, an output), made safe
 * to print on a terminal: control characters other than newline and tab are shown as `\xNN`
 * (`\u{NNNN}` for C1 and the bidirectional overrides), so that an escape sequence in a result
 * (set the title, write the clipboard with OSC 52, move the cursor, hide text) is shown, never
 * obeyed. SECURITY.md "Results are data".
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f\u202a-\u202e\u2066-\u2069]/g;

export function terminalSafe(text: string): string {
  return text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`;
  });
}

/** For one line of a table or a list: newlines too. */
export const terminalSafeLine = (text: string): string => terminalSafe(text).replace(/\r?\n/g, "\\n");
