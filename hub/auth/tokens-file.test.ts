import { describe, expect, it } from "vitest";
import { parseTokensFile, sha256 } from "./tokens-file.js";

const HASH = sha256("s3cret-token-of-alice").toString("hex");

describe("the auth tokens file", () => {
  it("reads tokens given by sha256 or in plain, with tenants and a role", () => {
    const tokens = parseTokensFile(
      `tokens:
  - { name: alice, sha256: ${HASH}, tenants: [team-a], role: submitter }
  - { name: ops, token: plain-token-of-ops-1234, tenants: "*", role: admin }
`,
      "tokens.yaml",
    );
    expect(tokens.map((t) => [t.name, t.role, t.tenants])).toEqual([
      ["alice", "submitter", ["team-a"]],
      ["ops", "admin", "*"],
    ]);
    expect(tokens[0]!.digest.equals(sha256("s3cret-token-of-alice"))).toBe(true);
    expect(tokens[1]!.digest.equals(sha256("plain-token-of-ops-1234"))).toBe(true);
  });

  it.each([
    ["tokens: [{ name: a, sha256: abc, tenants: [x], role: admin }]", "tokens[0].sha256: 64 hex digits"],
    ["tokens: [{ name: a, tenants: [x], role: admin }]", "tokens[0]: give exactly one of sha256 or token"],
    [
      `tokens: [{ name: a, sha256: ${HASH}, token: plain-token-1234567, tenants: [x], role: admin }]`,
      "exactly one",
    ],
    [`tokens: [{ name: a, sha256: ${HASH}, tenants: [x], role: root }]`, "tokens[0].role:"],
    [`tokens: [{ name: a, sha256: ${HASH}, tenants: [], role: admin }]`, "tokens[0].tenants:"],
    [
      `tokens: [{ name: a, sha256: ${HASH}, tenants: ["a b"], role: admin }]`,
      "tokens[0].tenants[0]: tenant names",
    ],
    [
      `tokens: [{ name: a, sha256: ${HASH}, tenants: [x], role: admin, roles: [x] }]`,
      "unknown field 'roles'",
    ],
    ["tokens: [{ name: a, token: short, tenants: [x], role: admin }]", "tokens[0].token: at least 16"],
    [`tokenz: []`, "unknown field 'tokenz'"],
    ["tokens: [", "not YAML"],
    [
      `tokens: [{ name: a, sha256: ${HASH}, tenants: [x], role: admin }, { name: a, sha256: ${HASH}, tenants: [x], role: admin }]`,
      "tokens[1].name: 'a' is given twice",
    ],
  ])("refuses %s naming the file and the field", (text, expected) => {
    expect(() => parseTokensFile(text, "/etc/taskframe/tokens.yaml")).toThrow(
      /auth tokens file \/etc\/taskframe\/tokens\.yaml: /,
    );
    expect(() => parseTokensFile(text, "/etc/taskframe/tokens.yaml")).toThrow(expected);
  });
});
