// Desired state of one opted-in namespace: a pure function of its objects, shared by the
// controller (apply + prune), `wpgw render` and `wpgw status`.
import type { V1Deployment, V1Service } from '@kubernetes/client-node';
import {
  DNS_SERVER_ANNOTATION,
  DNS_SERVICE,
  EGRESS_ALLOW_ANNOTATION,
  GATEWAY_SERVICE,
  ISTIO_INJECTION_LABEL,
  ISTIO_REV_LABEL,
  ISTIO_REVISION_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  MANAGED_LABEL,
  NO_PORT_TRANSLATION_LABEL,
  REPLICAS_ANNOTATION,
  RESOLVER_ANNOTATION,
  appServiceName,
} from '../names.js';
import type { Conflict, DesiredOptions, DesiredState, KubeObject, NamespaceInput } from './desired-types.js';
import {
  gatewayObjects,
  gatewayService,
  isIstioRevision,
  MAX_GATEWAY_REPLICAS,
  STATUS_PORT,
} from './desired/gateway.js';
import { inboundObjects } from './desired/inbound.js';
import { isHttpPort } from './desired/common.js';
import { userRouting } from './desired/user-routes.js';
import { nativeAllows, userAuthorization } from './desired/user-authz.js';
import { userConflicts } from './desired/user-conflicts.js';
import { userAuthentication } from './desired/user-authn.js';
import { outboundObjects } from './desired/outbound.js';
import { planOutbound } from './desired/outbound-plan.js';
import { authorizationPolicy, networkPolicies, ownNameservers } from './desired/policy.js';
import { dnsObjects } from './desired/dns.js';
import { DEFAULT_ISTIO_NAMESPACE, egressRanges, gatewayEgressPolicy, type EgressRanges } from './desired/egress.js';
import { pinExternalNames } from './desired/pinning.js';
import { namespaceMesh } from './desired/mesh.js';
import { directAccess } from './desired/direct.js';
import { gatewayLabels } from './labels.js';
import { readOriginal } from './records.js';
import { serviceOwnerOf, type ServiceOwner } from './service-rules.js';
import { TLS_MODE_LABEL } from './pod.js';
import { rolledOut } from './restore.js';

