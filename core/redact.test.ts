import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { REDACTED_LOG_PATHS, redactUrl } from "./redact.js";

describe("secrets are never logged", () => {
  it("hides a URL's password, or a user that is a token", () => {
    expect(redactUrl("postgres://app:s3cret@db:5432/taskframe")).toBe("postgres://app:***@db:5432/taskframe");
    expect(redactUrl("nats://tok3n@nats:4222")).toBe("nats://***@nats:4222");
    expect(redactUrl("nats://127.0.0.1:4222")).toBe("nats://127.0.0.1:4222");
    expect(redactUrl("//user:pw@host:4222")).toBe("//***@host:4222");
  });

  it("writes credential fields and task environments as [Redacted]", () => {
    let written = "";
    const sink = new Writable({
      write(chunk, _encoding, done) {
        written += chunk.toString();
        done();
      },
    });
    const logger = pino({ redact: [...REDACTED_LOG_PATHS] }, sink);
    logger.info(
      {
        task: { env: { API_KEY: "k-123" } },
        nats: { password: "p-456", token: "t-789" },
        authorization: "Bearer b-0",
      },
      "started",
    );
    expect(written).toContain("started");
    for (const secret of ["k-123", "p-456", "t-789", "b-0"]) expect(written).not.toContain(secret);
    expect(written).toContain("[Redacted]");
  });
});
