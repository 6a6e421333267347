// The data-path suite's network: network namespaces only, never the machine's own.
//
//   node namespace <prefix>-node: the "node" (all three kwok nodes share it: one flat L3 network,
//     as Calico routes pods). It owns 10.244.250.1/32 and the pods' gateway 169.254.1.1 (as Calico
//     does) and routes each pod IP /32 to that pod's veth. Every pod-to-pod packet is
//     therefore routed through the node namespace, where kube-proxy's iptables rules DNAT
//     ClusterIPs and conntrack sees both directions: source addresses are preserved, no bridge
//     netfilter needed.
//   pod namespace <prefix>-<n>: eth0 with the pod IP the API server assigned (kwok, from the node's
//     podCIDR), lo, and /etc/netns/<ns>/{hosts,resolv.conf} which `ip netns exec` bind-mounts over
//     /etc for every process of the pod.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './procs.js';

export const NODE_ADDRESS = '10.244.250.1';
const POD_GATEWAY = '169.254.1.1';

const ip = (args: string[]) => run('ip', args);
export const nsExec = (ns: string, argv: string[], timeoutMs?: number) =>
  run('ip', ['netns', 'exec', ns, ...argv], timeoutMs ? { timeoutMs } : {});

export class Network {
  readonly prefix: string;
  readonly node: string;
  private pods = new Map<string, { ns: string; veth: string; ip: string }>();
  private seq = 0;
  /** Only a node namespace this object made is deleted by down() (a failed up() may have met another's). */
  private nodeCreated = false;

  constructor(prefix: string) {
    // netns and interface names: short and unique per run. WPGW_NETNS_PREFIX (at most 2
    // characters) keeps suites of two checkouts on one machine out of each other's namespaces.
    const own = process.env.WPGW_NETNS_PREFIX ?? '';
    if (!/^[a-z0-9]{0,2}$/.test(own))
      throw new Error(`WPGW_NETNS_PREFIX=${own}: at most 2 lowercase letters or digits`);
    this.prefix = own + prefix;
    // With the prefix too: without it two checkouts shared (and deleted) one node namespace.
    this.node = `${this.prefix}-node`;
  }

  /** Removes namespaces a crashed earlier run of this prefix left behind (only ours: "<prefix>-*"). */
  async cleanupStale(): Promise<void> {
    const list = await ip(['netns', 'list']);
    for (const line of list.split('\n')) {
      const name = line.split(' ')[0] ?? '';
      if (name.startsWith(`${this.prefix}-`)) {
        await ip(['netns', 'del', name]).catch(() => undefined);
        rmSync(join('/etc/netns', name), { recursive: true, force: true });
      }
    }
  }

  async up(serviceCIDR: string, extraNodeAddresses: string[] = []): Promise<void> {
    await ip(['netns', 'add', this.node]);
    this.nodeCreated = true;
    await ip(['-n', this.node, 'link', 'set', 'lo', 'up']);
    // The pods' gateway is a local address of the node: the node answers ARP for it on every veth.
    for (const a of [NODE_ADDRESS, POD_GATEWAY, ...extraNodeAddresses])
      await ip(['-n', this.node, 'addr', 'add', `${a}/32`, 'dev', 'lo']);
    await nsExec(this.node, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    // Locally originated packets to a ClusterIP need a route before kube-proxy's OUTPUT DNAT
    // rewrites them: the service CIDR goes to a veth pair that ends in this same namespace (no
    // dummy module here), so anything not DNATed goes nowhere.
    await ip(['-n', this.node, 'link', 'add', 'svc0', 'type', 'veth', 'peer', 'name', 'svc1']);
    await ip(['-n', this.node, 'link', 'set', 'svc0', 'up']);
    await ip(['-n', this.node, 'route', 'add', serviceCIDR, 'dev', 'svc0']);
  }

  /** A pod network namespace with its IP, and the files kubelet would write. */
  async addPod(key: string, podIP: string, files: Record<string, string>): Promise<string> {
    const n = ++this.seq;
    const ns = `${this.prefix}-${n}`;
    const veth = `${this.prefix.slice(0, 6)}v${n}`.slice(0, 15);
    const etc = join('/etc/netns', ns);
    mkdirSync(etc, { recursive: true });
    for (const [f, content] of Object.entries(files)) {
      mkdirSync(join(etc, f, '..'), { recursive: true });
      writeFileSync(join(etc, f), content);
    }
    await ip(['netns', 'add', ns]);
    this.pods.set(key, { ns, veth, ip: podIP });
    await ip(['-n', this.node, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    await ip(['-n', ns, 'addr', 'add', `${podIP}/32`, 'dev', 'eth0']);
    await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
    await ip(['-n', ns, 'route', 'add', POD_GATEWAY, 'dev', 'eth0', 'scope', 'link']);
    await ip(['-n', ns, 'route', 'add', 'default', 'via', POD_GATEWAY, 'dev', 'eth0']);
    await ip(['-n', this.node, 'link', 'set', veth, 'up']);
    await ip(['-n', this.node, 'route', 'add', `${podIP}/32`, 'dev', veth]);
    return ns;
  }

  async removePod(key: string): Promise<void> {
    const p = this.pods.get(key);
    if (!p) return;
    this.pods.delete(key);
    // Deleting the namespace deletes the veth pair and with it the node's route.
    await ip(['netns', 'del', p.ns]).catch(() => undefined);
    rmSync(join('/etc/netns', p.ns), { recursive: true, force: true });
  }

  async down(): Promise<void> {
    for (const k of [...this.pods.keys()]) await this.removePod(k);
    if (!this.nodeCreated) return;
    await ip(['netns', 'del', this.node]).catch(() => undefined);
    rmSync(join('/etc/netns', this.node), { recursive: true, force: true });
  }
}
