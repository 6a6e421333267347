// Shared helpers for the webhook tests: a real HTTPS client, raw TLS handshakes, log capture
// and a stub admission handler (the real core is a parameter of the server).

import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import { ApiException, type V1MutatingWebhookConfiguration, type V1Secret } from '@kubernetes/client-node';
import jsonpatch, { type Operation } from 'fast-json-patch';
import type { AdmissionHandler } from '../../src/core/admission-types.js';
import type { KubeRest, RequestOptions } from '../../src/cluster/client.js';
import { generateCa, generateLeaf, type CertIdentity, type CertKeyPem } from '../../src/tls/certs.js';
import { createLogger, type Logger } from '../../src/telemetry/logger.js';
import { review as reviewOf } from '../lib/admission.js';

export const LOCAL_IDENTITY: CertIdentity = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] };
const DAY = 24 * 60 * 60_000;

export async function makePki(identity: CertIdentity = LOCAL_IDENTITY): Promise<{ ca: CertKeyPem; leaf: CertKeyPem }> {
  const now = new Date();
  const ca = await generateCa({ now, validityMs: 30 * DAY });
  const leaf = await generateLeaf({ ca, identity, now, validityMs: 10 * DAY });
  return { ca, leaf };
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: () => unknown;
}

export function httpsCall(
  port: number,
  opts: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer; ca: string },
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'GET',
        path: opts.path,
        headers: opts.headers,
        ca: opts.ca,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export function postJson(
  port: number,
  ca: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  return httpsCall(port, {
    method: 'POST',
    path: '/mutate',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ca,
  });
}

export interface HandshakeResult {
  ok: boolean;
  error?: string;
  protocol?: string | null;
  cert?: PeerCertificate;
}

/** A bare TLS handshake (verifying unless told otherwise); reports the outcome instead of throwing. */
export function handshake(port: number, opts: ConnectionOptions = {}): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ...opts }, () => {
      const result = { ok: true, protocol: socket.getProtocol(), cert: socket.getPeerCertificate() };
      socket.end();
      resolve(result);
    });
    socket.on('error', (err) =>
      resolve({ ok: false, error: `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}` }),
    );
  });
}

export function captureLogs(level = 'debug'): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const raw: string[] = [];
  const logger = createLogger({ level, destination: { write: (s: string) => void raw.push(s) } });
  return {
    logger,
    lines: () =>
      raw
        .join('')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map(parseLogLine),
  };
}

/** One log line as JSON, refusing a line with a key twice at its top level (JSON.parse keeps the last). */
export function parseLogLine(line: string): Record<string, unknown> {
  const obj = JSON.parse(line) as Record<string, unknown>;
  const seen = new Set<string>();
  for (const k of topLevelKeys(line)) {
    if (seen.has(k)) throw new Error(`log line has the key "${k}" twice: ${line}`);
    seen.add(k);
  }
  return obj;
}

/** The keys of a JSON object's top level, in order, duplicates kept (a scan of valid JSON). */
function topLevelKeys(json: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(json.slice(i, j + 1)) as string);
      expectKey = false;
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = c === '{' && depth === 1;
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) expectKey = true;
  }
  return keys;
}

/** A Pod review in namespace apps (the stub handler below answers by kind). */
export function review(overrides: { uid?: string; kind?: string; operation?: string; name?: string } = {}): unknown {
  const name = overrides.name ?? 'web-0';
  return reviewOf({
    kind: overrides.kind ?? 'Pod',
    operation: overrides.operation ?? 'CREATE',
    namespace: 'apps',
    name,
    object: { metadata: { name } },
    uid: overrides.uid ?? 'uid-1',
  });
}

/**
 * Stub core: kind "Boom" throws, kind "Garbage" returns a malformed result, a missing uid is a
 * bad request, everything else is patched with one warning.
 */
export const stubHandler: AdmissionHandler = (body) => {
  const req = (body as { request?: Record<string, unknown> } | null)?.request;
  const uid = req?.['uid'];
  if (typeof uid !== 'string') return { ok: false, message: 'request.uid is missing' };
  const kind = (req?.['kind'] as { kind?: string } | undefined)?.kind ?? '';
  if (kind === 'Boom') throw new Error('kaboom');
  if (kind === 'Garbage') return 42 as never;
  return {
    ok: true,
    review: {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: {
        uid,
        allowed: true,
        patchType: 'JSONPatch',
        patch: Buffer.from(JSON.stringify([{ op: 'add', path: '/metadata/labels', value: { a: 'b' } }])).toString(
          'base64',
        ),
        warnings: ['stub warning'],
      },
    },
    decision: {
      uid,
      kind,
      namespace: String(req?.['namespace'] ?? ''),
      name: String(req?.['name'] ?? ''),
      operation: String(req?.['operation'] ?? ''),
      allowed: true,
      decision: 'patched',
      reason: 'injected',
      warnings: ['stub warning'],
    },
  };
};

/** Value of one sample in Prometheus text output (labels in the exact order prom-client prints). */
export function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

export async function waitFor<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 5_000,
  stepMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('waitFor: timed out');
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/**
 * In-memory Secrets behind the REST paths the Secret store calls, with the API server semantics
 * that matter here: 404, 409 on create, resourceVersion precondition on replace. Raises
 * client-node's real ApiException.
 */
