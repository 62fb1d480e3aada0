import { split } from "shlex";
import { errorMessage } from "../errors.js";

/** What the command line of `ExecStart=` became, and what a reader of the unit should know. */
export interface ConvertedCommand {
  argv: string[];
  notes: string[];
}

const PRIVILEGE_PREFIXES: Readonly<Record<string, string>> = {
  "+": "runs the command with full privileges, ignoring User= and Group=",
  "!": "runs the command with elevated privileges (ambient capabilities), ignoring User=",
  "!!": "runs the command with elevated privileges on systems without ambient capabilities",
  "|": "runs the command through the user's login shell",
};

/**
 * Converts an `ExecStart=` line into argv the way systemd would run it: prefixes (`-`, `@`, `:`,
 * `+`, `!`, `!!`, `|`), quoting, specifiers (`%n`, `%N`, `%p`, `%i`, `%%`) and `${NAME}` / `$NAME`
 * from `Environment=`. What cannot be carried over faithfully throws an Error saying why.
 */
export function convertExecStart(
  value: string,
  environment: ReadonlyMap<string, string>,
  unitFileName: string,
  hasEnvironmentFile: boolean,
): ConvertedCommand {
  const notes: string[] = [];
  let rest = value.trimStart();
  let argv0 = false;
  let expand = true;
  for (;;) {
    const prefix = rest.startsWith("!!") ? "!!" : rest[0];
    if (prefix === "-") {
      throw new Error(
        "the '-' prefix makes systemd ignore the command's failure, and a task fails when its command does: " +
          "remove the '-', or wrap the command as `/bin/sh -c 'COMMAND || true'`",
      );
    }
    if (prefix !== undefined && prefix in PRIVILEGE_PREFIXES) {
      throw new Error(
        `the '${prefix}' prefix ${PRIVILEGE_PREFIXES[prefix]}; a task runs as its User=/Group=: remove the prefix`,
      );
    }
    if (prefix === "@") argv0 = true;
    else if (prefix === ":") expand = false;
    else break;
    rest = rest.slice(prefix.length);
  }
  let words: string[];
  try {
    words = split(rest);
  } catch (error) {
    throw new Error(`cannot split the command line into words: ${errorMessage(error)}`);
  }
  if (words.includes(";")) {
    throw new Error(
      "';' separates several commands, and a task runs one: make a unit for each and chain them",
    );
  }
  if (argv0) {
    const [command, name, ...args] = words;
    if (command === undefined || name === undefined)
      throw new Error("the '@' prefix needs a command and its argv[0]");
    notes.push(`argv[0] was "${name}" ('@' prefix); a task's command gets its own path as argv[0]`);
    words = [command, ...args];
  }
  words = words.flatMap((word) =>
    expandWord(word, expand, environment, unitFileName, hasEnvironmentFile, notes),
  );
  if (words.length === 0 || words[0] === "") throw new Error("expected a command, got nothing");
  return { argv: words, notes };
}

const WHOLE_VARIABLE = /^\$([A-Za-z_][A-Za-z0-9_]*)$/;

function expandWord(
  word: string,
  expand: boolean,
  environment: ReadonlyMap<string, string>,
  unitFileName: string,
  hasEnvironmentFile: boolean,
  notes: string[],
): string[] {
  const text = specifiers(word, unitFileName);
  if (!expand) return [text];
  const lookup = (name: string): string => {
    const value = environment.get(name);
    if (value !== undefined) {
      const note = `$${name} in ExecStart= was replaced by its value from Environment=`;
      if (!notes.includes(note)) notes.push(note);
      return value;
    }
    const from = hasEnvironmentFile ? " (it may come from EnvironmentFile=, which is not converted)" : "";
    throw new Error(
      `ExecStart= uses $${name}, which is not set by Environment=${from}; a task's command is not expanded: ` +
        "write the value, or run the command as `/bin/sh -c '...'`",
    );
  };
  const whole = WHOLE_VARIABLE.exec(text);
  if (whole)
    return lookup(whole[1]!)
      .split(/\s+/)
      .filter((part) => part !== "");
  return [
    text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name?: string) =>
      name ? lookup(name) : "$",
    ),
  ];
}

/** The specifiers known from the unit's file name; the rest depend on the host and are refused. */
function specifiers(word: string, unitFileName: string): string {
  const dot = unitFileName.lastIndexOf(".");
  const full = dot > 0 ? unitFileName.slice(0, dot) : unitFileName;
  const at = full.indexOf("@");
  const known: Readonly<Record<string, string>> = {
    "%": "%",
    n: unitFileName,
    N: full,
    p: at < 0 ? full : full.slice(0, at),
    i: at < 0 ? "" : full.slice(at + 1),
    I: at < 0 ? "" : full.slice(at + 1),
  };
  return word.replace(/%(.)?/g, (match, letter?: string) => {
    const value = letter === undefined ? undefined : known[letter];
    if (value === undefined) {
      throw new Error(
        `the specifier ${match} depends on the host or the manager running the unit; write its value instead`,
      );
    }
    return value;
  });
}
