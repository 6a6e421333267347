// Which namespaces a cache event makes dirty.
import type { CacheEvent } from '../cluster/cache.js';
import { annotationsOf, isManagedByWpgw, isOptedIn } from '../cluster/objects.js';
import { SERVICE_ORIGINAL_ANNOTATION } from '../names.js';
import type { KubeObject } from '../core/desired-types.js';
import { namedNamespaces } from '../core/desired/user-conflicts.js';
import { CLUSTER_DNS } from './input.js';

export interface RoutingView {
  /** Is this namespace opted in right now (per the cache)? */
  isOptedIn(namespace: string): boolean;
  /** Every opted-in namespace. */
  optedInNamespaces(): string[];
  /** Opted-in namespaces whose mesh-wide outbound scope covers Services of `namespace`. */
  meshWatchers?(namespace: string): string[];
  /** Istio's root namespace: its policies are inputs of every opted-in namespace. */
  rootNamespace?: string;
}

const ROOT_POLICIES = new Set(['authorizationpolicies', 'peerauthentications', 'requestauthentications']);
const ROUTING = new Set(['virtualservices', 'destinationrules']);

export function namespacesForEvent(e: CacheEvent, view: RoutingView): string[] {
  const meta = e.obj.metadata ?? {};
  if (e.resource === 'namespaces') {
    const name = meta.name ?? '';
    if (e.type === 'delete') return []; // its objects are deleted with it
    // Opted in, or just lost the label: the latter is reconciled to an empty desired state (cleanup).
    return isOptedIn(e.obj) || isOptedIn(e.old) ? [name] : [];
  }
  if (e.resource === 'runtimeclasses') return []; // not an input of the desired state
  const ns = meta.namespace;
  if (!ns) return [];
  if (e.resource === 'services' && ns === CLUSTER_DNS.namespace && meta.name === CLUSTER_DNS.name) {
    return view.optedInNamespaces(); // clusterDnsIP is an input of every namespace
  }
  if (ns === view.rootNamespace && ROOT_POLICIES.has(e.resource)) return view.optedInNamespaces();
  // A caller's route or DestinationRule naming another namespace's (possibly re-pointed) Service.
  if (ROUTING.has(e.resource)) {
    const named = [
      ...new Set([...namedNamespaces(e.obj as KubeObject), ...(e.old ? namedNamespaces(e.old as KubeObject) : [])]),
    ].filter((n) => n !== ns && view.isOptedIn(n));
    if (named.length > 0)
      return [...new Set([...(view.isOptedIn(ns) || isManagedByWpgw(e.obj) ? [ns] : []), ...named])];
  }
  // A Service came, went or changed ports: the gateways that route to it mesh-wide follow.
  const watchers = e.resource === 'services' ? (view.meshWatchers?.(ns) ?? []) : [];
  if (watchers.length > 0) return [...new Set([...(view.isOptedIn(ns) ? [ns] : []), ...watchers])];
  if (view.isOptedIn(ns)) return [ns];
  // A leftover of ours in a namespace that is no longer opted in: reconcile deletes it.
  if (isManagedByWpgw(e.obj) || isManagedByWpgw(e.old)) return [ns];
  // Opting out waits on these: re-pointed Services to restore, injected pods to be replaced.
  if (e.resource === 'managedPods') return [ns];
  if (
    e.resource === 'services' &&
    (SERVICE_ORIGINAL_ANNOTATION in annotationsOf(e.obj) || SERVICE_ORIGINAL_ANNOTATION in annotationsOf(e.old))
  )
    return [ns];
  return [];
}
