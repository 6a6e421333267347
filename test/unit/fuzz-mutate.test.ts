// Hostile input against POST /mutate over real HTTPS: the real server (createWebhookServer) with the
// real admission core (admit) over a static context, on 127.0.0.1:0, driven through a keep-alive
// agent like the API server's. Every answer must be
//   - 200 with a well-formed AdmissionReview: apiVersion/kind, response.uid echoing the request,
//     a boolean `allowed`, a status on denials, and a patch (when present) that decodes to a JSON
//     array of operations fast-json-patch applies, validated, to the object that was sent; or
//   - a 4xx with a JSON `{ "error": "<message>" }` body;
// never a 5xx, and the server must still answer /healthz afterwards.
//
// Cases per run (fast-check numRuns unless fixed):
//   arbitrary JSON values as the body ........................................... 400
//   arbitrary JSON in the envelope (request.* and object replaced) .............. 300
//   truncated bodies (valid reviews cut anywhere) ............................... 300
//   wrong types / deletions at every path of pod and Service reviews ........... 1200
//   huge annotation values (up to 2 MiB) ......................................... 40
//   unicode and odd hostnames in wpgw.io/outbound ............................... 400
//   patch-unfriendly keys ("/", "~", "~1", "", "__" …) in labels/annotations/maps  400
//   tampered wpgw.io/status, wpgw.io/original, sidecar.istio.io/status records . 400
//   deep nesting (to 200,000 levels) at random paths ............................. 60
//   __proto__ / constructor.prototype keys anywhere ............................. 201
//   content types and methods ................................................... 100
//   oversized bodies (> 3 MiB; with and without Content-Length) .................. 6
//   requests cut off mid-body on a raw TLS socket ............................... 20
//   hostile wpgw.io/outbound values (confusables, case, trailing dot, lengths) ... ~440
// => about 3,830 requests (10-40 s on 2 cores, depending on load); the count is printed and asserted (>= 3,000).
// WPGW_FUZZ_SCALE=N multiplies the generated cases (N=6: ~22,000 requests in ~75 s).
// WPGW_FUZZ_TARGET='{"port":N,"caFile":"…/ca.crt"}' sends them to a webhook already running in
// another process instead (`npm run fuzz:mutate`, bench/fuzz-mutate.ts: >= 100,000 requests, its RSS).
import { readFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import fc from 'fast-check';
import jsonpatch, { type Operation } from 'fast-json-patch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admit } from '../../src/core/admission.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/webhook/metrics.js';
import { createWebhookServer, DEFAULT_BODY_LIMIT_BYTES, type WebhookServer } from '../../src/webhook/server.js';
import { staticTlsSource } from '../../src/tls/tls.js';
import { applyResponse, deepCopy } from './helpers/builders.js';
import { review, staticContext } from '../lib/admission.js';
import { makePki } from './webhook-helpers.js';

const NS = 'shop';
const WINDOWS = { 'kubernetes.io/os': 'windows' };

// ---- server and client ----------------------------------------------------------------------------

let app: WebhookServer;
let port: number;
let ca: string;
let agent: Agent;
const serverErrors: string[] = [];

const ctx = staticContext({
  windowsLabelSets: { [NS]: [{ app: 'legacy', tier: 'web' }], dnsns: [{ app: 'legacy' }] },
  namespaceAnnotations: { dnsns: { 'wpgw.io/resolver': 'dnsConfig' } },
  takenInboundPorts: [30001],
});

/** A webhook in another process (bench/fuzz-mutate.ts), or undefined: this file starts its own. */
const TARGET = process.env.WPGW_FUZZ_TARGET
  ? (JSON.parse(process.env.WPGW_FUZZ_TARGET) as { port: number; caFile: string })
  : undefined;

beforeAll(async () => {
  if (TARGET) {
    port = TARGET.port;
    ca = readFileSync(TARGET.caFile, 'utf8');
    agent = new Agent({ keepAlive: true, maxSockets: 4, ca, servername: 'localhost' });
    return;
  }
  const pki = await makePki();
  ca = pki.ca.cert;
  app = createWebhookServer({
    handler: (body) => admit(body, ctx),
    ready: () => true,
    tls: staticTlsSource(pki.leaf),
    // Only errors are kept: they explain a 5xx if one shows up.
    logger: createLogger({ level: 'error', destination: { write: (s: string) => void serverErrors.push(s) } }),
    metrics: createMetrics({ defaultMetrics: false }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  port = addr.port;
  agent = new Agent({ keepAlive: true, maxSockets: 4, ca, servername: 'localhost' });
});

afterAll(async () => {
  agent?.destroy();
  await app?.close();
});

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

const counts = new Map<string, number>();
const statuses = new Map<number, number>();
const total = (): number => [...counts.values()].reduce((a, b) => a + b, 0);

function send(
  category: string,
  body: string | Buffer | undefined,
  o: { contentType?: string | null; method?: string; path?: string; chunked?: boolean; fresh?: boolean } = {},
): Promise<Answer> {
  counts.set(category, (counts.get(category) ?? 0) + 1);
  const headers: Record<string, string | number> = {};
  if (o.contentType !== null) headers['content-type'] = o.contentType ?? 'application/json';
  if (body !== undefined && !o.chunked) headers['content-length'] = Buffer.byteLength(body);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        method: o.method ?? 'POST',
        path: o.path ?? '/mutate',
        headers,
        // Oversized bodies may be answered before they are read; keep those off the shared pool.
        ...(o.fresh ? { agent: false, ca, servername: 'localhost' } : { agent }),
      },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          resolve({
            status,
            contentType: String(res.headers['content-type'] ?? ''),
            body: Buffer.concat(chunks).toString('utf8'),
          });
        });
        res.on('error', reject);
      },
    );
    // A server that answers early (413) may reset the rest of an upload; only a missing answer counts.
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    if (body === undefined) req.end();
    else if (o.chunked) {
      const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
      const step = 256 * 1024;
      for (let i = 0; i < buf.length; i += step) req.write(buf.subarray(i, i + step));
      req.end();
    } else req.end(body);
  });
}

