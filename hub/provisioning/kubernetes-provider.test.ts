import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type FakeKubernetes, type FakeKubernetesOptions, startFakeKubernetes } from "./fake-kubernetes.js";
import {
  HOST_TOKENS_ANNOTATION,
  KubernetesHostProvider,
  type KubernetesHostProviderOptions,
  REMOVE_ANNOTATION,
  shrinkPastRemoved,
} from "./kubernetes-provider.js";
import { type CreateHostRequest, ProviderUnavailableError } from "./provider.js";

const TOKEN = "s3cret";
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setUp(
  fakeOptions: FakeKubernetesOptions = {},
  providerOptions: Partial<KubernetesHostProviderOptions> = {},
): Promise<{ fake: FakeKubernetes; provider: KubernetesHostProvider }> {
  const fake = await startFakeKubernetes({ token: TOKEN, pool: "gpu", ...fakeOptions });
  cleanups.push(() => fake.close());
  const provider = new KubernetesHostProvider({
    apiUrl: fake.url,
    namespace: fake.namespace,
    statefulSet: fake.name,
    token: TOKEN,
    timeoutMs: 2_000,
    ...providerOptions,
  });
  cleanups.push(() => provider.close());
  return { fake, provider };
}

const request = (token: string, pool = "gpu"): CreateHostRequest => ({ pool, size: "", labels: {}, token });

const states = async (provider: KubernetesHostProvider) =>
  Object.fromEntries((await provider.list("gpu")).map((host) => [host.id, host.state]));

async function createHosts(provider: KubernetesHostProvider, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await provider.create(request(`t${i}`));
}

describe("shrinkPastRemoved", () => {
  it("drops replicas past the highest contiguous run of removed ordinals only", () => {
    expect(shrinkPastRemoved(4, new Set([3]))).toEqual({ replicas: 3, removing: new Set() });
    expect(shrinkPastRemoved(4, new Set([1]))).toEqual({ replicas: 4, removing: new Set([1]) });
    expect(shrinkPastRemoved(4, new Set([1, 3]))).toEqual({ replicas: 3, removing: new Set([1]) });
    expect(shrinkPastRemoved(3, new Set([1, 2]))).toEqual({ replicas: 1, removing: new Set() });
    expect(shrinkPastRemoved(2, new Set([0, 1, 5]))).toEqual({ replicas: 0, removing: new Set() });
  });
});

