// Service mutation: re-point a Service that fronts Windows pods at the namespace's gateway.
// A webhook cannot rename objects and users' tools keep owning `<name>`, so `<name>` keeps its
// name and ports, selects the gateway pods, and targets per-Service inbound gateway pod ports.
// The original selector and ports are recorded so the controller creates `<name>-app` from them.
import type { V1ObjectMeta, V1Service, V1ServicePort, V1ServiceSpec } from '@kubernetes/client-node';
import {
  GATEWAY_POD_LABEL,
  INBOUND_POD_PORTS,
  INJECT_KEY,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  NO_PORT_TRANSLATION_LABEL,
  REPOINTED_LABEL,
  SERVICE_ORIGINAL_ANNOTATION,
  appServiceName,
} from '../names.js';
import type { AdmissionContext } from './context.js';
import {
  appServiceBlocker,
  blockingNonMeshAccess,
  forcedRepoint,
  mergedSelector,
  nonMeshAccess,
  nonMeshMessage,
  serviceInjectValue,
  sessionAffinityWarning,
  type AppServiceBlocker,
} from './service-rules.js';
import { fnv1a } from './hash.js';
import { gatewayLabels, selectorMatches } from './labels.js';
import { readOriginal, type OriginalService } from './records.js';
import { overlapWarning, type RepointedService, type UnmanagedWorkload } from './workloads.js';

export type ServiceOutcome =
  | { action: 'skip'; reason: ServiceSkipReason; warnings: string[] }
  | {
      action: 'deny';
      reason: 'invalid_inject_value' | 'udp_port' | 'no_free_port' | AppServiceBlocker['reason'];
      message: string;
    }
  | { action: 'mutate'; reason: 'repointed' | 'restored'; service: V1Service; warnings: string[] };

export type ServiceSkipReason =
  | 'owned_by_wpgw'
  | 'opted_out'
  | 'external_name'
  | 'headless'
  | 'no_selector'
  | 'no_windows_pods'
  /** Non-mesh clients reach it (LoadBalancer, NodePort, externalIPs, Prometheus): see service-rules.ts. */
  | 'non_mesh_clients';

export function mutateService(service: V1Service, namespace: string, ctx: AdmissionContext): ServiceOutcome {
  const name = service.metadata?.name ?? '<unnamed>';
  const who = `service "${name}"`;
  if (service.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE) return skip('owned_by_wpgw');
  const spec = service.spec ?? {};
  // A client-side `kubectl apply` merges the user's selector keys next to ours and puts the user's
  // targetPorts back, so the user's intent is read through our own changes (see userIntent).
  const recorded = repointedOriginal(service, namespace);
  const repointed = recorded !== undefined;
  const original: OriginalService = repointed
    ? userIntent(spec, recorded)
    : { selector: spec.selector ?? {}, ports: spec.ports ?? [] };

  const inject = serviceInjectValue(service);
  if (inject !== undefined && inject !== 'true' && inject !== 'false') {
    return {
      action: 'deny',
      reason: 'invalid_inject_value',
      message: `${who}: ${INJECT_KEY} must be "true" or "false", got "${inject}"`,
    };
  }
  if (inject === 'false' && !repointed) return skip('opted_out');
  // Opted out while re-pointed: restoring here would leave callers sending mTLS (the caller-side
  // DestinationRule) to pods without a proxy; the controller hands it back in steps (core/service-leave.ts).
  const leaving = inject === 'false';

  const matches =
    Object.keys(original.selector).length > 0 &&
    ctx.windowsLabelSets(namespace).some((labels) => selectorMatches(original.selector, labels));
  if (spec.type === 'ExternalName') {
    return skip('external_name', [`${who}: ExternalName Services are left alone by wpgw`]);
  }
  if (spec.clusterIP === 'None' || spec.clusterIPs?.[0] === 'None') {
    const warnings = matches
      ? [
          `${who}: headless Service selecting Windows pods is left alone; its clients reach the pods directly, not through the wpgw gateway`,
        ]
      : [];
    return skip('headless', warnings);
  }
  if (Object.keys(original.selector).length === 0) {
    return skip('no_selector', [`${who}: has no selector and is left alone by wpgw`]);
  }
  // Keep a re-pointed Service re-pointed even while its pods are gone (a rollout, a scale to zero).
  if (!matches && !repointed) return skip('no_windows_pods');

  // Clients outside the mesh cannot speak the gateway's mTLS: leave such Services alone, loudly.
  const access = blockingNonMeshAccess(service, ctx.ingresses(namespace));
  if (access.length > 0) {
    const warnings = [`${who}: ${nonMeshMessage(access, repointed)}`];
    return repointed
      ? { action: 'mutate', reason: 'restored', service: restore(service, original), warnings }
      : skip('non_mesh_clients', warnings);
  }
  // Never re-point without a `<name>-app` to route to (that would blackhole the Service).
  const blocker = appServiceBlocker(name, ctx.serviceOwner(namespace, appServiceName(name)));
  if (blocker) {
    if (!repointed) return { action: 'deny', reason: blocker.reason, message: `${who}: ${blocker.message}` };
    return {
      action: 'mutate',
      reason: 'restored',
      service: restore(service, original),
      warnings: [`${who}: ${blocker.message}; restored to its original selector`],
    };
  }

  const udp = original.ports.find((p) => p.protocol === 'UDP' || p.protocol === 'SCTP');
  // Cannot be kept re-pointed: hand it back now rather than deny the opt-out.
  const restoreNow = (why: string): ServiceOutcome => ({
    action: 'mutate',
    reason: 'restored',
    service: restore(service, original),
    warnings: [`${who}: ${why}; restored to its original selector now`],
  });
  if (udp && leaving) return restoreNow(`port ${udp.port}/${udp.protocol} cannot go through the wpgw gateway`);
  if (udp) {
    return {
      action: 'deny',
      reason: 'udp_port',
      message: `${who}: port ${udp.port}/${udp.protocol} cannot go through the wpgw gateway (it proxies TCP only); remove the port or label the Service ${INJECT_KEY}=false`,
    };
  }
  const allocation = allocateInboundPorts(service, original, namespace, ctx);
  if (typeof allocation === 'string')
    return leaving
      ? restoreNow(allocation)
      : { action: 'deny', reason: 'no_free_port', message: `${who}: ${allocation}` };

  const ports: V1ServicePort[] = withLiveNodePorts(original.ports, spec.ports, (p, i) => ({
    ...cleanPort(p),
    targetPort: allocation[i]!,
  }));
  const newSpec: V1ServiceSpec = { ...spec, selector: gatewayLabels(namespace), ports };
  const others = ctx.unmanagedWorkloads(namespace).filter((w) => selectorMatches(original.selector, w.labels));
  const recordedNow: OriginalService = {
    selector: original.selector,
    ports: original.ports.map(cleanPort),
    ...(others.length > 0 ? { onlyManaged: true as const } : {}),
  };
  const metadata: V1ObjectMeta = {
    ...service.metadata,
    labels: { ...service.metadata?.labels, [REPOINTED_LABEL]: 'true', [NO_PORT_TRANSLATION_LABEL]: 'true' },
    annotations: { ...service.metadata?.annotations, [SERVICE_ORIGINAL_ANNOTATION]: JSON.stringify(recordedNow) },
  };
  const warnings = repointWarnings(
    service,
    others,
    forcedRepoint(service) ? nonMeshAccess(service, ctx.ingresses(namespace)) : [],
  );
  if (leaving) warnings.push(`${who}: ${leavingMessage(name)}`);
  return { action: 'mutate', reason: 'repointed', service: { ...service, metadata, spec: newSpec }, warnings };
}