// ---- what every answer must look like ----------------------------------------------------------

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

/** Throws (with the evidence) unless `a` is an acceptable answer to the body `sent`. */
function checkAnswer(sent: string | Buffer | undefined, a: Answer): void {
  const where = (): string =>
    `status ${a.status}, answer ${a.body.slice(0, 300)}; sent ${String(sent ?? '').slice(0, 300)}`;
  if (a.status >= 500) throw new Error(`5xx: ${where()}\nserver errors: ${serverErrors.slice(-3).join('')}`);
  if (a.status !== 200) {
    if (a.status < 400) throw new Error(`unexpected status: ${where()}`);
    if (!a.contentType.startsWith('application/json')) throw new Error(`4xx without a JSON body: ${where()}`);
    const j = JSON.parse(a.body) as unknown;
    if (!isObject(j) || typeof j.error !== 'string' || j.error.length === 0)
      throw new Error(`4xx without a message: ${where()}`);
    return;
  }
  const j = JSON.parse(a.body) as unknown;
  if (!isObject(j) || j.apiVersion !== 'admission.k8s.io/v1' || j.kind !== 'AdmissionReview' || !isObject(j.response)) {
    throw new Error(`200 without an AdmissionReview: ${where()}`);
  }
  const r = j.response;
  const request = (JSON.parse(String(sent)) as { request: Record<string, unknown> }).request;
  if (r.uid !== request.uid) throw new Error(`uid not echoed: ${where()}`);
  if (typeof r.allowed !== 'boolean') throw new Error(`allowed is not a boolean: ${where()}`);
  if (
    !r.allowed &&
    (!isObject(r.status) || typeof r.status.message !== 'string' || typeof r.status.code !== 'number')
  ) {
    throw new Error(`denial without a status: ${where()}`);
  }
  if (r.warnings !== undefined && (!Array.isArray(r.warnings) || r.warnings.some((w) => typeof w !== 'string'))) {
    throw new Error(`warnings are not strings: ${where()}`);
  }
  if (r.patch === undefined) return;
  if (r.patchType !== 'JSONPatch' || typeof r.patch !== 'string')
    throw new Error(`patch without patchType JSONPatch: ${where()}`);
  const ops = JSON.parse(Buffer.from(r.patch, 'base64').toString('utf8')) as unknown;
  if (!Array.isArray(ops) || ops.length === 0) throw new Error(`patch is not a non-empty array: ${where()}`);
  for (const op of ops) {
    if (!isObject(op) || typeof op.op !== 'string' || !OPS.has(op.op) || typeof op.path !== 'string') {
      throw new Error(`malformed patch operation ${JSON.stringify(op)}: ${where()}`);
    }
  }
  // As the API server does: every operation validated against the sent object, in order. (`request`
  // was just parsed from the sent text, so it is a private copy; JSON.parse also copes with nesting
  // far deeper than a JSON.stringify round trip would.)
  try {
    jsonpatch.applyPatch(request.object, ops as Operation[], true, true, true);
  } catch (err) {
    throw new Error(
      `patch does not apply: ${(err as Error).message}; ops ${JSON.stringify(ops).slice(0, 500)}; ${where()}`,
    );
  }
}

async function post(category: string, body: string | Buffer, o: Parameters<typeof send>[2] = {}): Promise<Answer> {
  const a = await send(category, body, o);
  checkAnswer(body, a);
  return a;
}

// ---- base objects ------------------------------------------------------------------------------

type Json = Record<string, unknown>;

