// Helpers shared by the desired-state builders.
import type { V1ServicePort } from '@kubernetes/client-node';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_LABEL } from '../../names.js';
import type { KubeObject } from '../desired-types.js';
import { shortHash } from '../hash.js';

export type Owner = { kind: 'namespace' } | { kind: 'service'; name: string };

export function ownerValue(owner: Owner): string {
  if (owner.kind === 'namespace') return 'namespace';
  const value = `service.${owner.name}`;
  return value.length <= 63 ? value : `service.${owner.name.slice(0, 45)}.${shortHash(owner.name)}`;
}

export function meta(
  name: string,
  namespace: string,
  owner: Owner,
  extraLabels: Record<string, string> = {},
): KubeObject['metadata'] {
  return {
    name,
    namespace,
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [OWNER_LABEL]: ownerValue(owner), ...extraLabels },
  };
}

export { gatewayLabels } from '../labels.js';

/** A DNS-1123 subdomain-safe object name from free text (hosts may hold "*"). */
export function objectName(...parts: Array<string | number>): string {
  const raw = parts
    .join('-')
    .toLowerCase()
    .replace(/\*/g, 'wildcard')
    .replace(/[^a-z0-9.-]/g, '-')
    .replace(/^[.-]+|[.-]+$/g, '');
  return raw.length <= 200 ? raw : `${raw.slice(0, 190)}-${shortHash(raw)}`;
}

export { shortHash } from '../hash.js';

const HTTP_PROTOCOLS = new Set(['http', 'http2', 'grpc', 'grpc-web', 'h2c', 'kubernetes.io/h2c']);

/** Istio's protocol selection: appProtocol, else the port name prefix. Unknown means TCP for us. */
export function isHttpPort(p: V1ServicePort): boolean {
  if (p.appProtocol) return HTTP_PROTOCOLS.has(p.appProtocol.toLowerCase());
  const prefix = (p.name ?? '').toLowerCase().split('-')[0] ?? '';
  return HTTP_PROTOCOLS.has(prefix);
}

export function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