export function desiredNamespaceState(input: NamespaceInput, opts: DesiredOptions): DesiredState {
  const namespace = input.namespace.metadata?.name ?? '';
  const annotations = input.namespace.metadata?.annotations ?? {};
  const conflicts: Conflict[] = [];
  const notes: string[] = [];

  const liveGateway = input.services.find(
    (s) => s.metadata?.name === GATEWAY_SERVICE && s.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE,
  );
  const selecting = input.services.filter((s) => s !== liveGateway && selectsGateway(s, namespace));
  const reserved = new Set<number>([
    STATUS_PORT,
    ...selecting.flatMap((s) => (s.spec?.ports ?? []).map((p) => p.port)),
  ]);
  const callerRules = gatewayLacksTlsMode(input.gatewayDeployment);
  const inbound = input.services
    .filter((s) => readOriginal(s) && selectsGateway(s, namespace))
    .sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))
    .map((s, _i, all) => {
      const name = s.metadata?.name ?? '';
      const routing = userRouting(name, namespace, opts.clusterDomain, input.istio, {
        httpPorts: (readOriginal(s)?.ports ?? []).filter(isHttpPort).length,
        otherServices: all.map((o) => o.metadata?.name ?? '').filter((n) => n !== name),
      });
      const r = inboundObjects(
        s,
        namespace,
        opts.clusterDomain,
        serviceOwner(input.services, appServiceName(name)),
        callerRules,
        routing,
      );
      const uses = [
        ...(routing.delegate ? [`routes from delegate VirtualService ${routing.delegate.name}`] : []),
        ...(routing.appPolicy ? [`endpoint policy from DestinationRule ${routing.appPolicy.from}`] : []),
      ];
      if (uses.length > 0) notes.push(`inbound: Service ${name}: ${uses.join(', ')} (at the wpgw -> ${name}-app hop)`);
      return { ...r, conflicts: [...r.conflicts, ...routing.conflicts] };
    });
  const inboundPodPorts = inbound.flatMap((r) => r.podPorts).sort((a, b) => a - b);
  conflicts.push(...translatedListeners(inbound, selecting));
  const authz = userAuthorization(
    namespace,
    input.istio?.authorizationPolicies ?? [],
    inbound.flatMap((r) => (r.served ? [r.served] : [])),
    input.pods,
  );
  conflicts.push(...authz.conflicts);
  for (const o of authz.objects)
    notes.push(
      `authorization: ${o.metadata.name} on the gateway, scoped to the listener ports of the Services the user's policy is for`,
    );
  conflicts.push(
    ...userConflicts(
      namespace,
      opts.clusterDomain,
      input.istio,
      inbound.flatMap((r) => (r.served ? [r.served.name] : [])),
      ['wpgw-out', ...inbound.flatMap((r) => (r.served ? [`wpgw-in-${r.served.name}`] : []))],
      input.callerIstio,
    ),
  );
  const mesh = namespaceMesh(input, namespace, opts.clusterDomain);
  conflicts.push(...mesh.conflicts);
  const planned = planOutbound(
    input.pods,
    namespace,
    input.services,
    reserved,
    opts.clusterDomain,
    new Set(inboundPodPorts),
    mesh.plan.destinations,
  );
  conflicts.push(...planned.conflicts);
  const egress = namespaceEgressRanges(input, opts);
  conflicts.push(...egress.conflicts);
  // External names resolved by the controller, checked, pinned; refused ones are not routed.
  const pinned = pinExternalNames(planned.groups, input.resolved, egress);
  conflicts.push(...pinned.conflicts);
  const plan = { ...planned, groups: pinned.groups };
  const authn = userAuthentication({
    namespace,
    user: input.istio,
    mesh: input.meshIstio,
    services: inbound.flatMap((r) => (r.served ? [r.served] : [])),
    pods: input.pods,
    httpEgress: plan.groups.some((g) => g.family === 'http'),
  });
  conflicts.push(...authn.conflicts);
  notes.push(...authn.notes);
  for (const r of inbound) conflicts.push(...r.conflicts);
  const direct = directAccess(namespace, input.services, input.pods, input.ingresses ?? []);
  conflicts.push(...direct.conflicts);

  const replicas = gatewayReplicas(annotations[REPLICAS_ANNOTATION], opts.defaultGatewayReplicas, namespace, conflicts);
  const revision = istioRevision(
    input.namespace.metadata?.labels ?? {},
    annotations[ISTIO_REVISION_ANNOTATION],
    opts.istioRevision,
    namespace,
    conflicts,
  );
  // A live Service keeps its address (ClusterIP is immutable); a re-created one asks for the
  // address the pods were injected with, so their hostAliases stay right.
  const liveIP =
    liveGateway?.spec?.clusterIP && liveGateway.spec.clusterIP !== 'None' ? liveGateway.spec.clusterIP : undefined;
  const clusterIP = liveIP ?? opts.pinnedGatewayIP ?? plan.recordedGatewayIP;

  const dnsMode =
    annotations[RESOLVER_ANNOTATION] === 'dnsConfig' ||
    annotations[DNS_SERVER_ANNOTATION] === 'enabled' ||
    plan.modes.has('dnsConfig') ||
    mesh.scope.length > 0;

  const objects: KubeObject[] = [
    ...gatewayObjects(namespace, replicas, revision),
    gatewayService(namespace, plan.groups, clusterIP),
    ...outboundObjects(namespace, plan.groups, pinned.pins),
    ...inbound.flatMap((r) => r.objects),
    authorizationPolicy(
      namespace,
      plan.groups,
      plan.sourceIPs,
      inboundPodPorts,
      // namespace- or mesh-wide ALLOWs govern every inbound port, as they would behind a sidecar
      nativeAllows(namespace, input.istio?.authorizationPolicies ?? [], input.meshIstio).length > 0
        ? inboundPodPorts
        : authz.allowPorts,
    ),
    ...authz.objects,
    ...authn.objects,
    ...networkPolicies(namespace, plan.groups, inboundPodPorts, dnsMode, ownNameservers(input.pods)),
    gatewayEgressPolicy({
      namespace,
      groups: plan.groups,
      appServices: inbound.flatMap((r) => r.objects.filter((o) => o.kind === 'Service')),
      // declared ones, and with mesh-wide outbound every Service the scope may route to
      services: [...input.services, ...(input.destinationServices ?? []), ...(input.clusterServices ?? [])],
      ranges: egress,
      istioNamespace: opts.istioNamespace ?? DEFAULT_ISTIO_NAMESPACE,
    }),
    ...direct.objects,
  ];
  if (dnsMode) {
    if (!input.clusterDnsIP) {
      conflicts.push({
        subject: `Namespace/${namespace}`,
        reason: 'ClusterDnsUnknown',
        message: 'kube-system/kube-dns has no ClusterIP; wpgw-dns forwards to it',
      });
    }
    const liveDns = input.services.find(
      (s) => s.metadata?.name === DNS_SERVICE && s.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE,
    );
    const liveDnsIP =
      liveDns?.spec?.clusterIP && liveDns.spec.clusterIP !== 'None' ? liveDns.spec.clusterIP : undefined;
    const dnsIP = liveDnsIP ?? opts.pinnedDnsIP ?? plan.recordedDnsIP;
    objects.push(
      ...dnsObjects(
        namespace,
        plan.groups,
        liveIP ?? clusterIP,
        input.clusterDnsIP ?? '/etc/resolv.conf',
        opts.corednsImage,
        dnsIP,
      ),
    );
  }

  notes.push(
    `gateway: Service ${GATEWAY_SERVICE} (${clusterIP ?? 'address assigned on creation'}), ${replicas} replica(s), ` +
      (revision ? `injected by Istio revision ${revision}` : "injected by Istio's default revision"),
  );
  for (const g of plan.groups) {
    // Mesh-wide routes are counted, not listed: a scope can hold thousands of Services.
    const declared = g.routes.filter((r) => !r.mesh).map((r) => `${r.dest.raw} => ${r.routeHost}:${r.routePort}`);
    const mesh = g.routes.length - declared.length;
    notes.push(
      `outbound ${g.family} port ${g.port} -> gateway pod port ${g.podPort}: ${[...declared, ...(mesh > 0 ? [`${mesh} mesh-wide Service(s)`] : [])].join(', ')}`,
    );
  }
  for (const name of selecting
    .filter((s) => readOriginal(s))
    .map((s) => s.metadata?.name ?? '')
    .sort()) {
    notes.push(`inbound: Service ${name} -> ${name}-app`);
  }
  if (dnsMode) notes.push('dnsConfig: wpgw-dns answers the declared names with the gateway address');
  const concrete = plan.groups.flatMap((g) => g.routes).filter((r) => r.target.kind === 'external' && !r.dest.wildcard);
  if (concrete.length > 0) {
    notes.push(
      input.resolved
        ? `external names pinned to the addresses the controller checked: ${[...pinned.pins.entries()].map(([h, a]) => `${h} -> ${a.join(' ') || '(none)'}`).join(', ')}`
        : 'external names: resolution DNS here (offline); the controller (--external-names pin, the default) resolves them, refuses forbidden answers and pins the gateway to the checked addresses',
    );
  }
  notes.push(
    `gateway egress: cluster DNS, istiod, the declared in-cluster destinations' pods` +
      (plan.groups.some((g) => g.routes.some((r) => r.target.kind === 'external'))
        ? `, external destinations anywhere but link-local, loopback, metadata, private and cluster ranges${egress.allowed.length ? ` (re-opened: ${egress.allowed.map((c) => c.text).join(', ')})` : ''}`
        : ''),
  );
  notes.push(...mesh.notes);
  return { objects, conflicts, notes, ...(pinned.refusals.length > 0 ? { refusals: pinned.refusals } : {}) };
}

