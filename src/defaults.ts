// The defaults wpgw runs with unless a flag or annotation says otherwise, each defined once here
// (public label and annotation names live in src/names.ts).
import type { DesiredOptions } from './core/desired-types.js';
import { DEFAULT_CLUSTER_DOMAIN } from './names.js';

/** wpgw-dns's image (dnsConfig mode) unless --coredns-image says otherwise. */
export const DEFAULT_COREDNS_IMAGE = 'registry.k8s.io/coredns/coredns:v1.12.4';

/** Gateway replicas per namespace unless --gateway-replicas or wpgw.io/gateway-replicas says otherwise. */
export const DEFAULT_GATEWAY_REPLICAS = 2;

/** Addresses offline render and `webhook --dev` inject (RFC 5737 documentation range). */
export const PLACEHOLDER_GATEWAY_IP = '192.0.2.1';
export const PLACEHOLDER_DNS_IP = '192.0.2.53';

/** The desired-state options of the controller, `wpgw status`, `wpgw suggest` and render. */
export const DEFAULT_DESIRED_OPTIONS: DesiredOptions = {
  clusterDomain: DEFAULT_CLUSTER_DOMAIN,
  defaultGatewayReplicas: DEFAULT_GATEWAY_REPLICAS,
  corednsImage: DEFAULT_COREDNS_IMAGE,
};

/**
 * The controller's leader Lease (client-go's leaderelection proportions): held 15 s, renewed every
 * 2 s, given up after 10 s without a renewal. Readers of a Lease without a duration assume 15 s.
 */
export const LEASE_TIMINGS = { durationMs: 15_000, renewIntervalMs: 2_000, renewDeadlineMs: 10_000 } as const;

/** A namespace's failed reconcile is retried after 0.5 s, doubling up to a minute. */
export const RETRY_DELAYS = { baseMs: 500, maxMs: 60_000 } as const;

/** Every watched kind is listed again this often (a missed watch event heals by then). */
export const RELIST_INTERVAL_MS = 5 * 60_000;
