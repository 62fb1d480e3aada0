import { describe, expect, it } from "vitest";
import type { IniEntry } from "./ini.js";
import { parseIni } from "./ini-parser.js";

const FILE = "units/a.task";
const ini = (...lines: string[]): string => `${lines.join("\n")}\n`;

function parse(text: string) {
  const document = parseIni(text, FILE);
  return { ...document, messages: document.problems.map((problem) => problem.message) };
}

/** Every entry as `Section.key=text`. */
function entries(text: string): string[] {
  const { sections, messages } = parse(text);
  expect(messages).toEqual([]);
  return sections.flatMap((section) =>
    section.entries.map((entry) => `${section.name}.${entry.key}=${entry.value.text}`),
  );
}

function only(text: string): IniEntry {
  const { sections, messages } = parse(text);
  expect(messages).toEqual([]);
  const entry = sections[0]?.entries[0];
  if (!entry) throw new Error("expected an entry");
  return entry;
}

describe("parseIni: structure", () => {
  it("reads sections and keys with positions", () => {
    const { sections } = parse(ini("[Service]", "  User = test", "", "[Command]", "command=pandoc"));
    expect(sections.map((section) => [section.name, section.line, section.column])).toEqual([
      ["Service", 1, 1],
      ["Command", 4, 1],
    ]);
    const user = sections[0]!.entries[0]!;
    expect([user.key, user.line, user.column, user.value.text]).toEqual(["User", 2, 3, "test"]);
    expect(user.value.start).toEqual({ line: 2, column: 10 });
  });

  it("skips # and ; comment lines and blank lines, with CRLF line ends and a BOM", () => {
    const text = "\uFEFF# heading\r\n; another\r\n\r\n[A]\r\n  # indented comment\r\nk=v\r\n";
    expect(entries(text)).toEqual(["A.k=v"]);
    expect(parse(text).sections[0]!.entries[0]!.line).toBe(6);
  });

  it("keeps keys case-sensitive and repeated keys in order", () => {
    expect(entries(ini("[D]", "Requires=a", "requires=b", "Requires=c"))).toEqual([
      "D.Requires=a",
      "D.requires=b",
      "D.Requires=c",
    ]);
  });

  it("keeps a section written twice as two sections", () => {
    const { sections } = parse(ini("[A]", "x=1", "[B]", "[A]", "y=2"));
    expect(sections.map((section) => section.name)).toEqual(["A", "B", "A"]);
  });

  it("splits at the first '=' only", () => {
    expect(only(ini("[A]", "args=--template=x.html a=b")).value.text).toBe("--template=x.html a=b");
  });

  it("accepts an empty value", () => {
    const entry = only(ini("[A]", "Requires="));
    expect(entry.value.text).toBe("");
    expect(entry.value.start).toEqual({ line: 2, column: 10 });
  });
});

describe("parseIni: values", () => {
  it.each([
    ["k=v # comment", "v"],
    ["k=v ; comment", "v"],
    ["k=v\t# tab before", "v"],
    ["k=v#not-a-comment", "v#not-a-comment"],
    ["k=a;b", "a;b"],
    ["k=#x", "#x"],
    ["k= # only a comment", ""],
    ['k="# inside quotes" # outside', "# inside quotes"],
    ["k='a ; b' ; c", "a ; b"],
    ['k="./check-pandoc"', "./check-pandoc"],
    ["k='single'", "single"],
    ['k=""', ""],
    ['k="say \\"hi\\" \\\\ now"', 'say "hi" \\ now'],
    ["k='no \\escapes'", "no \\escapes"],
    ['k="a" "b"', '"a" "b"'],
    ['k=-o "my file.html"', '-o "my file.html"'],
    ['k="a b" c', '"a b" c'],
    ["k=a\\ #b", "a\\ #b"],
    ["k=  padded   ", "padded"],
  ])("%s -> %j", (line, text) => {
    expect(only(ini("[A]", line)).value.text).toBe(text);
  });

  it("says whether the whole value was quoted", () => {
    expect(only(ini("[A]", 'k="x y"')).value.quoted).toBe(true);
    expect(only(ini("[A]", 'k="x" y')).value.quoted).toBe(false);
    expect(only(ini("[A]", "k=x")).value.quoted).toBe(false);
  });

  it("maps offsets in the text back to the file, inside quotes too", () => {
    const plain = only(ini("[A]", "Requires=a.service b.service")).value;
    expect(plain.positionAt(10)).toEqual({ line: 2, column: 20 });
    const quoted = only(ini("[A]", 'Requires="a.service b.service"')).value;
    expect(quoted.text.slice(10)).toBe("b.service");
    expect(quoted.positionAt(10)).toEqual({ line: 2, column: 21 });
    expect(quoted.start).toEqual({ line: 2, column: 10 });
    const escaped = only(ini("[A]", 'k="\\"x\\" y"')).value;
    expect(escaped.text).toBe('"x" y');
    expect(escaped.positionAt(4)).toEqual({ line: 2, column: 10 });
  });
});

