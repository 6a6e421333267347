// Rules deciding whether a Service may be re-pointed at the wpgw, shared by the webhook
// (src/core/service.ts), the controller's nudges and desired state, `wpgw render` and `wpgw status`.
// Pure: a Service (and what the caller knows of its namespace) in, data out.
import type { V1Ingress, V1Service } from '@kubernetes/client-node';
import {
  GATEWAY_POD_LABEL,
  INJECT_KEY,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  NON_MESH_CLIENTS_ANNOTATION,
  appServiceName,
} from '../names.js';

/** Kubernetes object names that must be DNS-1123 labels (Services) are at most this long. */
export const MAX_SERVICE_NAME = 63;

export type ServiceOwner = 'wpgw' | 'user';

/** Who owns an existing Service: wpgw if labelled app.kubernetes.io/managed-by=wpgw, else the user. */
export function serviceOwnerOf(
  svc: { metadata?: { labels?: Record<string, string> } } | undefined,
): ServiceOwner | undefined {
  if (!svc) return undefined;
  return svc.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE ? 'wpgw' : 'user';
}

/** Why `<name>-app` cannot be created for this Service, as data. */
export interface AppServiceBlocker {
  reason: 'app_name_too_long' | 'app_service_taken';
  /** What is wrong and what to do, without the Service's own name (callers prefix it). */
  message: string;
}

/**
 * `<name>-app` must be a valid Service name that wpgw owns (or can create). `ownerOfApp` says
 * who owns a Service of that name in the namespace today.
 */
export function appServiceBlocker(name: string, ownerOfApp: ServiceOwner | undefined): AppServiceBlocker | undefined {
  const app = appServiceName(name);
  if (app.length > MAX_SERVICE_NAME) {
    return {
      reason: 'app_name_too_long',
      message:
        `cannot be re-pointed at the wpgw gateway: its Windows pods would be reached through a Service named "${app}" ` +
        `(${app.length} characters; Service names are at most ${MAX_SERVICE_NAME}); rename the Service to at most ` +
        `${MAX_SERVICE_NAME - (app.length - name.length)} characters`,
    };
  }
  if (ownerOfApp === 'user') {
    return {
      reason: 'app_service_taken',
      message:
        `cannot be re-pointed at the wpgw gateway: wpgw reaches its Windows pods through a Service named "${app}", ` +
        `and a Service of that name already exists that wpgw does not manage; rename or delete "${app}", or rename this Service`,
    };
  }
  return undefined;
}

/** Ingress classes served by Istio's own ingress gateway (a mesh client: it speaks Istio mTLS). */
const ISTIO_INGRESS_CLASSES = new Set(['istio']);

/**
 * The Ingresses of other controllers (nginx, Traefik, AGIC, ...) that send to Service `name`, as
 * "Ingress/<name> (class <class>)". Their controllers are not in the mesh, so a re-pointed
 * Service would refuse them. Istio's own ingress class is a mesh client and does not count.
 */
export function nonMeshIngresses(name: string, ingresses: readonly V1Ingress[]): string[] {
  const out: string[] = [];
  for (const ing of ingresses) {
    const cls = ing.spec?.ingressClassName ?? ing.metadata?.annotations?.['kubernetes.io/ingress.class'];
    if (cls !== undefined && ISTIO_INGRESS_CLASSES.has(cls)) continue;
    const backends = [
      ing.spec?.defaultBackend,
      ...(ing.spec?.rules ?? []).flatMap((r) => (r.http?.paths ?? []).map((p) => p.backend)),
    ];
    if (backends.some((b) => b?.service?.name === name))
      out.push(`Ingress/${ing.metadata?.name ?? ''} (class ${cls ?? 'default'})`);
  }
  return out.sort();
}

/**
 * How non-mesh clients reach this Service, one phrase each. A re-pointed Service only accepts
 * Istio mTLS, so every one of these would stop working. `ingresses` are the namespace's Ingress
 * objects. ServiceMonitors and Gateway API routes of other controllers are not visible here:
 * their users declare them with wpgw.io/non-mesh-clients (README, "Which Services are re-pointed").
 */
