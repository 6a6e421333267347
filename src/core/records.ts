// The records the webhook writes and the controller, status, restore and uninstall read back: a
// contract between the programs. `wpgw.io/status` on a pod says what was injected (stripped and
// re-applied on every admission); `wpgw.io/original` on a re-pointed Service keeps the selector and
// ports `<name>-app` is made from. Only shapes the webhook could have written are trusted.
import type { V1Pod, V1PodDNSConfig, V1Service, V1ServicePort } from '@kubernetes/client-node';
import { POD_STATUS_ANNOTATION, SERVICE_ORIGINAL_ANNOTATION, type ResolverMode } from '../names.js';

/** The version field of wpgw.io/status; a record of another version is not ours to read. */
export const POD_STATUS_VERSION = 1;

/** What the webhook injected, recorded on the pod. */
export interface PodStatusRecord {
  v: typeof POD_STATUS_VERSION;
  mode: ResolverMode;
  /** hostAliases mode: the address the names point at. */
  gatewayIP?: string;
  /** hostAliases mode: the names injected. */
  hostnames?: string[];
  /** dnsConfig mode: the resolver the pod was pointed at, and what it had before. */
  dnsIP?: string;
  previousDnsPolicy?: string | null;
  previousDnsConfig?: V1PodDNSConfig | null;
  /** Canonical destinations (the controller routes exactly these). */
  outbound: string[];
  /** We added sidecar.istio.io/inject=false (a user's own label is left alone on strip). */
  istioOptOut?: boolean;
  /** Mesh-wide outbound scope (wpgw.io/mesh-outbound), canonical entries; the controller routes it. */
  mesh?: string[];
}

/** Reads a pod's status annotation; undefined if absent or not ours. */
export function parseStatus(raw: string | undefined): PodStatusRecord | undefined {
  if (raw === undefined) return undefined;
  try {
    const v = JSON.parse(raw) as unknown;
    if (
      v &&
      typeof v === 'object' &&
      (v as { v?: unknown }).v === POD_STATUS_VERSION &&
      wellFormed(v as Record<string, unknown>)
    )
      return v as PodStatusRecord;
  } catch {
    // A hand-edited or foreign value: drop it, re-inject from scratch.
  }
  return undefined;
}

const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
const optionalString = (v: unknown) => v === undefined || v === null || typeof v === 'string';

/**
 * The record is restored into the pod on strip, so only a shape we could have written is
 * trusted; anything else (hand-edited, hostile) is dropped and the pod re-injected from scratch.
 */
function wellFormed(v: Record<string, unknown>): boolean {
  if (v.mode !== 'hostAliases' && v.mode !== 'dnsConfig') return false;
  if (
    !strings(v.outbound) ||
    !optionalString(v.gatewayIP) ||
    !optionalString(v.dnsIP) ||
    !optionalString(v.previousDnsPolicy)
  )
    return false;
  if (v.hostnames !== undefined && !strings(v.hostnames)) return false;
  if (v.mesh !== undefined && !strings(v.mesh)) return false;
  const dns = v.previousDnsConfig;
  if (dns === undefined || dns === null) return true;
  if (typeof dns !== 'object' || Array.isArray(dns)) return false;
  const d = dns as Record<string, unknown>;
  if (Object.keys(d).some((k) => !['nameservers', 'searches', 'options'].includes(k))) return false;
  if ((d.nameservers !== undefined && !strings(d.nameservers)) || (d.searches !== undefined && !strings(d.searches)))
    return false;
  return (
    d.options === undefined ||
    (Array.isArray(d.options) &&
      d.options.every(
        (o) =>
          o &&
          typeof o === 'object' &&
          typeof (o as { name?: unknown }).name === 'string' &&
          optionalString((o as { value?: unknown }).value),
      ))
  );
}

export interface OriginalService {
  selector: Record<string, string>;
  ports: V1ServicePort[];
  /**
   * The selector also matched workloads wpgw does not manage (Linux pods beside the Windows ones):
   * `<name>-app` then selects only wpgw-managed pods (selector + wpgw.io/managed=true).
   */
  onlyManaged?: true;
}

/** The original selector and ports recorded on a re-pointed Service, if valid. */
export function readOriginal(service: V1Service): OriginalService | undefined {
  const raw = service.metadata?.annotations?.[SERVICE_ORIGINAL_ANNOTATION];
  if (raw === undefined) return undefined;
  try {
    const v = JSON.parse(raw) as Partial<OriginalService>;
    if (v && typeof v.selector === 'object' && v.selector !== null && Array.isArray(v.ports)) {
      return {
        selector: v.selector,
        ports: v.ports,
        ...(v.onlyManaged === true ? { onlyManaged: true as const } : {}),
      };
    }
  } catch {
    // Foreign or hand-edited: treat the Service as not re-pointed.
  }
  return undefined;
}

export interface DriftedPod {
  pod: string;
  recordedIP: string;
  currentIP: string;
}

/** hostAliases-mode pods whose recorded gateway address differs from the current one. */
export function findDrift(pods: readonly V1Pod[], currentIP: string | undefined): DriftedPod[] {
  if (!currentIP) return []; // no gateway Service yet: it is re-created with the recorded address
  const out: DriftedPod[] = [];
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed')
      continue;
    const status = parseStatus(pod.metadata?.annotations?.[POD_STATUS_ANNOTATION]);
    if (!status || status.mode !== 'hostAliases' || !status.gatewayIP) continue;
    if (status.gatewayIP !== currentIP)
      out.push({ pod: pod.metadata?.name ?? '', recordedIP: status.gatewayIP, currentIP });
  }
  return out;
}