/** What a re-pointed Service's user should know: pods it no longer reaches, clients that now fail, affinity. */
function repointWarnings(
  service: V1Service,
  others: readonly UnmanagedWorkload[],
  forcedAccess: readonly string[],
): string[] {
  const name = service.metadata?.name ?? '<unnamed>';
  const who = `service "${name}"`;
  const warnings: string[] = [];
  if (others.length > 0) warnings.push(`${who}: ${overlapWarning(name, appServiceName(name), others)}`);
  if (forcedAccess.length > 0) {
    warnings.push(
      `${who}: re-pointed at the wpgw gateway because ${INJECT_KEY} is "true", although non-mesh clients reach it (${forcedAccess.join('; ')}); they now fail, as the gateway accepts only Istio mTLS`,
    );
  }
  const affinity = sessionAffinityWarning(service);
  if (affinity) warnings.push(`${who}: ${affinity}`);
  return warnings;
}

/** What a Service opted out while re-pointed is told at admission. */
export function leavingMessage(name: string): string {
  return (
    `opted out (${INJECT_KEY}: "false"): stays re-pointed until the wpgw controller has moved its mesh callers off the gateway ` +
    `(gateway pods labelled security.istio.io/tlsMode=istio, caller DestinationRule wpgw-in-${name} deleted), then restores its ` +
    `original selector and ports; progress in its Events and \`wpgw status\``
  );
}

/** nodePorts are not recorded; carry the live ones over so a NodePort Service keeps its ports. */
function withLiveNodePorts(
  ports: readonly V1ServicePort[],
  live: readonly V1ServicePort[] | undefined,
  shape: (p: V1ServicePort, i: number) => V1ServicePort,
): V1ServicePort[] {
  return ports.map((p, i) => {
    const nodePort = p.nodePort ?? live?.find((c) => c.port === p.port)?.nodePort;
    return { ...shape(p, i), ...(nodePort !== undefined ? { nodePort } : {}) };
  });
}

/**
 * What the user wants, given a re-pointed Service as it arrives: selector keys other than ours
 * are merged over the recorded selector (see mergedSelector); a port whose
 * targetPort is a gateway pod port gets the recorded targetPort back, any other is the user's.
 */
