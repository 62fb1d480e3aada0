import { errorMessage } from "../../errors.js";
import { parseDurationMs } from "../duration.js";
import { splitCommandLine } from "../words.js";
import { cronProblem } from "./cron.js";

/** A problem with a value; `offset` (in the value's text) points inside it, else at its start. */
export class ValueProblem extends Error {
  constructor(
    message: string,
    readonly offset?: number,
  ) {
    super(message);
  }
}

const show = (text: string): string => JSON.stringify(text);

/** systemd's default StartLimitBurst: how many times `Restart=on-failure` restarts a unit at most. */
export const ON_FAILURE_RETRIES = 5;
const MAX_RETRIES = 4_294_967_295;
const RETRY_ONLY_ON_FAILURE = new Set(["always", "on-success", "on-abnormal", "on-abort", "on-watchdog"]);

/** `never`/`no` -> 0, a count -> that many retries, `on-failure` -> 5 (systemd's StartLimitBurst). */
export function parseRestart(text: string): number {
  if (text === "never" || text === "no") return 0;
  if (text === "on-failure") return ON_FAILURE_RETRIES;
  if (/^\d+$/.test(text)) {
    const count = Number(text);
    if (count <= MAX_RETRIES) return count;
    throw new ValueProblem(`expected at most ${MAX_RETRIES} retries, got ${text}`);
  }
  const expected = `expected "never", "on-failure" (${ON_FAILURE_RETRIES} retries) or a number of retries such as 5`;
  if (RETRY_ONLY_ON_FAILURE.has(text)) {
    throw new ValueProblem(`${expected}, got ${show(text)}: a task is retried only when it fails`);
  }
  throw new ValueProblem(`${expected}, got ${show(text)}`);
}

/** `RestartPreventExitStatus=42 43`: exit codes 0-255, separated by spaces. */
export function parseExitStatusList(text: string): number[] {
  const words = text.split(/\s+/).filter(Boolean);
  const codes = words.map((word) => (/^\d{1,3}$/.test(word) ? Number(word) : Number.NaN));
  if (words.length === 0 || codes.some((code) => !(code >= 0 && code <= 255))) {
    throw new ValueProblem(
      `expected exit codes from 0 to 255 separated by spaces, such as "2 42", got ${show(text)}`,
    );
  }
  return codes;
}

// Catalogues repeat a few durations many times, and parse-duration is slow next to the rest.
const durations = new Map<string, number>();
const MAX_REMEMBERED = 1024;
const MAX_REMEMBERED_LENGTH = 40;

/**
 * A duration as systemd writes it: bare seconds (`90`), or with units (`2s`, `5m`, `1h30m`,
 * `1min 30s`); `infinity` (0, no limit) where `allowInfinity`.
 */
export function parseUnitDuration(text: string, allowInfinity: boolean): number {
  if (allowInfinity && text === "infinity") return 0;
  const known = durations.get(text);
  if (known !== undefined) return known;
  try {
    const ms = parseDurationMs(/^\d+(?:\.\d+)?$/.test(text) ? Number(text) : text);
    if (text.length <= MAX_REMEMBERED_LENGTH) {
      if (durations.size >= MAX_REMEMBERED) durations.clear();
      durations.set(text, ms);
    }
    return ms;
  } catch (error) {
    const infinity = allowInfinity ? ', or "infinity" for no limit' : "";
    throw new ValueProblem(`${errorMessage(error)} (a bare number is seconds${infinity})`);
  }
}

const ACCOUNT = /^(?:[A-Za-z_][A-Za-z0-9_.-]{0,255}\$?|\d{1,10})$/;

/** A user or group: a name (`test`, `www-data`) or a numeric id. */
export function parseAccount(text: string, what: "user" | "group"): string {
  if (ACCOUNT.test(text)) return text;
  throw new ValueProblem(`expected a ${what} name such as "test" or a numeric id, got ${show(text)}`);
}

/** A directory; relative ones are resolved against the unit's directory later. */
export function parseDirectory(text: string): string {
  if (text === "") throw new ValueProblem("expected a directory, got nothing");
  if (text.startsWith("~")) {
    throw new ValueProblem(
      `expected an absolute or relative directory, got ${show(text)}: ~ is not expanded`,
    );
  }
  if (text.startsWith("-")) {
    throw new ValueProblem(
      `expected a directory, got ${show(text)}: systemd's "-" prefix (ignore a missing directory) is not supported`,
    );
  }
  return text;
}

// words.ts was written for YAML `run:`, whose list form has no INI equivalent.
const YAML_ONLY_ADVICE = / \(or use the list form of run to pass such a word literally\)/;

// Words a shell would take literally: no quotes, escapes, `$`, operators or globs.
const PLAIN_WORDS = /^[A-Za-z0-9_\-./=:,+@%^~]+(?:[ \t]+[A-Za-z0-9_\-./=:,+@%^~]+)*$/;

/** A command line split like a shell into argv words; the first is the command. */
export function parseCommandLine(text: string): string[] {
  // Most values are plain words; splitting them directly saves most of the time of large catalogues.
  const trimmed = text.trim();
  if (PLAIN_WORDS.test(trimmed)) return trimmed.split(/[ \t]+/);
  try {
    return splitCommandLine(text);
  } catch (error) {
    throw new ValueProblem(errorMessage(error).replace(YAML_ONLY_ADVICE, ""));
  }
}

/** Arguments split like a shell; an empty value is no arguments. */
export function parseArgs(text: string): string[] {
  if (text.trim() === "") return [];
  // A leading word, so that an empty first argument ("") is not taken for a missing command.
  const line = `args ${text}`;
  try {
    return parseCommandLine(line).slice(1);
  } catch (error) {
    throw new ValueProblem(errorMessage(error).replace(show(line), show(text)));
  }
}

export function parseCron(text: string): string {
  const problem = cronProblem(text);
  if (problem) throw new ValueProblem(problem.message, problem.offset);
  return text.trim().replace(/\s+/g, " ");
}

/** A number of partitions for a MapReduce unit. */
export function parsePartitions(text: string): number {
  if (/^[1-9]\d{0,5}$/.test(text)) return Number(text);
  throw new ValueProblem(`expected a number of partitions from 1 to 999999, got ${show(text)}`);
}

/** Any non-empty text (a path, a glob, a URL): its shape is for whoever reads it. */
export function parseText(text: string, what: string): string {
  if (text.trim() === "") throw new ValueProblem(`expected ${what}, got nothing`);
  return text;
}

/** A package to install: not an option, so that a value cannot change how the installer runs. */
export function parsePackage(word: string): string {
  if (word.startsWith("-")) {
    throw new ValueProblem(`expected a package name, got ${show(word)}: installer options are not allowed`);
  }
  return word;
}

const TRUE_WORDS = new Set(["1", "yes", "y", "true", "t", "on"]);
const FALSE_WORDS = new Set(["0", "no", "n", "false", "f", "off"]);

/** A boolean as systemd reads it: yes/no, true/false, on/off, 1/0 (any case). */
export function parseBoolean(text: string): boolean {
  const word = text.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  throw new ValueProblem(`expected "yes" or "no" (or true/false, on/off, 1/0), got ${show(text)}`);
}

export const CHECK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
