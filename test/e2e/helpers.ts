// Helpers for the e2e suite on test/lib's toolkit: kubectl on the suite's cluster, JSON reads,
// polling, the controller's metrics, the apps the tests deploy.
import { afterEach, beforeEach, inject } from 'vitest';
import { stringify } from 'yaml';
import { kubectlSync, type KubectlResult } from '../lib/kubectl.js';
import { deployment } from '../lib/manifests.js';
import { scrapeSum } from '../lib/metrics.js';
import { eventually, sleep } from '../lib/poll.js';

export { eventually, sleep, type KubectlResult };

export const env = () => inject('e2e');

/** Runs kubectl with the admin kubeconfig; never throws (tests assert on status and stderr). */
export function kubectl(args: string[], input?: string): KubectlResult {
  const e = env();
  return kubectlSync(e.kubectl, e.kubeconfig, args, { input, timeoutMs: 60_000 });
}

/** kubectl that must succeed. */
export function k(args: string[], input?: string): string {
  const r = kubectl(args, input);
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

export function apply(objects: unknown[] | string, extra: string[] = []): string {
  const text = typeof objects === 'string' ? objects : objects.map((o) => stringify(o)).join('---\n');
  return k(['apply', ...extra, '-f', '-'], text);
}

export function getJson<T = any>(args: string[]): T | undefined {
  const r = kubectl(['get', ...args, '-o', 'json']);
  if (r.status !== 0) {
    if (/NotFound|not found/.test(r.stderr)) return undefined;
    throw new Error(`kubectl get ${args.join(' ')}: ${r.stderr}`);
  }
  return JSON.parse(r.stdout) as T;
}

export function list<T = any>(args: string[]): T[] {
  return (getJson<{ items: T[] }>(args)?.items ?? []) as T[];
}

export function createNamespace(name: string, optIn = true, annotations: Record<string, string> = {}): void {
  kubectl(['delete', 'namespace', name, '--ignore-not-found', '--wait=true']);
  apply([
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels: optIn ? { 'wpgw.io/inject': 'enabled' } : {}, annotations },
    },
  ]);
}

export async function waitForDefaultServiceAccount(ns: string): Promise<void> {
  await eventually(`default ServiceAccount in ${ns}`, () => getJson(['serviceaccount', 'default', '-n', ns]));
}

/** Objects the controller owns in a namespace, as "Kind/name". */
export function managedObjects(ns: string): string[] {
  const kinds =
    'serviceaccounts,services,configmaps,deployments,poddisruptionbudgets,networkpolicies,gateways.networking.istio.io,virtualservices.networking.istio.io,destinationrules.networking.istio.io,serviceentries.networking.istio.io,authorizationpolicies.security.istio.io';
  return list<{ kind: string; metadata: { name: string } }>([
    kinds,
    '-n',
    ns,
    '-l',
    'app.kubernetes.io/managed-by=wpgw',
  ])
    .map((o) => `${o.kind}/${o.metadata.name}`)
    .sort();
}

const KWOK_TOLERATION = { key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' };

export function windowsDeployment(
  name: string,
  ns: string,
  outbound: string,
  replicas = 2,
  extraLabels: Record<string, string> = {},
): Record<string, unknown> {
  return deployment(name, ns, {
    replicas,
    labels: extraLabels,
    annotations: { 'wpgw.io/outbound': outbound },
    spec: {
      nodeSelector: { 'kubernetes.io/os': 'windows' },
      tolerations: [KWOK_TOLERATION],
      containers: [
        {
          name: 'app',
          image: 'mcr.microsoft.com/windows/servercore/iis:windowsservercore-ltsc2022',
          ports: [{ name: 'http', containerPort: 80 }],
        },
      ],
    },
  });
}

export function linuxDeployment(name: string, ns: string): Record<string, unknown> {
  return deployment(name, ns, {
    spec: {
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      tolerations: [KWOK_TOLERATION],
      containers: [{ name: 'app', image: 'nginx' }],
    },
  });
}

export function appService(
  name: string,
  ns: string,
  port = 8080,
  targetPort: number | string = 'http',
): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns },
    spec: { selector: { app: name }, ports: [{ name: 'http', port, targetPort }] },
  };
}

/** IPs behind a Service, from its EndpointSlices (filled by kube-controller-manager). */
export function endpointIPs(ns: string, service: string): string[] {
  return list<{ endpoints?: Array<{ addresses: string[] }> }>([
    'endpointslices',
    '-n',
    ns,
    '-l',
    `kubernetes.io/service-name=${service}`,
  ])
    .flatMap((s) => (s.endpoints ?? []).flatMap((e) => e.addresses))
    .sort();
}

export function podIPs(ns: string, selector: string): string[] {
  return list<{ status?: { podIP?: string } }>(['pods', '-n', ns, '-l', selector])
    .map((p) => p.status?.podIP)
    .filter((ip): ip is string => Boolean(ip))
    .sort();
}

/** Reads a counter family from the controller's /metrics, summed over the label filter. */
export function controllerMetric(name: string, filter?: (labels: string) => boolean): Promise<number> {
  // The controller's endpoint has a self-signed certificate made at start (src/controller/serve.ts).
  return scrapeSum(env().controllerPort, name, filter);
}

/** Prints each test's wall time after it ends (the suite reports parts' times, never asserts them). */
export function printTestTimes(): void {
  let started = 0;
  beforeEach(() => {
    started = Date.now();
  });
  afterEach((ctx) => {
    process.stdout.write(`[e2e] ${ctx.task.name}: ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
  });
}
