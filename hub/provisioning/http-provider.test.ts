import { createServer } from "node:http";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type FakeDatacenter, type FakeDatacenterOptions, startFakeDatacenter } from "./fake-datacenter.js";
import { HttpHostProvider, type HttpHostProviderOptions } from "./http-provider.js";
import { type CreateHostRequest, ProviderUnavailableError } from "./provider.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(
  datacenterOptions: FakeDatacenterOptions = {},
  providerOptions: Partial<HttpHostProviderOptions> = {},
): Promise<{ datacenter: FakeDatacenter; provider: HttpHostProvider }> {
  const datacenter = await startFakeDatacenter({ host: "127.0.0.1", port: 0, ...datacenterOptions });
  cleanups.push(() => datacenter.close());
  const provider = new HttpHostProvider({ url: datacenter.url, timeoutMs: 2_000, ...providerOptions });
  cleanups.push(() => provider.close());
  return { datacenter, provider };
}

let tokens = 0;
const request = (overrides: Partial<CreateHostRequest> = {}): CreateHostRequest => ({
  pool: "gpu",
  size: "large",
  labels: { zone: "eu-1" },
  token: `token-${++tokens}`,
  ...overrides,
});

const waitFor = <T>(check: () => Promise<T> | T) => vi.waitFor(check, { timeout: 2_000, interval: 10 });

/** A launch hook that records what it started and stopped; each stop takes `stopMs`. */
function launchRecorder(stopMs = 0) {
  const launched: string[] = [];
  const stopped: string[] = [];
  const launch = async (host: { id: string }) => {
    launched.push(host.id);
    return {
      stop: async () => {
        await new Promise((resolve) => setTimeout(resolve, stopMs));
        stopped.push(host.id);
      },
    };
  };
  return { launched, stopped, launch };
}

describe("HttpHostProvider against the fake datacenter", () => {
  it("creates, gets, lists and deletes a host through its states", async () => {
    const recorder = launchRecorder(200);
    const { datacenter, provider } = await setup({ bootMs: 50, launch: recorder.launch });
    const before = Date.now();

    const host = await provider.create(request({ token: "round-trip" }));
    expect(host).toMatchObject({
      pool: "gpu",
      state: "provisioning",
      labels: { zone: "eu-1" },
      token: "round-trip",
    });
    expect(host.createdAtMs).toBeGreaterThanOrEqual(before - 1);
    expect(host.createdAtMs).toBeLessThanOrEqual(Date.now());
    expect(await provider.get(host.id)).toMatchObject({ id: host.id, state: "provisioning" });

    await waitFor(async () => expect((await provider.get(host.id))?.state).toBe("running"));
    expect(recorder.launched).toEqual([host.id]);
    expect((await provider.list("gpu")).map((h) => h.id)).toEqual([host.id]);
    expect(await provider.list("cpu")).toEqual([]);

    await provider.delete(host.id);
    // its sidecar takes 200 ms to stop: meanwhile the host is terminating
    expect((await provider.get(host.id))?.state).toBe("terminating");
    await waitFor(async () => expect(await provider.get(host.id)).toBeUndefined());
    expect(recorder.stopped).toEqual([host.id]);
    expect(await provider.list("gpu")).toEqual([]);
    expect(datacenter.calls).toMatchObject({ create: 1, delete: 1, list: 3 });
    expect(datacenter.created).toBe(1);
  });

  it("gives up on a create that hangs after making the host; the retry with the same token returns that host", async () => {
    const { datacenter, provider } = await setup({}, { timeoutMs: 100 });
    datacenter.faults.createHangAfterCreateMs = 1_000;
    const asked = request();

    const first = provider.create(asked);
    await expect(first).rejects.toBeInstanceOf(ProviderUnavailableError);
    await expect(first).rejects.toThrow(/POST \/v1\/hosts got no answer within 100ms/);
    expect(datacenter.created).toBe(1);

    const retried = await provider.create(asked);
    expect(retried.token).toBe(asked.token);
    expect(datacenter.hosts().map((h) => h.id)).toEqual([retried.id]);
    expect(datacenter.created).toBe(1);
  });

  it("reports injected 500s as ProviderUnavailableError, then succeeds", async () => {
    const { datacenter, provider } = await setup();
    datacenter.faults.createFailures = 2;
    const asked = request();

    for (let i = 0; i < 2; i++) {
      const attempt = provider.create(asked);
      await expect(attempt).rejects.toBeInstanceOf(ProviderUnavailableError);
      await expect(attempt).rejects.toThrow(/failed \(500\): internal: injected fault createFailures/);
    }
    expect(datacenter.created).toBe(0);
    expect((await provider.create(asked)).token).toBe(asked.token);
    expect(datacenter.calls.create).toBe(3);
    expect(datacenter.created).toBe(1);
  });

  it("throws a plain Error with the status and the API's message on a 4xx", async () => {
    const { datacenter } = await setup({ token: "right" });
    const wrongToken = new HttpHostProvider({ url: datacenter.url, token: "wrong" });
    const refused = await wrongToken.list("gpu").catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(Error);
    expect(refused).not.toBeInstanceOf(ProviderUnavailableError);
    expect((refused as Error).message).toMatch(/refused with 401: unauthorized: wrong bearer token/);

    const rightToken = new HttpHostProvider({ url: datacenter.url, token: "right" });
    const badRequest = rightToken.create(request({ pool: "" }));
    await expect(badRequest).rejects.toThrow(
      /refused with 400: invalid_request: pool: expected a non-empty pool name/,
    );
    await expect(badRequest).rejects.not.toBeInstanceOf(ProviderUnavailableError);

    await rightToken.create(request({ token: "reused" }));
    await expect(rightToken.create(request({ token: "reused", pool: "cpu" }))).rejects.toThrow(
      /refused with 409: token_used: idempotency token "reused" was already used for another request/,
    );
  });

  it("takes the delete of a missing host as done, and get of one as undefined", async () => {
    const { datacenter, provider } = await setup();
    await expect(provider.delete("h-missing")).resolves.toBeUndefined();
    expect(await provider.get("h-missing")).toBeUndefined();
    expect(datacenter.calls).toMatchObject({ delete: 1, get: 1 });
  });

  it("shows hosts that fail to boot as failed, with why", async () => {
    const recorder = launchRecorder();
    const { datacenter, provider } = await setup({ launch: recorder.launch });
    datacenter.faults.failBoot = true;
    const host = await provider.create(request());
    await waitFor(async () => expect((await provider.get(host.id))?.state).toBe("failed"));
    expect((await provider.get(host.id))?.detail).toMatch(/did not boot/);
    expect(recorder.launched).toEqual([]);
  });

  it("launches running hosts unless neverLaunch, and stops them on kill", async () => {
    const recorder = launchRecorder();
    const { datacenter, provider } = await setup({ launch: recorder.launch });
    const launchedHost = await provider.create(request());
    datacenter.faults.neverLaunch = true;
    const silentHost = await provider.create(request());

    await waitFor(async () => {
      const states = (await provider.list("gpu")).map((h) => h.state);
      expect(states).toEqual(["running", "running"]);
    });
    expect(recorder.launched).toEqual([launchedHost.id]);

    expect(await datacenter.kill(launchedHost.id)).toBe(true);
    expect(recorder.stopped).toEqual([launchedHost.id]);
    expect((await provider.list("gpu")).map((h) => h.id)).toEqual([silentHost.id]);
    expect(await provider.get(launchedHost.id)).toBeUndefined();
    expect(await datacenter.kill(launchedHost.id)).toBe(false);
  });

  it("reports a refused connection as ProviderUnavailableError", async () => {
    const { datacenter, provider } = await setup();
    await datacenter.close();
    const attempt = provider.list("gpu");
    await expect(attempt).rejects.toBeInstanceOf(ProviderUnavailableError);
    await expect(attempt).rejects.toThrow(/ECONNREFUSED/);
  });

  it("passes the caller's cancellation on as it is", async () => {
    const { datacenter, provider } = await setup();
    datacenter.faults.createHangAfterCreateMs = 1_000;
    const controller = new AbortController();
    const attempt = provider.create(request(), controller.signal);
    setTimeout(() => controller.abort(new Error("autoscaler stopping")), 20);
    await expect(attempt).rejects.toThrow("autoscaler stopping");
    await expect(attempt).rejects.not.toBeInstanceOf(ProviderUnavailableError);
  });
});