describe("KubernetesHostProvider", () => {
  it("scales the StatefulSet up by one per create and names hosts by ordinal", async () => {
    const { fake, provider } = await setUp();
    const first = await provider.create(request("a"));
    expect(first).toMatchObject({ id: "sidecars-0", pool: "gpu", state: "provisioning", token: "a" });
    expect(fake.statefulSet().spec.replicas).toBe(1);
    const second = await provider.create(request("b"));
    expect(second.id).toBe("sidecars-1");
    expect(fake.statefulSet().spec.replicas).toBe(2);
    expect(JSON.parse(fake.statefulSet().metadata.annotations[HOST_TOKENS_ANNOTATION]!)).toEqual({
      a: { ordinal: 0, createdAtMs: first.createdAtMs },
      b: { ordinal: 1, createdAtMs: second.createdAtMs },
    });
  });

  it("makes one host for a token however often it is created", async () => {
    const { fake, provider } = await setUp();
    const first = await provider.create(request("same"));
    const again = await provider.create(request("same"));
    expect(again).toMatchObject({ id: first.id, token: "same", createdAtMs: first.createdAtMs });
    expect(fake.statefulSet().spec.replicas).toBe(1);
    expect(fake.writes).toBe(1);
  });

  it("makes one host per token when creates run at once", async () => {
    const { fake, provider } = await setUp();
    const hosts = await Promise.all(["x", "y", "z", "x"].map((token) => provider.create(request(token))));
    expect(new Set(hosts.map((host) => host.id)).size).toBe(3);
    expect(fake.statefulSet().spec.replicas).toBe(3);
  });

  it("re-reads and writes again after a conflict", async () => {
    const { fake, provider } = await setUp();
    fake.conflictNext(1);
    expect((await provider.create(request("a"))).id).toBe("sidecars-0");
    expect(fake.statefulSet().spec.replicas).toBe(1);
    expect(fake.writes).toBe(1);
  });

  it("gives up with ProviderUnavailableError when conflicts persist", async () => {
    const { fake, provider } = await setUp();
    fake.conflictNext(100);
    await expect(provider.create(request("a"))).rejects.toBeInstanceOf(ProviderUnavailableError);
    expect(fake.statefulSet().spec.replicas).toBe(0);
  });

  it("lists a new host as provisioning, then running once its pod is ready", async () => {
    const { provider } = await setUp({ podStartMs: 150 });
    await provider.create(request("a"));
    expect(await states(provider)).toEqual({ "sidecars-0": "provisioning" });
    await vi.waitFor(async () => expect(await states(provider)).toEqual({ "sidecars-0": "running" }), {
      timeout: 2_000,
      interval: 25,
    });
    expect(await provider.get("sidecars-0")).toMatchObject({ state: "running", token: "a", pool: "gpu" });
    expect(await provider.list("other")).toEqual([]);
  });

  it("scales down when the highest ordinal is deleted", async () => {
    const { fake, provider } = await setUp({ podStopMs: 100 });
    await createHosts(provider, 4);
    await vi.waitFor(() => expect(fake.pods()).toHaveLength(4));
    await provider.delete("sidecars-3");
    expect(fake.statefulSet().spec.replicas).toBe(3);
    expect((await provider.get("sidecars-3"))?.state).toBe("terminating");
    await vi.waitFor(async () => expect(await provider.get("sidecars-3")).toBeUndefined());
    expect(Object.keys(await states(provider))).toEqual(["sidecars-0", "sidecars-1", "sidecars-2"]);
    // the token of the removed ordinal goes with it
    expect(fake.statefulSet().metadata.annotations[HOST_TOKENS_ANNOTATION]).not.toContain('"t3"');
  });

  it("keeps a deleted middle ordinal until the ones above it are deleted too", async () => {
    const { fake, provider } = await setUp();
    await createHosts(provider, 4);
    await provider.delete("sidecars-1");
    expect(fake.statefulSet().spec.replicas).toBe(4);
    expect(fake.statefulSet().metadata.annotations[REMOVE_ANNOTATION]).toBe("[1]");
    expect((await provider.get("sidecars-1"))?.state).toBe("terminating");

    await provider.delete("sidecars-3");
    expect(fake.statefulSet().spec.replicas).toBe(3);
    await provider.delete("sidecars-2");
    expect(fake.statefulSet().spec.replicas).toBe(1);
    expect(fake.statefulSet().metadata.annotations[REMOVE_ANNOTATION]).toBe("[]");
    await vi.waitFor(async () => expect(Object.keys(await states(provider))).toEqual(["sidecars-0"]));

    // the freed ordinal is made again for the next create
    expect((await provider.create(request("new"))).id).toBe("sidecars-1");
  });

  it("treats deleting a host that is gone, or not its own, as done", async () => {
    const { fake, provider } = await setUp();
    await createHosts(provider, 1);
    await provider.delete("sidecars-5");
    await provider.delete("other-0");
    await provider.delete("sidecars-0");
    await provider.delete("sidecars-0");
    expect(fake.writes).toBe(2);
    expect(await provider.get("sidecars-0")).toBeUndefined();
  });

  it("refuses a create for a pool the StatefulSet does not serve", async () => {
    const { provider } = await setUp();
    const error = await provider.create(request("a", "cpu")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(ProviderUnavailableError);
    expect((error as Error).message).toMatch(/serves pool 'gpu', not 'cpu'/);
  });

  it("reports a wrong token as a plain Error naming the 401", async () => {
    const { provider } = await setUp({}, { token: "wrong" });
    const error = await provider.list("gpu").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(ProviderUnavailableError);
    expect((error as Error).message).toMatch(/401.*Unauthorized/);
  });

  it("reports a 5xx as ProviderUnavailableError", async () => {
    const { fake, provider } = await setUp();
    fake.failNext(1, 503);
    await expect(provider.create(request("a"))).rejects.toBeInstanceOf(ProviderUnavailableError);
    expect(fake.statefulSet().spec.replicas).toBe(0);
  });

  it("reports an unreachable API as ProviderUnavailableError", async () => {
    const closed = await listen();
    const url = `http://127.0.0.1:${port(closed.server)}`;
    await closed.close();
    const provider = new KubernetesHostProvider({
      apiUrl: url,
      namespace: "ns",
      statefulSet: "s",
      token: "t",
    });
    cleanups.push(() => provider.close());
    await expect(provider.create(request("a"))).rejects.toBeInstanceOf(ProviderUnavailableError);
  });

  it("times out an API that does not answer, and passes the caller's cancellation on as it is", async () => {
    const silent = await listen();
    cleanups.push(silent.close);
    const provider = new KubernetesHostProvider({
      apiUrl: `http://127.0.0.1:${port(silent.server)}`,
      namespace: "ns",
      statefulSet: "s",
      token: "t",
      timeoutMs: 150,
    });
    cleanups.push(() => provider.close());
    const timedOut = await provider.list("gpu").catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(ProviderUnavailableError);
    expect((timedOut as Error).message).toMatch(/no answer within 150ms/);

    const cancelled = new AbortController();
    const pending = provider.get("s-0", cancelled.signal).catch((e: unknown) => e);
    cancelled.abort(new Error("stopping"));
    expect(await pending).toEqual(new Error("stopping"));
  });
});

/** A TCP server that accepts connections and never answers. */
async function listen(): Promise<{ server: Server; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    server,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function port(server: Server): number {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("not listening on TCP");
  return address.port;
}
