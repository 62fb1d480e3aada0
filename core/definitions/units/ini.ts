/** 1-based line and column in a unit file. */
export interface IniPosition {
  line: number;
  column: number;
}

/** Where a piece of a value's raw text starts in the file (a value spans several lines when continued). */
export interface IniSegment extends IniPosition {
  /** Offset in the raw value where this piece starts. */
  start: number;
}

/** A value after `KEY=`: quotes around the whole value removed, comments and continuations resolved. */
export class IniValue {
  /** The value as a program sees it: outer quotes removed (and `\"`, `\\` inside double quotes). */
  readonly text: string;

  constructor(
    /** The value as written, comment and trailing whitespace removed, continuation lines joined. */
    readonly raw: string,
    /** Whether the whole raw value was one quoted string. */
    readonly quoted: boolean,
    /** Where the value starts (its opening quote, if quoted). */
    readonly line: number,
    readonly column: number,
    /** Where each continuation line's piece starts, for values that span lines. */
    private readonly continued?: readonly IniSegment[],
  ) {
    this.text = quoted ? unquote(raw) : raw;
  }

  /** Where the value starts (its opening quote, if quoted). */
  get start(): IniPosition {
    return { line: this.line, column: this.column };
  }

  /** The file position of `text[offset]`. */
  positionAt(offset: number): IniPosition {
    const rawOffset = this.quoted ? rawOffsetInQuoted(this.raw, offset) : offset;
    const continued = this.continued;
    if (continued === undefined || continued[0]!.start > rawOffset) {
      return { line: this.line, column: this.column + rawOffset };
    }
    let segment = continued[0]!;
    // Binary search: the last piece starting at or before the offset.
    let low = 1;
    let high = continued.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const candidate = continued[middle]!;
      if (candidate.start <= rawOffset) {
        segment = candidate;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return { line: segment.line, column: segment.column + rawOffset - segment.start };
  }
}

export interface IniEntry {
  key: string;
  /** Position of the key. */
  line: number;
  column: number;
  value: IniValue;
}

export interface IniSection {
  name: string;
  /** Position of the `[`. */
  line: number;
  column: number;
  entries: IniEntry[];
}

const isEscapable = (quote: string, next: string | undefined): boolean =>
  quote === '"' && (next === '"' || next === "\\");

function unquote(raw: string): string {
  const quote = raw[0]!;
  const inner = raw.slice(1, -1);
  if (quote !== '"' || !inner.includes("\\")) return inner;
  let text = "";
  for (let i = 0; i < inner.length; i++) {
    if (inner[i] === "\\" && isEscapable(quote, inner[i + 1])) i++;
    text += inner[i];
  }
  return text;
}

function rawOffsetInQuoted(raw: string, offset: number): number {
  const quote = raw[0]!;
  let at = 1;
  for (let i = 0; i < offset && at < raw.length - 1; i++) {
    at += raw[at] === "\\" && isEscapable(quote, raw[at + 1]) ? 2 : 1;
  }
  return at;
}
