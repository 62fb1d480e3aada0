import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * A host of its own for one sidecar: a network namespace joined to this
 * machine by a veth pair (`10.77.<n>.1` here, `10.77.<n>.2` there). A
 * partition takes the link down: packets are dropped both ways, as a cut
 * cable would (this kernel has no netem, so no delay or loss rates).
 */
export class NetnsHost implements AsyncDisposable {
  private constructor(
    readonly namespace: string,
    readonly link: string,
    readonly hostSideIp: string,
    /** This host's own address, where what it serves is reached. */
    readonly insideIp: string,
  ) {}

  static async create(subnet: number): Promise<NetnsHost> {
    const id = randomBytes(3).toString("hex");
    const namespace = `tfc${id}`;
    const link = `tfv${id}`;
    const host = new NetnsHost(namespace, link, `10.77.${subnet}.1`, `10.77.${subnet}.2`);
    await ip("netns", "add", namespace);
    try {
      await ip("link", "add", link, "type", "veth", "peer", "name", `${link}n`);
      await ip("link", "set", `${link}n`, "netns", namespace);
      await ip("addr", "add", `10.77.${subnet}.1/30`, "dev", link);
      await ip("link", "set", link, "up");
      await ip("netns", "exec", namespace, "ip", "addr", "add", `10.77.${subnet}.2/30`, "dev", `${link}n`);
      await ip("netns", "exec", namespace, "ip", "link", "set", `${link}n`, "up");
      await ip("netns", "exec", namespace, "ip", "link", "set", "lo", "up");
    } catch (error) {
      await host[Symbol.asyncDispose]();
      throw error;
    }
    return host;
  }

  /** Whether this machine lets the suite make network namespaces (root, iproute2). */
  static async available(): Promise<boolean> {
    const probe = `tfp${randomBytes(3).toString("hex")}`;
    try {
      await ip("netns", "add", probe);
      await ip("netns", "del", probe);
      return true;
    } catch {
      return false;
    }
  }

  /** The command prefix that runs a process on this host. */
  get wrap(): string[] {
    return ["ip", "netns", "exec", this.namespace];
  }

  async partition(): Promise<void> {
    await ip("link", "set", this.link, "down");
  }

  async heal(): Promise<void> {
    await ip("link", "set", this.link, "up");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await ip("link", "del", this.link).catch(() => {});
    await ip("netns", "del", this.namespace).catch(() => {});
  }
}

async function ip(...args: string[]): Promise<void> {
  await run("ip", args);
}
