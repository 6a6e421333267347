// NetworkPolicy enforcement for the data-path suite: the real kube-router (netpol/build.sh, from
// its Go module) with only its network policy controller, in the node network namespace where
// every pod packet is routed (network.ts), as the enforcer of the windows-1 kwok node (README in
// netpol/: why kube-router, why one node).
import { join, resolve } from 'node:path';
import { nsExec } from './network.js';
import { startProc, type Proc } from './procs.js';

export const KUBE_ROUTER = resolve(import.meta.dirname, 'bin/kube-router');

export interface KubeRouterOptions {
  nodeNetns: string;
  /** Reaches the API server from the node namespace (kube-proxy.ts's bridge: https://127.0.0.1:<port>). */
  kubeconfig: string;
  /** The kwok node it enforces for: kube-router applies policies to the pods whose hostIP is that node's InternalIP. */
  nodeName: string;
  serviceCIDR: string;
  stateDir: string;
}

export function startKubeRouter(o: KubeRouterOptions): Proc {
  return startProc(
    'kube-router',
    'ip',
    [
      'netns',
      'exec',
      o.nodeNetns,
      KUBE_ROUTER,
      `--kubeconfig=${o.kubeconfig}`,
      `--hostname-override=${o.nodeName}`,
      '--run-firewall=true',
      '--run-router=false',
      '--run-service-proxy=false',
      '--run-loadbalancer=false',
      '--enable-cni=false',
      `--service-cluster-ip-range=${o.serviceCIDR}`,
      '--metrics-port=0',
      '--v=2',
    ],
    { log: join(o.stateDir, 'logs', 'kube-router.log') },
  );
}

/** Packets the REJECT rule of kube-router's chain for this pod has matched (undefined: no such rule yet). */
export async function rejectedFor(nodeNetns: string, podName: string, namespace: string): Promise<number | undefined> {
  const out = await nsExec(nodeNetns, ['iptables-save', '-c', '-t', 'filter']);
  let total: number | undefined;
  for (const line of out.split('\n')) {
    if (!line.includes(`REJECT traffic destined for POD name:${podName} namespace: ${namespace}`)) continue;
    const m = /^\[(\d+):\d+\]/.exec(line);
    total = (total ?? 0) + Number(m?.[1] ?? 0);
  }
  return total;
}
