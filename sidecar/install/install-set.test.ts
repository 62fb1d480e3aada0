import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { InstallSpecSchema } from "../../core/gen/taskframe/v1/spec_pb.js";
import { InstallError } from "./install-error.js";
import { describeInstallSet, installSetKey, installSetOf, isEmptyInstallSet } from "./install-set.js";

const SHA_A = "a".repeat(64);
const SHA_B = "b".repeat(64);

describe("install sets", () => {
  it("sorts, trims and deduplicates, so that order does not change the key", () => {
    const one = installSetOf(
      create(InstallSpecSchema, {
        pip: ["requests==2.31.0", "attrs==23.1.0"],
        npm: ["is-number@7.0.0", "left-pad@1.3.0"],
        apt: ["jq", "curl"],
        artifacts: [
          { url: "/opt/b", sha256: SHA_B },
          { url: "/opt/a", sha256: SHA_A.toUpperCase() },
        ],
      }),
    );
    const two = installSetOf(
      create(InstallSpecSchema, {
        pip: [" attrs==23.1.0", "requests==2.31.0", "attrs==23.1.0"],
        npm: ["left-pad@1.3.0", "is-number@7.0.0"],
        apt: ["curl", "jq", ""],
        artifacts: [
          { url: "/opt/a", sha256: SHA_A },
          { url: "/opt/b", sha256: SHA_B },
        ],
      }),
    );
    expect(one).toEqual({
      pip: ["attrs==23.1.0", "requests==2.31.0"],
      npm: ["is-number@7.0.0", "left-pad@1.3.0"],
      apt: ["curl", "jq"],
      artifacts: [
        { url: "/opt/a", sha256: SHA_A },
        { url: "/opt/b", sha256: SHA_B },
      ],
    });
    expect(two).toEqual(one);
    expect(installSetKey(two)).toBe(installSetKey(one));
    expect(installSetKey(one)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("gives the same key to the same dependencies from a file or inline", () => {
    const inline = installSetOf(create(InstallSpecSchema, { npm: ["is-number@7.0.0"], pip: ["a==1"] }));
    const merged = installSetOf(create(InstallSpecSchema, { pip: ["a==1"], from: "deps.json" }), {
      pip: [],
      npm: ["is-number@7.0.0"],
      apt: [],
      artifacts: [],
    });
    expect(installSetKey(merged)).toBe(installSetKey(inline));
  });

  it("gives different dependencies different keys", () => {
    const keys = [
      { npm: ["is-number@7.0.0"] },
      { npm: ["is-number@7.0.1"] },
      { pip: ["is-number@7.0.0"] },
      { apt: ["is-number"] },
      { artifacts: [{ url: "/opt/a", sha256: SHA_A }] },
      { artifacts: [{ url: "/opt/a", sha256: SHA_B }] },
      { artifacts: [{ url: "/opt/b", sha256: SHA_A }] },
    ].map((fields) => installSetKey(installSetOf(create(InstallSpecSchema, fields))));
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("knows an empty set and describes the others", () => {
    expect(isEmptyInstallSet(installSetOf(create(InstallSpecSchema, { pip: ["  "] })))).toBe(true);
    const set = installSetOf(
      create(InstallSpecSchema, { pip: ["a==1"], npm: ["b@2"], artifacts: [{ url: "/x", sha256: SHA_A }] }),
    );
    expect(isEmptyInstallSet(set)).toBe(false);
    expect(describeInstallSet(set)).toBe("pip a==1; npm b@2; 1 artifact");
  });

  it("refuses what an installer would take for an option, or a bad artifact", () => {
    const refusal = (fields: Parameters<typeof create<typeof InstallSpecSchema>>[1]) => {
      try {
        installSetOf(create(InstallSpecSchema, fields));
      } catch (error) {
        expect(error).toBeInstanceOf(InstallError);
        return (error as Error).message;
      }
      throw new Error("expected a refusal");
    };
    expect(refusal({ pip: ["--index-url=http://evil"] })).toBe(
      `pip: "--index-url=http://evil" is not a package specification (it must not start with '-')`,
    );
    expect(refusal({ npm: ["a b"] })).toMatch(/^npm: "a b" is not a package specification/);
    expect(refusal({ artifacts: [{ url: "relative/path", sha256: SHA_A }] })).toMatch(
      /^artifact: expected an absolute path, a file:\/\/ URL or an http\(s\):\/\/ URL/,
    );
    expect(refusal({ artifacts: [{ url: "/opt/a", sha256: "123" }] })).toBe(
      'artifact /opt/a: sha256 must be 64 hex digits, got "123"',
    );
  });
});