export class FakeSecrets implements KubeRest {
  readonly stored = new Map<string, V1Secret>();
  readonly calls = { read: 0, create: 0, create409: 0, replace: 0, replace409: 0 };
  #rv = 0;

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/secrets(?:\/([^/]+))?$/.exec(path);
    if (!m) throw new Error(`FakeSecrets: unexpected ${method} ${path}`);
    const [namespace, name] = [m[1]!, m[2]];
    const body = opts.body as V1Secret;
    if (method === 'GET' && name) return (await this.readNamespacedSecret({ namespace, name })) as T;
    if (method === 'POST' && !name) return (await this.createNamespacedSecret({ namespace, body })) as T;
    if (method === 'PUT' && name) return (await this.replaceNamespacedSecret({ namespace, name, body })) as T;
    throw new Error(`FakeSecrets: unexpected ${method} ${path}`);
  }

  async readNamespacedSecret(p: { name: string; namespace: string }): Promise<V1Secret> {
    this.calls.read++;
    const s = this.stored.get(`${p.namespace}/${p.name}`);
    if (!s) throw new ApiException(404, 'not found', { reason: 'NotFound' }, {});
    return structuredClone(s);
  }

  async createNamespacedSecret(p: { namespace: string; body: V1Secret }): Promise<V1Secret> {
    this.calls.create++;
    const key = `${p.namespace}/${p.body.metadata?.name}`;
    if (this.stored.has(key)) {
      this.calls.create409++;
      throw new ApiException(409, 'already exists', { reason: 'AlreadyExists' }, {});
    }
    const s = structuredClone(p.body);
    s.metadata = { ...s.metadata, resourceVersion: String(++this.#rv) };
    this.stored.set(key, s);
    return structuredClone(s);
  }

  async replaceNamespacedSecret(p: { name: string; namespace: string; body: V1Secret }): Promise<V1Secret> {
    this.calls.replace++;
    const key = `${p.namespace}/${p.name}`;
    const cur = this.stored.get(key);
    if (!cur) throw new ApiException(404, 'not found', {}, {});
    if (p.body.metadata?.resourceVersion !== cur.metadata?.resourceVersion) {
      this.calls.replace409++;
      throw new ApiException(409, 'conflict', { reason: 'Conflict' }, {});
    }
    const s = structuredClone(p.body);
    s.metadata = { ...s.metadata, resourceVersion: String(++this.#rv) };
    this.stored.set(key, s);
    return structuredClone(s);
  }
}

/** In-memory MutatingWebhookConfigurations applying real JSON Patches (a failed `test` op → 422). */
export class FakeWebhookConfigs implements KubeRest {
  readonly stored = new Map<string, V1MutatingWebhookConfiguration>();
  readonly patches: { name: string; body: Operation[] }[] = [];
  /** Status codes to throw on the next patch calls, in order. */
  readonly failPatches: number[] = [];
  reads = 0;

  put(config: V1MutatingWebhookConfiguration): void {
    this.stored.set(config.metadata?.name ?? '', structuredClone(config));
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const m = /^\/apis\/admissionregistration\.k8s\.io\/v1\/mutatingwebhookconfigurations\/([^/]+)$/.exec(path);
    if (!m) throw new Error(`FakeWebhookConfigs: unexpected ${method} ${path}`);
    const name = decodeURIComponent(m[1]!);
    if (method === 'GET') return (await this.readMutatingWebhookConfiguration({ name })) as T;
    if (method === 'PATCH' && opts.contentType === 'application/json-patch+json')
      return (await this.patchMutatingWebhookConfiguration({ name, body: opts.body })) as T;
    throw new Error(`FakeWebhookConfigs: unexpected ${method} ${path} (${opts.contentType ?? 'no content type'})`);
  }

  async readMutatingWebhookConfiguration(p: { name: string }): Promise<V1MutatingWebhookConfiguration> {
    this.reads++;
    const c = this.stored.get(p.name);
    if (!c) throw new ApiException(404, 'not found', {}, {});
    return structuredClone(c);
  }

  async patchMutatingWebhookConfiguration(p: { name: string; body: unknown }): Promise<V1MutatingWebhookConfiguration> {
    const body = p.body as Operation[];
    this.patches.push({ name: p.name, body });
    const fail = this.failPatches.shift();
    if (fail !== undefined) throw new ApiException(fail, 'injected failure', {}, {});
    const c = this.stored.get(p.name);
    if (!c) throw new ApiException(404, 'not found', {}, {});
    let next: V1MutatingWebhookConfiguration;
    try {
      next = jsonpatch.applyPatch(structuredClone(c), body, true, false).newDocument;
    } catch (err) {
      throw new ApiException(422, `patch failed: ${(err as Error).message}`, {}, {});
    }
    this.stored.set(p.name, next);
    return structuredClone(next);
  }
}

export function webhookConfig(
  name: string,
  labels: Record<string, string>,
  caBundles: (string | undefined)[],
): V1MutatingWebhookConfiguration {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name, labels },
    webhooks: caBundles.map((caBundle, i) => ({
      name: `hook-${i}.wpgw.io`,
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      clientConfig: {
        service: { name: 'wpgw', namespace: 'wpgw-system', path: '/mutate' },
        ...(caBundle === undefined ? {} : { caBundle }),
      },
    })),
  };
}
