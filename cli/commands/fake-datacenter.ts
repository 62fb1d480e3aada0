import type { Command } from "commander";
import { parseDurationMs } from "../../core/definitions/duration.js";
import { errorMessage } from "../../core/errors.js";
import { untilStopSignal } from "../../core/stop-signal.js";
import { CliError, ExitCode } from "../cli-error.js";

interface FakeDatacenterFlags {
  listen: string;
  boot?: string;
  token?: string;
}

export function addFakeDatacenterCommand(program: Command, setExit: (code: number) => void): void {
  program
    .command("fake-datacenter")
    .description(
      "serve the host-provisioning API of docs/provisioning-api.yaml in memory, for demos and tests",
    )
    .requiredOption("--listen <host:port>", "where the API answers (port 0: any free port, printed)")
    .option("--boot <duration>", "how long a new host is provisioning before it is running (default 0s)")
    .option("--token <token>", "require Authorization: Bearer TOKEN on every call")
    .addHelpText(
      "after",
      "\nHosts live in memory only: they are records, no machine or sidecar is started for them.\n" +
        "Point a hub's http host provider at the printed URL. SIGINT or SIGTERM stops it.",
    )
    .action(async (flags: FakeDatacenterFlags) => {
      const listen = parseListen(flags.listen);
      const bootMs = flags.boot === undefined ? 0 : parseFlagDuration("--boot", flags.boot);
      // loaded on use, like the hub and the sidecar
      const { startFakeDatacenter } = await import("../../hub/provisioning/fake-datacenter.js");
      const datacenter = await startFakeDatacenter({
        ...listen,
        bootMs,
        ...(flags.token !== undefined ? { token: flags.token } : {}),
      });
      process.stderr.write(`fake datacenter listening on ${datacenter.url}\n`);
      await untilStopSignal();
      await datacenter.close();
      setExit(ExitCode.Ok);
    });
}

function parseListen(listen: string): { host: string; port: number } {
  const match = /^(.*):(\d{1,5})$/.exec(listen);
  const port = Number(match?.[2]);
  if (!match || port > 65_535) {
    throw new CliError(
      `--listen: expected HOST:PORT (e.g. 127.0.0.1:7080), got ${JSON.stringify(listen)}`,
      ExitCode.Usage,
    );
  }
  const host = match[1]!.replace(/^\[(.*)\]$/, "$1");
  return { host: host || "0.0.0.0", port };
}

function parseFlagDuration(flag: string, value: string): number {
  try {
    return parseDurationMs(value);
  } catch (error) {
    throw new CliError(`${flag}: ${errorMessage(error)}`, ExitCode.Usage);
  }
}
