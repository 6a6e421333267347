// Cluster mode: replicas share the CA + leaf through one Secret (e.g. wpgw-system/wpgw-webhook-tls).
// The first replica creates it; a 409 on create means another replica won, so we re-read.
// Updates carry the resourceVersion we read, so a concurrent writer makes ours fail with 409.

import type { V1Secret } from '@kubernetes/client-node';
import { errorStatus, type KubeRest } from '../cluster/client.js';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../names.js';
import type { CertStore } from './cert-store.js';
import { CERT_KEYS, type CertData } from './rotation.js';

export interface SecretRef {
  namespace: string;
  name: string;
}

export function secretCertStore(api: KubeRest, ref: SecretRef): CertStore {
  // The last Secret read, so an update keeps its metadata and any keys we do not own.
  let lastRead: V1Secret | undefined;
  const secrets = `/api/v1/namespaces/${encodeURIComponent(ref.namespace)}/secrets`;
  const secret = `${secrets}/${encodeURIComponent(ref.name)}`;

  return {
    description: `secret ${ref.namespace}/${ref.name}`,

    async read() {
      try {
        lastRead = await api.request<V1Secret>('GET', secret);
      } catch (err) {
        if (errorStatus(err) === 404) return undefined;
        throw err;
      }
      const data: Partial<CertData> = {};
      for (const key of CERT_KEYS) {
        const value = lastRead.data?.[key];
        if (value !== undefined) data[key] = Buffer.from(value, 'base64').toString('utf8');
      }
      return { data, version: lastRead.metadata?.resourceVersion ?? '' };
    },

    async create(data) {
      const body: V1Secret = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: ref.name, namespace: ref.namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } },
        type: 'kubernetes.io/tls',
        data: encode(data),
      };
      try {
        await api.request('POST', secrets, { body });
        return true;
      } catch (err) {
        if (errorStatus(err) === 409) return false;
        throw err;
      }
    },

    async update(data, version) {
      const base = lastRead?.metadata?.resourceVersion === version ? lastRead : undefined;
      if (!base) return false; // never write over a version we did not read
      const body: V1Secret = {
        ...base,
        metadata: { ...base.metadata, resourceVersion: version },
        data: { ...base.data, ...encode(data) },
      };
      try {
        await api.request('PUT', secret, { body });
        return true;
      } catch (err) {
        if (errorStatus(err) === 409) return false;
        throw err;
      }
    },
  };
}

function encode(data: CertData): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of CERT_KEYS) out[key] = Buffer.from(data[key], 'utf8').toString('base64');
  return out;
}