describe("parseIni: continuation lines", () => {
  it("joins a line ending in a backslash with the next, the backslash becoming a space", () => {
    const entry = only(ini("[D]", "Requires=a.service \\", "  b.service", "[E]"));
    expect(entry.value.text).toBe("a.service    b.service");
    expect(entry.value.positionAt(entry.value.text.indexOf("b"))).toEqual({ line: 3, column: 3 });
  });

  it("follows several continuations, skips comment lines inside them, and ends at a blank line", () => {
    const text = ini("[D]", "Requires=a \\", "# a comment", "b \\", "c", "Wants=d \\", "", "After=e");
    expect(entries(text)).toEqual(["D.Requires=a  b  c", "D.Wants=d", "D.After=e"]);
  });

  it("continues inside quotes", () => {
    expect(only(ini("[A]", 'args="a \\', 'b"')).value.text).toBe("a  b");
  });

  it("does not continue after an escaped backslash in the middle of a line or in a comment", () => {
    expect(entries(ini("[A]", "k=a\\\\b", "j=c # ends with \\", "i=d"))).toEqual([
      "A.k=a\\\\b",
      "A.j=c",
      "A.i=d",
    ]);
  });

  it("ends a value continued on the last line, or onto comment lines only", () => {
    expect(entries("[A]\nk=v \\")).toEqual(["A.k=v"]);
    expect(entries("[A]\nk=v \\\n# c")).toEqual(["A.k=v"]);
  });
});

describe("parseIni: problems", () => {
  function problems(text: string): string[] {
    return parse(text).messages;
  }

  it("rejects a line that is not a key, a header or a comment, and goes on", () => {
    expect(problems(ini("[A]", "just words", "k=v", "more words"))).toEqual([
      `${FILE}:2:1: expected \`KEY=VALUE\`, a \`[Section]\` header, or a comment starting with '#' or ';'`,
      `${FILE}:4:1: expected \`KEY=VALUE\`, a \`[Section]\` header, or a comment starting with '#' or ';'`,
    ]);
    expect(entries(ini("[A]", "k=v"))).toEqual(["A.k=v"]);
  });

  it("suggests '#' for a comment that wrapped onto the next line", () => {
    const [message] = problems(
      ini("[RunIf]", 'Requires="./check.sh" # checks for user count of all', "accounts, returns 0"),
    );
    expect(message).toContain(`${FILE}:3:1: expected \`KEY=VALUE\``);
    expect(message).toContain(
      "if this line continues the comment on the line above, start it with '#' as well",
    );
  });

  it("rejects malformed headers", () => {
    expect(problems(ini("[Service", "[]", "[Two Words]", "[A] trailing", "[B] # fine"))).toEqual([
      `${FILE}:1:1: a section header needs a closing ']', as in [Service]`,
      `${FILE}:2:1: expected a section name such as [Service], got "[]"`,
      `${FILE}:3:1: expected a section name such as [Service], got "[Two Words]"`,
      `${FILE}:4:5: unexpected text after [A]; only a comment may follow a section header`,
    ]);
  });

  it("does not report the keys under a malformed header again", () => {
    expect(problems(ini("[Bad", "k=v", "[Good]", "j=w"))).toHaveLength(1);
  });

  it("rejects keys before any section, once", () => {
    expect(problems(ini("k=v", "j=w", "[A]", "i=x"))).toEqual([
      `${FILE}:1:1: \`k=\` comes before any [Section] header; expected e.g. [Service] first`,
    ]);
  });

  it("rejects empty and malformed keys", () => {
    expect(problems(ini("[A]", "=v", "two words=v", '"k"=v'))).toEqual([
      `${FILE}:2:1: expected a key before '='`,
      `${FILE}:3:1: invalid key "two words": a key has no spaces, quotes or brackets`,
      `${FILE}:4:1: invalid key "\\"k\\"": a key has no spaces, quotes or brackets`,
    ]);
  });

  it("rejects an unclosed quote at the quote, and drops that entry", () => {
    const { messages, sections } = parse(ini("[A]", `k="./check`, "j=it's", "i=ok"));
    expect(messages).toEqual([
      `${FILE}:2:3: A.k: a quote is not closed (to write a lone ", put the value in ' quotes)`,
      `${FILE}:3:5: A.j: a quote is not closed (to write a lone ', put the value in " quotes)`,
    ]);
    expect(sections[0]!.entries.map((entry) => entry.key)).toEqual(["i"]);
  });
});
