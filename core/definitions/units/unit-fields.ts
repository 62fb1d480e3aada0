import { errorMessage } from "../../errors.js";
import {
  type CatchUp,
  type ConditionModeName,
  type LocalDateTime,
  type Overlap,
  parseCatchUp,
  parseConditionMode,
  parseDateTime,
  parseOverlap,
  parseTimeZone,
} from "../schedule-values.js";
import type { IniEntry, IniPosition } from "./ini.js";
import {
  type ArtifactPin,
  type JailProfile,
  parseArtifactUrl,
  parseCpuMillis,
  parseJail,
  parsePids,
  parseSha256,
} from "./jail-settings.js";
import { splitListWords } from "./list-words.js";
import { parseSizeBytes } from "./size.js";
import { parseUnitReference } from "./unit-names.js";
import {
  CHECK_NAME,
  ENV_NAME,
  parseAccount,
  parseArgs,
  parseBoolean,
  parseCommandLine,
  parseCron,
  parseDirectory,
  parseExitStatusList,
  parsePackage,
  parsePartitions,
  parseRestart,
  parseText,
  parseUnitDuration,
  ValueProblem,
} from "./unit-values.js";

/** A value of a list, and where it was written. */
export interface Listed<T> extends IniPosition {
  value: T;
}

/** An entry of a section whose keys the user names (`[Checks]`, `[Environment]`). */
export interface Named<T> {
  name: string;
  value: T;
}

/** What a unit file says, section by section, once every value has been parsed. */
export interface UnitFields {
  Dependencies?: { Requires?: Listed<string>[]; After?: Listed<string>[]; Wants?: Listed<string>[] };
  Service?: {
    User?: string;
    Group?: string;
    WorkingDirectory?: string;
    /** Retries. */
    Restart?: number;
    RestartSec?: number;
    RestartPreventExitStatus?: number[];
    LimitMem?: bigint;
    /** The size of the task's private /tmp; 0 (infinity) is the pool's default. */
    LimitDisk?: bigint;
    /** Processes and threads; infinity is PIDS_INFINITY. */
    LimitPids?: number;
    /** Thousandths of a CPU; 0 (infinity) is no quota. */
    LimitCPU?: number;
    /** Milliseconds; 0 is no limit. */
    MaxTime?: number;
    PrivateNetwork?: boolean;
    Jail?: JailProfile;
  };
  /** argv of each check, in file order. */
  Checks?: Named<string[]>[];
  Environment?: Named<string>[];
  Args?: { args?: string[] };
  Command?: { command: string[] };
  RunIf?: {
    cron?: string;
    /** The condition's argv. */
    Requires?: string[];
    /** How often Requires= is evaluated (ms). */
    Interval?: number;
    /** The IANA zone of cron= (and of Start=/End= without an offset). */
    TimeZone?: string;
    Overlap?: Overlap;
    CatchUp?: CatchUp;
    /** Milliseconds. */
    Jitter?: number;
    Start?: LocalDateTime;
    End?: LocalDateTime;
    /** The limit of one evaluation of Requires= (ms). */
    Timeout?: number;
    Mode?: ConditionModeName;
  };
  Install?: {
    pip?: Listed<string>[];
    npm?: Listed<string>[];
    apt?: Listed<string>[];
    From?: string;
    Artifact?: Listed<ArtifactPin>[];
  };
  MapReduce?: {
    map: string[];
    reduce: string[];
    input: string;
    partitions?: number;
    output?: string;
    combine?: string[];
    reducers?: number;
    work?: string;
  };
}

/** Where a problem with a value is: at the entry's key, or at an offset in its value (else its start). */
export interface ProblemAt {
  entry: IniEntry;
  at?: "key";
  offset?: number;
}

export type Report = (message: string, where: ProblemAt) => void;

/** How the entries of one key (or of a whole named-entry section) become a value. */
export interface Field<T> {
  /** Undefined when a problem was reported. */
  parse(entries: readonly IniEntry[], report: Report): T | undefined;
  /** Set for keys a section must have: the message when it is missing. */
  missing?: string;
}

function reportError(report: Report, entry: IniEntry, error: unknown): void {
  const offset = error instanceof ValueProblem ? error.offset : undefined;
  report(errorMessage(error), offset === undefined ? { entry } : { entry, offset });
}

/** A key set once; setting it again is a mistake, not an override. */
function single<T>(parse: (text: string) => T, missing?: string): Field<T> {
  return {
    ...(missing === undefined ? {} : { missing }),
    parse(entries, report) {
      const first = entries[0];
      if (first === undefined) return undefined;
      for (let index = 1; index < entries.length; index++) {
        report(`\`${first.key}=\` is already set at line ${first.line}; a unit sets it once`, {
          entry: entries[index]!,
          at: "key",
        });
      }
      try {
        return entries.length === 1 ? parse(first.value.text) : undefined;
      } catch (error) {
        reportError(report, first, error);
        return undefined;
      }
    },
  };
}