/** The namespace's egress ranges: its allowlist against the operator's and the discovered cluster ranges. */
export function namespaceEgressRanges(
  input: Pick<NamespaceInput, 'namespace' | 'clusterAddresses'>,
  opts: Pick<DesiredOptions, 'clusterCIDRs'>,
): EgressRanges {
  const ns = input.namespace.metadata?.name ?? '';
  return egressRanges(ns, input.namespace.metadata?.annotations?.[EGRESS_ALLOW_ANNOTATION], [
    ...(opts.clusterCIDRs ?? []),
    ...(input.clusterAddresses ?? []),
  ]);
}

/**
 * Callers' mTLS to the wpgw comes from the tlsMode label on the gateway pods. A live gateway whose
 * pods may still lack it (created before the label, its rollout not finished) keeps the old
 * caller-side ISTIO_MUTUAL DestinationRules until the rollout is done, so no caller falls back to
 * plaintext in between; prune then removes them.
 */
function gatewayLacksTlsMode(gateway: V1Deployment | undefined): boolean {
  if (!gateway) return false;
  // rolledOut, not ready: an old unlabelled pod may still serve while the new ones are ready
  return gateway.spec?.template?.metadata?.labels?.[TLS_MODE_LABEL] !== 'istio' || !rolledOut(gateway);
}

