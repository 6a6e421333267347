// What admission knows about one namespace, computed once from plain lists of its objects. The
// webhook's watch cache, `wpgw render` and `wpgw webhook --dev` all build their AdmissionContext
// here, so they cannot disagree on which pods are Windows, which ports are taken or who owns a
// Service (issue 11, "one truth"). Pure; reads objects only through small accessors so slimmed
// cache objects (only the fields decisions read) work as well as full ones.
import type { V1Ingress, V1Namespace, V1ObjectMeta, V1PodSpec, V1Service } from '@kubernetes/client-node';
import { DNS_SERVICE, GATEWAY_SERVICE, MANAGED_LABEL, SERVICE_ORIGINAL_ANNOTATION } from '../names.js';
import { asRepointed } from './service.js';
import type { AdmissionContext } from './context.js';
import { canonicalLabels, serviceSelects } from './labels.js';
import { gatewayPodLabels } from './desired/gateway.js';
import { serviceOwnerOf, type ServiceOwner } from './service-rules.js';
import {
  topLevelWorkloads,
  unmanagedBecause,
  unmanagedWorkloads,
  type RepointedService,
  type UnmanagedWorkload,
  type WorkloadObject,
} from './workloads.js';

type LabelSet = Readonly<Record<string, string>>;

/** A Pod as far as these decisions read it. */
export interface PodObject {
  kind?: string;
  metadata?: V1ObjectMeta;
  spec?: V1PodSpec;
}

/**
 * The plain lists one namespace's view is computed from, each read only when an answer needs it
 * (a Pod admission asks for addresses, not for every template's labels).
 */
export interface NamespaceObjects {
  /** Its Namespace object, if known (annotations, the Istio revision). */
  namespace(): V1Namespace | undefined;
  services(): readonly V1Service[];
  /**
   * Pods as stored after admission; only managed ones (labelled wpgw.io/managed) count. The
   * webhook's cache watches only those; render passes its input Pods as the webhook admits them,
   * dev mode the ones it admitted. Bare Pods wpgw leaves alone are not watched (docs/architecture.md).
   */
  pods(): readonly PodObject[];
  /** Objects with a pod template (Deployments, ..., Argo Rollouts); ones whose owner is listed too are skipped. */
  workloads(): readonly WorkloadObject[];
  ingresses(): readonly V1Ingress[];
}

/** NamespaceObjects over lists already in hand. */
export function fromLists(lists: {
  namespace?: V1Namespace | undefined;
  services?: readonly V1Service[];
  pods?: readonly PodObject[];
  workloads?: readonly WorkloadObject[];
  ingresses?: readonly V1Ingress[];
}): NamespaceObjects {
  return {
    namespace: () => lists.namespace,
    services: () => lists.services ?? [],
    pods: () => lists.pods ?? [],
    workloads: () => lists.workloads ?? [],
    ingresses: () => lists.ingresses ?? [],
  };
}

/** Everything the admission core asks about one namespace. */
export interface NamespaceView {
  gatewayIP: string | undefined;
  dnsIP: string | undefined;
  annotations: Readonly<Record<string, string>>;
  /** Label sets of managed pods and of templates whose pods the webhook would manage, de-duplicated. */
  windowsLabelSets: readonly LabelSet[];
  /** Top-level workloads whose pods the webhook would not manage, sorted by name. */
  unmanagedWorkloads: readonly UnmanagedWorkload[];
  /** Per Service name: targetPorts it holds on the gateway pods (re-pointed Services). */
  inboundPorts: ReadonlyMap<string, readonly number[]>;
  /** Per Service name: its `port`s, for every Service whose selector selects the gateway pods. */
  gatewaySelectingPorts: ReadonlyMap<string, readonly number[]>;
  owners: ReadonlyMap<string, ServiceOwner>;
  /** Services re-pointed at this namespace's gateway, with their recorded selectors. */
  repointed: readonly RepointedService[];
  ingresses: readonly V1Ingress[];
}

/** The namespace-independent part: how RuntimeClasses pin an OS. */
export type RuntimeClassOS = (name: string) => string | undefined;

// ---- accessors (work on full and on slimmed objects) -------------------------------------------

const nameOf = (o: { metadata?: V1ObjectMeta } | undefined): string => o?.metadata?.name ?? '';
const labelsOf = (o: { metadata?: V1ObjectMeta } | undefined): LabelSet => o?.metadata?.labels ?? {};
const annotationsOf = (o: { metadata?: V1ObjectMeta } | undefined): Readonly<Record<string, string>> =>
  o?.metadata?.annotations ?? {};

/** A Service's ClusterIP, if it has a real one. */
export function clusterIPOf(svc: V1Service | undefined): string | undefined {
  const ip = svc?.spec?.clusterIP;
  return ip && ip !== 'None' ? ip : undefined;
}

// ---- the view ----------------------------------------------------------------------------------

/** Computes `make` on first use only. */
function once<T>(make: () => T): () => T {
  let done = false;
  let value: T;
  return () => {
    if (!done) {
      value = make();
      done = true;
    }
    return value;
  };
}

