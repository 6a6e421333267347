// Services the webhook leaves alone because non-mesh clients reach them (LoadBalancer, NodePort,
// externalIPs, Prometheus scraping, other ingress controllers; see service-rules.ts), or because
// their `<name>-app` cannot exist, or because they are opted out or headless, but that select
// managed Windows pods.
// Those clients keep dialling the pods directly, which wpgw-managed-pods would refuse (it admits
// only the gateway), so each such Service gets a NetworkPolicy opening its target ports on the
// pods it selects, and a Warning (Event, status, render) saying the Service is not behind the gateway.
import type { V1Ingress, V1Pod, V1Service } from '@kubernetes/client-node';
import { INJECT_KEY, MANAGED_BY_LABEL, MANAGED_BY_VALUE, MANAGED_LABEL, appServiceName } from '../../names.js';
import type { Conflict, KubeObject } from '../desired-types.js';
import { readOriginal } from '../records.js';
import { selectorMatches } from '../labels.js';
import {
  appServiceBlocker,
  blockingNonMeshAccess,
  nonMeshMessage,
  serviceInjectValue,
  serviceOwnerOf,
} from '../service-rules.js';
import { meta, objectName } from './common.js';

export interface DirectAccessResult {
  objects: KubeObject[];
  conflicts: Conflict[];
}

/** Prometheus scrapes the pods on this port (annotation), not necessarily a Service port. */
const SCRAPE_PORT_ANNOTATION = 'prometheus.io/port';

/**
 * Why the webhook leaves this Service selecting the pods directly: non-mesh clients reach it, or
 * its `<name>-app` cannot exist (an existing Service; a new one is denied). Undefined otherwise.
 */
function reasonNotRepointed(
  svc: V1Service,
  services: readonly V1Service[],
  ingresses: readonly V1Ingress[],
): string | undefined {
  // Left alone on purpose, but its clients still dial the pods: the messages that suggest these
  // ways out (opt the Service out, use a headless Service) must work.
  if (serviceInjectValue(svc) === 'false')
    return `is opted out (${INJECT_KEY}: "false"): its clients reach its wpgw-managed pods directly, not through the gateway`;
  if (svc.spec?.clusterIP === 'None')
    return 'is headless: its clients reach its wpgw-managed pods at their own addresses, not through the gateway';
  const access = blockingNonMeshAccess(svc, ingresses);
  if (access.length > 0) return nonMeshMessage(access, false);
  const name = svc.metadata?.name ?? '';
  const blocker = appServiceBlocker(
    name,
    serviceOwnerOf(services.find((s) => s.metadata?.name === appServiceName(name))),
  );
  return blocker ? `is not re-pointed: it ${blocker.message}` : undefined;
}

export function directAccess(
  namespace: string,
  services: readonly V1Service[],
  managedPods: readonly V1Pod[],
  ingresses: readonly V1Ingress[],
): DirectAccessResult {
  const objects: KubeObject[] = [];
  const conflicts: Conflict[] = [];
  const sorted = [...services].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  for (const svc of sorted) {
    const selector = svc.spec?.selector ?? {};
    if (readOriginal(svc) || Object.keys(selector).length === 0) continue;
    if (svc.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE) continue;
    const name = svc.metadata?.name ?? '';
    const why = reasonNotRepointed(svc, services, ingresses);
    if (!why) continue;
    if (!managedPods.some((p) => !p.metadata?.deletionTimestamp && selectorMatches(selector, p.metadata?.labels ?? {})))
      continue;
    const ports = (svc.spec?.ports ?? []).map((p) => ({ protocol: p.protocol ?? 'TCP', port: p.targetPort ?? p.port }));
    const scrapePort = Number(svc.metadata?.annotations?.[SCRAPE_PORT_ANNOTATION]);
    if (
      Number.isInteger(scrapePort) &&
      scrapePort > 0 &&
      scrapePort < 65536 &&
      !ports.some((p) => p.port === scrapePort && p.protocol === 'TCP')
    ) {
      ports.push({ protocol: 'TCP', port: scrapePort });
    }
    objects.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: meta(objectName('wpgw-direct', name), namespace, { kind: 'service', name }),
      spec: {
        podSelector: { matchLabels: { ...selector, [MANAGED_LABEL]: 'true' } },
        policyTypes: ['Ingress'],
        // From anywhere: these clients were never in the mesh (LoadBalancer and NodePort traffic
        // may arrive SNATed from any node). An ingress rule without ports would open every port.
        ...(ports.length > 0 ? { ingress: [{ ports }] } : {}),
      },
    });
    conflicts.push({
      subject: `Service/${name}`,
      reason: 'NotBehindGateway',
      message: `${why}; NetworkPolicy ${objectName('wpgw-direct', name)} admits its clients to the wpgw-managed pods it selects`,
    });
  }
  return { objects, conflicts };
}