function userIntent(spec: V1ServiceSpec, recorded: OriginalService): OriginalService {
  const selector = mergedSelector(spec.selector, recorded.selector);
  const ports = (spec.ports ?? recorded.ports).map((p) => {
    const rec = recorded.ports.find((r) => r.port === p.port && (r.protocol ?? 'TCP') === (p.protocol ?? 'TCP'));
    const ours = typeof p.targetPort === 'number' && inRange(p.targetPort);
    return cleanPort(rec && (ours || p.targetPort === undefined) ? { ...p, targetPort: rec.targetPort } : p);
  });
  return { selector, ports };
}

/** Re-pointed: an original is recorded and the gateway key is still in the selector. Its record, then. */
export function repointedOriginal(service: V1Service, namespace: string): OriginalService | undefined {
  const recorded = readOriginal(service);
  return recorded !== undefined && service.spec?.selector?.[GATEWAY_POD_LABEL] === namespace ? recorded : undefined;
}

/** A re-pointed Service as the overlap checks read it (name, recorded selector, narrowed or not). */
export function asRepointed(service: V1Service, namespace: string): RepointedService | undefined {
  const original = repointedOriginal(service, namespace);
  return original
    ? { name: service.metadata?.name ?? '', selector: original.selector, onlyManaged: original.onlyManaged === true }
    : undefined;
}

/**
 * Picks a gateway pod port per Service port. Stable: a port keeps the pod port it already has.
 * New ones start at a hash of (namespace, service, port) and probe upwards, skipping pod ports
 * other Services hold and any `port` of a Service selecting the gateway (Istio translates a
 * classic Gateway's server port through such Services first; see docs/architecture.md).
 */
function allocateInboundPorts(
  service: V1Service,
  original: OriginalService,
  namespace: string,
  ctx: AdmissionContext,
): number[] | string {
  const name = service.metadata?.name ?? '';
  const taken = new Set<number>([
    ...ctx.takenInboundPorts(namespace, name),
    ...ctx.gatewaySelectingServicePorts(namespace, name),
    ...original.ports.map((p) => p.port),
  ]);
  const current = service.spec?.ports ?? [];
  const size = INBOUND_POD_PORTS.max - INBOUND_POD_PORTS.min + 1;
  const result: number[] = [];
  for (const p of original.ports) {
    const had = current.find((c) => c.port === p.port && (c.protocol ?? 'TCP') === (p.protocol ?? 'TCP'))?.targetPort;
    if (typeof had === 'number' && inRange(had) && !taken.has(had)) {
      taken.add(had);
      result.push(had);
      continue;
    }
    const start = fnv1a(`${namespace}/${name}/${p.port}`) % size;
    let chosen: number | undefined;
    for (let i = 0; i < size; i++) {
      const candidate = INBOUND_POD_PORTS.min + ((start + i) % size);
      if (!taken.has(candidate)) {
        chosen = candidate;
        break;
      }
    }
    if (chosen === undefined) return `no free gateway pod port in ${INBOUND_POD_PORTS.min}-${INBOUND_POD_PORTS.max}`;
    taken.add(chosen);
    result.push(chosen);
  }
  return result;
}

function inRange(port: number): boolean {
  return port >= INBOUND_POD_PORTS.min && port <= INBOUND_POD_PORTS.max;
}

function restore(service: V1Service, original: OriginalService): V1Service {
  const { [SERVICE_ORIGINAL_ANNOTATION]: _a, ...annotations } = service.metadata?.annotations ?? {};
  const { [REPOINTED_LABEL]: _l, [NO_PORT_TRANSLATION_LABEL]: _t, ...labels } = service.metadata?.labels ?? {};
  return {
    ...service,
    metadata: { ...service.metadata, labels, annotations },
    spec: {
      ...service.spec,
      selector: original.selector,
      ports: withLiveNodePorts(original.ports, service.spec?.ports, cleanPort),
    },
  };
}

/** The recorded fields of a port, in one key order, so re-admission yields identical output. */
function cleanPort(p: V1ServicePort): V1ServicePort {
  return {
    ...(p.name !== undefined ? { name: p.name } : {}),
    ...(p.protocol !== undefined ? { protocol: p.protocol } : {}),
    ...(p.appProtocol !== undefined ? { appProtocol: p.appProtocol } : {}),
    port: p.port,
    ...(p.targetPort !== undefined ? { targetPort: p.targetPort } : {}),
  };
}

function skip(reason: ServiceSkipReason, warnings: string[] = []): ServiceOutcome {
  return { action: 'skip', reason, warnings };
}

/**
 * A re-pointed Service as its user had it (selector and ports read through our changes, wpgw's
 * label and annotations gone): what leaving wpgw writes back. Undefined if not re-pointed by us.
 */
export function restoredService(service: V1Service): V1Service | undefined {
  if (service.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE) return undefined;
  const recorded = readOriginal(service);
  if (!recorded) return undefined;
  return restore(service, userIntent(service.spec ?? {}, recorded));
}
