import { DefinitionError } from "../../errors.js";
import { formatPath } from "../field-path.js";
import { type IniEntry, type IniSection, type IniSegment, IniValue } from "./ini.js";

export interface IniDocument {
  /** In file order; a section written twice appears twice. */
  sections: IniSection[];
  /** Syntax problems; the lines they are on are left out of `sections`. */
  problems: DefinitionError[];
}

const SECTION_NAME = /^[^\s[\]]+$/;
const KEY = /^[^\s"'[\]]+$/;
const EXPECTED_LINE = "expected `KEY=VALUE`, a `[Section]` header, or a comment starting with '#' or ';'";

const isBlank = (ch: string | undefined): boolean => ch === " " || ch === "\t";
const isCommentStart = (ch: string | undefined): boolean => ch === "#" || ch === ";";

/**
 * The text and where each line starts and ends (without "\r\n"), so that lines are scanned in
 * place rather than copied: large catalogues parse many thousands of files.
 */
class Lines {
  readonly starts: Int32Array;
  readonly ends: Int32Array;

  constructor(readonly text: string) {
    let count = 1;
    for (let at = text.indexOf("\n"); at >= 0; at = text.indexOf("\n", at + 1)) count++;
    this.starts = new Int32Array(count);
    this.ends = new Int32Array(count);
    let start = 0;
    for (let index = 0; index < count; index++) {
      const newline = text.indexOf("\n", start);
      const end = newline < 0 ? text.length : newline;
      this.starts[index] = start;
      this.ends[index] = end > start && text[end - 1] === "\r" ? end - 1 : end;
      start = end + 1;
    }
  }

  get count(): number {
    return this.starts.length;
  }

  /** The first offset from `from` on line `index` that is not a blank. */
  firstNonBlank(index: number, from = this.starts[index]!): number {
    const end = this.ends[index]!;
    let at = from;
    while (at < end && isBlank(this.text[at])) at++;
    return at;
  }

  /** Whether line `index` is nothing but whitespace and maybe a comment from `from`. */
  isRestEmpty(index: number, from: number): boolean {
    const at = this.firstNonBlank(index, from);
    return at === this.ends[index] || isCommentStart(this.text[at]);
  }

  isCommentLine(index: number): boolean {
    return isCommentStart(this.text[this.firstNonBlank(index)]);
  }

  /** Where `ch` is on line `index` from `from`, or -1 (not searching past the line, which could be slow). */
  indexOf(index: number, ch: string, from: number): number {
    const end = this.ends[index]!;
    for (let at = from; at < end; at++) if (this.text[at] === ch) return at;
    return -1;
  }

  column(index: number, offset: number): number {
    return offset - this.starts[index]! + 1;
  }
}

type Fail = (line: number, column: number, problem: string, path?: string) => void;

/**
 * Parses systemd-style INI text: `[Section]` headers, `KEY=VALUE` lines, `#`/`;` comment lines,
 * inline comments (`#` or `;` after whitespace, outside quotes), values quoted as a whole, and lines
 * continued with a trailing backslash. Never throws: problems are collected, one per bad line,
 * and the rest of the file is still read.
 */
export function parseIni(text: string, file: string): IniDocument {
  const lines = new Lines(text.startsWith("\uFEFF") ? text.slice(1) : text);
  const source = lines.text;
  const sections: IniSection[] = [];
  const problems: DefinitionError[] = [];
  // undefined: no header yet; null: after a malformed header, whose keys are not reported again.
  let current: IniSection | null | undefined;
  let previousHadComment = false;
  const fail: Fail = (line, column, problem, path) => {
    problems.push(new DefinitionError({ file, line, column, path }, problem));
  };

  for (let index = 0; index < lines.count; index++) {
    const lineNumber = index + 1;
    const end = lines.ends[index]!;
    const start = lines.firstNonBlank(index);
    if (start === end || isCommentStart(source[start])) {
      previousHadComment = false;
      continue;
    }

    if (source[start] === "[") {
      previousHadComment = false;
      current = readHeader(lines, index, start, fail);
      if (current) sections.push(current);
      continue;
    }

    const equals = lines.indexOf(index, "=", start);
    if (equals < 0) {
      const hint = previousHadComment
        ? "; if this line continues the comment on the line above, start it with '#' as well"
        : "";
      fail(lineNumber, lines.column(index, start), `${EXPECTED_LINE}${hint}`);
      previousHadComment = false;
      continue;
    }
    const key = source.slice(start, equals).trimEnd();
    const column = lines.column(index, start);
    const scanned = scanValue(lines, index, equals + 1);
    index = scanned.lastLine;
    previousHadComment = scanned.comment;
    if (scanned.unclosedQuote) {
      const path = current && KEY.test(key) ? formatPath([current.name, key]) : undefined;
      const { line, column, quote } = scanned.unclosedQuote;
      const other = quote === '"' ? "'" : '"';
      fail(
        line,
        column,
        `a quote is not closed (to write a lone ${quote}, put the value in ${other} quotes)`,
        path,
      );
    }

    if (key === "") {
      fail(lineNumber, column, "expected a key before '='");
      continue;
    }
    if (!KEY.test(key)) {
      fail(lineNumber, column, `invalid key ${JSON.stringify(key)}: a key has no spaces, quotes or brackets`);
      continue;
    }
    if (current === undefined) {
      fail(
        lineNumber,
        column,
        `\`${key}=\` comes before any [Section] header; expected e.g. [Service] first`,
      );
      current = null;
      continue;
    }
    if (current === null || scanned.unclosedQuote) continue;
    const entry: IniEntry = { key, line: lineNumber, column, value: scanned.value };
    current.entries.push(entry);
  }
  return { sections, problems };
}

function readHeader(lines: Lines, index: number, start: number, fail: Fail): IniSection | null {
  const source = lines.text;
  const lineNumber = index + 1;
  const column = lines.column(index, start);
  const close = lines.indexOf(index, "]", start);
  if (close < 0) {
    fail(lineNumber, column, "a section header needs a closing ']', as in [Service]");
    return null;
  }
  const name = source.slice(start + 1, close);
  if (!SECTION_NAME.test(name)) {
    fail(lineNumber, column, `expected a section name such as [Service], got ${JSON.stringify(`[${name}]`)}`);
    return null;
  }
  if (!lines.isRestEmpty(index, close + 1)) {
    const at = lines.firstNonBlank(index, close + 1);
    fail(
      lineNumber,
      lines.column(index, at),
      `unexpected text after [${name}]; only a comment may follow a section header`,
    );
    return null;
  }
  return { name, line: lineNumber, column, entries: [] };
}

interface Scanned {
  value: IniValue;
  /** Index of the last line the value took. */
  lastLine: number;
  /** Whether it ended with an inline comment. */
  comment: boolean;
  unclosedQuote?: { line: number; column: number; quote: string };
}

/**
 * Reads a value from line `index` at offset `from`, following continuation lines. Tracks quotes
 * (and backslash escapes, except inside single quotes) so that `#` in a quoted string is not a
 * comment.
 */
function scanValue(lines: Lines, index: number, from: number): Scanned {
  const source = lines.text;
  let lineIndex = index;
  let end = lines.ends[lineIndex]!;
  let at = lines.firstNonBlank(lineIndex, from);
  let raw = "";
  const startLine = lineIndex + 1;
  const startColumn = lines.column(lineIndex, at);
  let continuations: IniSegment[] | undefined;
  let quote: string | undefined;
  let quoteLine = 0;
  let quoteAt = 0;
  // Where the quote that opens the value closes, to tell a quoted value from one with quoted words.
  let firstQuoteEnd = -1;
  let comment = false;

  for (;;) {
    let continued = false;
    // Whether the previous character was unescaped whitespace, which lets a comment start.
    let afterBlank = at > lines.starts[lineIndex]! && isBlank(source[at - 1]);
    const pieceStart = at;
    for (; at < end; at++) {
      const ch = source[at];
      if (ch === "\\" && quote !== "'") {
        if (lines.firstNonBlank(lineIndex, at + 1) === end) {
          continued = true;
          break;
        }
        at++;
        afterBlank = false;
        continue;
      }
      const blankBefore = afterBlank;
      afterBlank = quote === undefined && isBlank(ch);
      if (quote === undefined) {
        if (isCommentStart(ch) && blankBefore) {
          comment = true;
          break;
        }
        if (ch === '"' || ch === "'") {
          quote = ch;
          quoteLine = lineIndex;
          quoteAt = at;
        }
      } else if (ch === quote) {
        quote = undefined;
        const first = raw === "" ? source[pieceStart] : raw[0];
        if (firstQuoteEnd < 0 && (first === '"' || first === "'"))
          firstQuoteEnd = raw.length + at - pieceStart;
      }
    }
    raw += source.slice(pieceStart, at);
    if (!continued || lineIndex + 1 >= lines.count) break;
    raw += " ";
    lineIndex++;
    // Comment lines inside a continued value are skipped, as systemd does.
    while (lineIndex < lines.count && lines.isCommentLine(lineIndex)) lineIndex++;
    if (lineIndex >= lines.count) {
      lineIndex = lines.count - 1;
      break;
    }
    end = lines.ends[lineIndex]!;
    at = lines.starts[lineIndex]!;
    continuations ??= [];
    continuations.push({ start: raw.length, line: lineIndex + 1, column: 1 });
  }

  const trimmed = raw.trimEnd();
  const quoted = quote === undefined && trimmed.length >= 2 && firstQuoteEnd === trimmed.length - 1;
  const value = new IniValue(trimmed, quoted, startLine, startColumn, continuations);
  const scanned: Scanned = { value, lastLine: lineIndex, comment };
  if (quote !== undefined) {
    scanned.unclosedQuote = { line: quoteLine + 1, column: lines.column(quoteLine, quoteAt), quote };
  }
  return scanned;
}