function windowsPod(extra: { annotations?: Record<string, string>; dns?: boolean } = {}): Json {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'legacy-5d8c9-',
      namespace: NS,
      labels: { app: 'legacy', tier: 'web' },
      annotations: {
        'wpgw.io/outbound':
          'orders.sales.svc.cluster.local:9080, example.com:80+tls, tls://secure.example.com:443, tcp://db.example.com:5432, rates:8080',
        ...(extra.dns ? { 'wpgw.io/resolver': 'dnsConfig' } : {}),
        ...extra.annotations,
      },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'legacy-5d8c9', uid: 'r-1', controller: true },
      ],
      managedFields: [
        {
          manager: 'kube-controller-manager',
          operation: 'Update',
          apiVersion: 'v1',
          fieldsType: 'FieldsV1',
          fieldsV1: { 'f:metadata': {} },
        },
      ],
    },
    spec: {
      nodeSelector: WINDOWS,
      containers: [
        { name: 'app', image: 'example/app:1', env: [{ name: 'A', value: '1' }], ports: [{ containerPort: 8080 }] },
        { name: 'side', image: 'example/side:1' },
      ],
      initContainers: [{ name: 'init', image: 'example/init:1' }],
      hostAliases: [{ ip: '10.1.2.3', hostnames: ['mine.example.com'] }],
      ...(extra.dns
        ? {
            dnsPolicy: 'ClusterFirst',
            dnsConfig: {
              searches: ['corp.example.com'],
              options: [
                { name: 'ndots', value: '2' },
                { name: 'timeout', value: '1' },
              ],
            },
          }
        : {}),
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['windows'] }] },
            ],
          },
        },
      },
      tolerations: [{ key: 'os', operator: 'Equal', value: 'windows', effect: 'NoSchedule' }],
      runtimeClassName: 'windows-rc',
    },
  };
}

/** A Windows pod Istio's injector got to first: its sidecar, init container, volumes and status record. */
function istioInjectedPod(): Json {
  const pod = windowsPod({
    annotations: {
      'sidecar.istio.io/status': JSON.stringify({
        initContainers: ['istio-init'],
        containers: ['istio-proxy'],
        volumes: ['istio-envoy', 'istio-data'],
        imagePullSecrets: null,
        revision: 'default',
      }),
    },
  });
  const spec = pod.spec as { containers: Json[]; initContainers: Json[]; volumes?: Json[] };
  spec.containers.push({ name: 'istio-proxy', image: 'auto' });
  spec.initContainers.push({ name: 'istio-init', image: 'auto' });
  spec.volumes = [
    { name: 'istio-envoy', emptyDir: {} },
    { name: 'istio-data', emptyDir: {} },
    { name: 'app-config', configMap: { name: 'c' } },
  ];
  return pod;
}

function legacyService(): Json {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'legacy', namespace: NS, labels: { app: 'legacy' }, annotations: { note: 'x' } },
    spec: {
      type: 'ClusterIP',
      selector: { app: 'legacy' },
      ports: [
        { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' },
        { name: 'admin', port: 9090, targetPort: 'admin', protocol: 'TCP' },
      ],
    },
  };
}

const podReview = (object: unknown, namespace = NS, uid = 'uid-pod'): Json =>
  review({ kind: 'Pod', namespace, object, uid });
const svcReview = (object: unknown, operation: 'CREATE' | 'UPDATE' = 'CREATE', uid = 'uid-svc'): Json =>
  review({
    kind: 'Service',
    namespace: NS,
    object,
    operation,
    uid,
    ...(operation === 'UPDATE' ? { oldObject: object } : {}),
  });

/** Objects as a second admission sees them: already injected / re-pointed by the real core. */
function admitted(r: Json): unknown {
  const result = admit(r, ctx);
  if (!result.ok || result.review.response.patch === undefined)
    throw new Error(`test setup: not patched: ${JSON.stringify(result)}`);
  return applyResponse((r.request as Json).object, result);
}

const BASES: Array<{ name: string; review: () => Json }> = [
  { name: 'windows pod', review: () => podReview(windowsPod()) },
  { name: 'windows pod, dnsConfig', review: () => podReview(windowsPod({ dns: true })) },
  { name: 'injected pod (re-admission)', review: () => podReview(admitted(podReview(windowsPod({ dns: true })))) },
  { name: 'pod injected by Istio first', review: () => podReview(istioInjectedPod()) },
  { name: 'service', review: () => svcReview(legacyService()) },
  { name: 're-pointed service (UPDATE)', review: () => svcReview(admitted(svcReview(legacyService())), 'UPDATE') },
];

// ---- generic JSON path surgery ------------------------------------------------------------------

type Path = Array<string | number>;

function allPaths(v: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  if (Array.isArray(v)) v.forEach((x, i) => (out.push([...prefix, i]), allPaths(x, [...prefix, i], out)));
  else if (isObject(v))
    for (const [k, x] of Object.entries(v)) (out.push([...prefix, k]), allPaths(x, [...prefix, k], out));
  return out;
}

/** The container holding `path`'s last step (undefined when an earlier step is not a container). */
function parentOf(root: unknown, path: Path): unknown {
  let cur = root;
  for (const k of path.slice(0, -1)) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return cur;
}

function setAt(root: unknown, path: Path, value: unknown): void {
  (parentOf(root, path) as Record<string | number, unknown>)[path[path.length - 1]!] = value;
}

function deleteAt(root: unknown, path: Path): void {
  const parent = parentOf(root, path);
  const key = path[path.length - 1]!;
  if (Array.isArray(parent)) parent.splice(key as number, 1);
  else delete (parent as Record<string, unknown>)[key as string];
}

// ---- arbitraries -------------------------------------------------------------------------------

