import { describeValue, isPlainMap } from "./field-path.js";
import { splitCommandLine } from "./words.js";

/** A `${{ ... }}` reference; `$${{` writes a literal `${{`. */
const EXPRESSION = /\$?\$\{\{([\s\S]*?)\}\}/g;
const OPENER = `\${{`;

export type Reference =
  | { kind: "env"; name: string }
  | { kind: "params"; name: string }
  | { kind: "item"; fields: string[] }
  | { kind: "index" };

export const REFERENCE_FORMS = `\${{ env.NAME }}, \${{ params.NAME }}, \${{ item }}, \${{ item.FIELD }} or \${{ index }}`;

const ENV_REF = /^env\.([A-Za-z_][A-Za-z0-9_]*)$/;
const PARAM_REF = /^params\.([A-Za-z_][A-Za-z0-9_-]*)$/;
const ITEM_REF = /^item((?:\.[A-Za-z0-9_-]+)*)$/;

/** What users of other workflow tools write, and the Taskframe way. */
const FOREIGN_CONTEXTS: Readonly<Record<string, string>> = {
  matrix: `for a matrix write \`for_each:\` with a list of maps and refer to \${{ item.FIELD }}`,
  inputs: `pipeline inputs are \${{ params.NAME }} (declared under \`params:\`, given with --param NAME=VALUE)`,
  vars: `variables are \${{ params.NAME }} (declared under \`params:\`, given with --param NAME=VALUE)`,
  workflow: `workflow parameters are \${{ params.NAME }}`,
  secrets: `secrets come from the environment of the \`task\` command: \${{ env.NAME }}`,
};

/** Parses the text between `${{` and `}}`; throws an Error saying what was expected. */
export function parseReference(inner: string): Reference {
  const text = inner.trim();
  const env = ENV_REF.exec(text);
  if (env) return { kind: "env", name: env[1]! };
  const param = PARAM_REF.exec(text);
  if (param) return { kind: "params", name: param[1]! };
  const item = ITEM_REF.exec(text);
  if (item) return { kind: "item", fields: item[1]!.split(".").filter((field) => field !== "") };
  if (text === "index") return { kind: "index" };
  const head = /^[A-Za-z_]+/.exec(text)?.[0] ?? "";
  const hint = FOREIGN_CONTEXTS[head];
  const got = `\${{ ${text} }}`;
  if (hint) throw new Error(`found ${got}: ${hint}`);
  if (/[()|&!=<>+*]/.test(text) || /^\S+\s+\S/.test(text)) {
    throw new Error(`found ${got}: expressions are plain references, without functions or operators`);
  }
  throw new Error(`expected ${REFERENCE_FORMS}, got ${got}`);
}

interface Span {
  start: number;
  end: number;
  /** Undefined for an escaped `$${{ ... }}`, which stands for its text without the first `$`. */
  reference: string | undefined;
}

function spans(text: string): Span[] {
  const found: Span[] = [];
  let last = 0;
  for (const match of text.matchAll(EXPRESSION)) {
    const start = match.index;
    checkNoOpener(text.slice(last, start));
    const escaped = match[0].startsWith("$$");
    found.push({ start, end: start + match[0].length, reference: escaped ? undefined : match[1]! });
    last = start + match[0].length;
  }
  checkNoOpener(text.slice(last));
  return found;
}

function checkNoOpener(between: string): void {
  if (between.includes(OPENER)) throw new Error(`found \`\${{\` without a closing \`}}\``);
}

/** True if the text has a `${{` anywhere (escaped or not), i.e. substitution would look at it. */
export const hasExpression = (text: string): boolean => text.includes(OPENER);

/** The references in a text, e.g. to find which params a pipeline uses. Throws on a malformed one. */
export function referencesIn(text: string): Reference[] {
  if (!hasExpression(text)) return [];
  return spans(text).flatMap((span) =>
    span.reference === undefined ? [] : [parseReference(span.reference)],
  );
}

/** Resolves one reference to its text; throws an Error saying what is missing. */
export type Resolver = (reference: Reference) => string;

/** Substitutes every reference in `text`. The result is plain text: it is never parsed again. */
export function substitute(text: string, resolve: Resolver): string {
  if (!hasExpression(text)) return text;
  let out = "";
  let at = 0;
  for (const span of spans(text)) {
    out += text.slice(at, span.start);
    out +=
      span.reference === undefined
        ? text.slice(span.start + 1, span.end)
        : resolve(parseReference(span.reference));
    at = span.end;
  }
  return out + text.slice(at);
}

/**
 * Splits a command line into words before any substitution, keeping each `${{ ... }}` inside the
 * word it is written in, so a value with spaces or quotes later stays one argument.
 */
export function splitCommandTemplate(line: string): string[] {
  if (!hasExpression(line)) return splitCommandLine(line);
  const found = spans(line);
  let nonce = "tfexpr";
  while (line.includes(nonce)) nonce += "x";
  const placeholder = (index: number): string => `${nonce}${index}${nonce}`;
  let masked = "";
  let at = 0;
  found.forEach((span, index) => {
    masked += line.slice(at, span.start) + placeholder(index);
    at = span.end;
  });
  masked += line.slice(at);
  const unmask = (text: string): string =>
    text.replace(new RegExp(`${nonce}(\\d+)${nonce}`, "g"), (_, index: string) => {
      const span = found[Number(index)]!;
      return line.slice(span.start, span.end);
    });
  let words: string[];
  try {
    words = splitCommandLine(masked);
  } catch (error) {
    throw new Error(unmask(error instanceof Error ? error.message : String(error)));
  }
  return words.map(unmask);
}

/** Looks up `item.a.b` in a for_each item; the value must be a scalar (null gives ""). */
export function itemText(item: unknown, fields: readonly string[]): string {
  let value = item;
  const walked: string[] = ["item"];
  for (const field of fields) {
    if (!isPlainMap(value)) {
      throw new Error(
        `${walked.join(".")} is ${describeValue(value)}, not a map: there is no ${walked.join(".")}.${field}`,
      );
    }
    walked.push(field);
    if (!(field in value)) {
      const keys = Object.keys(value);
      const known = keys.length > 0 ? ` (it has: ${keys.join(", ")})` : "";
      throw new Error(`${walked.slice(0, -1).join(".")} has no field '${field}'${known}`);
    }
    value = value[field];
  }
  if (value === null || value === undefined) return "";
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean")
    return String(value);
  const shown = walked.join(".");
  throw new Error(
    `\${{ ${shown} }} is ${describeValue(value)}: expected a string, number or boolean` +
      (fields.length === 0 ? `; refer to one of its fields with \${{ item.FIELD }}` : ""),
  );
}