/** Which pods and templates are managed (Windows label sets) and which workloads are not. */
function classify(
  objects: NamespaceObjects,
  runtimeClassOS: RuntimeClassOS,
): { windows: LabelSet[]; unmanaged: UnmanagedWorkload[] } {
  const windows = new Map<string, LabelSet>();
  const addWindows = (labels: LabelSet): void => {
    if (Object.keys(labels).length === 0) return;
    const k = canonicalLabels(labels);
    if (!windows.has(k)) windows.set(k, Object.freeze({ ...labels }));
  };
  // A pod the webhook labelled managed is managed, whatever its labels say now.
  for (const pod of objects.pods()) if (labelsOf(pod)[MANAGED_LABEL] !== undefined) addWindows(labelsOf(pod));
  const templates = topLevelWorkloads(objects.workloads());
  for (const t of templates)
    if (unmanagedBecause(t.template, runtimeClassOS) === undefined) addWindows(labelsOf(t.template));
  const unmanaged = unmanagedWorkloads(templates, runtimeClassOS);
  return { windows: [...windows.values()], unmanaged };
}

interface ServiceFacts {
  gatewayIP: string | undefined;
  dnsIP: string | undefined;
  inboundPorts: Map<string, number[]>;
  gatewaySelectingPorts: Map<string, number[]>;
  owners: Map<string, ServiceOwner>;
  repointed: RepointedService[];
}

function serviceFacts(namespace: string, objects: NamespaceObjects): ServiceFacts {
  // Without the Istio revision label: a selector on istio.io/rev alone is not a way to pick a gateway.
  const gatewayPods = gatewayPodLabels(namespace);
  const facts: ServiceFacts = {
    gatewayIP: undefined,
    dnsIP: undefined,
    inboundPorts: new Map(),
    gatewaySelectingPorts: new Map(),
    owners: new Map(),
    repointed: [],
  };
  for (const svc of objects.services()) {
    const name = nameOf(svc);
    const ports = svc.spec?.ports ?? [];
    facts.owners.set(name, serviceOwnerOf(svc)!);
    if (name === GATEWAY_SERVICE) facts.gatewayIP = clusterIPOf(svc);
    if (name === DNS_SERVICE) facts.dnsIP = clusterIPOf(svc);
    // Any recorded original (even one that no longer parses) may still hold gateway pod ports.
    if (SERVICE_ORIGINAL_ANNOTATION in annotationsOf(svc)) {
      facts.inboundPorts.set(
        name,
        ports.map((p) => p.targetPort).filter((p): p is number => typeof p === 'number'),
      );
    }
    const repointed = asRepointed(svc, namespace);
    if (repointed) facts.repointed.push(repointed);
    // Istio translates a classic Gateway's server port through every Service selecting its pods.
    if (serviceSelects(svc.spec?.selector, gatewayPods))
      facts.gatewaySelectingPorts.set(
        name,
        ports.map((p) => p.port),
      );
  }
  // By name: the same warnings whatever order a cache or a file holds the Services in.
  facts.repointed.sort((a, b) => a.name.localeCompare(b.name));
  return facts;
}

/** The view of one namespace; each part is computed from its lists on first use. */
export function namespaceView(
  namespace: string,
  objects: NamespaceObjects,
  runtimeClassOS: RuntimeClassOS,
): NamespaceView {
  const pods = once(() => classify(objects, runtimeClassOS));
  const services = once(() => serviceFacts(namespace, objects));
  const annotations = once(() => annotationsOf(objects.namespace()));
  const ingresses = once(() => objects.ingresses());
  return {
    get gatewayIP() {
      return services().gatewayIP;
    },
    get dnsIP() {
      return services().dnsIP;
    },
    get annotations() {
      return annotations();
    },
    get windowsLabelSets() {
      return pods().windows;
    },
    get unmanagedWorkloads() {
      return pods().unmanaged;
    },
    get inboundPorts() {
      return services().inboundPorts;
    },
    get gatewaySelectingPorts() {
      return services().gatewaySelectingPorts;
    },
    get owners() {
      return services().owners;
    },
    get repointed() {
      return services().repointed;
    },
    get ingresses() {
      return ingresses();
    },
  };
}

function portsExcept(byService: ReadonlyMap<string, readonly number[]>, exceptService: string): Set<number> {
  const out = new Set<number>();
  for (const [name, ports] of byService) if (name !== exceptService) for (const p of ports) out.add(p);
  return out;
}

/** Where an AdmissionContext gets its per-namespace views (memoized by the caller as it likes). */
export interface ClusterView {
  view(namespace: string): NamespaceView;
  runtimeClassOS: RuntimeClassOS;
  /** Fixed addresses instead of the Services' ClusterIPs (render's placeholders, dev mode). */
  addresses?: { gatewayIP?: string; dnsIP?: string };
}

/** The one AdmissionContext implementation: every answer is read from a NamespaceView. */
export function admissionContext(cluster: ClusterView): AdmissionContext {
  const { view, runtimeClassOS, addresses } = cluster;
  return {
    gatewayIP: (ns) => addresses?.gatewayIP ?? view(ns).gatewayIP,
    dnsIP: (ns) => addresses?.dnsIP ?? view(ns).dnsIP,
    runtimeClassOS,
    namespaceAnnotations: (ns) => ({ ...view(ns).annotations }),
    windowsLabelSets: (ns) => view(ns).windowsLabelSets,
    takenInboundPorts: (ns, except) => portsExcept(view(ns).inboundPorts, except),
    gatewaySelectingServicePorts: (ns, except) => portsExcept(view(ns).gatewaySelectingPorts, except),
    serviceOwner: (ns, name) => view(ns).owners.get(name),
    unmanagedWorkloads: (ns) => view(ns).unmanagedWorkloads,
    ingresses: (ns) => view(ns).ingresses,
    repointedServices: (ns) => view(ns).repointed,
  };
}
