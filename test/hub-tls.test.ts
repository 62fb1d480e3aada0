import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withHubClient } from "../cli/hub-client.js";
import { HubService } from "../core/gen/taskframe/v1/hub_pb.js";
import { type ClientTls, readClientTls, readServerTls } from "../core/hub-tls.js";
import { type HubServer, startHubServer } from "../hub/server.js";
import { startEngine, type TestEngine } from "./helpers/engine.js";

/*
 * The hub serves its API over HTTPS (--tls-cert/--tls-key), and with
 * --tls-client-ca only to clients presenting a certificate from that CA.
 * Certificates are made with openssl for each run.
 */

let harness: TestEngine;
let dir: string;
const pem = (name: string) => join(dir, name);

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}

/** A CA, and certificates it signs: `server` for 127.0.0.1, `client` for a client. */
function makeCertificates(): void {
  const key = (name: string) => openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", name);
  for (const ca of ["ca", "other-ca"]) {
    key(`${ca}.key`);
    openssl(
      "req",
      "-x509",
      "-new",
      "-key",
      `${ca}.key`,
      "-subj",
      `/CN=${ca}`,
      "-days",
      "2",
      "-out",
      `${ca}.pem`,
    );
  }
  writeFileSync(pem("server.ext"), "subjectAltName=IP:127.0.0.1\n");
  writeFileSync(pem("client.ext"), "extendedKeyUsage=clientAuth\n");
  const sign = (name: string, ca: string) => {
    key(`${name}.key`);
    openssl("req", "-new", "-key", `${name}.key`, "-subj", `/CN=${name}`, "-out", `${name}.csr`);
    openssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${ca}.pem`,
      "-CAkey",
      `${ca}.key`,
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      `${name.startsWith("server") ? "server" : "client"}.ext`,
      "-out",
      `${name}.pem`,
    );
  };
  sign("server", "ca");
  sign("client", "ca");
  sign("client-of-other-ca", "other-ca");
}

let tlsServer: HubServer;
let mutualServer: HubServer;

beforeAll(async () => {
  harness = await startEngine("pglite", { sidecar: false });
  dir = harness.dir;
  makeCertificates();
  const tls = readServerTls({ cert: pem("server.pem"), key: pem("server.key") })!;
  tlsServer = await startHubServer(harness.engine.hub, "127.0.0.1:0", async () => [], undefined, tls);
  const mutual = readServerTls({ cert: pem("server.pem"), key: pem("server.key"), clientCa: pem("ca.pem") });
  mutualServer = await startHubServer(harness.engine.hub, "127.0.0.1:0", async () => [], undefined, mutual);
});
afterAll(async () => {
  await tlsServer?.close(1_000);
  await mutualServer?.close(1_000);
  await harness?.[Symbol.asyncDispose]();
});

function client(server: HubServer, httpVersion: "1.1" | "2", tls: ClientTls, scheme = "https") {
  return createClient(
    HubService,
    createConnectTransport({ baseUrl: `${scheme}://${server.address}`, httpVersion, nodeOptions: tls }),
  );
}

const trusting = () => readClientTls({ ca: pem("ca.pem") });

describe("the hub over TLS", () => {
  it("answers HTTP/2 and HTTP/1.1 over HTTPS to a client that trusts its CA, the CLI's included", async () => {
    for (const version of ["2", "1.1"] as const) {
      const { runs } = await client(tlsServer, version, trusting()).listRuns({ limit: 1 });
      expect(runs).toEqual([]);
    }
    const runs = await withHubClient(
      { data: join(dir, "unused"), hub: `https://${tlsServer.address}`, hubTlsCa: pem("ca.pem") },
      async (hub) => (await hub.listRuns({ limit: 1 })).runs,
    );
    expect(runs).toEqual([]);
  });

  it("is refused by a client that does not trust its certificate, and does not answer cleartext", async () => {
    const untrusted = await client(tlsServer, "1.1", {})
      .listRuns({ limit: 1 })
      .catch((e: Error) => e);
    expect(String(untrusted)).toMatch(/certificate/);
    const cleartext = await client(tlsServer, "1.1", {}, "http")
      .listRuns({ limit: 1 })
      .catch((e: Error) => e);
    expect(cleartext).toBeInstanceOf(Error);
  });

  it("with --tls-client-ca, serves only clients presenting a certificate signed by that CA", async () => {
    const withCertificate = readClientTls({
      ca: pem("ca.pem"),
      cert: pem("client.pem"),
      key: pem("client.key"),
    });
    expect((await client(mutualServer, "2", withCertificate).listRuns({ limit: 1 })).runs).toEqual([]);
    for (const tls of [
      trusting(),
      readClientTls({
        ca: pem("ca.pem"),
        cert: pem("client-of-other-ca.pem"),
        key: pem("client-of-other-ca.key"),
      }),
    ]) {
      const refused = await client(mutualServer, "1.1", tls)
        .listRuns({ limit: 1 })
        .catch((e: Error) => e);
      expect(refused).toBeInstanceOf(Error);
    }
  });

  it("names the flag and the file when TLS settings are wrong", () => {
    expect(() => readServerTls({ cert: pem("server.pem") })).toThrow(
      "--tls-cert needs --tls-key too: a certificate and its key go together",
    );
    expect(() => readServerTls({ clientCa: pem("ca.pem") })).toThrow(
      "--tls-client-ca needs --tls-cert and --tls-key: client certificates are checked over TLS only",
    );
    expect(() => readServerTls({ cert: pem("missing.pem"), key: pem("server.key") })).toThrow(
      /^--tls-cert .*missing\.pem: ENOENT/,
    );
    expect(() => readClientTls({ key: pem("client.key") })).toThrow(
      "--hub-tls-key needs --hub-tls-cert too: a certificate and its key go together",
    );
  });
});
