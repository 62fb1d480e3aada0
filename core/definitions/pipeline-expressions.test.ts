import { describe, expect, it } from "vitest";
import {
  itemText,
  parseReference,
  type Reference,
  referencesIn,
  splitCommandTemplate,
  substitute,
} from "./pipeline-expressions.js";

const values: Record<string, string> = { "env.HOME": "/home/me", "params.msg": "a b 'c'", "params.x": "1" };
const resolve = (reference: Reference): string => {
  const key =
    reference.kind === "index"
      ? "index"
      : reference.kind === "item"
        ? "item"
        : `${reference.kind}.${reference.name}`;
  const value = values[key];
  if (value === undefined) throw new Error(`no ${key}`);
  return value;
};

describe("parseReference", () => {
  it("reads env, params, item, item fields and index, with any spacing", () => {
    expect(parseReference(" env.HOME ")).toEqual({ kind: "env", name: "HOME" });
    expect(parseReference("params.run-date")).toEqual({ kind: "params", name: "run-date" });
    expect(parseReference("item")).toEqual({ kind: "item", fields: [] });
    expect(parseReference("item.city.name")).toEqual({ kind: "item", fields: ["city", "name"] });
    expect(parseReference("index")).toEqual({ kind: "index" });
  });

  it("names the Taskframe way for other tools' contexts", () => {
    expect(() => parseReference("matrix.os")).toThrow("write `for_each:`");
    expect(() => parseReference("inputs.date")).toThrow(`\${{ params.NAME }}`);
    expect(() => parseReference("secrets.TOKEN")).toThrow(`\${{ env.NAME }}`);
  });

  it("refuses functions, operators and anything else", () => {
    expect(() => parseReference("format('{0}', env.X)")).toThrow("without functions or operators");
    expect(() => parseReference("env.X || 'y'")).toThrow("without functions or operators");
    expect(() => parseReference("github.sha")).toThrow(`expected \${{ env.NAME }}, \${{ params.NAME }}`);
    expect(() => parseReference("env.")).toThrow(`got \${{ env. }}`);
  });
});

describe("substitute", () => {
  it("replaces every reference and leaves the rest as written", () => {
    expect(substitute(`\${{ env.HOME }}/x-\${{params.x}}`, resolve)).toBe("/home/me/x-1");
    expect(substitute(`no expressions, $HOME or \${HOME}`, resolve)).toBe(
      `no expressions, $HOME or \${HOME}`,
    );
  });

  it("never substitutes twice: a value that looks like an expression stays text", () => {
    const sneaky = (): string => `\${{ env.HOME }}`;
    expect(substitute(`\${{ params.x }}`, sneaky)).toBe(`\${{ env.HOME }}`);
  });

  it(`writes a literal \${{ with $\${{`, () => {
    expect(substitute(`$\${{ env.HOME }} and \${{ env.HOME }}`, resolve)).toBe(
      `\${{ env.HOME }} and /home/me`,
    );
  });

  it("refuses an unclosed expression", () => {
    expect(() => substitute(`x \${{ env.HOME`, resolve)).toThrow(`found \`\${{\` without a closing \`}}\``);
    expect(() => referencesIn(`\${{ env.A }} \${{`)).toThrow("without a closing");
  });

  it("lists the references of a text", () => {
    expect(referencesIn(`\${{ params.a }}-\${{ env.B }}-$\${{ params.c }}`)).toEqual([
      { kind: "params", name: "a" },
      { kind: "env", name: "B" },
    ]);
  });
});

describe("splitCommandTemplate", () => {
  it("splits before substituting, so a value with spaces or quotes stays one word", () => {
    const words = splitCommandTemplate(`./run.sh --msg \${{ params.msg }} "in \${{ env.HOME }} dir"`);
    expect(words).toEqual(["./run.sh", "--msg", `\${{ params.msg }}`, `in \${{ env.HOME }} dir`]);
    expect(words.map((word) => substitute(word, resolve))).toEqual([
      "./run.sh",
      "--msg",
      "a b 'c'",
      "in /home/me dir",
    ]);
  });

  it("keeps a word made of several parts together", () => {
    expect(splitCommandTemplate(`cp \${{ item }}.csv out/\${{ index }}-\${{ item }}.csv`)).toEqual([
      "cp",
      `\${{ item }}.csv`,
      `out/\${{ index }}-\${{ item }}.csv`,
    ]);
  });

  it("reports splitting problems with the expressions as written", () => {
    expect(() => splitCommandTemplate(`echo "\${{ params.x }}`)).toThrow(
      `cannot split "echo \\"\${{ params.x }}" into words: a quote is not closed`,
    );
    expect(() => splitCommandTemplate(`a \${{ params.x }} | b`)).toThrow("found `|`");
  });

  it("is not fooled by a command that contains the placeholder text", () => {
    expect(splitCommandTemplate(`echo tfexpr0tfexpr \${{ index }}`)).toEqual([
      "echo",
      "tfexpr0tfexpr",
      `\${{ index }}`,
    ]);
  });
});

describe("itemText", () => {
  it("reads scalars and fields; null is empty", () => {
    expect(itemText("paris", [])).toBe("paris");
    expect(itemText(3, [])).toBe("3");
    expect(itemText({ city: { name: "Paris" }, n: null }, ["city", "name"])).toBe("Paris");
    expect(itemText({ n: null }, ["n"])).toBe("");
  });

  it("says what the item has when a field is missing, and refuses maps and lists as text", () => {
    expect(() => itemText({ city: "x", key: "k" }, ["town"])).toThrow(
      "item has no field 'town' (it has: city, key)",
    );
    expect(() => itemText({ city: "x" }, [])).toThrow(`refer to one of its fields with \${{ item.FIELD }}`);
    expect(() => itemText("x", ["a"])).toThrow('item is "x", not a map');
    expect(() => itemText({ a: [1] }, ["a"])).toThrow(`\${{ item.a }} is a list`);
  });
});
