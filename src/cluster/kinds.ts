// Static knowledge about the kinds wpgw reads and writes: REST paths without discovery round trips.
import { MANAGED_KINDS } from '../core/desired-types.js';
import { ROLLOUT_KIND } from '../core/workloads.js';

export interface KindInfo {
  apiVersion: string;
  kind: string;
  /** Lower-case plural resource name used in the REST path. */
  plural: string;
  namespaced: boolean;
  /** True for CRD-backed kinds: a 404 on list means "not installed", not a bug. */
  crd?: boolean;
  /** What a 404 on list means for this kind (logged once, re-checked with backoff). */
  missingHint?: string;
  /** An optional integration (Argo Rollouts): its absence is normal, not a missing dependency. */
  optional?: boolean;
}

export { ROLLOUT_KIND };

/** Istio's Sidecar: read (never written) for the mesh-wide outbound scope. */
export const SIDECAR_KIND = { apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', plural: 'sidecars' } as const;

const BUILTIN: KindInfo[] = [
  { apiVersion: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false },
  { apiVersion: 'v1', kind: 'Pod', plural: 'pods', namespaced: true },
  { apiVersion: 'v1', kind: 'Event', plural: 'events', namespaced: true },
  { apiVersion: 'apps/v1', kind: 'ReplicaSet', plural: 'replicasets', namespaced: true },
  { apiVersion: 'apps/v1', kind: 'StatefulSet', plural: 'statefulsets', namespaced: true },
  { apiVersion: 'apps/v1', kind: 'DaemonSet', plural: 'daemonsets', namespaced: true },
  { apiVersion: 'batch/v1', kind: 'Job', plural: 'jobs', namespaced: true },
  { apiVersion: 'batch/v1', kind: 'CronJob', plural: 'cronjobs', namespaced: true },
  {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    plural: 'ingresses',
    namespaced: true,
    // Read only to tell Services non-mesh clients reach; without RBAC for it, start anyway.
    optional: true,
    missingHint:
      'Ingresses cannot be read: Services that other ingress controllers send to are not detected (annotate them wpgw.io/non-mesh-clients)',
  },
  { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', plural: 'runtimeclasses', namespaced: false },
  // The cluster's own ranges (src/cluster/cluster-ranges.ts): optional, so a grant left out (the
  // operator turned node discovery off in RBAC only) or an API server before 1.33 still starts.
  {
    apiVersion: 'v1',
    kind: 'Node',
    plural: 'nodes',
    namespaced: false,
    optional: true,
    missingHint:
      "Nodes cannot be read: their pod CIDRs and addresses are not excepted from the gateways' external egress (grant list/watch nodes, or set --cluster-cidrs and --discover-node-ranges=false)",
  },
  {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'ServiceCIDR',
    plural: 'servicecidrs',
    namespaced: false,
    optional: true,
    missingHint:
      'ServiceCIDRs cannot be read (API server before 1.33, or no RBAC): the Service range is only what --cluster-cidrs names (and the private ranges)',
  },
  { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', plural: 'leases', namespaced: true },
  // read only: users' own, reported when they act on the wpgw (docs/user-policies.md)
  {
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    plural: 'peerauthentications',
    namespaced: true,
    crd: true,
    missingHint: "the CRD for security.istio.io/v1 PeerAuthentication is not installed (install Istio's CRDs)",
  },
  {
    ...ROLLOUT_KIND,
    namespaced: true,
    crd: true,
    optional: true,
    missingHint:
      'Argo Rollouts is not installed (no argoproj.io/v1alpha1 Rollout CRD); Rollouts are picked up when it appears',
  },
  {
    ...SIDECAR_KIND,
    namespaced: true,
    crd: true,
    optional: true,
    missingHint:
      'Istio Sidecars cannot be read (no CRD, or no RBAC for networking.istio.io sidecars): a namespace Sidecar does not narrow wpgw.io/mesh-outbound',
  },
];

const ALL: KindInfo[] = [
  ...BUILTIN,
  ...MANAGED_KINDS.map((k) => ({
    apiVersion: k.apiVersion,
    kind: k.kind,
    plural: k.plural,
    namespaced: true,
    crd: k.apiVersion.includes('istio.io/'),
    ...(k.apiVersion.includes('istio.io/')
      ? { missingHint: `the CRD for ${k.apiVersion} ${k.kind} is not installed (install Istio's CRDs)` }
      : {}),
  })),
];

/** Group of an apiVersion ("" for the core group). */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/** Kind identity ignoring the version, so v1/v1beta1 of one kind compare equal. */
export function groupKind(apiVersion: string, kind: string): string {
  return `${groupOf(apiVersion)}/${kind}`;
}

const BY_GROUP_KIND = new Map(ALL.map((k) => [groupKind(k.apiVersion, k.kind), k]));

export function kindInfo(apiVersion: string, kind: string): KindInfo {
  const info = BY_GROUP_KIND.get(groupKind(apiVersion, kind));
  if (!info) throw new Error(`wpgw does not know the REST path of ${apiVersion} ${kind}`);
  // Keep the caller's version: the path must name the version the object was written in.
  return { ...info, apiVersion };
}

/** Collection path, cluster-wide when `namespace` is omitted: /api/v1/pods, /apis/apps/v1/namespaces/x/deployments. */
export function collectionPath(
  info: Pick<KindInfo, 'apiVersion' | 'plural' | 'namespaced'>,
  namespace?: string,
): string {
  const root = info.apiVersion.includes('/') ? `/apis/${info.apiVersion}` : `/api/${info.apiVersion}`;
  if (info.namespaced && namespace) return `${root}/namespaces/${encodeURIComponent(namespace)}/${info.plural}`;
  return `${root}/${info.plural}`;
}

export function objectPath(
  info: Pick<KindInfo, 'apiVersion' | 'plural' | 'namespaced'>,
  namespace: string | undefined,
  name: string,
): string {
  return `${collectionPath(info, namespace)}/${encodeURIComponent(name)}`;
}
