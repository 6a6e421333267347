// The real kube-proxy (test/harness/bin/kube-proxy, from k8s.io/kubernetes v1.36.3), iptables
// mode, in the node network namespace: it watches Services and EndpointSlices and programs the
// ClusterIP DNAT there, where every pod packet is routed (network.ts).
//
// The API server listens on the host's 127.0.0.1, which the node namespace cannot reach; two socat
// processes bridge it through a Unix socket (filesystem sockets cross network namespaces): in the
// node namespace 127.0.0.1:<api port> -> <state>/apiserver.sock -> host 127.0.0.1:<api port>, so
// the admin kubeconfig (server https://127.0.0.1:<port>, certificate SAN 127.0.0.1) works as is.
import { join } from 'node:path';
import { nsExec } from './network.js';
import { startProc, type Proc } from './procs.js';

export interface KubeProxyOptions {
  kubeProxy: string;
  kubeconfig: string;
  apiPort: number;
  nodeNetns: string;
  stateDir: string;
  clusterCIDR: string;
  nodeName: string;
}

export function startKubeProxy(o: KubeProxyOptions): Proc[] {
  const sock = join(o.stateDir, 'apiserver.sock');
  const logs = join(o.stateDir, 'logs');
  const hostSide = startProc(
    'socat host',
    'socat',
    [`UNIX-LISTEN:${sock},fork,unlink-early`, `TCP:127.0.0.1:${o.apiPort}`],
    { log: join(logs, 'socat-host.log') },
  );
  const nodeSide = startProc(
    'socat node',
    'ip',
    [
      'netns',
      'exec',
      o.nodeNetns,
      'socat',
      `TCP-LISTEN:${o.apiPort},bind=127.0.0.1,fork,reuseaddr`,
      `UNIX-CONNECT:${sock}`,
    ],
    { log: join(logs, 'socat-node.log') },
  );
  const kp = startProc(
    'kube-proxy',
    'ip',
    [
      'netns',
      'exec',
      o.nodeNetns,
      o.kubeProxy,
      `--kubeconfig=${o.kubeconfig}`,
      '--proxy-mode=iptables',
      `--hostname-override=${o.nodeName}`,
      `--cluster-cidr=${o.clusterCIDR}`,
      // no conntrack sysctl tuning: those are host-wide knobs, not the namespace's
      '--conntrack-max-per-core=0',
      '--conntrack-tcp-timeout-established=0',
      '--conntrack-tcp-timeout-close-wait=0',
      '--healthz-bind-address=127.0.0.1:10256',
      '--metrics-bind-address=127.0.0.1:10249',
      '--iptables-min-sync-period=0s',
      '--v=2',
    ],
    { log: join(logs, 'kube-proxy.log') },
  );
  return [hostSide, nodeSide, kp];
}

/** The iptables rules kube-proxy programmed for a ClusterIP:port (DNAT, or REJECT without endpoints). */
export async function rulesFor(nodeNetns: string, clusterIP: string, port: number): Promise<string[]> {
  const out = await nsExec(nodeNetns, ['iptables-save']);
  return out.split('\n').filter((l) => l.includes(`-d ${clusterIP}/32`) && l.includes(`--dport ${port}`));
}
