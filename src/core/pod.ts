// Pod mutation: point a Windows pod's outbound names at its namespace's gateway.
// Pure: a pod (or pod template) in, a mutated copy or a skip/deny reason out.
// Idempotent like Istio's injector: what we injected is recorded in wpgw.io/status and stripped
// before every re-application, so re-admission and re-render change nothing.
import type { V1HostAlias, V1ObjectMeta, V1PodDNSConfig, V1PodSpec } from '@kubernetes/client-node';
import {
  DEFAULT_CLUSTER_DOMAIN,
  INJECT_KEY,
  MANAGED_LABEL,
  MESH_OUTBOUND_ANNOTATION,
  OUTBOUND_ANNOTATION,
  POD_STATUS_ANNOTATION,
  RESOLVER_ANNOTATION,
  RESOLVER_MODES,
  type ResolverMode,
} from '../names.js';
import type { AdmissionContext } from './context.js';
import { isHostProcess, windowsEvidence } from './detect.js';
import { uninjectIstio, type IstioUninjectResult } from './istio-uninject.js';
import { BoundedMemo } from './memo.js';
import { outboundNotWindowsHint } from './hints.js';
import { POD_STATUS_VERSION, parseStatus, type PodStatusRecord } from './records.js';
import { servicesReaching, unmanagedBecause, unmanagedPodWarning } from './workloads.js';
import { formatScope, MeshScopeError, parseMeshScope } from './mesh-scope.js';
import {
  classifyHost,
  dialNames,
  formatDestination,
  OutboundParseError,
  parseOutbound,
  reviewDestinations,
  type Destination,
} from './outbound.js';

/** A Pod or a pod template: the parts we read and write. */
export interface PodLike {
  metadata?: V1ObjectMeta;
  spec?: V1PodSpec;
}

/** Istio's injector label: a Windows pod must never get its Linux sidecar. */
export const ISTIO_INJECT_LABEL = 'sidecar.istio.io/inject';
/** Endpoint label by which Istio's auto-mTLS sends mTLS to a pod. */
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';

export type SkipReason = 'not_windows' | 'opted_out' | 'host_network' | 'host_process';

export type PodOutcome =
  | { action: 'skip'; reason: SkipReason; warnings: string[] }
  | { action: 'deny'; reason: DenyReason; message: string }
  | { action: 'mutate'; reason: 'injected' | 'stripped'; pod: PodLike; warnings: string[] };

export type DenyReason =
  | 'invalid_inject_value'
  | 'invalid_outbound'
  | 'invalid_resolver'
  | 'no_gateway'
  | 'no_dns_service'
  | 'wildcard_needs_dns'
  | 'host_network_outbound'
  | 'own_nameservers'
  | 'invalid_mesh_outbound'
  | 'mesh_outbound_needs_dns';

export interface PodMutationInput {
  pod: PodLike;
  namespace: string;
  ctx: AdmissionContext;
  clusterDomain?: string;
}

export function mutatePod(input: PodMutationInput): PodOutcome {
  const outcome = decidePod(input);
  // A pod left unmanaged that a re-pointed Service still reaches through <name>-app: say so.
  const left =
    outcome.action === 'skip'
      ? input.pod
      : outcome.action === 'mutate' && outcome.reason === 'stripped'
        ? outcome.pod
        : undefined;
  const why = left && unmanagedBecause(left, (n) => input.ctx.runtimeClassOS(n));
  if (!why || !input.ctx.repointedServices || outcome.action === 'deny') return outcome;
  const reaching = servicesReaching(left.metadata?.labels ?? {}, input.ctx.repointedServices(input.namespace));
  if (reaching.length === 0) return outcome;
  return {
    ...outcome,
    warnings: [...outcome.warnings, `${describe(input.pod)}: ${unmanagedPodWarning(why, reaching)}`],
  };
}

