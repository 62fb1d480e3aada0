import { readFileSync } from "node:fs";
import { errorMessage, TaskframeError, TaskframeErrorCode } from "./errors.js";

/** What the hub serves HTTPS with: its certificate and key, and the CA its clients' certificates must chain to. */
export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  /** Set: every client must present a certificate signed by this CA (mutual TLS). */
  clientCa?: Buffer;
}

/** What a client of the hub (the CLI, a sidecar) trusts and presents. */
export interface ClientTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new TaskframeError(TaskframeErrorCode.InvalidArgument, `${flag} ${file}: ${errorMessage(error)}`);
  }
}

function bothOrNeither(cert: string | undefined, key: string | undefined, certFlag: string, keyFlag: string) {
  if ((cert === undefined) !== (key === undefined)) {
    throw new TaskframeError(
      TaskframeErrorCode.InvalidArgument,
      `${cert === undefined ? keyFlag : certFlag} needs ${cert === undefined ? certFlag : keyFlag} too: a certificate and its key go together`,
    );
  }
}

/** The hub's `--tls-cert`, `--tls-key` and `--tls-client-ca`, read; undefined serves cleartext. */
export function readServerTls(files: {
  cert?: string;
  key?: string;
  clientCa?: string;
}): ServerTls | undefined {
  bothOrNeither(files.cert, files.key, "--tls-cert", "--tls-key");
  if (files.cert === undefined || files.key === undefined) {
    if (files.clientCa !== undefined)
      throw new TaskframeError(
        TaskframeErrorCode.InvalidArgument,
        "--tls-client-ca needs --tls-cert and --tls-key: client certificates are checked over TLS only",
      );
    return undefined;
  }
  return {
    cert: readPem("--tls-cert", files.cert),
    key: readPem("--tls-key", files.key),
    ...(files.clientCa !== undefined ? { clientCa: readPem("--tls-client-ca", files.clientCa) } : {}),
  };
}

/** A client's `--hub-tls-ca`, `--hub-tls-cert` and `--hub-tls-key`, read, as Node's https options. */
export function readClientTls(files: { ca?: string; cert?: string; key?: string }): ClientTls {
  bothOrNeither(files.cert, files.key, "--hub-tls-cert", "--hub-tls-key");
  return {
    ...(files.ca !== undefined ? { ca: readPem("--hub-tls-ca", files.ca) } : {}),
    ...(files.cert !== undefined ? { cert: readPem("--hub-tls-cert", files.cert) } : {}),
    ...(files.key !== undefined ? { key: readPem("--hub-tls-key", files.key) } : {}),
  };
}
