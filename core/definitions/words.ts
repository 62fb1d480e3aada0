import { split } from "shlex";
import { errorMessage } from "../errors.js";

const SHELL_OPERATORS = new Set(["|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>>", "2>&1", "&>"]);

const NO_SHELL =
  "is split into words and run without a shell; for pipes, redirection or variables write `sh -c '...'` " +
  "(or use the list form of run to pass such a word literally)";

/**
 * Splits a command line into argv words with shell-like quoting (`python3 "my script.py" --flag`).
 * Nothing is expanded, so words that only a shell would understand are rejected rather than passed
 * on literally by surprise.
 */
export function splitCommandLine(line: string): string[] {
  let words: string[];
  try {
    words = split(line);
  } catch (error) {
    const reason = errorMessage(error);
    const problem = reason.includes("quoted string")
      ? "a quote is not closed"
      : reason.includes("escape sequence")
        ? "it ends with a lone backslash"
        : reason;
    throw new Error(`cannot split ${JSON.stringify(line)} into words: ${problem}`);
  }
  if (words.length === 0 || words[0] === "")
    throw new Error(`expected a command, got ${JSON.stringify(line)}`);
  for (const word of words) {
    if (SHELL_OPERATORS.has(word) || word.startsWith("$(") || word.includes("`")) {
      throw new Error(`found \`${word}\` in ${JSON.stringify(line)}: a run string ${NO_SHELL}`);
    }
  }
  return words;
}