function decidePod({ pod, namespace, ctx, clusterDomain = DEFAULT_CLUSTER_DOMAIN }: PodMutationInput): PodOutcome {
  const who = describe(pod);
  const base = stripInjection(pod);
  const changedByStrip = base !== pod;
  const inject = injectValue(base.metadata);
  if (inject !== undefined && inject !== 'true' && inject !== 'false') {
    return deny('invalid_inject_value', `${who}: ${INJECT_KEY} must be "true" or "false", got "${inject}"`);
  }
  if (inject === 'false') {
    return changedByStrip ? { action: 'mutate', reason: 'stripped', pod: base, warnings: [] } : skip('opted_out');
  }
  const evidence = windowsEvidence(base.spec, (n) => ctx.runtimeClassOS(n));
  if (!base.spec || (!evidence && inject !== 'true')) {
    // An outbound list on a pod wpgw does not manage would silently do nothing: say so.
    const warnings =
      base.metadata?.annotations?.[OUTBOUND_ANNOTATION] !== undefined ? [`${who}: ${outboundNotWindowsHint()}`] : [];
    return changedByStrip
      ? { action: 'mutate', reason: 'stripped', pod: base, warnings }
      : { action: 'skip', reason: 'not_windows', warnings };
  }
  // Istio's injector may have run first (webhooks run in name order): everything below works on
  // the pod as its creator sent it.
  const unIstioed = uninjectIstio(base);
  const clean = unIstioed.pod;
  const spec = clean.spec ?? base.spec;
  const annotations = clean.metadata?.annotations ?? {};
  const plan = outboundPlan(annotations[OUTBOUND_ANNOTATION], namespace, clusterDomain);
  if (plan instanceof OutboundParseError) return deny('invalid_outbound', `${who}: ${plan.message}`);
  const destinations = plan.destinations;
  const nsAnnotations = ctx.namespaceAnnotations(namespace);
  const meshText = annotations[MESH_OUTBOUND_ANNOTATION] ?? nsAnnotations[MESH_OUTBOUND_ANNOTATION];
  let mesh: string[] = [];
  if (meshText !== undefined) {
    try {
      mesh = parseMeshScope(meshText).map(formatScope);
    } catch (e) {
      if (!(e instanceof MeshScopeError)) throw e;
      const where = annotations[MESH_OUTBOUND_ANNOTATION] !== undefined ? '' : ` (from namespace "${namespace}")`;
      return deny('invalid_mesh_outbound', `${who}: ${e.message}${where}`);
    }
  }
  const routes = destinations.length > 0 || mesh.length > 0;

  // The hosts file of a hostNetwork or HostProcess pod is the node's: hostAliases cannot reach it,
  // and NetworkPolicy does not apply. Refuse when routing was asked for; otherwise admit and warn.
  const hostReason = spec.hostNetwork ? 'host_network' : isHostProcess(spec) ? 'host_process' : undefined;
  if (hostReason) {
    const what = hostReason === 'host_network' ? 'hostNetwork' : 'a HostProcess container';
    if (routes) {
      return deny(
        'host_network_outbound',
        `${who}: uses ${what}, so wpgw cannot redirect its ${destinations.length > 0 ? OUTBOUND_ANNOTATION : MESH_OUTBOUND_ANNOTATION} destinations (the node's hosts file and network are shared); remove the annotation or run the pod without ${what}`,
      );
    }
    return {
      action: 'skip',
      reason: hostReason,
      warnings: [`${who}: uses ${what}; wpgw does not manage it and its traffic bypasses the gateway`],
    };
  }

  // Mesh-wide outbound follows Services as they come and go, which only wpgw-dns can: it makes
  // dnsConfig the default, and an explicit hostAliases beside it is refused.
  const modeText =
    annotations[RESOLVER_ANNOTATION] ??
    nsAnnotations[RESOLVER_ANNOTATION] ??
    (mesh.length > 0 ? 'dnsConfig' : 'hostAliases');
  if (!RESOLVER_MODES.includes(modeText as ResolverMode)) {
    return deny(
      'invalid_resolver',
      `${who}: ${RESOLVER_ANNOTATION} must be one of ${RESOLVER_MODES.join(', ')}, got "${modeText}"`,
    );
  }
  const mode = modeText as ResolverMode;
  if (mesh.length > 0 && mode === 'hostAliases') {
    return deny(
      'mesh_outbound_needs_dns',
      `${who}: ${MESH_OUTBOUND_ANNOTATION} (${mesh.join(' ')}) needs ${RESOLVER_ANNOTATION}: dnsConfig (a hosts file cannot follow Services as they come and go), but ${RESOLVER_ANNOTATION} is hostAliases; remove one of the two`,
    );
  }
  const wildcard = destinations.find((d) => d.wildcard);
  if (wildcard && mode === 'hostAliases') {
    return deny(
      'wildcard_needs_dns',
      `${who}: ${OUTBOUND_ANNOTATION} entry "${wildcard.raw}" is a wildcard, which a hosts file cannot hold; set ${RESOLVER_ANNOTATION}: dnsConfig`,
    );
  }

  const warnings: string[] = plan.advice.map((a) => `${who}: ${OUTBOUND_ANNOTATION} ${a}`);
  const status: PodStatusRecord = {
    v: POD_STATUS_VERSION,
    mode,
    outbound: [...plan.outbound],
    ...(mesh.length > 0 ? { mesh } : {}),
  };
  if (mesh.length > 0) {
    warnings.push(
      `${who}: ${MESH_OUTBOUND_ANNOTATION} ${mesh.join(' ')} reaches the HTTP and gRPC ports of the Services in scope; TCP-only and app-TLS ports cannot be told apart at the gateway without a name, so those the app calls still need a ${OUTBOUND_ANNOTATION} entry (\`wpgw status -n ${namespace}\` lists them)`,
    );
  }
  const newSpec: V1PodSpec = { ...spec };
  if (destinations.length > 0 && mode === 'hostAliases') {
    const ip = ctx.gatewayIP(namespace);
    if (!ip) return deny('no_gateway', noGatewayMessage(who, namespace));
    const hostnames = [...plan.hostnames];
    const userNames = new Set((spec.hostAliases ?? []).flatMap((h) => h.hostnames ?? []));
    const shadowed = hostnames.filter((h) => userNames.has(h));
    if (shadowed.length > 0) {
      warnings.push(
        `${who}: its own hostAliases also map ${shadowed.join(', ')}; the first entry in the hosts file wins`,
      );
    }
    newSpec.hostAliases = [...(spec.hostAliases ?? []), { ip, hostnames }];
    status.gatewayIP = ip;
    status.hostnames = hostnames;
  } else if (routes && mode === 'dnsConfig') {
    const own = spec.dnsConfig?.nameservers ?? [];
    if (own.length > 0) {
      // wpgw-dns would replace them, and it forwards to cluster DNS, not to them: names only they
      // resolve (an Active Directory domain, say) would stop resolving.
      return deny(
        'own_nameservers',
        `${who}: its dnsConfig lists its own nameservers (${own.join(', ')}), which ${RESOLVER_ANNOTATION}=dnsConfig would replace with wpgw-dns (forwarding to cluster DNS, not to them); set ${RESOLVER_ANNOTATION}: hostAliases on the pod to keep its own DNS (the NetworkPolicy then allows those nameservers)`,
      );
    }
    const dnsIP = ctx.dnsIP(namespace);
    if (!dnsIP) {
      return deny(
        'no_dns_service',
        `${who}: namespace "${namespace}" has no wpgw-dns Service (dnsConfig mode); the wpgw controller runs it when the namespace is annotated ${RESOLVER_ANNOTATION}=dnsConfig, wpgw.io/dns-server=enabled or ${MESH_OUTBOUND_ANNOTATION}, and the pod's owner retries`,
      );
    }
    status.dnsIP = dnsIP;
    status.previousDnsPolicy = spec.dnsPolicy ?? null;
    status.previousDnsConfig = spec.dnsConfig ?? null;
    newSpec.dnsPolicy = 'None';
    newSpec.dnsConfig = wpgwDnsConfig(dnsIP, namespace, clusterDomain, spec.dnsConfig);
  }

  // The managed pods' NetworkPolicy allows DNS to cluster DNS, wpgw-dns and the nameservers the pod
  // lists; the node's own resolvers (dnsPolicy Default) are not known to wpgw.
  if (newSpec.dnsPolicy === 'Default' && (newSpec.dnsConfig?.nameservers ?? []).length === 0) {
    warnings.push(
      `${who}: uses dnsPolicy Default (the node's resolvers), which the managed pods' NetworkPolicy does not allow: it allows cluster DNS and the nameservers listed in the pod's dnsConfig; list the node's resolvers in dnsConfig.nameservers or use dnsPolicy ClusterFirst`,
    );
  }

  // Istio's injector must skip this pod: the label keeps it from even calling the injector (its
  // objectSelector), and undoing an injection that already happened (Istio's webhook may run
  // before ours) covers webhook order.
  const labels: Record<string, string> = { ...clean.metadata?.labels, [MANAGED_LABEL]: 'true' };
  if (labels[ISTIO_INJECT_LABEL] === undefined) {
    labels[ISTIO_INJECT_LABEL] = 'false';
    status.istioOptOut = true;
  }
  if (clean !== base) warnings.push(istioWarning(who, unIstioed));
  // Istio sends mTLS to endpoints labelled so (auto mTLS); a pod without a sidecar cannot answer it.
  if (labels[TLS_MODE_LABEL] === 'istio') {
    warnings.push(
      `${who}: its own label ${TLS_MODE_LABEL}=istio makes Istio's proxies send it mTLS, which a pod without a sidecar cannot accept; remove the label`,
    );
  }
  const metadata: V1ObjectMeta = {
    ...clean.metadata,
    labels,
    annotations: { ...annotations, [POD_STATUS_ANNOTATION]: JSON.stringify(status) },
  };
  return { action: 'mutate', reason: 'injected', pod: { ...clean, metadata, spec: newSpec }, warnings };
}

