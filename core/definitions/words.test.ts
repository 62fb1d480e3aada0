import { describe, expect, it } from "vitest";
import { splitCommandLine } from "./words.js";

describe("splitCommandLine", () => {
  it("splits on whitespace and honours quotes", () => {
    expect(splitCommandLine(`python3 "my script.py" --flag`)).toEqual(["python3", "my script.py", "--flag"]);
    expect(splitCommandLine(`./load.sh 'a b' c\\ d ""`)).toEqual(["./load.sh", "a b", "c d", ""]);
  });

  it("keeps operators that are part of a word", () => {
    expect(splitCommandLine("grep a|b file")).toEqual(["grep", "a|b", "file"]);
    expect(splitCommandLine("echo x>y")).toEqual(["echo", "x>y"]);
  });

  it.each(["a | b", "a || b", "a && b", "a ; b", "a &", "a > out", "a >> out", "a < in", "a 2> err"])(
    "rejects the shell operator in %j",
    (line) => {
      expect(() => splitCommandLine(line)).toThrow(
        "is split into words and run without a shell; for pipes, redirection or variables write `sh -c '...'` " +
          "(or use the list form of run to pass such a word literally)",
      );
    },
  );

  it("rejects command substitution", () => {
    expect(() => splitCommandLine("echo $(date)")).toThrow(/found `\$\(date\)`.*without a shell/);
    expect(() => splitCommandLine("echo `date`")).toThrow(/without a shell/);
  });

  it("rejects an empty command", () => {
    expect(() => splitCommandLine("")).toThrow(/expected a command, got ""/);
    expect(() => splitCommandLine("   ")).toThrow(/expected a command/);
  });

  it("explains unclosed quotes", () => {
    expect(() => splitCommandLine(`echo "oops`)).toThrow(/a quote is not closed/);
  });
});