/** Values of every JSON type, weighted to the ones a typed field does not expect. */
const weird: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null,
    true,
    false,
    0,
    -1,
    1e308,
    -0.5,
    '',
    ' ',
    'None',
    'UDP',
    'windows',
    'true',
    'false',
    [],
    {},
    [null],
    [[]],
    { '': '' },
  ),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.constant(null)), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean()), {
    maxKeys: 4,
  }),
  fc.jsonValue({ maxDepth: 3 }),
);

type Mutation = { kind: 'set'; at: number; value: unknown } | { kind: 'delete'; at: number };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: weird }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }) },
);

/** Applies mutations to a fresh base review, each at a path of what is left (paths re-listed each time). */
function mutate(base: Json, ms: Mutation[], under: Path = []): Json {
  const r = deepCopy(base);
  for (const m of ms) {
    const paths = allPaths(under.length ? parentOf(r, [...under, '']) : r, under);
    if (paths.length === 0) break;
    const p = paths[m.at % paths.length]!;
    // A copy: fast-check hands out the same constant instances (e.g. `[null]`) again, and a later
    // mutation setting into one would make it contain itself (found at 100,000 requests).
    if (m.kind === 'set') setAt(r, p, structuredClone(m.value));
    else deleteAt(r, p);
  }
  return r;
}

const unicodeLabel = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 });
const oddHost = fc.oneof(
  unicodeLabel.map((l) => `${l}.example.com`),
  fc.tuple(unicodeLabel, unicodeLabel).map(([a, b]) => `${a}.${b}`),
  fc.constantFrom(
    'bücher.example',
    'xn--bcher-kva.example',
    'пример.рф',
    '例子.测试',
    'ex ample.com',
    'a..b',
    '.',
    '-a.com',
    'a-.com',
    '*.x.com',
    '*',
    '**.x.com',
    'x.*.com',
    'localhost',
    '127.0.0.1',
    '[::1]',
    '::1',
    'a'.repeat(64) + '.com',
    `${'a.'.repeat(130)}com`,
    'ORDERS.SALES.SVC.CLUSTER.LOCAL',
    'orders.sales.svc.cluster.local.',
    'svc',
    'x.svc',
    'x.y.svc.cluster.local',
    '%41.com',
    'a\u0000b.com',
    'a\u200db.com',
    '\ud800.com',
  ),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }),
);
const outboundEntry = fc
  .tuple(
    fc.constantFrom('', 'http://', 'tls://', 'tcp://', 'https://', 'udp://', 'TLS://', '://'),
    oddHost,
    fc.oneof(
      fc.integer({ min: -1, max: 70000 }).map(String),
      fc.constantFrom('', '0', '65535', '080', '1e3', 'http', '٣'),
    ),
    fc.constantFrom('', '+tls', '+tls:443', '+tls:0', '+tls:', '+TLS', '+tls:99999'),
  )
  .map(([proto, host, p, tls]) => `${proto}${host}:${p}${tls}`);
const outboundText = fc
  .tuple(
    fc.array(fc.oneof(outboundEntry, fc.constantFrom('example.com:80', 'orders.sales:9080')), {
      minLength: 1,
      maxLength: 6,
    }),
    fc.constantFrom(',', ' ', '\n', ', ', '\t', ';', '\r\n'),
  )
  .map(([entries, sep]) => entries.join(sep));

const hostileKey = fc.oneof(
  fc.constantFrom(
    '/',
    '~',
    '~0',
    '~1',
    '/~',
    '~/',
    'a/b',
    'a~b',
    'a~1b',
    '',
    ' ',
    '.',
    '..',
    '-',
    'wpgw.io/managed',
    'wpgw.io/status',
    'wpgw.io/inject',
    'wpgw.io/outbound',
    'wpgw.io/resolver',
    'wpgw.io/original',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    '__defineGetter__',
    'valueOf',
    '0',
    '-1',
    '%2F',
    '\\',
    '"',
    '\u0000',
    '🙂',
    'app',
  ),
  fc.string({ maxLength: 12 }).map((s) => `${s}/${s}~`),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
);
const hostileMap = fc.dictionary(
  hostileKey,
  fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('true', 'false', 'dnsConfig', 'hostAliases', 'enabled')),
  { maxKeys: 6 },
);

function deepValue(depth: number, shape: 'array' | 'object' | 'mixed'): string {
  if (shape === 'array') return '['.repeat(depth) + ']'.repeat(depth);
  if (shape === 'object') return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
  return '[{"a":'.repeat(depth) + '1' + '}]'.repeat(depth);
}

/** WPGW_FUZZ_SCALE=10 runs ten times the cases (a longer hunt; the time limits scale too). */
const SCALE = Math.max(0.1, Number(process.env.WPGW_FUZZ_SCALE ?? 1) || 1);
const SCALE_T = Math.max(1, SCALE);
const runs = (n: number): number => Math.max(1, Math.round(n * SCALE));
/** A property stops (passing, with fewer cases) after a minute; the final case count is asserted. */
const PROP = { interruptAfterTimeLimit: 60_000 * SCALE_T };

// ---- the properties ---------------------------------------------------------------------------