/**
 * A space-separated list; repeated keys add to it and an empty value (`Requires=`) clears what
 * came before, as in systemd.
 */
/** Reports a problem with an entry (at a word's offset, if given) and marks the list failed. */
type Fail = (message: string, entry: IniEntry, offset?: number) => void;

/**
 * A key whose entries add to a list: each entry's words go to `parseEntry`,
 * an empty entry clears the list, an unclosed quote is reported; the list is
 * undefined when anything failed.
 */
function listedEntries<T>(
  parseEntry: (words: { text: string; offset: number }[], entry: IniEntry, fail: Fail) => Listed<T>[],
): Field<Listed<T>[]> {
  return {
    parse(entries, report) {
      let items: Listed<T>[] = [];
      let failed = false;
      const fail: Fail = (message, entry, offset) => {
        report(message, offset === undefined ? { entry } : { entry, offset });
        failed = true;
      };
      for (const entry of entries) {
        if (entry.value.text.trim() === "") {
          items = [];
          continue;
        }
        const { words, unclosedAt } = splitListWords(entry.value.text);
        if (unclosedAt !== undefined) fail("a quote is not closed", entry, unclosedAt);
        else items.push(...parseEntry(words, entry, fail));
      }
      return failed ? undefined : items;
    },
  };
}

/** A list of words, each parsed on its own. */
function list<T>(parse: (word: string) => T): Field<Listed<T>[]> {
  return listedEntries((words, entry, fail) => {
    const items: Listed<T>[] = [];
    for (const word of words) {
      try {
        items.push({ value: parse(word.text), ...entry.value.positionAt(word.offset) });
      } catch (error) {
        fail(errorMessage(error), entry, word.offset);
      }
    }
    return items;
  });
}

const ARTIFACT_SYNTAX = "Artifact=URL sha256=HEX";

/** `Artifact=URL sha256=HEX`, one file per entry. */
const artifactList: Field<Listed<ArtifactPin>[]> = listedEntries((words, entry, fail) => {
  const [url, pin, extra] = words;
  if (url === undefined) return [];
  if (/^sha256=/i.test(url.text)) {
    fail(`expected the URL first: ${ARTIFACT_SYNTAX}, got ${JSON.stringify(url.text)}`, entry, url.offset);
    return [];
  }
  if (extra !== undefined) {
    fail(
      `expected ${ARTIFACT_SYNTAX}, got one more word ${JSON.stringify(extra.text)} (one artifact per line)`,
      entry,
      extra.offset,
    );
  }
  let parsedUrl: string | undefined;
  try {
    parsedUrl = parseArtifactUrl(url.text);
  } catch (error) {
    fail(errorMessage(error), entry, url.offset);
  }
  const sha256 = pinOf(entry, pin, fail);
  if (parsedUrl === undefined || sha256 === undefined || extra !== undefined) return [];
  return [{ value: { url: parsedUrl, sha256 }, ...entry.value.positionAt(url.offset) }];
});

/** The `sha256=HEX` word after an artifact's URL. */
function pinOf(
  entry: IniEntry,
  pin: { text: string; offset: number } | undefined,
  fail: Fail,
): string | undefined {
  if (pin === undefined) {
    fail(
      `missing sha256=HEX after the URL: an artifact is pinned by its sha256 (${ARTIFACT_SYNTAX}, HEX being 64 hex digits)`,
      entry,
    );
    return undefined;
  }
  const equals = pin.text.indexOf("=");
  const algorithm = equals < 0 ? "" : pin.text.slice(0, equals);
  if (algorithm.toLowerCase() !== "sha256") {
    const why = /^(?:sha\d+|md5|blake\w*)$/i.test(algorithm) ? ` (only sha256 is supported)` : "";
    fail(`expected sha256=HEX after the URL, got ${JSON.stringify(pin.text)}${why}`, entry, pin.offset);
    return undefined;
  }
  try {
    return parseSha256(pin.text.slice(equals + 1));
  } catch (error) {
    fail(errorMessage(error), entry, pin.offset + equals + 1);
    return undefined;
  }
}

/** Arguments: each `args=` is split like a shell and adds to the list; an empty one clears it. */
const argsList: Field<string[]> = {
  parse(entries, report) {
    let args: string[] = [];
    let failed = false;
    for (const entry of entries) {
      try {
        const words = parseArgs(entry.value.text);
        args = words.length === 0 ? [] : [...args, ...words];
      } catch (error) {
        reportError(report, entry, error);
        failed = true;
      }
    }
    return failed ? undefined : args;
  },
};

