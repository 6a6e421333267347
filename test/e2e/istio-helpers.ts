// Helpers for test/e2e/istio.test.ts: drive kubectl / test/istio scripts, dump xDS with
// test/istio/bin/xdsdump, and read the Envoy config it prints (protojson, proto field names).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { kubectlSync } from '../lib/kubectl.js';
import { deployment } from '../lib/manifests.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ISTIO_DIR = path.join(REPO, 'test/istio');
export const HARNESS_DIR = path.join(REPO, 'test/harness');

// ---------------------------------------------------------------- timing

export const timings: Array<{ what: string; seconds: number }> = [];

export async function timed<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    const seconds = (performance.now() - t0) / 1000;
    timings.push({ what, seconds });
    console.log(`[istio e2e] ${what}: ${seconds.toFixed(1)}s`);
  }
}

export { sleep } from '../lib/poll.js';

// ---------------------------------------------------------------- processes

/** Runs a script, its output shown on failure (and always when ISTIO_E2E_VERBOSE=1). */
export function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): string {
  const r = spawnSync(cmd, args, {
    env: { ...process.env, ...opts.env },
    input: opts.input,
    encoding: 'utf8',
    maxBuffer: 512 * 1024 * 1024,
    timeout: opts.timeoutMs ?? 600_000,
  });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (process.env.ISTIO_E2E_VERBOSE === '1') process.stdout.write(out);
  if (r.status !== 0) {
    throw new Error(
      `${path.basename(cmd)} ${args.join(' ')} failed (${r.status ?? r.signal ?? r.error?.message}):\n${out}`,
    );
  }
  return r.stdout;
}

export class Kubectl {
  readonly bin: string;
  readonly kubeconfig: string;

  constructor(bin: string, kubeconfig: string) {
    this.bin = bin;
    this.kubeconfig = kubeconfig;
  }

  run(args: string[], input?: string): string {
    return run(this.bin, args, {
      env: { KUBECONFIG: this.kubeconfig },
      ...(input !== undefined ? { input } : {}),
      timeoutMs: 120_000,
    });
  }

  /** Like run, but returns {ok, out} instead of throwing. */
  try(args: string[], input?: string): { ok: boolean; out: string } {
    const r = kubectlSync(this.bin, this.kubeconfig, args, { input, timeoutMs: 120_000 });
    return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
  }

  apply(yaml: string, extra: string[] = []): string {
    return this.run(['apply', ...extra, '-f', '-'], yaml);
  }

  json<T = any>(args: string[]): T {
    return JSON.parse(this.run([...args, '-o', 'json'])) as T;
  }
}

// ---------------------------------------------------------------- manifests

export const PROXY_IMAGE = 'docker.io/istio/proxyv2:1.30.3';

const linuxPodSpec = (sa: string, container: Record<string, unknown>) => ({
  serviceAccountName: sa,
  nodeSelector: { 'kubernetes.io/os': 'linux' },
  // as after Istio's sidecar injection (there is no injector in the test cluster)
  containers: [container, { name: 'istio-proxy', image: PROXY_IMAGE, args: ['proxy', 'sidecar'] }],
});

/** A sidecar-injected mesh workload as it looks after Istio's injection (labels included). */
export function meshApp(
  name: string,
  ns: string,
  port: number,
  extraLabels: Record<string, string> = {},
): Record<string, unknown>[] {
  const labels = {
    app: name,
    version: 'v1',
    'security.istio.io/tlsMode': 'istio',
    'service.istio.io/canonical-name': name,
    'service.istio.io/canonical-revision': 'v1',
    ...extraLabels,
  };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } },
    deployment(name, ns, {
      labels,
      annotations: { 'sidecar.istio.io/status': '{"containers":["istio-proxy"]}' },
      spec: linuxPodSpec(name, {
        name,
        image: `registry.example.com/${name}:1.0`,
        ports: [{ name: 'http', containerPort: port }],
      }),
    }),
  ];
}

// ---------------------------------------------------------------- xDS dump

export interface XdsDump {
  node: any;
  listeners: any[];
  routes: any[];
  clusters: any[];
  endpoints: any[];
}

export interface ProxySpec {
  type: 'router' | 'sidecar';
  ip: string;
  pod: string;
  namespace: string;
  serviceAccount: string;
  labels: Record<string, string>;
  nodeName?: string;
}