/** What a wpgw.io/outbound value means for a pod in a namespace; frozen, shared by the memo. */
interface OutboundPlan {
  readonly destinations: readonly Destination[];
  /** Canonical texts (formatDestination), in annotation order. */
  readonly outbound: readonly string[];
  /** expandHostnames of the destinations. */
  readonly hostnames: readonly string[];
  /** reviewDestinations' warnings: entries that work but probably do not mean what was meant. */
  readonly advice: readonly string[];
}

const NO_OUTBOUND: OutboundPlan = Object.freeze({
  destinations: Object.freeze([]),
  outbound: Object.freeze([]),
  hostnames: Object.freeze([]),
  advice: Object.freeze([]),
});
const outboundPlans = new BoundedMemo<OutboundPlan | OutboundParseError>(256);

/** Parses and expands an outbound annotation once per (text, namespace, domain): replicas share it. */
function outboundPlan(
  text: string | undefined,
  namespace: string,
  clusterDomain: string,
): OutboundPlan | OutboundParseError {
  if (text === undefined) return NO_OUTBOUND;
  return outboundPlans.get(`${namespace}\n${clusterDomain}\n${text}`, () => {
    let destinations: Destination[];
    try {
      destinations = parseOutbound(text);
    } catch (e) {
      if (e instanceof OutboundParseError) return e;
      throw e;
    }
    const review = reviewDestinations(destinations, namespace, clusterDomain);
    if (review.error) return review.error;
    return Object.freeze({
      advice: Object.freeze(review.advice),
      destinations: Object.freeze(destinations.map((d) => Object.freeze(d))),
      outbound: Object.freeze(destinations.map(formatDestination)),
      hostnames: Object.freeze(expandHostnames(destinations, namespace, clusterDomain)),
    });
  });
}

