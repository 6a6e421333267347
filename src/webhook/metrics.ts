// The webhook's metrics (admission, serving certificates, caBundle publication) on a registry from
// src/telemetry/registry.ts.

import { X509Certificate } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';
import { HotHistogram } from '../telemetry/hot-histogram.js';
import { createRegistry } from '../telemetry/registry.js';
import { splitPemBundle } from '../tls/certs.js';

export interface AdmissionMetrics {
  requests: Counter<'kind' | 'operation'>;
  decisions: Counter<'kind' | 'decision' | 'reason'>;
  /** Hot-path increments of `requests` and `decisions`, handed to them at scrape time. */
  count: {
    request(kind: string, operation: string): void;
    decision(kind: string, decision: string, reason: string): void;
  };
  duration: HotHistogram;
  badRequests: Counter<'status'>;
  /** The admission handler threw (answered 500). */
  handlerErrors: Counter<never>;
}

export interface WebhookMetrics {
  registry: Registry;
  admission: AdmissionMetrics;
}

export function createAdmissionMetrics(registry: Registry): AdmissionMetrics {
  const registers = [registry];
  const pendingRequests = new DeferredCounts<'kind' | 'operation'>();
  const pendingDecisions = new DeferredCounts<'kind' | 'decision' | 'reason'>();
  const requests = new Counter({
    name: 'wpgw_admission_requests_total',
    help: 'AdmissionReview requests received, by object kind and operation.',
    labelNames: ['kind', 'operation'] as const,
    registers,
    collect() {
      pendingRequests.flushInto(this);
    },
  });
  const decisions = new Counter({
    name: 'wpgw_admission_decisions_total',
    help: 'Admission decisions (patched, unchanged, skipped, denied) with their reason.',
    labelNames: ['kind', 'decision', 'reason'] as const,
    registers,
    collect() {
      pendingDecisions.flushInto(this);
    },
  });
  return {
    requests,
    decisions,
    count: {
      request: (kind, operation) => pendingRequests.inc(`${kind}\0${operation}`, () => ({ kind, operation })),
      decision: (kind, decision, reason) =>
        pendingDecisions.inc(`${kind}\0${decision}\0${reason}`, () => ({ kind, decision, reason })),
    },
    duration: new HotHistogram({
      name: 'wpgw_admission_duration_seconds',
      help: 'Time from request start (including body parsing) to response, for admissions.',
      // Sub-millisecond for typical pods, up to 1 s (API server timeouts are 10-30 s; anything
      // near 1 s already deserves attention).
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    }),
    badRequests: new Counter({
      name: 'wpgw_admission_bad_requests_total',
      help: 'Requests to /mutate rejected before or by admission, by HTTP status (400, 413, 415, 500).',
      labelNames: ['status'] as const,
      registers,
    }),
    handlerErrors: new Counter({
      name: 'wpgw_admission_handler_errors_total',
      help: 'Admission handler failures (unexpected exceptions answered with 500).',
      registers,
    }),
  };
}

/** Registry + admission metrics in one call (what the webhook command uses). */
export function createMetrics(opts: { defaultMetrics?: boolean } = {}): WebhookMetrics {
  const registry = createRegistry(opts);
  return { registry, admission: createAdmissionMetrics(registry) };
}

/**
 * `wpgw_webhook_certificate_expiry_timestamp_seconds{certificate}`: the earliest notAfter of the
 * serving chain and of the CA bundle, read at scrape time from what is being served, so a rotation
 * shows at the next scrape. A missing or unreadable PEM leaves its series out.
 */
export function registerCertificateMetrics(registry: Registry, pems: () => { serving?: string; ca?: string }): void {
  new Gauge({
    name: 'wpgw_webhook_certificate_expiry_timestamp_seconds',
    help: 'Earliest notAfter (Unix seconds) of the certificates served (certificate="serving") and trusted by the API server (certificate="ca").',
    labelNames: ['certificate'] as const,
    registers: [registry],
    collect() {
      this.reset();
      let current: { serving?: string; ca?: string };
      try {
        current = pems();
      } catch {
        return; // nothing loaded yet
      }
      for (const [certificate, pem] of Object.entries(current)) {
        const notAfter = earliestNotAfter(pem);
        if (notAfter !== undefined) this.set({ certificate }, Math.floor(notAfter / 1000));
      }
    },
  });
}

function earliestNotAfter(pem: string | undefined): number | undefined {
  let earliest: number | undefined;
  for (const block of splitPemBundle(pem ?? '')) {
    try {
      const t = new X509Certificate(block).validToDate.getTime();
      earliest = Math.min(earliest ?? t, t);
    } catch {
      // not a certificate: leave it out rather than fail the scrape
    }
  }
  return earliest;
}

/** `wpgw_webhook_ca_bundle_patches_total{result}`: each caBundle publication's outcome. */
export function createCaBundleMetrics(registry: Registry): (result: string) => void {
  const patches = new Counter({
    name: 'wpgw_webhook_ca_bundle_patches_total',
    help: 'caBundle publications to the MutatingWebhookConfiguration by result (patched, unchanged, not-found, not-owned, error).',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  return (result) => patches.inc({ result });
}

/**
 * Counts by a pre-joined label key and hands the totals to a prom-client Counter when it is
 * collected (scraped). prom-client validates and hashes the label object on every inc(), a
 * measurable cost per admission; here the hot path is one Map lookup. Callers bound the number
 * of keys (LabelGuard), exactly as they bound the counter's series.
 */
export class DeferredCounts<L extends string> {
  readonly #pending = new Map<string, { labels: Record<L, string>; n: number }>();

  inc(key: string, labels: () => Record<L, string>): void {
    const entry = this.#pending.get(key);
    if (entry) entry.n++;
    else this.#pending.set(key, { labels: labels(), n: 1 });
  }

  flushInto(counter: Counter<L>): void {
    for (const entry of this.#pending.values()) {
      if (entry.n === 0) continue;
      counter.inc(entry.labels, entry.n);
      entry.n = 0;
    }
  }
}

const LABEL_VALUE_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$/;

/**
 * Bounds label cardinality for values that come from requests: anyone who can reach /mutate
 * could otherwise mint a time series per request. Odd values become "invalid", and once
 * `max` distinct values were seen new ones become "other".
 */
export class LabelGuard {
  readonly #seen = new Set<string>();
  constructor(private readonly max = 50) {}

  value(v: unknown): string {
    if (typeof v !== 'string' || v === '') return 'unknown';
    if (this.#seen.has(v)) return v; // only values that passed the check below are remembered
    if (!LABEL_VALUE_RE.test(v)) return 'invalid';
    if (this.#seen.size >= this.max) return 'other';
    this.#seen.add(v);
    return v;
  }
}
