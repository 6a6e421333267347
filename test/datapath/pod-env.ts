// Container environment and $(VAR) references resolved as kubelet resolves them.
import type { V1Container, V1Pod } from '@kubernetes/client-node';

/** A container's environment as kubelet resolves it (value, fieldRef, resourceFieldRef, secretKeyRef). */
export async function resolveEnv(
  pod: V1Pod,
  c: V1Container,
  secret: (name: string, key: string) => Promise<string>,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const field = (path: string): string => {
    const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
    if (m) return (pod.metadata?.[m[1] as 'labels' | 'annotations'] ?? {})[m[2]!] ?? '';
    const map: Record<string, string | undefined> = {
      'metadata.name': pod.metadata?.name,
      'metadata.namespace': pod.metadata?.namespace,
      'metadata.uid': pod.metadata?.uid,
      'spec.nodeName': pod.spec?.nodeName,
      'spec.serviceAccountName': pod.spec?.serviceAccountName,
      'status.podIP': pod.status?.podIP,
      'status.podIPs': (pod.status?.podIPs ?? []).map((p) => p.ip).join(','),
      'status.hostIP': pod.status?.hostIP,
      'status.hostIPs': (pod.status?.hostIPs ?? []).map((p) => p.ip).join(','),
    };
    return map[path] ?? '';
  };
  for (const e of c.env ?? []) {
    if (e.value !== undefined) out[e.name] = expandVars(e.value, out);
    else if (e.valueFrom?.secretKeyRef)
      out[e.name] = await secret(e.valueFrom.secretKeyRef.name!, e.valueFrom.secretKeyRef.key);
    else if (e.valueFrom?.fieldRef) out[e.name] = field(e.valueFrom.fieldRef.fieldPath);
    else if (e.valueFrom?.resourceFieldRef) {
      // kubelet: the value divided by the divisor, rounded up; limits.* without a limit resolve to
      // the node's allocatable (kwok nodes: 32 CPUs, 128Gi)
      const { resource, divisor } = e.valueFrom.resourceFieldRef;
      const [kind, res] = resource.split('.') as ['limits' | 'requests', string];
      const v = (c.resources?.[kind] ?? {})[res];
      const amount =
        v !== undefined ? quantity(String(v)) : kind === 'limits' ? (res === 'cpu' ? 32 : 128 * 1024 ** 3) : 0;
      out[e.name] = String(Math.ceil(amount / quantity(String(divisor ?? '1'))));
    }
  }
  return out;
}

/** Kubernetes $(VAR) references (env values, command, args), unknown ones left as written. */
export function expandVars(s: string, env: Record<string, string>): string {
  return s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, v: string) => env[v] ?? all);
}

const SUFFIX: Record<string, number> = {
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

/** A resource quantity ("500m", "1Gi", "2") as a number. */
export function quantity(q: string): number {
  const m = /^([0-9.]+)([a-zA-Z]*)$/.exec(q.trim());
  if (!m || SUFFIX[m[2]!] === undefined) throw new Error(`unsupported quantity ${q}`);
  return Number(m[1]) * SUFFIX[m[2]!]!;
}
