import { describe, expect, it } from "vitest";
import { connectNats } from "../core/nats/connect.js";
import { NATS_TEST_URL } from "./helpers/nats.js";

describe("connectNats", () => {
  it("connects, with the name it is given", async () => {
    const nc = await connectNats({ servers: [NATS_TEST_URL], name: "taskframe-test-connect" });
    try {
      expect(nc.info?.jetstream).toBe(true);
    } finally {
      await nc.close();
    }
  });

  it("names the server it could not reach", async () => {
    await expect(connectNats({ servers: "nats://127.0.0.1:1", timeoutMs: 2_000 })).rejects.toThrow(
      /cannot connect to NATS at nats:\/\/127\.0\.0\.1:1: /,
    );
  });

  it("names a credentials file it cannot read", async () => {
    await expect(
      connectNats({ servers: NATS_TEST_URL, credsFile: "/nonexistent/taskframe.creds" }),
    ).rejects.toThrow(/cannot read the NATS credentials file \/nonexistent\/taskframe.creds: /);
    await expect(connectNats({ servers: NATS_TEST_URL, nkeyFile: "/nonexistent/seed.nk" })).rejects.toThrow(
      /cannot read the NATS nkey seed file/,
    );
  });
});