/** Every name the pod may dial for its destinations, sorted and unique. */
export function expandHostnames(
  destinations: readonly Destination[],
  namespace: string,
  clusterDomain: string,
): string[] {
  const names = new Set<string>();
  for (const d of destinations) {
    for (const n of dialNames(classifyHost(d.host, namespace, clusterDomain), namespace, clusterDomain)) names.add(n);
  }
  return [...names].sort();
}

function wpgwDnsConfig(
  ip: string,
  namespace: string,
  clusterDomain: string,
  user: V1PodDNSConfig | undefined,
): V1PodDNSConfig {
  // The same search path ClusterFirst gives, so short names keep working; user additions follow.
  const searches = [`${namespace}.svc.${clusterDomain}`, `svc.${clusterDomain}`, clusterDomain];
  for (const s of user?.searches ?? []) if (!searches.includes(s)) searches.push(s);
  const options = [{ name: 'ndots', value: '5' }, ...(user?.options ?? []).filter((o) => o.name !== 'ndots')];
  return { nameservers: [ip], searches, options };
}

/** Removes what a previous admission injected (per the status annotation). Returns the input if nothing was. */
export function stripInjection(pod: PodLike): PodLike {
  const annotations = pod.metadata?.annotations;
  const raw = annotations?.[POD_STATUS_ANNOTATION];
  const hasLabel = pod.metadata?.labels?.[MANAGED_LABEL] !== undefined;
  if (raw === undefined && !hasLabel) return pod;
  const status = parseStatus(raw);
  const { [POD_STATUS_ANNOTATION]: _s, ...restAnnotations } = annotations ?? {};
  const { [MANAGED_LABEL]: _l, ...restLabels } = pod.metadata?.labels ?? {};
  if (status?.istioOptOut) delete restLabels[ISTIO_INJECT_LABEL];
  const metadata: V1ObjectMeta = { ...pod.metadata };
  setOrDelete(metadata, 'annotations', restAnnotations);
  setOrDelete(metadata, 'labels', restLabels);
  if (!pod.spec || !status) return { ...pod, metadata };
  const spec: V1PodSpec = { ...pod.spec };
  if (status.gatewayIP && status.hostnames) {
    const ours = (h: V1HostAlias) => h.ip === status.gatewayIP && sameList(h.hostnames ?? [], status.hostnames ?? []);
    // Ours is the last matching entry (it is appended); a user entry identical to it stays.
    const all = spec.hostAliases ?? [];
    const index = all.findLastIndex(ours);
    const kept = index < 0 ? all : all.filter((_, i) => i !== index);
    if (kept.length > 0) spec.hostAliases = kept;
    else delete spec.hostAliases;
  }
  if (status.mode === 'dnsConfig' && status.dnsIP && spec.dnsConfig?.nameservers?.[0] === status.dnsIP) {
    if (status.previousDnsPolicy) spec.dnsPolicy = status.previousDnsPolicy;
    else delete spec.dnsPolicy;
    if (status.previousDnsConfig) spec.dnsConfig = status.previousDnsConfig;
    else delete spec.dnsConfig;
  }
  return { ...pod, metadata, spec };
}