/**
 * Item 7: Istio translates a classic Gateway's server port N through the first Service selecting
 * the gateway pods that has port N and lacks NO_PORT_TRANSLATION_LABEL. wpgw puts that label on
 * every Service it points at the gateway pods (the wpgw Service, re-pointed Services), so only
 * others can translate: one re-pointed before the label (re-applying it adds the label) or a
 * user's own Service selecting the gateway pods. Report those.
 */
function translatedListeners(
  inbound: ReadonlyArray<{ served?: { name: string; ports: Array<{ podPort: number }> } }>,
  selecting: readonly V1Service[],
): Conflict[] {
  const out: Conflict[] = [];
  const translating = selecting.filter((s) => s.metadata?.labels?.[NO_PORT_TRANSLATION_LABEL] === undefined);
  for (const r of inbound) {
    if (!r.served) continue;
    for (const { podPort } of r.served.ports) {
      const other = translating.find(
        (s) => s.metadata?.name !== r.served!.name && (s.spec?.ports ?? []).some((p) => p.port === podPort),
      );
      if (other) {
        out.push({
          subject: `Service/${r.served.name}`,
          reason: 'ListenerPortTranslated',
          message: `its gateway listener port ${podPort} is also a port of Service ${other.metadata?.name ?? ''}, which selects the gateway pods without the ${NO_PORT_TRANSLATION_LABEL} label: Istio then binds that listener to ${other.metadata?.name ?? ''}'s targetPort instead. Re-apply Service ${other.metadata?.name ?? ''} (the webhook adds the label) or make it select other pods`,
        });
      }
    }
  }
  return out;
}

function serviceOwner(services: readonly V1Service[], name: string): ServiceOwner | undefined {
  return serviceOwnerOf(services.find((s) => s.metadata?.name === name));
}

function selectsGateway(s: V1Service, namespace: string): boolean {
  const want = gatewayLabels(namespace);
  const sel = s.spec?.selector ?? {};
  return Object.keys(sel).length === Object.keys(want).length && Object.entries(want).every(([k, v]) => sel[k] === v);
}

function gatewayReplicas(text: string | undefined, fallback: number, namespace: string, conflicts: Conflict[]): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (Number.isInteger(n) && n >= 1 && n <= MAX_GATEWAY_REPLICAS) return n;
  conflicts.push({
    subject: `Namespace/${namespace}`,
    reason: 'InvalidReplicas',
    message: `${REPLICAS_ANNOTATION} must be a whole number from 1 to ${MAX_GATEWAY_REPLICAS}, got "${text}"; using ${fallback}`,
  });
  return fallback;
}

/**
 * The Istio revision the gateway pods ask for: the namespace annotation, else the namespace's own
 * `istio.io/rev` label (Istio injects by it anyway), else the controller's default; none means
 * Istio's default revision. Istio's namespace labels beat a pod's istio.io/rev (its webhooks'
 * selectors), so a revision they override is reported rather than silently not applied.
 */
function istioRevision(
  labels: Record<string, string>,
  annotation: string | undefined,
  fallback: string | undefined,
  namespace: string,
  conflicts: Conflict[],
): string | undefined {
  const nsRevision = labels[ISTIO_REV_LABEL];
  let revision = nsRevision ?? fallback;
  if (annotation !== undefined) {
    if (isIstioRevision(annotation)) revision = annotation;
    else {
      conflicts.push({
        subject: `Namespace/${namespace}`,
        reason: 'InvalidIstioRevision',
        message: `${ISTIO_REVISION_ANNOTATION} must be an Istio revision or tag name (a DNS label), got "${annotation}"; using ${revision ?? "Istio's default revision"}`,
      });
    }
  }
  if (!revision) return undefined;
  const injection = labels[ISTIO_INJECTION_LABEL];
  if (injection !== undefined) {
    conflicts.push({
      subject: `Namespace/${namespace}`,
      reason: 'IstioRevisionOverridden',
      message: `the namespace label ${ISTIO_INJECTION_LABEL}=${injection} makes Istio ignore the gateway pods' ${ISTIO_REV_LABEL}=${revision}; remove it (or label the namespace ${ISTIO_REV_LABEL}=${revision}) so that revision injects the gateway`,
    });
  } else if (nsRevision !== undefined && nsRevision !== revision) {
    conflicts.push({
      subject: `Namespace/${namespace}`,
      reason: 'IstioRevisionOverridden',
      message: `the namespace label ${ISTIO_REV_LABEL}=${nsRevision} selects Istio's injector, not the gateway pods' ${ISTIO_REV_LABEL}=${revision}; make them agree`,
    });
  }
  return revision;
}
