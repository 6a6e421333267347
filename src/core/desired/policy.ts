// Never an open proxy: L7 authz on the gateway and L3/L4 NetworkPolicy on both sides.
import { isIP } from 'node:net';
import type { V1Pod } from '@kubernetes/client-node';
import { DNS_POD_LABEL, GATEWAY_SERVICE, MANAGED_LABEL, POD_STATUS_ANNOTATION } from '../../names.js';
import { parseStatus } from '../records.js';
import type { KubeObject } from '../desired-types.js';
import { gatewayLabels, meta, type Owner } from './common.js';
import { STATUS_PORT } from './gateway.js';
import type { PortGroup } from './outbound-plan.js';

const NS_OWNER: Owner = { kind: 'namespace' };
export const DNS_PORTS = [
  { protocol: 'UDP', port: 53 },
  { protocol: 'TCP', port: 53 },
] as const;
/** Egress to cluster DNS (kube-system, k8s-app=kube-dns): judged after the kube-dns ClusterIP's translation. */
export function clusterDnsEgress(): Record<string, unknown> {
  return {
    to: [
      {
        namespaceSelector: { matchLabels: namespaceLabel('kube-system') },
        podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
      },
    ],
    ports: DNS_PORTS.map((p) => ({ ...p })),
  };
}

/** The label every namespace carries with its own name (since Kubernetes 1.21). */
export function namespaceLabel(namespace: string): Record<string, string> {
  return { 'kubernetes.io/metadata.name': namespace };
}

/** `userAllowPorts`: inbound ports a user's own ALLOW policy governs (user-authz.ts): left out here. */
export function authorizationPolicy(
  namespace: string,
  groups: PortGroup[],
  sourceIPs: string[],
  inboundPodPorts: number[],
  userAllowPorts: readonly number[] = [],
): KubeObject {
  const rules: Record<string, unknown>[] = [];
  // Outbound: only this namespace's managed pods (by IP: gateway listeners see the pod's source
  // address), only declared host:port pairs. Authz hosts match exactly, so add "name:*" too.
  // HTTP ports and tls/tcp ports go in separate rules: on a TCP filter chain Istio drops a whole
  // ALLOW rule that has an HTTP-only field (hosts) anywhere, which would refuse every tls:// and
  // tcp:// destination (found by the data-path suite).
  if (sourceIPs.length > 0) {
    const from = [{ source: { ipBlocks: sourceIPs } }];
    const http = groups.filter((g) => g.family === 'http');
    const opaque = groups.filter((g) => g.family !== 'http');
    if (http.length > 0) {
      rules.push({
        from,
        to: http.map((g) => ({
          operation: {
            ports: [String(g.podPort)],
            hosts: g.routes.flatMap((r) => r.names.flatMap((n) => authzHosts(n, g.port))),
          },
        })),
      });
    }
    if (opaque.length > 0) rules.push({ from, to: [{ operation: { ports: opaque.map((g) => String(g.podPort)) } }] });
  }
  // Inbound: any authenticated mesh identity (mTLS is required on these ports), on the ports no
  // user ALLOW governs (the caller passes all of them when a wide ALLOW is in force: nativeAllows).
  const open = inboundPodPorts.filter((p) => !userAllowPorts.includes(p));
  if (open.length > 0) {
    rules.push({ from: [{ source: { principals: ['*'] } }], to: [{ operation: { ports: open.map(String) } }] });
  }
  // An ALLOW policy with no rules denies everything: an empty namespace routes nothing.
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: meta(GATEWAY_SERVICE, namespace, NS_OWNER),
    spec: { selector: { matchLabels: gatewayLabels(namespace) }, action: 'ALLOW', ...(rules.length ? { rules } : {}) },
  };
}

/**
 * Authz hosts match exactly, or by one "*" at the start (suffix) or the end (prefix). The Host
 * header carries the port unless it is the scheme's default, so "name" and "name:*"; a wildcard
 * cannot take both stars, and the port the app dials is known, so "*.zone" and "*.zone:<port>".
 */
export function authzHosts(name: string, port: number): string[] {
  return name.startsWith('*.') ? [name, `${name}:${port}`] : [name, `${name}:*`];
}

/**
 * Nameservers managed pods list themselves (dnsPolicy None or extra dnsConfig nameservers, e.g. an
 * Active Directory DNS) and keep using: the egress policy must let DNS reach them. wpgw-dns's own
 * address (what dnsConfig mode injected) is reached through its pod selector instead.
 */
export function ownNameservers(pods: readonly V1Pod[]): string[] {
  const ips = new Set<string>();
  for (const pod of pods) {
    if (pod.metadata?.labels?.[MANAGED_LABEL] !== 'true') continue;
    const injected = parseStatus(pod.metadata?.annotations?.[POD_STATUS_ANNOTATION])?.dnsIP;
    for (const ip of pod.spec?.dnsConfig?.nameservers ?? []) if (ip !== injected && isIP(ip) !== 0) ips.add(ip);
  }
  return [...ips].sort();
}

export function networkPolicies(
  namespace: string,
  groups: PortGroup[],
  inboundPodPorts: number[],
  dnsMode: boolean,
  nameservers: readonly string[] = [],
): KubeObject[] {
  const gw = { podSelector: { matchLabels: gatewayLabels(namespace) } };
  const managed = { podSelector: { matchLabels: { [MANAGED_LABEL]: 'true' } } };
  const dnsPorts = DNS_PORTS.map((p) => ({ ...p }));
  const egress: Record<string, unknown>[] = [{ to: [gw] }, clusterDnsEgress()];
  if (dnsMode)
    egress.push({
      to: [{ podSelector: { matchLabels: { [DNS_POD_LABEL]: namespace } } }],
      ports: dnsPorts.map((p) => ({ ...p, port: DNS_CONTAINER_PORT })),
    });
  if (nameservers.length > 0) {
    egress.push({
      to: nameservers.map((ip) => ({ ipBlock: { cidr: `${ip}/${isIP(ip) === 6 ? 128 : 32}` } })),
      ports: dnsPorts,
    });
  }
  const gatewayIngress: Record<string, unknown>[] = [];
  // An ingress rule without "ports" allows every port, so add rules only when there are ports.
  if (groups.length > 0)
    gatewayIngress.push({ from: [managed], ports: groups.map((g) => ({ protocol: 'TCP', port: g.podPort })) });
  if (inboundPodPorts.length > 0)
    gatewayIngress.push({ ports: inboundPodPorts.map((port) => ({ protocol: 'TCP', port })) });
  gatewayIngress.push({ ports: [{ protocol: 'TCP', port: STATUS_PORT }] });
  return [
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: meta('wpgw-managed-pods', namespace, NS_OWNER),
      spec: {
        // Everything into and out of the managed pods goes through the gateway (plus DNS).
        podSelector: managed.podSelector,
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{ from: [gw] }],
        egress,
      },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: meta('wpgw-gateway', namespace, NS_OWNER),
      spec: { podSelector: gw.podSelector, policyTypes: ['Ingress'], ingress: gatewayIngress },
    },
  ];
}

/** CoreDNS listens on an unprivileged port so it runs as non-root without capabilities. */
export const DNS_CONTAINER_PORT = 1053;