describe("HttpHostProvider against a broken API", () => {
  async function serve(status: number, body: string): Promise<HttpHostProvider> {
    const server = createServer((_request, response) => {
      response.writeHead(status, { "content-type": "application/json" }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    return new HttpHostProvider({ url: `http://127.0.0.1:${port}/`, timeoutMs: 1_000 });
  }

  it("reports a malformed host as ProviderUnavailableError saying what is wrong", async () => {
    const provider = await serve(200, JSON.stringify({ id: "h-1", pool: "gpu", state: "booting" }));
    const attempt = provider.get("h-1");
    await expect(attempt).rejects.toBeInstanceOf(ProviderUnavailableError);
    await expect(attempt).rejects.toThrow(/GET \/v1\/hosts\/h-1 answered 200 with a malformed host: .*state/);
  });

  it("reports a body that is not JSON as ProviderUnavailableError", async () => {
    const provider = await serve(200, "<html>gateway</html>");
    await expect(provider.list("gpu")).rejects.toThrow(
      /with a body that is not JSON: "<html>gateway<\/html>"/,
    );
  });

  it("reports a 429 as ProviderUnavailableError: the API asks to try later", async () => {
    const provider = await serve(
      429,
      JSON.stringify({ error: { code: "rate_limited", message: "slow down" } }),
    );
    const attempt = provider.list("gpu");
    await expect(attempt).rejects.toBeInstanceOf(ProviderUnavailableError);
    await expect(attempt).rejects.toThrow(/is rate limited \(429\): rate_limited: slow down/);
  });

  it("reports a 503 without the error shape as ProviderUnavailableError with the body", async () => {
    const provider = await serve(503, "upstream down");
    const attempt = provider.delete("h-1");
    await expect(attempt).rejects.toBeInstanceOf(ProviderUnavailableError);
    await expect(attempt).rejects.toThrow(/DELETE \/v1\/hosts\/h-1 failed \(503\): "upstream down"/);
  });
});