export function xdsDump(xdsdump: string, address: string, p: ProxySpec): XdsDump {
  const args = [
    `--addr=${address}`,
    `--type=${p.type}`,
    `--ip=${p.ip}`,
    `--pod=${p.pod}`,
    `--namespace=${p.namespace}`,
    `--sa=${p.serviceAccount}`,
    '--timeout=30s',
    '--settle=1s',
    ...Object.entries(p.labels).map(([k, v]) => `--label=${k}=${v}`),
    ...(p.nodeName ? [`--node-name=${p.nodeName}`] : []),
  ];
  return JSON.parse(run(xdsdump, args, { timeoutMs: 60_000 })) as XdsDump;
}

/** A proxy description for a live pod (its IP, labels, service account, node). */
export function proxyForPod(pod: any, type: 'router' | 'sidecar'): ProxySpec {
  return {
    type,
    ip: pod.status.podIP,
    pod: pod.metadata.name,
    namespace: pod.metadata.namespace,
    serviceAccount: pod.spec.serviceAccountName ?? 'default',
    labels: pod.metadata.labels ?? {},
    nodeName: pod.spec.nodeName,
  };
}

// ---------------------------------------------------------------- Istio's analyzers

export interface AnalyzerMessage {
  code: string;
  level: 'Error' | 'Warning' | 'Info';
  origin?: string;
  message: string;
  text: string;
}

/** Istio's config analyzers over the whole cluster, now (test/istio/bin/istio-analyze = istioctl analyze -A). */
export function analyzeCluster(bin: string, kubeconfig: string): { executed: string[]; messages: AnalyzerMessage[] } {
  return JSON.parse(run(bin, [`--kubeconfig=${kubeconfig}`], { timeoutMs: 120_000 })) as {
    executed: string[];
    messages: AnalyzerMessage[];
  };
}

// ---------------------------------------------------------------- reading Envoy config

export const TLS_SOCKET = 'envoy.transport_sockets.tls';
export const HCM = 'envoy.filters.network.http_connection_manager';
export const HTTP_RBAC = 'envoy.filters.http.rbac';
export const NETWORK_RBAC = 'envoy.filters.network.rbac';

export function listenerOnPort(d: XdsDump, port: number): any | undefined {
  return d.listeners.find((l) => l.address?.socket_address?.port_value === port);
}

export function listenerPorts(d: XdsDump): number[] {
  return d.listeners
    .map((l) => l.address?.socket_address?.port_value)
    .filter((p): p is number => typeof p === 'number')
    .sort((a, b) => a - b);
}

export function filterOf(chain: any, name: string): any | undefined {
  return (chain.filters ?? []).find((f: any) => f.name === name);
}

/** RDS route config names of the HTTP connection managers in a listener. */
export function rdsNames(listener: any): string[] {
  const chains = [
    ...(listener.filter_chains ?? []),
    ...(listener.default_filter_chain ? [listener.default_filter_chain] : []),
  ];
  return chains
    .map((c: any) => filterOf(c, HCM)?.typed_config?.rds?.route_config_name)
    .filter((n: unknown): n is string => typeof n === 'string');
}

export function routeConfig(d: XdsDump, name: string): any | undefined {
  return d.routes.find((r) => r.name === name);
}

export function cluster(d: XdsDump, name: string): any | undefined {
  return d.clusters.find((c) => c.name === name);
}

export function loadAssignment(d: XdsDump, clusterName: string): any | undefined {
  return d.endpoints.find((e) => e.cluster_name === clusterName);
}

/** "ip:port" of every endpoint of an EDS cluster. */
export function endpointAddresses(d: XdsDump, clusterName: string): string[] {
  const cla = loadAssignment(d, clusterName);
  return (cla?.endpoints ?? [])
    .flatMap((le: any) => le.lb_endpoints ?? [])
    .map((e: any) => e.endpoint?.address?.socket_address)
    .map((a: any) => `${a?.address}:${a?.port_value}`)
    .sort();
}

/** Envoy virtual host domain matching (exact, "*", "*.suffix", "prefix*"), port ignored. */
export function domainMatches(pattern: string, host: string): boolean {
  const h = host.toLowerCase().replace(/:\d+$/, '');
  const p = pattern.toLowerCase();
  if (p === '*') return true;
  if (p.startsWith('*')) return h.endsWith(p.slice(1)) && h.length > p.length - 1;
  if (p.endsWith('*')) return h.startsWith(p.slice(0, -1)) && h.length > p.length - 1;
  return p === h;
}

/** The virtual host Envoy picks for a Host: exact, then longest suffix/prefix wildcard, then "*". */
export function selectVhost(rc: any, host: string): any | undefined {
  const vhosts: any[] = rc?.virtual_hosts ?? [];
  const h = host.toLowerCase().replace(/:\d+$/, '');
  const exact = vhosts.find((v) => (v.domains ?? []).some((d: string) => d.toLowerCase() === h));
  if (exact) return exact;
  let best: { v: any; len: number } | undefined;
  for (const v of vhosts) {
    for (const d of v.domains ?? []) {
      if (d !== '*' && domainMatches(d, h) && (!best || d.length > best.len)) best = { v, len: d.length };
    }
  }
  if (best) return best.v;
  return vhosts.find((v) => (v.domains ?? []).includes('*'));
}

