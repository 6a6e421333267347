// Keeps webhooks[].clientConfig.caBundle of our MutatingWebhookConfiguration equal to the CA
// bundle we serve under. Like Istio's webhook patcher it only touches the configuration it owns
// (named `wpgw`, labelled wpgw.io/ca-bundle=webhook or app.kubernetes.io/managed-by=wpgw), writes only when bytes differ and
// retries with backoff. It sends a JSON Patch whose `test` ops pin each index to the webhook name we read, so a concurrent reorder fails the patch
// instead of writing the wrong entry.

import type { V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import type { Operation } from 'fast-json-patch';
import type { Logger } from 'pino';
import { backoffDelay } from '../cluster/backoff.js';
import { JSON_PATCH_CONTENT_TYPE, errorStatus, type KubeRest } from '../cluster/client.js';
import { CA_BUNDLE_BY_WEBHOOK, CA_BUNDLE_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../names.js';

export const DEFAULT_WEBHOOK_CONFIG_NAME = 'wpgw';

export type CaBundleResult = 'patched' | 'unchanged' | 'not-found' | 'not-owned';

/** Pure: whether we own `config`, and the JSON Patch that makes every caBundle equal `bundlePem`. */
export function caBundlePatch(
  config: V1MutatingWebhookConfiguration,
  bundlePem: string,
): { owned: boolean; ops: Operation[] } {
  const labels = config.metadata?.labels ?? {};
  const owned = labels[CA_BUNDLE_LABEL] === CA_BUNDLE_BY_WEBHOOK || labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
  if (!owned) return { owned, ops: [] };
  const want = Buffer.from(bundlePem, 'utf8');
  const ops: Operation[] = [];
  (config.webhooks ?? []).forEach((webhook, i) => {
    const have = webhook.clientConfig?.caBundle;
    if (have !== undefined && Buffer.from(have, 'base64').equals(want)) return;
    ops.push({ op: 'test', path: `/webhooks/${i}/name`, value: webhook.name });
    ops.push({
      op: have === undefined ? 'add' : 'replace',
      path: `/webhooks/${i}/clientConfig/caBundle`,
      value: want.toString('base64'),
    });
  });
  return { owned, ops };
}

export interface CaBundlePatcherOptions {
  api: KubeRest;
  logger: Logger;
  name?: string;
  /** Tries per ensure() call; the caller's next round retries again. */
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Told each ensure() call's outcome ("error" when it gave up), for wpgw_webhook_ca_bundle_patches_total. */
  onResult?: (result: CaBundleResult | 'error') => void;
}

export interface CaBundlePatcher {
  ensure(bundlePem: string): Promise<CaBundleResult>;
  /** For ManagedTls.publishBundle: true once the API server's configuration carries the bundle. */
  publish(bundlePem: string): Promise<boolean>;
}

export function createCaBundlePatcher(opts: CaBundlePatcherOptions): CaBundlePatcher {
  const name = opts.name ?? DEFAULT_WEBHOOK_CONFIG_NAME;
  const attempts = opts.attempts ?? 5;
  const base = opts.baseDelayMs ?? 200;
  const max = opts.maxDelayMs ?? 5_000;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const log = opts.logger.child({ component: 'ca-bundle', webhookConfiguration: name });
  const path = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${encodeURIComponent(name)}`;

  const once = async (bundlePem: string): Promise<CaBundleResult> => {
    let config: V1MutatingWebhookConfiguration;
    try {
      config = await opts.api.request<V1MutatingWebhookConfiguration>('GET', path);
    } catch (err) {
      if (errorStatus(err) === 404) return 'not-found';
      throw err;
    }
    const { owned, ops } = caBundlePatch(config, bundlePem);
    if (!owned) return 'not-owned';
    if (ops.length === 0) return 'unchanged';
    await opts.api.request('PATCH', path, { body: ops, contentType: JSON_PATCH_CONTENT_TYPE });
    return 'patched';
  };

  const ensure = async (bundlePem: string): Promise<CaBundleResult> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await once(bundlePem);
        if (result === 'patched') log.info('caBundle updated');
        if (result === 'not-owned')
          log.warn(
            { label: `${CA_BUNDLE_LABEL}=${CA_BUNDLE_BY_WEBHOOK}` },
            'webhook configuration lacks our label; not patching it',
          );
        if (result === 'not-found') log.warn('webhook configuration not found; caBundle not published');
        opts.onResult?.(result);
        return result;
      } catch (err) {
        if (attempt >= attempts || !isRetryable(err)) {
          opts.onResult?.('error');
          throw err;
        }
        // Exponential backoff with full jitter, capped.
        const delay = Math.random() * backoffDelay(attempt - 1, base, max);
        log.warn({ err, attempt, delayMs: Math.round(delay) }, 'caBundle patch failed; retrying');
        await sleep(delay);
      }
    }
  };

  return {
    ensure,
    async publish(bundlePem) {
      const result = await ensure(bundlePem);
      return result === 'patched' || result === 'unchanged';
    },
  };
}

/** Conflicts, failed `test` ops (422), throttling, server errors and network errors (no status). */
function isRetryable(err: unknown): boolean {
  const status = errorStatus(err);
  return status === undefined || status === 409 || status === 422 || status === 429 || status >= 500;
}
