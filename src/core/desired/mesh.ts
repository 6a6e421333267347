// The mesh-wide outbound scope of one namespace: the union of what its managed pods were injected
// with (their status record) and the namespace's own wpgw.io/mesh-outbound, narrowed by the
// namespace's Istio Sidecar; then the Services of the cluster it covers (core/mesh-scope.ts).
import type { V1Pod } from '@kubernetes/client-node';
import {
  MESH_OUTBOUND_ANNOTATION,
  OUTBOUND_ANNOTATION,
  POD_STATUS_ANNOTATION,
  RESOLVER_ANNOTATION,
} from '../../names.js';
import type { Conflict, NamespaceInput } from '../desired-types.js';
import {
  formatScope,
  MeshScopeError,
  namespaceSidecar,
  parseMeshScope,
  planMesh,
  type MeshPlan,
  type ScopeEntry,
} from '../mesh-scope.js';
import { parseStatus } from '../records.js';

export interface NamespaceMesh {
  /** The union of the scopes in use; empty: mesh-wide outbound is off. */
  scope: ScopeEntry[];
  plan: MeshPlan;
  conflicts: Conflict[];
  notes: string[];
}

const MAX_LISTED = 20;

export function namespaceMesh(input: NamespaceInput, namespace: string, clusterDomain: string): NamespaceMesh {
  const conflicts: Conflict[] = [];
  const notes: string[] = [];
  const annotations = input.namespace.metadata?.annotations ?? {};
  const entries = scopeInUse(namespace, annotations, input.pods, (subject, err) =>
    conflicts.push({ subject, reason: 'InvalidMeshOutbound', message: `${err.message}; not applied` }),
  );
  if (annotations[MESH_OUTBOUND_ANNOTATION] !== undefined && annotations[RESOLVER_ANNOTATION] === 'hostAliases') {
    conflicts.push({
      subject: `Namespace/${namespace}`,
      reason: 'MeshOutboundNeedsDns',
      message: `${MESH_OUTBOUND_ANNOTATION} needs ${RESOLVER_ANNOTATION}=dnsConfig (a hosts file cannot follow Services as they come and go), but the namespace says hostAliases; its pods are denied until one of the two changes`,
    });
  }
  const sidecar = entries.length > 0 ? namespaceSidecar(input.sidecars ?? []) : undefined;
  if (sidecar && sidecar.invalid.length > 0) {
    conflicts.push({
      subject: sidecar.name,
      reason: 'InvalidSidecarHost',
      message: `egress hosts not in "namespace/dnsName" form are ignored: ${sidecar.invalid.join(', ')}`,
    });
  }
  if (entries.length > 0 && input.sidecarsUnreadable) {
    conflicts.push({
      subject: `Namespace/${namespace}`,
      reason: 'SidecarsUnreadable',
      message: `the controller cannot read Istio Sidecars (networking.istio.io sidecars: no CRD, or no list/watch grant), so a Sidecar in this namespace does not narrow ${MESH_OUTBOUND_ANNOTATION}; grant it (manifests/, charts/wpgw) or narrow the scope itself`,
    });
  }
  const plan = planMesh(entries, sidecar, input.clusterServices ?? input.services, namespace, clusterDomain);
  if (entries.length > 0) {
    notes.push(
      `mesh-wide outbound ${entries.map(formatScope).join(' ')}${sidecar ? ` within ${sidecar.name}'s egress hosts` : ''}: ` +
        `${plan.services} Service(s) in scope, ${plan.destinations.length} HTTP port(s) routed by Host, answered by wpgw-dns`,
    );
    if (plan.needsEntry.length > 0) {
      notes.push(
        `mesh-wide outbound cannot route ${plan.needsEntry.length} TCP or app-TLS port(s) in scope (a shared port cannot be told apart without a name); ` +
          `declare those the apps call in ${OUTBOUND_ANNOTATION}: ${list(plan.needsEntry)}`,
      );
    }
    if (plan.skipped.length > 0) notes.push(`mesh-wide outbound skips: ${list(plan.skipped)}`);
  }
  return { scope: entries, plan, conflicts, notes };
}

/**
 * The union of the mesh-wide scopes in use in a namespace: its own annotation and what its managed
 * pods were injected with. Also what the controller's routing asks ("which namespaces see a Service
 * of namespace X?"), so one definition.
 */
export function scopeInUse(
  namespace: string,
  annotations: Readonly<Record<string, string>>,
  pods: readonly V1Pod[],
  onError: (subject: string, err: MeshScopeError) => void = () => {},
): ScopeEntry[] {
  const scope = new Map<string, ScopeEntry>();
  const add = (subject: string, text: string) => {
    try {
      for (const e of parseMeshScope(text)) scope.set(formatScope(e), e);
    } catch (err) {
      if (!(err instanceof MeshScopeError)) throw err;
      onError(subject, err);
    }
  };
  const nsText = annotations[MESH_OUTBOUND_ANNOTATION];
  if (nsText !== undefined) add(`Namespace/${namespace}`, nsText);
  for (const pod of pods) {
    const mesh = parseStatus(pod.metadata?.annotations?.[POD_STATUS_ANNOTATION])?.mesh;
    if (mesh && mesh.length > 0) add(`Pod/${pod.metadata?.name ?? ''}`, mesh.join(' '));
  }
  return [...scope.values()].sort((a, b) => formatScope(a).localeCompare(formatScope(b)));
}

function list(items: readonly string[]): string {
  return items.length > MAX_LISTED
    ? `${items.slice(0, MAX_LISTED).join(', ')} and ${items.length - MAX_LISTED} more`
    : items.join(', ');
}