describe('POST /mutate under hostile input (real HTTPS, real core)', () => {
  it('a well-formed review is patched (sanity check of the harness)', async () => {
    for (const b of BASES) {
      const body = JSON.stringify(b.review());
      const a = await post('sanity', body);
      expect(a.status, b.name).toBe(200);
    }
  });

  it(
    'arbitrary JSON bodies',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.jsonValue({ maxDepth: 6 }), async (v) => {
          await post('arbitrary JSON', JSON.stringify(v) ?? 'null');
        }),
        { numRuns: runs(400), ...PROP },
      );
    },
    120_000 * SCALE_T,
  );

  it(
    'arbitrary JSON in the envelope',
    async () => {
      const keys = [
        'apiVersion',
        'kind',
        'request',
        'request.uid',
        'request.kind',
        'request.kind.kind',
        'request.kind.group',
        'request.operation',
        'request.namespace',
        'request.name',
        'request.subResource',
        'request.object',
        'request.oldObject',
        'request.object.metadata',
        'request.object.spec',
      ];
      await fc.assert(
        fc.asyncProperty(
          fc.nat(BASES.length - 1),
          fc.array(fc.tuple(fc.constantFrom(...keys), fc.oneof(weird, fc.jsonValue({ maxDepth: 4 }))), {
            minLength: 1,
            maxLength: 3,
          }),
          async (b, edits) => {
            const r = BASES[b]!.review();
            for (const [key, value] of edits) {
              const path = key.split('.');
              const parent = parentOf(r, path);
              if (isObject(parent)) parent[path[path.length - 1]!] = value;
            }
            const body = JSON.stringify(r);
            const a = await send('envelope', body);
            // The uid check needs a string uid that survived; otherwise only the shape of the answer counts.
            const uid = (r.request as Json | undefined)?.uid;
            if (isObject(r.request) && typeof uid === 'string' && uid !== '') checkAnswer(body, a);
            else if (a.status === 200) throw new Error(`200 for a review without a usable uid: ${body.slice(0, 300)}`);
            else checkAnswer(body, a);
          },
        ),
        { numRuns: runs(300), ...PROP },
      );
    },
    120_000 * SCALE_T,
  );

  it(
    'truncated bodies',
    async () => {
      const bodies = BASES.map((b) => JSON.stringify(b.review()));
      await fc.assert(
        fc.asyncProperty(fc.nat(bodies.length - 1), fc.double({ min: 0, max: 1, noNaN: true }), async (b, frac) => {
          const full = bodies[b]!;
          const cut = full.slice(0, Math.floor(frac * (full.length - 1)));
          const a = await post('truncated', cut);
          if (cut.trim() !== '') expect(a.status).toBe(400);
        }),
        { numRuns: runs(300), ...PROP },
      );
    },
    120_000 * SCALE_T,
  );

  it(
    'wrong types and missing fields at every path of pod and Service reviews',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.nat(BASES.length - 1),
          fc.array(mutation, { minLength: 1, maxLength: 3 }),
          fc.boolean(),
          async (b, ms, objectOnly) => {
            const r = mutate(BASES[b]!.review(), ms, objectOnly ? ['request', 'object'] : []);
            // Keep the uid so the echo can be checked (mutations of it are covered by the envelope property).
            if (isObject(r.request)) r.request.uid = 'uid-mut';
            await post('wrong types', JSON.stringify(r));
          },
        ),
        { numRuns: runs(1200), ...PROP },
      );
    },
    180_000 * SCALE_T,
  );

  it(
    'huge annotation values',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(
            'wpgw.io/outbound',
            'wpgw.io/status',
            'wpgw.io/resolver',
            'wpgw.io/inject',
            'wpgw.io/original',
            'other.example.com/big',
          ),
          fc.constantFrom(16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 100_000, 1024 * 1024, 2 * 1024 * 1024),
          fc.constantFrom('a', 'example.com:80,', 'x.example.com:80 ', '{', '🙂', '\\"'),
          fc.nat(BASES.length - 1),
          async (key, size, unit, b) => {
            const r = BASES[b]!.review();
            const meta = ((r.request as Json).object as Json).metadata as Json;
            meta.annotations = {
              ...(meta.annotations as Json),
              [key]: unit.repeat(Math.ceil(size / unit.length)).slice(0, size),
            };
            const body = JSON.stringify(r);
            if (Buffer.byteLength(body) <= DEFAULT_BODY_LIMIT_BYTES) {
              expect([200, 400]).toContain((await post('huge annotations', body)).status);
              return;
            }
            // Over the limit (multi-byte units): answered 413 before the body is read; a server in
            // another process may close while the upload is still being written (EPIPE/ECONNRESET).
            const a = await send('huge annotations', body, { fresh: true }).catch((err: NodeJS.ErrnoException) => {
              if (err.code === 'EPIPE' || err.code === 'ECONNRESET') return undefined;
              throw err;
            });
            if (a) {
              checkAnswer(body, a);
              expect(a.status).toBe(413);
            }
          },
        ),
        { numRuns: runs(40), ...PROP },
      );
    },
    180_000 * SCALE_T,
  );

  it(
    'unicode and odd hostnames in wpgw.io/outbound are denied or injected, never crash',
    async () => {
      await fc.assert(
        fc.asyncProperty(outboundText, fc.boolean(), async (text, dns) => {
          const pod = windowsPod({ dns, annotations: { 'wpgw.io/outbound': text } });
          const a = await post('unicode hostnames', JSON.stringify(podReview(pod)));
          expect(a.status).toBe(200);
        }),
        { numRuns: runs(400), ...PROP },
      );
    },
    120_000 * SCALE_T,
  );

  // Hostile wpgw.io/outbound values (issue 17): length, Unicode confusables, punycode, names that
  // differ only in case or a trailing dot. A name is either the ASCII name it looks like, injected
  // exactly as its canonical form, or denied naming the entry; never a second name for one host.
  it(
    'hostile wpgw.io/outbound values: confusables denied, case and trailing dot canonical, punycode accepted, lengths bounded',
    async () => {
      const hostsOf = async (
        outbound: string,
      ): Promise<{ allowed: boolean; message?: string; hostnames?: string[] }> => {
        const r = podReview(windowsPod({ annotations: { 'wpgw.io/outbound': outbound } }));
        const a = await post('hostile outbound', JSON.stringify(r));
        expect(a.status).toBe(200);
        const response = (
          JSON.parse(a.body) as { response: { allowed: boolean; patch?: string; status?: { message: string } } }
        ).response;
        if (!response.allowed) return { allowed: false, message: response.status!.message };
        const ops = JSON.parse(Buffer.from(response.patch!, 'base64').toString('utf8')) as Operation[];
        const pod = jsonpatch.applyPatch(deepCopy((r.request as Json).object), ops, true, false, true).newDocument as {
          spec: { hostAliases?: Array<{ hostnames: string[] }> };
        };
        return {
          allowed: true,
          hostnames: (pod.spec.hostAliases ?? [])
            .flatMap((h) => h.hostnames)
            .filter((h) => h !== 'mine.example.com')
            .sort(),
        };
      };
      const canonical = await hostsOf('example.com:80');
      expect(canonical.hostnames).toEqual(['example.com']);
      for (const same of ['EXAMPLE.COM:80', 'Example.Com.:80', 'example.com.:80', 'HTTP://example.com:80']) {
        expect(await hostsOf(same), same).toEqual(canonical);
      }
      // confusables and invisible characters: never a second name (Cyrillic е/а, fullwidth, zero-width, ideographic stop, RTL override, combining mark)
      for (const bad of [
        '\u0435xample.com:80',
        'ex\u0430mple.com:80',
        '\uff45xample.com:80',
        'exa\u200bmple.com:80',
        'example\u3002com:80',
        '\u202eexample.com:80',
        'example.co\u0301m:80',
        'example.com..:80',
        '.example.com:80',
        'exam_ple.com:80',
      ]) {
        const r = await hostsOf(bad);
        expect(r.allowed, JSON.stringify(bad)).toBe(false);
        expect(r.message, JSON.stringify(bad)).toContain(`invalid wpgw.io/outbound entry "${bad}"`);
      }
      expect((await hostsOf('\u0435xample.com:80')).message).toContain('xn--');
      // punycode is the name: accepted as written (lowercase)
      expect((await hostsOf('XN--E1AFMKFD.xn--p1ai:80')).hostnames).toEqual(['xn--e1afmkfd.xn--p1ai']);
      // lengths: a 63-character label passes, 64 does not; 253 characters pass, 254 do not; 16 KiB and 256 entries
      const label = (n: number) => 'a'.repeat(n);
      expect((await hostsOf(`${label(63)}.example.com:80`)).allowed).toBe(true);
      expect((await hostsOf(`${label(64)}.example.com:80`)).message).toContain('is not a valid DNS label');
      const name = (len: number) => `${[label(63), label(63), label(63)].join('.')}.${label(len - 3 * 64)}`;
      expect(name(253)).toHaveLength(253);
      expect((await hostsOf(`${name(253)}:80`)).allowed).toBe(true);
      expect((await hostsOf(`${name(254)}:80`)).message).toContain('longer than 253 characters');
      expect(
        (await hostsOf(Array.from({ length: 257 }, (_, i) => `h${i}.example.com:80`).join(','))).message,
      ).toContain('more than 256 entries');
      expect((await hostsOf(`${'x'.repeat(16 * 1024)}.com:80`)).message).toContain('longer than 16384 characters');
      // generated: random case and a trailing dot on valid names give the canonical hostnames; a
      // confusable swapped in anywhere is denied
      const confusable = fc.constantFrom(
        '\u0430',
        '\u0435',
        '\u043e',
        '\u0440',
        '\u0441',
        '\u0445',
        '\u0456',
        '\u200b',
        '\u00ad',
        '\uff0e',
        '\u2024',
        '\u0131',
      );
      await fc.assert(
        fc.asyncProperty(
          fc.domain(),
          fc.array(fc.boolean(), { minLength: 1, maxLength: 260 }),
          fc.boolean(),
          fc.option(fc.tuple(confusable, fc.nat())),
          async (domain, upper, dot, swap) => {
            const cased = [...domain].map((c, i) => (upper[i % upper.length] ? c.toUpperCase() : c)).join('');
            const at = swap ? swap[1] % cased.length : 0;
            const host = swap ? `${cased.slice(0, at)}${swap[0]}${cased.slice(at + 1)}` : cased;
            const r = await hostsOf(`${host}${dot ? '.' : ''}:80`);
            if (swap) expect(r.allowed, JSON.stringify(host)).toBe(false);
            else expect(r, host).toEqual(await hostsOf(`${domain.toLowerCase()}:80`));
          },
        ),
        { numRuns: runs(200), ...PROP },
      );
    },
    180_000 * SCALE_T,
  );

  it(
    'patch-unfriendly keys in labels, annotations and other maps',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.nat(BASES.length - 1),
          hostileMap,
          hostileMap,
          hostileMap,
          fc.constantFrom('labels', 'annotations', 'nodeSelector', 'selector'),
          async (b, labels, annotations, other, where) => {
            const r = BASES[b]!.review();
            const object = (r.request as Json).object as Json;
            const meta = object.metadata as Json;
            const spec = object.spec as Json;
            meta.labels = { ...(meta.labels as Json), ...labels };
            meta.annotations = { ...(meta.annotations as Json), ...annotations };
            if (where === 'nodeSelector' && 'containers' in spec) spec.nodeSelector = { ...WINDOWS, ...other };
            if (where === 'selector' && 'ports' in spec) spec.selector = { ...(spec.selector as Json), ...other };
            if (where === 'labels') meta.labels = other;
            await post('hostile keys', JSON.stringify(r));
          },
        ),
        { numRuns: runs(400), ...PROP },
      );
    },
    120_000 * SCALE_T,
  );

  it(
    'tampered wpgw.io/status, wpgw.io/original and sidecar.istio.io/status records (wrong types inside the JSON text)',
    async () => {
      // The records the core itself wrote, then edited by someone else: parsed back on re-admission.
      const injected = podReview(admitted(podReview(windowsPod({ dns: true }))));
      const injectedHosts = podReview(admitted(podReview(windowsPod())));
      const repointed = svcReview(admitted(svcReview(legacyService())), 'UPDATE');
      const cases: Array<{ r: Json; key: string }> = [
        { r: injected, key: 'wpgw.io/status' },
        { r: injectedHosts, key: 'wpgw.io/status' },
        { r: repointed, key: 'wpgw.io/original' },
        { r: podReview(istioInjectedPod()), key: 'sidecar.istio.io/status' },
      ];
      await fc.assert(
        fc.asyncProperty(
          fc.nat(cases.length - 1),
          fc.array(mutation, { minLength: 1, maxLength: 3 }),
          async (c, ms) => {
            const { r, key } = cases[c]!;
            const copy = deepCopy(r);
            const annotations = (((copy.request as Json).object as Json).metadata as Json).annotations as Record<
              string,
              string
            >;
            const record = mutate({ record: JSON.parse(annotations[key]!) as unknown }, ms, ['record']);
            annotations[key] = JSON.stringify(record.record);
            await post('tampered records', JSON.stringify(copy));
          },
        ),
        { numRuns: runs(400), ...PROP },
      );
    },
    120_000 * SCALE_T,
  );

  it(
    'deep nesting at random paths',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.nat(BASES.length - 1),
          fc.nat(),
          fc.constantFrom(100, 1000, 5000, 20_000, 200_000),
          fc.constantFrom('array', 'object', 'mixed') as fc.Arbitrary<'array' | 'object' | 'mixed'>,
          async (b, at, depth, shape) => {
            const r = BASES[b]!.review();
            const paths = allPaths((r.request as Json).object, ['request', 'object']);
            const marker = '"__DEEP_MARKER__"';
            setAt(r, paths[at % paths.length]!, '__DEEP_MARKER__');
            const body = JSON.stringify(r).replace(marker, deepValue(depth, shape));
            await post('deep nesting', body);
          },
        ),
        { numRuns: runs(60), ...PROP },
      );
    },
    180_000 * SCALE_T,
  );

  it(
    '__proto__ and constructor.prototype keys anywhere are refused with 400',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.nat(BASES.length - 1),
          fc.nat(),
          fc.constantFrom(
            '{"__proto__":{"polluted":true}}',
            '{"constructor":{"prototype":{"polluted":true}}}',
            '{"a":{"__proto__":[]}}',
            '[{"__proto__":null}]',
          ),
          async (b, at, poison) => {
            const r = BASES[b]!.review();
            const paths = allPaths(r);
            setAt(r, paths[at % paths.length]!, '__POISON__');
            const a = await post('proto keys', JSON.stringify(r).replace('"__POISON__"', poison));
            expect(a.status).toBe(400);
            expect(({} as Record<string, unknown>).polluted).toBeUndefined();
          },
        ),
        { numRuns: runs(200), ...PROP },
      );
      // Keys that merely look dangerous are ordinary data.
      const pod = windowsPod({ annotations: { constructor: 'x', prototype: 'y', __proto: 'z' } });
      expect((await post('proto keys', JSON.stringify(podReview(pod)))).status).toBe(200);
    },
    120_000 * SCALE_T,
  );

  it(
    'content types and methods',
    async () => {
      const body = JSON.stringify(BASES[0]!.review());
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom<string | null>(
            null,
            'application/json',
            'application/json; charset=utf-8',
            'APPLICATION/JSON',
            'text/plain',
            'application/x-www-form-urlencoded',
            'application/json-patch+json',
            'application/yaml',
            '',
            ';',
            'application/json;;;',
          ),
          fc.constantFrom('POST', 'PUT', 'PATCH', 'GET', 'DELETE', 'OPTIONS'),
          fc.constantFrom('/mutate', '/mutate/', '/MUTATE', '/mutate?x=1', '/mutate%00', '//mutate'),
          fc.boolean(),
          async (contentType, method, path, withBody) => {
            const sent = withBody && method !== 'GET' ? body : undefined;
            const a = await send('content types', sent, { contentType, method, path });
            if (a.status === 200 && sent === undefined)
              throw new Error(`200 without a body: ${method} ${path} ${contentType}`);
            checkAnswer(sent, a);
          },
        ),
        { numRuns: runs(100), ...PROP },
      );
    },
    120_000 * SCALE_T,
  );

  it(
    'oversized bodies are refused with 413, with or without Content-Length',
    async () => {
      const limit = DEFAULT_BODY_LIMIT_BYTES;
      const r = BASES[0]!.review();
      const meta = ((r.request as Json).object as Json).metadata as Json;
      for (const [size, chunked] of [
        [limit + 1, false],
        [limit + 1, true],
        [limit + 512 * 1024, false],
        [8 * limit, true],
      ] as const) {
        meta.annotations = { big: '' };
        const skeleton = JSON.stringify(r).length;
        meta.annotations = { big: 'x'.repeat(size - skeleton) };
        const body = Buffer.from(JSON.stringify(r));
        expect(body.length).toBe(size);
        const a = await post('oversized', body, { chunked, fresh: true });
        expect(a.status, `${size} bytes, chunked ${chunked}`).toBe(413);
      }
      // Just under the limit is read and decided (the annotation is not a valid outbound, so any 200/400).
      meta.annotations = { big: '' };
      const skeleton = JSON.stringify(r).length;
      meta.annotations = { big: 'x'.repeat(limit - skeleton) };
      const atLimit = JSON.stringify(r);
      expect(Buffer.byteLength(atLimit)).toBe(limit);
      expect((await post('oversized', atLimit, { fresh: true })).status).toBe(200);
      // Whitespace padding beyond the limit.
      expect(
        (await post('oversized', `${JSON.stringify(svcReview(legacyService()))}${' '.repeat(limit)}`, { fresh: true }))
          .status,
      ).toBe(413);
    },
    120_000 * SCALE_T,
  );

  it(
    'requests cut off mid-body leave the server serving',
    async () => {
      const body = JSON.stringify(BASES[0]!.review());
      for (let i = 0; i < 20; i++) {
        counts.set('cut off', (counts.get('cut off') ?? 0) + 1);
        const declared = i % 2 === 0 ? body.length : body.length * 4;
        const sentBytes = Math.floor((body.length * i) / 20);
        await new Promise<void>((resolve) => {
          const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
            s.write(
              `POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${declared}\r\n\r\n${body.slice(0, sentBytes)}`,
            );
            // Half the time hang up politely, half the time abruptly.
            setTimeout(() => (i % 4 < 2 ? s.end() : s.destroy()), 5);
          });
          s.on('error', () => {});
          s.on('close', () => resolve());
          s.resume();
        });
      }
    },
    60_000 * SCALE_T,
  );

  // A 5xx this suite found: a deeply nested previousDnsConfig restored from wpgw.io/status made
  // jsonpatch.compare overflow the stack. Fixed by trusting only well-formed status records and
  // guarding the diff; kept as a regression test.
  it('a deeply nested previousDnsConfig in wpgw.io/status is answered, not a 500', async () => {
    const deep = deepValue(5000, 'array');
    const status = `{"v":1,"mode":"dnsConfig","dnsIP":"10.96.100.53","previousDnsConfig":{"options":[{"name":"x","value":${deep}}]},"outbound":["example.com:80"]}`;
    const pod = windowsPod({ annotations: { 'wpgw.io/status': status, 'wpgw.io/outbound': 'example.com:80' } });
    ((pod.metadata as Json).labels as Json)['wpgw.io/managed'] = 'true';
    (pod.spec as Json).dnsPolicy = 'None';
    (pod.spec as Json).dnsConfig = { nameservers: ['10.96.100.53'] };
    const body = JSON.stringify(podReview(pod));
    await post('regressions', body);
  });

  it('the server still serves after all of it, and the case count is what the header says', async () => {
    const health = await send('health', undefined, { method: 'GET', path: '/healthz', contentType: null });
    expect(health.status).toBe(200);
    expect(health.body).toBe('ok');
    const n = total();
    const summary = [...counts.entries()].map(([k, v]) => `${k} ${v}`).join(', ');
    const byStatus = [...statuses.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([k, v]) => `${k}:${v}`)
      .join(' ');
    console.log(`fuzz-mutate: ${n} requests (${summary}); answers by status ${byStatus}`);
    expect(statuses.get(500) ?? 0, serverErrors.join('')).toBe(0);
    expect(n).toBeGreaterThanOrEqual(Math.min(3000, 3000 * SCALE));
  });
});
