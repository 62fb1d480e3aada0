import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { parse } from "yaml";
import { errorMessage } from "../../core/errors.js";
import {
  type TestCase,
  type TestSuite,
  TestSuiteSchema,
} from "../../core/gen/taskframe/conformance/v1/suite_pb.js";

export interface NamedCase {
  /** `suite/case`. */
  fullName: string;
  suite: TestSuite;
  testCase: TestCase;
}

/** Every suite file in `dir` (the proto-JSON form of TestSuite, as YAML), checked against the schema. */
export async function loadSuites(dir: string): Promise<NamedCase[]> {
  const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  if (files.length === 0) throw new Error(`no suite files (*.yaml) in ${dir}`);
  const cases: NamedCase[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    const path = join(dir, file);
    let suite: TestSuite;
    try {
      suite = fromJson(TestSuiteSchema, parse(await readFile(path, "utf8"), { merge: true }) as JsonValue);
    } catch (error) {
      throw new Error(`${path}: not a valid TestSuite: ${errorMessage(error)}`);
    }
    if (!suite.name) throw new Error(`${path}: the suite has no name`);
    for (const testCase of suite.testCases) {
      const fullName = `${suite.name}/${testCase.name}`;
      if (!testCase.name || seen.has(fullName))
        throw new Error(`${path}: case name '${fullName}' is empty or repeated`);
      if (testCase.tasks.length === 0) throw new Error(`${path}: case '${fullName}' has no tasks`);
      seen.add(fullName);
      cases.push({ fullName, suite, testCase });
    }
  }
  return cases;
}
