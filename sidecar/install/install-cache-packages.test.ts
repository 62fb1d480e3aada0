// pip and npm for real: npm from the registry this machine reaches, pip from a
// wheel built here (no package index is reachable).

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type InstallSpec, InstallSpecSchema } from "../../core/gen/taskframe/v1/spec_pb.js";
import { InstallCache, InstallError, type InstalledSet } from "./install-cache.js";

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "taskframe-install-packages-"));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const spec = (fields: MessageInitShape<typeof InstallSpecSchema>): InstallSpec =>
  create(InstallSpecSchema, fields);

function context(lines: string[]) {
  return { cwd: work, log: (line: string) => lines.push(line), signal: new AbortController().signal };
}

function runWith(set: InstalledSet, command: string, args: string[]): string {
  return execFileSync(command, args, {
    env: { ...process.env, ...set.env, PATH: [...set.pathPrepend, process.env.PATH].join(":") },
    encoding: "utf8",
  }).trim();
}

// A pure-Python wheel, made by hand: a module, its dist-info and a console script.
const BUILD_WHEEL = `
import base64, hashlib, sys, zipfile
out = sys.argv[1]
info = "tfdemo-1.0.dist-info"
files = {
    "tfdemo.py": "VALUE = 42\\ndef main():\\n    print('hello from tfdemo')\\n",
    info + "/METADATA": "Metadata-Version: 2.1\\nName: tfdemo\\nVersion: 1.0\\n",
    info + "/WHEEL": "Wheel-Version: 1.0\\nGenerator: taskframe-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    info + "/entry_points.txt": "[console_scripts]\\ntfdemo-hello = tfdemo:main\\n",
}
record = []
with zipfile.ZipFile(out + "/tfdemo-1.0-py3-none-any.whl", "w") as wheel:
    for path, text in files.items():
        data = text.encode()
        wheel.writestr(path, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(info + "/RECORD,,")
    wheel.writestr(info + "/RECORD", "\\n".join(record) + "\\n")
`;

describe("InstallCache with package managers", () => {
  it("installs an npm package that require() finds through NODE_PATH", async () => {
    const dir = join(work, "npm-cache");
    const cache = new InstallCache({ dir, maxBytes: 1e9, allowApt: false });
    const lines: string[] = [];
    const set = await cache.ensure(spec({ npm: ["is-number@7.0.0"] }), context(lines));
    expect(set.env).toEqual({ NODE_PATH: join(set.dir, "node_modules") });
    expect(set.pathPrepend).toEqual([join(set.dir, "node_modules", ".bin")]);
    expect(
      runWith(set, process.execPath, [
        "-e",
        "const isNumber = require('is-number'); console.log(isNumber(5), isNumber('x'))",
      ]),
    ).toBe("true false");
    expect(lines[0]).toBe(`installing npm is-number@7.0.0 (set ${set.key.slice(0, 12)})`);
    expect(lines[1]).toBe(
      `$ npm install --prefix ${set.dir} --no-save --no-audit --no-fund --no-package-lock --ignore-scripts is-number@7.0.0`,
    );
    expect(lines.at(-1)).toMatch(/^installed set \w{12} \(\d+ bytes\) in \d+\.\ds$/);
  });

  it("rejects a failing npm install with InstallError, its output logged, and nothing left", async () => {
    const dir = join(work, "npm-failure-cache");
    const cache = new InstallCache({ dir, maxBytes: 1e9, allowApt: false });
    const lines: string[] = [];
    const failure = cache.ensure(spec({ npm: ["taskframe-no-such-package-xyz@1.0.0"] }), context(lines));
    await expect(failure).rejects.toBeInstanceOf(InstallError);
    const error = (await failure.catch((caught: unknown) => caught)) as InstallError;
    expect(error.ecosystem).toBe("npm");
    expect(error.exitCode).toBe(1);
    expect(error.message).toMatch(
      /^npm: `npm install .* taskframe-no-such-package-xyz@1\.0\.0` failed with exit code 1$/,
    );
    expect(lines.some((line) => line.includes("404"))).toBe(true);
    expect(lines.at(-1)).toMatch(/^install failed after \d+\.\ds: npm: /);
    expect((await readdir(dir)).filter((name) => !name.endsWith(".lock"))).toEqual([]);
  });

  it("installs a pip requirement into a venv at its final path, from a local wheel", async () => {
    const wheels = join(work, "wheels");
    await mkdir(wheels);
    execFileSync("python3", ["-c", BUILD_WHEEL, wheels]);
    expect(existsSync(join(wheels, "tfdemo-1.0-py3-none-any.whl"))).toBe(true);

    const dir = join(work, "pip-cache");
    const cache = new InstallCache({
      dir,
      maxBytes: 1e9,
      allowApt: false,
      env: { ...process.env, PIP_NO_INDEX: "1", PIP_FIND_LINKS: wheels },
    });
    const lines: string[] = [];
    const set = await cache.ensure(spec({ pip: ["tfdemo==1.0"] }), context(lines));
    const venv = join(set.dir, "venv");
    expect(set.env).toEqual({ VIRTUAL_ENV: venv });
    expect(set.pathPrepend).toEqual([join(venv, "bin")]);
    expect(set.readOnlyPaths[0]).toBe(set.dir);
    expect(set.readOnlyPaths).toHaveLength(2); // and the base interpreter's prefix
    expect(runWith(set, "python", ["-c", "import sys, tfdemo; print(tfdemo.VALUE, sys.prefix)"])).toBe(
      `42 ${venv}`,
    );
    expect(runWith(set, "tfdemo-hello", [])).toBe("hello from tfdemo");
    const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
    expect(lines).toContain(`$ ${python} -m venv ${venv}`);
    expect(lines.some((line) => /Successfully installed tfdemo-1\.0/.test(line))).toBe(true);
    expect((await stat(join(venv, "lib"))).mode & 0o777).toBe(0o755);
  });
});
