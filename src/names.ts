// The public names of wpgw. Users, docs, manifests and tests rely on these; change none lightly.

/** Namespace label that opts a namespace in. The webhook configuration selects on it. */
export const NS_INJECT_LABEL = 'wpgw.io/inject';
export const NS_INJECT_ENABLED = 'enabled';

/** Pod (and Service) label or annotation: "false" opts out, "true" opts in a non-Windows pod. */
export const INJECT_KEY = 'wpgw.io/inject';

/**
 * Service annotation "true": clients outside the mesh reach this Service (an ingress controller
 * that is not Istio, a ServiceMonitor, a VM): leave it alone like a LoadBalancer Service.
 */
export const NON_MESH_CLIENTS_ANNOTATION = 'wpgw.io/non-mesh-clients';

/** Pod annotation: the destinations the pod calls (grammar in src/core/outbound.ts). */
export const OUTBOUND_ANNOTATION = 'wpgw.io/outbound';

/**
 * Pod or namespace annotation choosing how outbound names reach the gateway:
 * "hostAliases" (default) or "dnsConfig". The pod's value wins over the namespace's.
 */
export const RESOLVER_ANNOTATION = 'wpgw.io/resolver';
export type ResolverMode = 'hostAliases' | 'dnsConfig';
export const RESOLVER_MODES: readonly ResolverMode[] = ['hostAliases', 'dnsConfig'];

/**
 * Pod or namespace annotation: mesh-wide outbound. The pod reaches the HTTP/gRPC ports of every
 * Service in scope without listing them; the scope is written like Istio Sidecar egress hosts
 * ("./*", "<namespace>/*", "*\/*"), "none" turns a namespace default off. The pod's value wins.
 * Needs dnsConfig mode (it becomes the default resolver of such pods).
 */
export const MESH_OUTBOUND_ANNOTATION = 'wpgw.io/mesh-outbound';
export const MESH_OUTBOUND_NONE = 'none';

/** Pod annotation recording what the webhook injected, so re-admission strips and re-applies. */
export const POD_STATUS_ANNOTATION = 'wpgw.io/status';

/** Pod label on every pod the webhook manages; NetworkPolicies select it. */
export const MANAGED_LABEL = 'wpgw.io/managed';

/** Service annotation recording the original selector and ports of a re-pointed Service. */
export const SERVICE_ORIGINAL_ANNOTATION = 'wpgw.io/original';
/** Service label on re-pointed Services, so the controller can list them by label. */
export const REPOINTED_LABEL = 'wpgw.io/repointed';
/**
 * Istio's label on a Service selecting a classic gateway's pods: no Gateway server port is
 * translated through it (pilot resolvePorts). On every Service wpgw points at the gateway pods,
 * since listeners are addressed by pod port (item 7 of issue 13).
 */
export const NO_PORT_TRANSLATION_LABEL = 'experimental.istio.io/disable-gateway-port-translation';
/**
 * Service annotation the controller bumps to make the API server re-admit a Service whose
 * Windows pods appeared after it (the webhook then re-points it). The value is opaque.
 */
export const NUDGE_ANNOTATION = 'wpgw.io/nudge';

/** Label on the gateway pods; its value is the namespace, so it is unique mesh-wide. */
export const GATEWAY_POD_LABEL = 'wpgw.io/gateway';
/** Label on the wpgw-dns pods (dnsConfig mode); its value is the namespace. */
export const DNS_POD_LABEL = 'wpgw.io/dns';

/** Pod template annotation the controller bumps to roll a workload (as kubectl.kubernetes.io/restartedAt). */
export const RESTARTED_AT_ANNOTATION = 'wpgw.io/restartedAt';

/** The gateway Service in every opted-in namespace. */
export const GATEWAY_SERVICE = 'wpgw';
/** The per-namespace DNS Service used in dnsConfig mode. */
export const DNS_SERVICE = 'wpgw-dns';
/** Suffix of the Service that reaches the Windows pods behind a re-pointed Service. */
export const APP_SERVICE_SUFFIX = '-app';

/** Ownership labels on every object the controller creates (label-based, like Kyverno). */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'wpgw';
/** Which input an object exists for: "namespace" or "service.<name>". Used for pruning and Events. */
export const OWNER_LABEL = 'wpgw.io/for';

/**
 * Namespace annotation "enabled": run the per-namespace DNS service (wpgw-dns) even though the
 * namespace default stays hostAliases, so single pods can choose dnsConfig.
 */
export const DNS_SERVER_ANNOTATION = 'wpgw.io/dns-server';

/** Namespace annotations tuning the controller. */
export const REPLICAS_ANNOTATION = 'wpgw.io/gateway-replicas';
export const RESTART_ON_IP_CHANGE_ANNOTATION = 'wpgw.io/restart-on-ip-change';

/**
 * Namespace annotation: the Istio revision (or revision tag) whose injector injects the gateway
 * pods, e.g. "asm-1-26" on the AKS add-on. Wins over the controller's --istio-revision.
 */
export const ISTIO_REVISION_ANNOTATION = 'wpgw.io/istio-revision';
/** Istio's revision label: revision-based injection selects namespaces and pods by it. */
export const ISTIO_REV_LABEL = 'istio.io/rev';
/** Istio's default-revision namespace label; while present, Istio ignores a pod's istio.io/rev. */
export const ISTIO_INJECTION_LABEL = 'istio-injection';

/**
 * Label on a MutatingWebhookConfiguration, value "webhook": the wpgw webhook keeps its caBundle.
 * Its own label because Helm relabels everything it installs app.kubernetes.io/managed-by=Helm;
 * managed-by=wpgw (manifests/ before this label) still counts.
 */
export const CA_BUNDLE_LABEL = 'wpgw.io/ca-bundle';
export const CA_BUNDLE_BY_WEBHOOK = 'webhook';

/**
 * Namespace annotation: CIDRs (comma or space separated) the gateway may reach for external
 * destinations although they are private, e.g. a corporate network behind ExpressRoute. Never
 * re-opens link-local, loopback, cloud metadata or the cluster's own ranges. Whoever may patch
 * Namespaces may set it: restrict that (docs/security.md).
 */
export const EGRESS_ALLOW_ANNOTATION = 'wpgw.io/egress-allow-cidrs';

/** Server-side apply field manager. */
export const FIELD_MANAGER = 'wpgw';

/** Kubernetes well-known keys. */
export const OS_LABEL = 'kubernetes.io/os';

/** Gateway pod port ranges. Servers are addressed by pod port (see docs/architecture.md). */
export const OUTBOUND_POD_PORTS = { min: 20000, max: 29999 } as const;
export const INBOUND_POD_PORTS = { min: 30000, max: 39999 } as const;

export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

export function appServiceName(service: string): string {
  return `${service}${APP_SERVICE_SUFFIX}`;
}