/** Clusters a virtual host's routes send traffic to. */
export function routeClusters(vhost: any): string[] {
  return (vhost?.routes ?? []).flatMap((r: any) => [
    ...(r.route?.cluster ? [r.route.cluster] : []),
    ...((r.route?.weighted_clusters?.clusters ?? []) as any[]).map((c) => c.name),
  ]);
}

/** Istio mTLS as an upstream (client) TLS context: workload cert "default", mesh root "ROOTCA". */
export function isIstioMutualUpstream(ts: any): boolean {
  if (ts?.name !== TLS_SOCKET) return false;
  const ctx = ts.typed_config?.common_tls_context;
  const certs = (ctx?.tls_certificate_sds_secret_configs ?? []).map((s: any) => s.name);
  const root = ctx?.combined_validation_context?.validation_context_sds_secret_config?.name;
  return certs.includes('default') && root === 'ROOTCA';
}

/**
 * The TLS a caller's cluster uses toward its endpoints by auto-mTLS: the socket of the
 * `tlsMode: istio` transport socket match, and whether every endpoint is marked for that match
 * (EDS metadata envoy.transport_socket_match from the pod label security.istio.io/tlsMode).
 */
export function autoMtls(
  d: XdsDump,
  clusterName: string,
): { socket: any; explicit: any; endpointsMarked: boolean; endpoints: number; marked: number } {
  const c = cluster(d, clusterName);
  const socket = (c?.transport_socket_matches ?? []).find((m: any) => m.match?.tlsMode === 'istio')?.transport_socket;
  const eps = (loadAssignment(d, clusterName)?.endpoints ?? []).flatMap((le: any) => le.lb_endpoints ?? []);
  const marked = eps.filter(
    (e: any) => e.metadata?.filter_metadata?.['envoy.transport_socket_match']?.tlsMode === 'istio',
  ).length;
  return {
    socket,
    explicit: c?.transport_socket,
    endpointsMarked: eps.length > 0 && marked === eps.length,
    endpoints: eps.length,
    marked,
  };
}

/** Istio mTLS as a downstream (server) TLS context: presents "default", requires a client cert validated by ROOTCA. */
export function isIstioMutualDownstream(ts: any): boolean {
  if (ts?.name !== TLS_SOCKET) return false;
  const tc = ts.typed_config;
  const ctx = tc?.common_tls_context;
  const certs = (ctx?.tls_certificate_sds_secret_configs ?? []).map((s: any) => s.name);
  const root = ctx?.combined_validation_context?.validation_context_sds_secret_config?.name;
  return (
    String(tc?.['@type'] ?? '').endsWith('DownstreamTlsContext') &&
    tc?.require_client_certificate === true &&
    certs.includes('default') &&
    root === 'ROOTCA'
  );
}

/** Does traffic on this cluster leave in plaintext (no TLS socket at all, nor a TLS socket match)? */
export function isPlaintextCluster(c: any): boolean {
  if (c?.transport_socket?.name === TLS_SOCKET) return false;
  return !(c?.transport_socket_matches ?? []).some((m: any) => m.transport_socket?.name === TLS_SOCKET);
}

/** Recursively collect every value under a key (e.g. all "direct_remote_ip" entries of an RBAC config). */
export function collect(obj: unknown, key: string, out: any[] = []): any[] {
  if (Array.isArray(obj)) for (const v of obj) collect(v, key, out);
  else if (obj && typeof obj === 'object') {
    for (const [k, v] of Object.entries(obj)) {
      if (k === key) out.push(v);
      collect(v, key, out);
    }
  }
  return out;
}

/** The HTTP RBAC filter config(s) of a listener. */
/** The typed configs of the HTTP filters named `name` in every filter chain of a listener. */
export function httpFilters(listener: any, name: string): any[] {
  return (listener.filter_chains ?? [])
    .map((c: any) => filterOf(c, HCM)?.typed_config)
    .filter(Boolean)
    .flatMap((h: any) => (h.http_filters ?? []).filter((f: any) => f.name === name).map((f: any) => f.typed_config));
}

export function httpRbac(listener: any): any[] {
  return httpFilters(listener, HTTP_RBAC);
}

export function readJson<T = any>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

export function exists(file: string): boolean {
  return existsSync(file);
}

export function exec(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}