function istioWarning(who: string, r: IstioUninjectResult): string {
  const what = r.removed.length > 0 ? ` (${r.removed.join(', ')})` : '';
  const probes =
    r.restoredProbes.length > 0 ? `, gave the app back its own probes (${r.restoredProbes.join(', ')})` : '';
  return `${who}: removed Istio's sidecar injection${what}${probes}; Windows pods are meshed through the wpgw gateway`;
}

function injectValue(meta: V1ObjectMeta | undefined): string | undefined {
  return meta?.labels?.[INJECT_KEY] ?? meta?.annotations?.[INJECT_KEY];
}

function setOrDelete(meta: V1ObjectMeta, key: 'labels' | 'annotations', value: Record<string, string>): void {
  if (Object.keys(value).length > 0) meta[key] = value;
  else delete meta[key];
}

function sameList(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  const sb = [...b].sort();
  return [...a].sort().every((x, i) => x === sb[i]);
}

export function describe(pod: PodLike): string {
  const name = pod.metadata?.name ?? (pod.metadata?.generateName ? `${pod.metadata.generateName}*` : '<unnamed>');
  return `pod "${name}"`;
}

export function noGatewayMessage(who: string, namespace: string): string {
  return `${who}: namespace "${namespace}" has no wpgw gateway yet (Service "wpgw" not found); the wpgw controller creates it once the namespace is labelled wpgw.io/inject=enabled, and the pod's owner retries`;
}

function skip(reason: SkipReason): PodOutcome {
  return { action: 'skip', reason, warnings: [] };
}

function deny(reason: DenyReason, message: string): PodOutcome {
  return { action: 'deny', reason, message };
}
