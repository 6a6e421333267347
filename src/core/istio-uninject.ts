// Undoing Istio's sidecar injection on a pod wpgw manages. Pure: a pod in, the pod as it was
// before istiod's injector (pkg/kube/inject) changed it, plus what was undone.
//
// Mutating webhooks run in name order, so `istio-sidecar-injector` (and AKS's
// `istio-sidecar-injector-asm-*`) run before `wpgw` in a namespace with Istio injection on. A Linux
// sidecar cannot run on a Windows node, and half an injection breaks the app too: Istio rewrites
// the app's probes to its agent on port 15020 and points prometheus.io/* at it. So all of it goes,
// and only what the evidence says Istio added:
//   - sidecar.istio.io/status (what the template put in: containers, initContainers, volumes,
//     imagePullSecrets, revision), or without it the shapes the template renders (istio-proxy with
//     `proxy sidecar` args, istio-init/istio-validation running istio-iptables);
//   - the injected proxy's env: ISTIO_KUBE_APP_PROBERS (the app's probes as they were, keyed by
//     /app-health/<container>/<probe>), ISTIO_PROMETHEUS_ANNOTATIONS (the app's scrape settings),
//     ISTIO_META_WORKLOAD_NAME / _NETWORK / _ENABLE_HBONE (what Istio derived labels from);
//   - metadata.managedFields, when the API server sent them: it records the fields of the object
//     as its creator sent it *before* mutating admission, so a label or annotation absent there
//     was added by a webhook, and one present there is the user's even when its value equals
//     Istio's default. Without them (render, hand-made reviews) a label or annotation Istio may
//     have added is removed only when its value is the one Istio's template would have written.
import type { V1Container, V1ObjectMeta, V1PodSpec, V1Probe } from '@kubernetes/client-node';
import type { PodLike } from './pod.js';

export const ISTIO_STATUS_ANNOTATION = 'sidecar.istio.io/status';
const PROXY = 'istio-proxy';
const DEFAULT_STATUS_PORT = '15020';
const STATS_PATH = '/stats/prometheus';