export function nonMeshAccess(service: V1Service, ingresses: readonly V1Ingress[] = []): string[] {
  const spec = service.spec ?? {};
  const out: string[] = [];
  const refs = nonMeshIngresses(service.metadata?.name ?? '', ingresses);
  if (refs.length > 0) out.push(`sent to by ${refs.join(', ')}`);
  if (spec.type === 'LoadBalancer') out.push('type LoadBalancer (clients outside the cluster)');
  if (spec.type === 'NodePort') out.push('type NodePort (clients dialling node ports)');
  if ((spec.externalIPs ?? []).length > 0) out.push(`externalIPs ${spec.externalIPs!.join(', ')}`);
  const annotations = service.metadata?.annotations ?? {};
  if (annotations[NON_MESH_CLIENTS_ANNOTATION] === 'true') out.push(`${NON_MESH_CLIENTS_ANNOTATION}: "true"`);
  for (const key of SCRAPE_ANNOTATIONS) {
    if (annotations[key] === 'true') out.push(`${key}: "true" (Prometheus scrapes its endpoints without mTLS)`);
  }
  return out;
}

/** Annotations by which Prometheus (kubernetes-service-endpoints / blackbox probe jobs) scrapes a Service. */
const SCRAPE_ANNOTATIONS = ['prometheus.io/scrape', 'prometheus.io/probe'] as const;

/** wpgw.io/inject on a Service (the label wins over the annotation). */
export function serviceInjectValue(service: V1Service): string | undefined {
  return service.metadata?.labels?.[INJECT_KEY] ?? service.metadata?.annotations?.[INJECT_KEY];
}

/** The user asked for re-pointing whatever the Service's other clients: wpgw.io/inject "true" on the Service. */
export function forcedRepoint(service: V1Service): boolean {
  return serviceInjectValue(service) === 'true';
}

/** Non-mesh access that keeps wpgw from re-pointing this Service (empty when forced or none). */
export function blockingNonMeshAccess(service: V1Service, ingresses: readonly V1Ingress[] = []): string[] {
  return forcedRepoint(service) ? [] : nonMeshAccess(service, ingresses);
}

export function nonMeshMessage(access: readonly string[], repointed: boolean): string {
  const what = repointed
    ? 'is restored to its original selector'
    : 'is left alone (not re-pointed at the wpgw gateway)';
  return (
    `${what}: non-mesh clients reach it (${access.join('; ')}) and the gateway accepts only Istio mTLS. ` +
    `Its Windows pods stay reachable directly on its target ports, bypassing the mesh. To put mesh callers ` +
    `behind the gateway, give them a separate ClusterIP Service, or set ${INJECT_KEY}: "true" on this Service ` +
    `to re-point it anyway (its non-mesh clients then fail)`
  );
}

/** Carried from spec.sessionAffinity to the wpgw -> `<name>-app` hop (DestinationRule wpgw-app-<name>). */
export function sessionAffinityWarning(service: V1Service): string | undefined {
  if (service.spec?.sessionAffinity !== 'ClientIP') return undefined;
  const name = service.metadata?.name ?? '';
  const timeout = service.spec.sessionAffinityConfig?.clientIP?.timeoutSeconds;
  return (
    `sessionAffinity ClientIP is carried as consistent hashing on the caller's source IP from the gateway to ` +
    `${appServiceName(name)} (DestinationRule wpgw-app-${name}); the key is the address the gateway sees (for ingress ` +
    `traffic, the ingress gateway pod's)${timeout !== undefined ? `, and timeoutSeconds ${timeout} has no equivalent` : ''}`
  );
}

/**
 * The selector the user (and other controllers) want, given a re-pointed Service as it arrives:
 * keys other than wpgw's in the live selector were put there since we re-pointed it (a
 * client-side apply, `kubectl patch`, Argo Rollouts' rollouts-pod-template-hash, Flagger), so
 * they are merged over the recorded selector, never replace it.
 */
export function mergedSelector(
  live: Readonly<Record<string, string>> | undefined,
  recorded: Readonly<Record<string, string>>,
): Record<string, string> {
  const { [GATEWAY_POD_LABEL]: _ours, ...added } = live ?? {};
  return { ...recorded, ...added };
}