/** A section whose keys are names the user chooses, each set once, in file order. */
function named<T>(
  keyRule: RegExp,
  keyExpected: string,
  parse: (text: string, key: string) => T,
): Field<Named<T>[]> {
  return {
    parse(entries, report) {
      const seen = new Map<string, IniEntry>();
      const result: Named<T>[] = [];
      let failed = false;
      for (const entry of entries) {
        const earlier = seen.get(entry.key);
        seen.set(entry.key, earlier ?? entry);
        failed ||= earlier !== undefined || !keyRule.test(entry.key);
        if (earlier) {
          report(`${JSON.stringify(entry.key)} is already set at line ${earlier.line}`, { entry, at: "key" });
        } else if (!keyRule.test(entry.key)) {
          report(`expected ${keyExpected}, got ${JSON.stringify(entry.key)}`, { entry, at: "key" });
        } else {
          try {
            result.push({ name: entry.key, value: parse(entry.value.text, entry.key) });
          } catch (error) {
            reportError(report, entry, error);
            failed = true;
          }
        }
      }
      return failed ? undefined : result;
    },
  };
}

const reference = list(parseUnitReference);
const packages = list(parsePackage);

function positiveDuration(text: string): number {
  const ms = parseUnitDuration(text, false);
  if (ms === 0) throw new ValueProblem(`expected a duration above 0, got ${JSON.stringify(text)}`);
  return ms;
}

function environmentValue(text: string, key: string): string {
  if (key.startsWith("TASKFRAME_")) {
    throw new ValueProblem("TASKFRAME_* variables are set by taskframe for every task; choose another name");
  }
  return text;
}

/** For `LimitCPU=30`: systemd's key of that name is something else. */
const SYSTEMD_LIMIT_CPU = "; unlike systemd's LimitCPU=, which is CPU seconds, this is a share of one CPU";

/** A section: named entries, or a fixed set of keys. */
type SectionSpec<T> = T extends unknown[] ? Field<T> : { [K in keyof T]-?: Field<NonNullable<T[K]>> };

/** Every section and key a unit may have, and how its values are read. */
export const UNIT_FIELDS: { [S in keyof UnitFields]-?: SectionSpec<NonNullable<UnitFields[S]>> } = {
  Dependencies: { Requires: reference, After: reference, Wants: reference },
  Service: {
    User: single((text) => parseAccount(text, "user")),
    Group: single((text) => parseAccount(text, "group")),
    WorkingDirectory: single(parseDirectory),
    Restart: single(parseRestart),
    RestartSec: single((text) => parseUnitDuration(text, false)),
    RestartPreventExitStatus: single(parseExitStatusList),
    LimitMem: single(parseSizeBytes),
    LimitDisk: single(parseSizeBytes),
    LimitPids: single(parsePids),
    LimitCPU: single((text) => parseCpuMillis(text, SYSTEMD_LIMIT_CPU)),
    MaxTime: single((text) => parseUnitDuration(text, true)),
    PrivateNetwork: single(parseBoolean),
    Jail: single(parseJail),
  },
  Checks: named(CHECK_NAME, "a check name of letters, digits, '.', '_' or '-'", parseCommandLine),
  Environment: named(ENV_NAME, "an environment variable name such as DOCKER_PORT", environmentValue),
  Args: { args: argsList },
  Command: { command: single(parseCommandLine, 'missing `command=`; expected e.g. command="./run.sh"') },
  RunIf: {
    cron: single(parseCron),
    Requires: single(parseCommandLine),
    Interval: single(positiveDuration),
    TimeZone: single(parseTimeZone),
    Overlap: single(parseOverlap),
    CatchUp: single(parseCatchUp),
    Jitter: single((text) => parseUnitDuration(text, false)),
    Start: single(parseDateTime),
    End: single(parseDateTime),
    Timeout: single(positiveDuration),
    Mode: single(parseConditionMode),
  },
  Install: {
    pip: packages,
    npm: packages,
    apt: packages,
    From: single((text) => parseText(text, "a file listing dependencies, e.g. deps.json")),
    Artifact: artifactList,
  },
  MapReduce: {
    map: single(parseCommandLine, "missing `map=`; expected the command that maps one partition"),
    reduce: single(parseCommandLine, "missing `reduce=`; expected the command that combines the results"),
    input: single((text) => parseText(text, "the input"), "missing `input=`; expected what to partition"),
    partitions: single(parsePartitions),
    output: single((text) => parseText(text, "where the result goes")),
    combine: single(parseCommandLine),
    reducers: single(parsePartitions),
    work: single((text) => parseText(text, "the directory where the job stages its files")),
  },
};

export const isField = (spec: unknown): spec is Field<unknown> =>
  typeof (spec as Partial<Field<unknown>>).parse === "function";