/** What was undone, for the admission warning. */
export interface IstioUninjectResult {
  pod: PodLike;
  /** Names of the containers and init containers removed. */
  removed: string[];
  /** Probes and lifecycle handlers given back to the app ("app/readinessProbe"). */
  restoredProbes: string[];
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const stringList = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
const containersOf = (v: unknown): V1Container[] =>
  Array.isArray(v) ? v.filter((c): c is V1Container => isObject(c) && typeof c.name === 'string') : [];

/** The fields the pod's creator set, from managedFields; undefined when the API server sent none. */
interface Owned {
  labels: Set<string>;
  annotations: Set<string>;
  volumes: Set<string>;
  imagePullSecrets: Set<string>;
  fsGroup: boolean;
}

function ownedFields(meta: V1ObjectMeta | undefined): Owned | undefined {
  const entries = Array.isArray(meta?.managedFields)
    ? meta.managedFields.filter((e) => isObject(e) && isObject(e.fieldsV1))
    : [];
  if (entries.length === 0) return undefined;
  const owned: Owned = {
    labels: new Set(),
    annotations: new Set(),
    volumes: new Set(),
    imagePullSecrets: new Set(),
    fsGroup: false,
  };
  const fieldKeys = (v: unknown, into: Set<string>) => {
    if (isObject(v)) for (const k of Object.keys(v)) if (k.startsWith('f:')) into.add(k.slice(2));
  };
  const listNames = (v: unknown, into: Set<string>) => {
    if (!isObject(v)) return;
    for (const k of Object.keys(v)) {
      if (!k.startsWith('k:')) continue;
      try {
        const key = JSON.parse(k.slice(2)) as unknown;
        if (isObject(key) && typeof key.name === 'string') into.add(key.name);
      } catch {
        // not a key we read
      }
    }
  };
  for (const e of entries) {
    const f = e.fieldsV1 as Json;
    const m = f['f:metadata'];
    if (isObject(m)) {
      fieldKeys(m['f:labels'], owned.labels);
      fieldKeys(m['f:annotations'], owned.annotations);
    }
    const s = f['f:spec'];
    if (isObject(s)) {
      listNames(s['f:volumes'], owned.volumes);
      listNames(s['f:imagePullSecrets'], owned.imagePullSecrets);
      if (isObject(s['f:securityContext']) && 'f:fsGroup' in s['f:securityContext']) owned.fsGroup = true;
    }
  }
  return owned;
}

/** sidecar.istio.io/status as istiod writes it (getInjectionStatus); tolerant of foreign shapes. */
interface InjectionStatus {
  containers: string[];
  initContainers: string[];
  volumes: string[];
  imagePullSecrets: string[];
  revision?: string;
}

function parseInjectionStatus(raw: string | undefined): InjectionStatus | undefined {
  if (raw === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (!isObject(v)) return undefined;
  return {
    containers: stringList(v.containers),
    initContainers: stringList(v.initContainers),
    volumes: stringList(v.volumes),
    imagePullSecrets: stringList(v.imagePullSecrets),
    ...(typeof v.revision === 'string' ? { revision: v.revision } : {}),
  };
}

/** The sidecar the template renders: `istio-proxy` running pilot-agent's `proxy sidecar` (classic or native). */
const isInjectedProxy = (c: V1Container) => c.name === PROXY && Array.isArray(c.args) && c.args[0] === 'proxy';
/** istio-init (iptables) or istio-validation (Istio CNI), both run `istio-iptables`. */
const isIstioInit = (c: V1Container) =>
  (c.name === 'istio-init' || c.name === 'istio-validation') && Array.isArray(c.args) && c.args[0] === 'istio-iptables';

// The volumes the sidecar template declares (1.2x), removed without a status record only when no
// remaining container mounts them.
const TEMPLATE_VOLUMES = [
  'workload-socket',
  'credential-socket',
  'workload-certs',
  'istio-envoy',
  'istio-data',
  'istio-podinfo',
  'istio-token',
  'istiod-ca-cert',
  'istio-ca-crl',
  'istio-certs',
  'gke-workload-certificate',
  'custom-bootstrap-volume',
  'lightstep-certs',
];

// Annotations the template writes only with Istio CNI on (istio-validation instead of istio-init).
const CNI_ANNOTATIONS = [
  'sidecar.istio.io/interceptionMode',
  'traffic.sidecar.istio.io/includeInboundPorts',
  'traffic.sidecar.istio.io/excludeInboundPorts',
  'traffic.sidecar.istio.io/includeOutboundIPRanges',
  'traffic.sidecar.istio.io/excludeOutboundIPRanges',
  'traffic.sidecar.istio.io/includeOutboundPorts',
  'traffic.sidecar.istio.io/excludeOutboundPorts',
];

const PROBES = [
  ['readinessProbe', 'app-health', 'readyz'],
  ['livenessProbe', 'app-health', 'livez'],
  ['startupProbe', 'app-health', 'startupz'],
] as const;
const HANDLERS = [
  ['preStop', 'app-lifecycle', 'prestopz'],
  ['postStart', 'app-lifecycle', 'poststartz'],
] as const;

/**
 * Undoes Istio's sidecar injection. Returns the input pod itself (same object) when there is no
 * evidence of one, so a second admission of wpgw's own output changes nothing.
 */
export function uninjectIstio(pod: PodLike): IstioUninjectResult {
  const spec = pod.spec;
  const annotations = pod.metadata?.annotations ?? {};
  const status = parseInjectionStatus(annotations[ISTIO_STATUS_ANNOTATION]);
  const containers = containersOf(spec?.containers);
  const initContainers = containersOf(spec?.initContainers);
  const proxy = [...containers, ...initContainers].find((c) => c.name === PROXY);
  const injectedContainers = new Set(status?.containers ?? []);
  const injectedInits = new Set(status?.initContainers ?? []);
  for (const c of containers) if (isInjectedProxy(c)) injectedContainers.add(c.name);
  for (const c of initContainers) if (isInjectedProxy(c) || isIstioInit(c)) injectedInits.add(c.name);
  if (!spec || (!status && injectedContainers.size === 0 && injectedInits.size === 0))
    return { pod, removed: [], restoredProbes: [] };

  const owned = ownedFields(pod.metadata);
  const env = proxyEnv(injectedContainers.has(PROXY) || injectedInits.has(PROXY) ? proxy : undefined);
  const removed = [
    ...containers.filter((c) => injectedContainers.has(c.name)),
    ...initContainers.filter((c) => injectedInits.has(c.name)),
  ].map((c) => c.name);
  const cni = initContainers.some((c) => injectedInits.has(c.name) && c.name === 'istio-validation');
  const statusPort = annotations['status.sidecar.istio.io/port'] ?? DEFAULT_STATUS_PORT;

  // Probes first: the app containers keep their order, only the agent's URLs are replaced.
  const probers = parseJsonObject(env.get('ISTIO_KUBE_APP_PROBERS'));
  const restoredProbes: string[] = [];
  const restore = (c: V1Container) => restoreProbes(c, probers, statusPort, restoredProbes);
  // Entries that are not containers (never from the API server) pass through untouched.
  const keep = (list: unknown, injected: Set<string>): V1Container[] =>
    (Array.isArray(list) ? list : []).flatMap((c: unknown) =>
      isObject(c) && typeof c.name === 'string'
        ? injected.has(c.name)
          ? []
          : [restore(c as unknown as V1Container)]
        : [c as V1Container],
    );
  const newSpec: V1PodSpec = { ...spec, containers: keep(spec.containers, injectedContainers) };
  if (Array.isArray(spec.initContainers)) setList(newSpec, 'initContainers', keep(spec.initContainers, injectedInits));

  const remaining = [
    ...newSpec.containers,
    ...(newSpec.initContainers ?? []),
    ...containersOf(spec.ephemeralContainers),
  ];
  const mounted = new Set(
    remaining.flatMap((c) => (Array.isArray(c?.volumeMounts) ? c.volumeMounts.map((m) => m?.name) : [])),
  );
  const injectedVolumes = new Set(status ? status.volumes : TEMPLATE_VOLUMES);
  // A volume a remaining container mounts stays (removing it would make the pod invalid).
  const dropVolume = (name: string) => injectedVolumes.has(name) && !mounted.has(name) && !owned?.volumes.has(name);
  if (Array.isArray(spec.volumes))
    setList(
      newSpec,
      'volumes',
      spec.volumes.filter((v) => !dropVolume(v?.name)),
    );
  const pullSecrets = new Set(status?.imagePullSecrets ?? []);
  if (Array.isArray(spec.imagePullSecrets)) {
    setList(
      newSpec,
      'imagePullSecrets',
      spec.imagePullSecrets.filter(
        (s) => !(pullSecrets.has(s?.name ?? '') && !owned?.imagePullSecrets.has(s?.name ?? '')),
      ),
    );
  }
  // Istio < 1.18 with ENABLE_LEGACY_FSGROUP_INJECTION set fsGroup 1337 for the proxy's token;
  // only managedFields can tell it from the user's own.
  if (owned && !owned.fsGroup && spec.securityContext?.fsGroup === 1337) {
    const { fsGroup: _f, ...sc } = spec.securityContext;
    if (Object.keys(sc).length > 0) newSpec.securityContext = sc;
    else delete newSpec.securityContext;
  }

  const labels = { ...pod.metadata?.labels };
  const newAnnotations = { ...annotations };
  // Removes a key Istio may have added: per managedFields when present, else when its value is
  // the one Istio's template would have written (`expected`).
  const drop = (
    map: Record<string, string>,
    ownedKeys: Set<string> | undefined,
    key: string,
    expected: string | string[] | boolean | undefined,
  ) => {
    const value = map[key];
    if (value === undefined || ownedKeys?.has(key)) return;
    const matches = expected === true || value === expected || (Array.isArray(expected) && expected.includes(value));
    if (owned || matches) delete map[key];
  };
  const appLabel = labels['app.kubernetes.io/name'] ?? labels.app;
  drop(labels, owned?.labels, 'security.istio.io/tlsMode', 'istio');
  drop(
    labels,
    owned?.labels,
    'service.istio.io/canonical-name',
    canonicalName(appLabel ?? env.get('ISTIO_META_WORKLOAD_NAME')),
  );
  drop(
    labels,
    owned?.labels,
    'service.istio.io/canonical-revision',
    labels['app.kubernetes.io/version'] ?? labels.version ?? 'latest',
  );
  drop(
    labels,
    owned?.labels,
    'networking.istio.io/tunnel',
    env.get('ISTIO_META_ENABLE_HBONE') === 'true' ? 'http' : undefined,
  );
  drop(labels, owned?.labels, 'topology.istio.io/network', env.get('ISTIO_META_NETWORK'));

  delete newAnnotations[ISTIO_STATUS_ANNOTATION];
  const ownedAnnotations = owned?.annotations;
  drop(newAnnotations, ownedAnnotations, 'proxy.istio.io/overrides', true);
  drop(newAnnotations, ownedAnnotations, 'istio.io/rev', status?.revision ?? 'default');
  const firstApp = newSpec.containers[0]?.name;
  drop(newAnnotations, ownedAnnotations, 'kubectl.kubernetes.io/default-container', firstApp);
  drop(newAnnotations, ownedAnnotations, 'kubectl.kubernetes.io/default-logs-container', firstApp);
  for (const key of CNI_ANNOTATIONS) drop(newAnnotations, ownedAnnotations, key, cni);
  drop(
    newAnnotations,
    ownedAnnotations,
    'prometheus.istio.io/secure-port',
    env.get('ENVOY_SECURE_MERGED_METRICS_PORT'),
  );
  dropMultusNetwork(newAnnotations);
  restorePrometheus(
    newAnnotations,
    statusPort,
    parseJsonObject(env.get('ISTIO_PROMETHEUS_ANNOTATIONS')),
    ownedAnnotations,
  );

  const metadata: V1ObjectMeta = { ...pod.metadata };
  setMap(metadata, 'labels', labels);
  setMap(metadata, 'annotations', newAnnotations);
  return { pod: { ...pod, metadata, spec: newSpec }, removed, restoredProbes };
}

function proxyEnv(proxy: V1Container | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of Array.isArray(proxy?.env) ? proxy.env : [])
    if (isObject(e) && typeof e.name === 'string' && typeof e.value === 'string') out.set(e.name, e.value);
  return out;
}

function parseJsonObject(raw: string | undefined): Json {
  if (raw === undefined) return {};
  try {
    const v = JSON.parse(raw) as unknown;
    return isObject(v) ? v : {};
  } catch {
    return {};
  }
}

/** The template's canonical-name default: `... | trunc 63 | trimSuffix "-"` (1.2x), `trimAll "-_."` (newer). */
function canonicalName(name: string | undefined): string[] {
  if (name === undefined) return [];
  const cut = name.slice(0, 63);
  return [cut.replace(/-$/, ''), cut.replace(/^[-_.]+|[-_.]+$/g, '')];
}

/**
 * Gives a container back the probes and lifecycle handlers Istio pointed at its agent
 * (convertAppProber: httpGet to /app-health/<container>/<kind> on the status port; TCP and gRPC
 * probes became httpGet too), from the originals the agent was given in ISTIO_KUBE_APP_PROBERS.
 * The other probe fields (periods, thresholds, timeoutSeconds) were never changed.
 */
function restoreProbes(c: V1Container, probers: Json, statusPort: string, restored: string[]): V1Container {
  let out = c;
  const original = (url: string, action: unknown): Json | undefined => {
    if (!isObject(action) || action.path !== url || String(action.port) !== statusPort) return undefined;
    const p = probers[url];
    if (!isObject(p)) return undefined;
    for (const k of ['httpGet', 'tcpSocket', 'grpc'] as const) if (isObject(p[k])) return { [k]: p[k] };
    return undefined;
  };
  for (const [field, prefix, kind] of PROBES) {
    const probe = c[field];
    const action = isObject(probe) ? original(`/${prefix}/${c.name}/${kind}`, probe.httpGet) : undefined;
    if (!action || !probe) continue;
    const { httpGet: _h, ...rest } = probe;
    out = { ...out, [field]: { ...rest, ...action } as V1Probe };
    restored.push(`${c.name}/${field}`);
  }
  const lifecycle = isObject(c.lifecycle) ? c.lifecycle : undefined;
  for (const [field, prefix, kind] of HANDLERS) {
    const handler: unknown = lifecycle?.[field];
    const action = isObject(handler) ? original(`/${prefix}/${c.name}/${kind}`, handler.httpGet) : undefined;
    if (!action || !isObject(handler)) continue;
    const { httpGet: _h, ...rest } = handler;
    // Lifecycle handlers have no gRPC; the prober carries no timeout for them.
    const { grpc: _g, ...handlerAction } = action;
    out = { ...out, lifecycle: { ...out.lifecycle, [field]: { ...rest, ...handlerAction } } };
    restored.push(`${c.name}/${field}`);
  }
  return out;
}

/** strutil.SanitizeLabelName: how Istio matches prometheus.io/* keys in any spelling. */
const sanitize = (key: string) => key.replace(/[^a-zA-Z0-9_]/g, '_');
const PROMETHEUS_KEYS: Record<string, string> = {
  prometheus_io_scrape: 'prometheus.io/scrape',
  prometheus_io_path: 'prometheus.io/path',
  prometheus_io_port: 'prometheus.io/port',
  prometheus_istio_io_scrape_targets: 'prometheus.istio.io/scrape-targets',
};

/**
 * Metrics merge (applyPrometheusMerge) replaced the app's prometheus.io/* annotations with the
 * agent's (port = status port, path /stats/prometheus, scrape true) and handed the app's to the
 * agent in ISTIO_PROMETHEUS_ANNOTATIONS. Undo it the way Istio's own stripPod recognises it
 * (port equal to the status port), then put the app's back, under the keys the creator used when
 * managedFields say which.
 */
function restorePrometheus(
  annotations: Record<string, string>,
  statusPort: string,
  saved: Json,
  owned: Set<string> | undefined,
): void {
  if (annotations['prometheus.io/port'] !== statusPort || annotations['prometheus.io/path'] !== STATS_PATH) return;
  for (const key of Object.keys(annotations)) if (sanitize(key) in PROMETHEUS_KEYS) delete annotations[key];
  const keyFor = (sanitized: string) =>
    [...(owned ?? [])].find((k) => sanitize(k) === sanitized) ?? PROMETHEUS_KEYS[sanitized]!;
  const targets = Array.isArray(saved.targets) ? saved.targets.filter(isObject) : [];
  const values: Record<string, unknown> = {
    prometheus_io_scrape: saved.scrape,
    prometheus_io_path: saved.path,
    prometheus_io_port: saved.port,
  };
  if (targets.length > 0) {
    values.prometheus_istio_io_scrape_targets = targets.map((t) => `${String(t.port)}:${String(t.path)}`).join(',');
    // Istio copies the first target into port/path for old agents; they were the app's only if
    // its creator set them.
    for (const k of ['prometheus_io_path', 'prometheus_io_port']) {
      if (![...(owned ?? [])].some((o) => sanitize(o) === k)) delete values[k];
    }
  }
  for (const [sanitized, value] of Object.entries(values)) {
    if (typeof value === 'string' && value !== '') annotations[keyFor(sanitized)] = value;
  }
}

/** With Istio CNI on Multus, the template appends default/istio-cni to the pod's networks. */
function dropMultusNetwork(annotations: Record<string, string>): void {
  const key = 'k8s.v1.cni.cncf.io/networks';
  const value = annotations[key];
  if (value === undefined) return;
  let next: string;
  if (value.trim().startsWith('[')) {
    const list = parseJsonArray(value);
    if (!list) return;
    const kept = list.filter(
      (n) => !(isObject(n) && n.name === 'istio-cni' && (n.namespace ?? 'default') === 'default'),
    );
    if (kept.length === list.length) return;
    next = kept.length > 0 ? JSON.stringify(kept) : '';
  } else {
    const parts = value.split(',').map((s) => s.trim());
    const kept = parts.filter((s) => s !== 'default/istio-cni');
    if (kept.length === parts.length) return;
    next = kept.join(',');
  }
  if (next === '') delete annotations[key];
  else annotations[key] = next;
}

function parseJsonArray(raw: string): unknown[] | undefined {
  try {
    const v = JSON.parse(raw) as unknown;
    return Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function setList<K extends 'initContainers' | 'volumes' | 'imagePullSecrets'>(
  spec: V1PodSpec,
  key: K,
  value: NonNullable<V1PodSpec[K]>,
): void {
  if (value.length > 0) spec[key] = value;
  else delete spec[key];
}

function setMap(meta: V1ObjectMeta, key: 'labels' | 'annotations', value: Record<string, string>): void {
  if (Object.keys(value).length > 0) meta[key] = value;
  else delete meta[key];
}
