// What removing wpgw from the whole cluster would break, from the objects alone (`wpgw uninstall`
// refuses unless --force and names each): pods whose calls would fail once they leave the mesh,
// and pods that would keep resolving through a gateway nobody then maintains.
import type { V1Pod } from '@kubernetes/client-node';
import { DEFAULT_CLUSTER_DOMAIN, POD_STATUS_ANNOTATION } from '../names.js';
import { classifyHost, parseOutbound } from './outbound.js';
import { parseStatus } from './records.js';

/** The fields of an Istio PeerAuthentication (security.istio.io/v1) this reads. */
export interface PeerAuthenticationLike {
  metadata?: { name?: string; namespace?: string };
  spec?: {
    selector?: { matchLabels?: Record<string, string> };
    mtls?: { mode?: string };
    portLevelMtls?: Record<string, { mode?: string }>;
  };
}

export interface UninstallBlocker {
  /** "Pod ns/name" or "Namespace ns". */
  subject: string;
  message: string;
}

/** Istio's default root namespace, where a selector-less PeerAuthentication is mesh-wide. */
export const ISTIO_ROOT_NAMESPACE = 'istio-system';

function requiresMtls(pa: PeerAuthenticationLike): boolean {
  return (
    pa.spec?.mtls?.mode === 'STRICT' || Object.values(pa.spec?.portLevelMtls ?? {}).some((p) => p.mode === 'STRICT')
  );
}

/**
 * The STRICT PeerAuthentications that would refuse a pod's calls once it calls its in-mesh
 * destinations directly, without mTLS: the destination namespace's own ones (any selector: which
 * workloads they pick is not known here, so they are named) and the mesh-wide ones of the root
 * namespace. A namespace-wide PERMISSIVE/DISABLE one overrides the mesh-wide STRICT.
 */
export function strictDestinations(
  pod: V1Pod,
  peerAuthentications: readonly PeerAuthenticationLike[],
  rootNamespace = ISTIO_ROOT_NAMESPACE,
  clusterDomain = DEFAULT_CLUSTER_DOMAIN,
): Array<{ destination: string; policy: string }> {
  const ns = pod.metadata?.namespace ?? '';
  const status = parseStatus(pod.metadata?.annotations?.[POD_STATUS_ANNOTATION]);
  if (!status) return [];
  const out: Array<{ destination: string; policy: string }> = [];
  for (const entry of status.outbound) {
    let host: string;
    try {
      host = parseOutbound(entry)[0]?.host ?? '';
    } catch {
      continue;
    }
    const target = classifyHost(host, ns, clusterDomain);
    if (target.kind !== 'service') continue;
    const inNs = peerAuthentications.filter((pa) => pa.metadata?.namespace === target.namespace);
    const own = inNs.find((pa) => requiresMtls(pa));
    const nsWide = inNs.find((pa) => !pa.spec?.selector);
    const mesh = peerAuthentications.find(
      (pa) => pa.metadata?.namespace === rootNamespace && !pa.spec?.selector && requiresMtls(pa),
    );
    const strict = own ?? (!nsWide ? mesh : undefined);
    if (strict) out.push({ destination: entry, policy: `${strict.metadata?.namespace}/${strict.metadata?.name}` });
  }
  return out;
}

/** The blockers for one managed pod about to leave the mesh (see strictDestinations). */
export function leavingMeshBlockers(
  pods: readonly V1Pod[],
  peerAuthentications: readonly PeerAuthenticationLike[],
  rootNamespace = ISTIO_ROOT_NAMESPACE,
): UninstallBlocker[] {
  return pods.flatMap((p) => {
    const strict = strictDestinations(p, peerAuthentications, rootNamespace);
    if (strict.length === 0) return [];
    const list = strict.map((s) => `${s.destination} (PeerAuthentication ${s.policy} is STRICT)`).join(', ');
    return [
      {
        subject: `Pod ${p.metadata?.namespace}/${p.metadata?.name}`,
        message: `once replaced without wpgw it calls ${list} directly, without mTLS: those calls fail. Make them PERMISSIVE for it first`,
      },
    ];
  });
}
