// The contract between the pure desired-state computation (src/core/desired.ts) and its users:
// the controller (apply + prune), `wpgw render` and `wpgw status`.
import type { V1Deployment, V1Ingress, V1Namespace, V1Pod, V1Service } from '@kubernetes/client-node';
import type { Sidecar } from './mesh-scope.js';
import type { Refusal } from './desired/pinning.js';

/** Any Kubernetes object the controller writes. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: Array<{
      apiVersion: string;
      kind: string;
      name: string;
      uid: string;
      controller?: boolean;
      blockOwnerDeletion?: boolean;
    }>;
  };
  [field: string]: unknown;
}

/** Every kind the controller may create; pruning lists exactly these by ownership label. */
export const MANAGED_KINDS = [
  { apiVersion: 'v1', kind: 'ServiceAccount', plural: 'serviceaccounts' },
  { apiVersion: 'v1', kind: 'Service', plural: 'services' },
  { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps' },
  { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments' },
  { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', plural: 'poddisruptionbudgets' },
  { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', plural: 'networkpolicies' },
  { apiVersion: 'networking.istio.io/v1', kind: 'Gateway', plural: 'gateways' },
  { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', plural: 'virtualservices' },
  { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', plural: 'destinationrules' },
  { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', plural: 'serviceentries' },
  { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', plural: 'authorizationpolicies' },
  { apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', plural: 'requestauthentications' },
] as const;

/** A problem the controller reports (Event + status) instead of silently dropping. */
export interface Conflict {
  /** "Kind/name" of the object the problem is about (a Pod, a Service, the Namespace). */
  subject: string;
  /** The subject's namespace when it is not the one reconciled (a caller's object, a root-namespace policy). */
  subjectNamespace?: string;
  reason: string;
  message: string;
}

/** A conflict's subject as reports print it: "Kind/name", plus its namespace when it is another one. */
export function subjectText(c: Conflict): string {
  return c.subjectNamespace ? `${c.subject} (namespace ${c.subjectNamespace})` : c.subject;
}

export interface NamespaceInput {
  namespace: V1Namespace;
  /** Pods of the namespace carrying the managed label (their status annotation says what was injected). */
  pods: V1Pod[];
  /** All Services of the namespace (re-pointed ones carry wpgw.io/original). */
  services: V1Service[];
  /** ClusterIP of kube-system/kube-dns (dnsConfig mode forwards to it). */
  clusterDnsIP?: string;
  /** The namespace's Ingress objects (other controllers' Ingresses are non-mesh clients of Services). */
  ingresses?: V1Ingress[];
  /** Every Service of the cluster: the candidates of the mesh-wide scope (wpgw.io/mesh-outbound). */
  clusterServices?: V1Service[];
  /** The namespace's Istio Sidecar resources: the namespace-wide one narrows the mesh-wide scope. */
  sidecars?: Sidecar[];
  /** The Sidecars could not be read (no CRD served, or no RBAC for them): the scope is not narrowed. */
  sidecarsUnreadable?: boolean;
  /** Services of other namespaces that the managed pods declare (the gateway's egress policy names their pods). */
  destinationServices?: V1Service[];
  /**
   * The cluster's ranges discovered from the API (the kubernetes Service's address, Nodes' pod CIDRs
   * and addresses, ServiceCIDRs): never reachable as external destinations, like clusterCIDRs.
   */
  clusterAddresses?: string[];
  /**
   * The controller's resolution of each concrete external host (src/core/desired/pinning.ts):
   * with it, ServiceEntries are pinned to the checked addresses; without it (render), resolution DNS.
   */
  resolved?: Record<string, { addresses: string[]; error?: string }>;
  /** The namespace's Istio objects (users' and wpgw's; users' are read, never written): docs/user-policies.md. */
  istio?: UserIstioObjects;
  /** Policies of Istio's root namespace (mesh-wide ones apply to the gateway pods natively). */
  meshIstio?: { namespace: string; objects: UserIstioObjects };
  /** Callers' VirtualServices and DestinationRules in other namespaces that name this namespace's hosts. */
  callerIstio?: Pick<UserIstioObjects, 'virtualServices' | 'destinationRules'>;
  /** The live gateway Deployment `wpgw` (the controller): is it rolled out with the tlsMode label yet? */
  gatewayDeployment?: V1Deployment;
}

/** Istio objects of one namespace that shape what wpgw writes for its re-pointed Services. */
export interface UserIstioObjects {
  virtualServices: KubeObject[];
  destinationRules: KubeObject[];
  authorizationPolicies?: KubeObject[];
  peerAuthentications?: KubeObject[];
  requestAuthentications?: KubeObject[];
}

export interface DesiredOptions {
  clusterDomain: string;
  defaultGatewayReplicas: number;
  corednsImage: string;
  /** Istio revision (or tag) for the gateway pods' istio.io/rev; unset: Istio's default revision. */
  istioRevision?: string;
  /** render: pin the wpgw Service's ClusterIP to this address. */
  pinnedGatewayIP?: string;
  /** render: pin the wpgw-dns Service's ClusterIP to this address. */
  pinnedDnsIP?: string;
  /** The cluster's pod, Service and node CIDRs (operator-set): the gateway never reaches them as external destinations. */
  clusterCIDRs?: string[];
  /** Where istiod runs (gateway egress to app=istiod pods); default istio-system. */
  istioNamespace?: string;
  /** Istio's root namespace (meshConfig.rootNamespace), if not istioNamespace: its policies are mesh-wide. */
  istioRootNamespace?: string;
}

export interface DesiredState {
  /** Every object the controller wants in the namespace, fully specified, deterministic order. */
  objects: KubeObject[];
  conflicts: Conflict[];
  /** Human-readable summary lines for `wpgw status` / `wpgw render` explanations. */
  notes: string[];
  /** External names refused or unresolved by pinning (the controller's egress report); absent: none. */
  refusals?: Refusal[];
}
