import { packagePath } from "../../core/package-root.js";
import type { AdapterUnderTest } from "./runner.js";

/** The adapters of the SDKs in this repository (`task conformance --sdk NAME`). Commands run in the package root. */
export const BUILT_IN_ADAPTERS: Record<string, Pick<AdapterUnderTest, "command">> = {
  typescript: { command: "exec node dist/sdks/ts/conformance-adapter.js" },
  python: { command: "exec python3 sdks/python/conformance_adapter.py" },
  go: {
    command:
      "cd sdks/go && go build -o build/conformance-adapter ./cmd/conformance-adapter && exec build/conformance-adapter",
  },
  java: { command: "bash sdks/java/build.sh >&2 && exec bash sdks/java/conformance-adapter.sh" },
};

export const knownFailingFile = (sdk: string) => packagePath(`conformance/known-failing/${sdk}.txt`);
