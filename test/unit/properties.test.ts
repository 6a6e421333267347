// Property tests of the admission core (src/core/admission.ts over pod.ts / service.ts / outbound.ts).
// Every patch is decoded and applied with fast-json-patch (operations validated) to a deep copy of
// the object the API server sent, and the result is admitted again.
//
// Cases per run (fast-check numRuns):
//   Windows pods, arbitrary metadata/spec/outbound/resolver ............ 800
//   non-Windows pods without wpgw.io/* keys ............................ 300
//   invalid outbound entries, by construction .......................... 400
//   invalid outbound entries, arbitrary tokens the grammar rejects ...... 300
//   Services selecting Windows pods (re-point, re-admit, re-apply) ...... 300
//   Services: allocation probes past taken pod ports ..................... 50
//   malformed AdmissionReviews: arbitrary JSON bodies ................... 500
//   malformed AdmissionReviews: wrong types in every envelope field ..... 500
//   malformed AdmissionReviews: wrong types deep in a pod spec .......... 300
// => 3,450 generated cases (the Windows-pod property also checks each resolver mode got
// more than 50 injections: ~64 and ~71 of 400 on average, so 800 keep that far from chance).
import fc from 'fast-check';
import type {
  V1Affinity,
  V1Container,
  V1HostAlias,
  V1PodDNSConfig,
  V1Service,
  V1ServicePort,
} from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { admit } from '../../src/core/admission.js';
import type { AdmitResult } from '../../src/core/admission-types.js';
import { parseOutbound } from '../../src/core/outbound.js';
import type { PodLike } from '../../src/core/pod.js';
import { INBOUND_POD_PORTS } from '../../src/names.js';
import { applyResponse, decodePatch, deepCopy } from './helpers/builders.js';
import { DNS_IP, GATEWAY_IP, review, staticContext } from '../lib/admission.js';

const NS = 'shop';
const MANAGED = 'wpgw.io/managed';
const ISTIO_INJECT = 'sidecar.istio.io/inject';
const STATUS = 'wpgw.io/status';

// ---- arbitraries --------------------------------------------------------------------------------

const dnsLabel = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}[a-z0-9]$/);
const externalHost = fc
  .tuple(fc.array(dnsLabel, { minLength: 1, maxLength: 3 }), fc.constantFrom('com', 'net', 'io', 'example'))
  .map(([labels, tld]) => [...labels, tld].join('.'));

type HostKind = 'external' | 'wildcard' | 'service';
interface GenHost {
  kind: HostKind;
  /** As the grammar normalises it (lowercase, no trailing dot). */
  host: string;
  service?: string;
  namespace?: string;
}

const serviceHost: fc.Arbitrary<GenHost> = fc
  .record({ svc: dnsLabel, ns: fc.constantFrom(NS, 'sales', 'other-ns'), form: fc.constantFrom('bare', 'svc', 'fqdn') })
  .map(({ svc, ns, form }) => {
    if (form === 'bare') return { kind: 'service', host: svc, service: svc, namespace: NS };
    const host = form === 'svc' ? `${svc}.${ns}.svc` : `${svc}.${ns}.svc.cluster.local`;
    return { kind: 'service', host, service: svc, namespace: ns };
  });

const hostArb: fc.Arbitrary<GenHost> = fc.oneof(
  { arbitrary: externalHost.map((host): GenHost => ({ kind: 'external', host })), weight: 3 },
  { arbitrary: serviceHost, weight: 3 },
  { arbitrary: externalHost.map((h): GenHost => ({ kind: 'wildcard', host: `*.${h}` })), weight: 1 },
);

interface GenDest {
  text: string;
  canonical: string;
  host: GenHost;
  port: number;
  wildcard: boolean;
  proto: 'http' | 'tls' | 'tcp';
  /** The port the gateway sends to (the +tls upstream, else the port). */
  upstream: number;
  originate: boolean;
}

const destArb: fc.Arbitrary<GenDest> = fc
  .record({
    host: hostArb,
    proto: fc.constantFrom('http', 'tls', 'tcp'),
    explicitScheme: fc.boolean(),
    port: fc.integer({ min: 1, max: 65535 }),
    tls: fc.constantFrom('none', 'default', 'port'),
    upstream: fc.integer({ min: 1, max: 65535 }),
    trailingDot: fc.boolean(),
    shout: fc.boolean(),
  })
  .map((r) => {
    const wildcard = r.host.kind === 'wildcard';
    const proto = wildcard && r.proto === 'tcp' ? 'http' : r.proto;
    // +tls is for external hosts (in-mesh ones get Istio mTLS; declaring it is denied, tested apart).
    const tls = proto === 'http' && r.host.kind === 'external' ? r.tls : 'none';
    const scheme = proto !== 'http' || r.explicitScheme ? `${proto}://` : '';
    const tlsText = tls === 'none' ? '' : tls === 'default' ? '+tls' : `+tls:${r.upstream}`;
    const text = `${scheme}${r.host.host}${r.trailingDot ? '.' : ''}:${r.port}${tlsText}`;
    const canonicalTls = tls === 'none' ? '' : tls === 'default' || r.upstream === 443 ? '+tls' : `+tls:${r.upstream}`;
    return {
      text: r.shout ? text.toUpperCase() : text,
      canonical: `${proto === 'http' ? '' : `${proto}://`}${r.host.host}:${r.port}${canonicalTls}`,
      host: r.host,
      port: r.port,
      wildcard,
      proto,
      upstream: tls === 'none' ? r.port : tls === 'default' ? 443 : r.upstream,
      originate: tls !== 'none',
    };
  });

/**
 * The README's sharing rules, restated independently of src/core/outbound.ts: one protocol per
 * dialled port, one tcp destination per port, one upstream protocol per external host:port.
 */
function shareable(a: GenDest, b: GenDest): boolean {
  if (a.port === b.port && (a.proto !== b.proto || a.proto === 'tcp')) return false;
  const kind = (d: GenDest) => (d.proto === 'http' ? (d.originate ? 'https' : 'http') : d.proto);
  const external = (d: GenDest) => d.host.kind !== 'service';
  return !(
    external(a) &&
    external(b) &&
    a.host.host === b.host.host &&
    a.upstream === b.upstream &&
    kind(a) !== kind(b)
  );
}

const destsArb = fc
  .uniqueArray(destArb, { selector: (d) => `${d.host.host}:${d.port}`, maxLength: 5 })
  .filter((ds) => ds.every((d, i) => ds.slice(0, i).every((e) => shareable(e, d))));
const separators = fc.array(fc.constantFrom(',', ' ', '\n', ', ', ',\n  ', '\t', ' ,, '), {
  minLength: 8,
  maxLength: 8,
});

function joinEntries(entries: string[], seps: string[]): string {
  return entries.map((e, i) => (i === 0 ? e : `${seps[i % seps.length]}${e}`)).join('');
}

/** The names the app may dial, per the documented grammar (an oracle independent of dialNames). */
function expectedNames(h: GenHost): string[] {
  if (h.kind !== 'service') return [h.host];
  const { service, namespace } = h as Required<GenHost>;
  const names = [`${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
  return namespace === NS ? [service, ...names] : names;
}

// Label and annotation keys, including "/" and "~" (JSON-pointer escapes ~1 and ~0), never wpgw.io/*.
const metaKey = fc
  .oneof(
    fc.stringMatching(/^([a-z0-9][a-z0-9.~-]{0,10}\/)?[A-Za-z0-9][A-Za-z0-9~/._-]{0,15}$/),
    fc.constantFrom('example.com/a~b', 'x/y/z', '~0~1', 'a/~1', 'app', 'app.kubernetes.io/name', '~'),
  )
  .filter((k) => !k.startsWith('wpgw.io/') && k !== '__proto__');
const metaValue = fc.string({ maxLength: 16, unit: 'grapheme' });
const metaMap = fc
  .uniqueArray(fc.tuple(metaKey, metaValue), { selector: ([k]) => k, maxLength: 4 })
  .map((entries) => Object.fromEntries(entries) as Record<string, string>);

const containerArb: fc.Arbitrary<V1Container> = fc
  .record({
    name: dnsLabel,
    image: fc.constantFrom('mcr.microsoft.com/windows/nanoserver:ltsc2022', 'example/app:1'),
    port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
    env: fc.option(fc.tuple(fc.stringMatching(/^[A-Z][A-Z0-9_]{0,8}$/), metaValue), { nil: undefined }),
  })
  .map(({ name, image, port, env }) => ({
    name,
    image,
    ...(port !== undefined ? { ports: [{ containerPort: port }] } : {}),
    ...(env !== undefined ? { env: [{ name: env[0], value: env[1] }] } : {}),
  }));

// User hostAliases never use the gateway IP with a name set wpgw could inject (see the report:
// such an entry is indistinguishable from the injected one when re-admission strips it).
const userHostAlias: fc.Arbitrary<V1HostAlias> = fc
  .record({
    ip: fc.oneof(
      fc.ipV4().filter((ip) => ip !== GATEWAY_IP),
      fc.constant(GATEWAY_IP),
    ),
    hostnames: fc.array(fc.oneof(externalHost, dnsLabel), { minLength: 1, maxLength: 3 }),
  })
  .map(({ ip, hostnames }) => ({
    ip,
    hostnames: ip === GATEWAY_IP ? [...hostnames, 'user-only.internal'] : hostnames,
  }));

const dnsConfigArb: fc.Arbitrary<V1PodDNSConfig> = fc
  .record({
    // Rarer than the other fields: own nameservers deny dnsConfig mode, and the dnsConfig-mode
    // coverage check below needs enough injections.
    nameservers: fc.oneof(
      { arbitrary: fc.constant(undefined), weight: 3 },
      { arbitrary: fc.array(fc.ipV4(), { minLength: 1, maxLength: 2 }), weight: 1 },
    ),
    searches: fc.option(fc.array(fc.oneof(externalHost, fc.constant('cluster.local')), { maxLength: 3 }), {
      nil: undefined,
    }),
    options: fc.option(
      fc.array(
        fc.record({
          name: fc.constantFrom('ndots', 'timeout', 'attempts', 'edns0'),
          value: fc.option(fc.stringMatching(/^[0-9]{1,2}$/), { nil: undefined }),
        }),
        { maxLength: 3 },
      ),
      { nil: undefined },
    ),
  })
  .map(({ nameservers, searches, options }) => ({
    ...(nameservers ? { nameservers } : {}),
    ...(searches ? { searches } : {}),
    ...(options
      ? { options: options.map((o) => (o.value === undefined ? { name: o.name } : { name: o.name, value: o.value })) }
      : {}),
  }));

const windowsTerm = fc
  .option(
    fc.record({
      key: fc.constantFrom('topology.kubernetes.io/zone', 'node.kubernetes.io/windows-build'),
      values: fc.array(dnsLabel, { minLength: 1, maxLength: 2 }),
    }),
    { nil: undefined },
  )
  .map((extra) => ({
    matchExpressions: [
      { key: 'kubernetes.io/os', operator: 'In', values: ['windows'] },
      ...(extra ? [{ key: extra.key, operator: 'In', values: extra.values }] : []),
    ],
  }));

type Evidence = 'os' | 'nodeSelector' | 'affinity' | 'runtimeClass';
type Mode = 'hostAliases' | 'dnsConfig';

const windowsPodArb = fc.record({
  name: dnsLabel,
  generateName: fc.boolean(),
  labels: metaMap,
  annotations: metaMap,
  hasOutbound: fc.boolean(),
  dests: destsArb,
  repeatFirst: fc.boolean(),
  seps: separators,
  podMode: fc.constantFrom<Mode | undefined>(undefined, 'hostAliases', 'dnsConfig'),
  nsMode: fc.constantFrom<Mode | undefined>(undefined, 'hostAliases', 'dnsConfig'),
  injectTrue: fc.constantFrom<'label' | 'annotation' | undefined>(undefined, undefined, 'label', 'annotation'),
  evidence: fc.subarray<Evidence>(['os', 'nodeSelector', 'affinity', 'runtimeClass'], { minLength: 1 }),
  extraNodeSelector: metaMap,
  affinityTerms: fc.array(windowsTerm, { minLength: 1, maxLength: 2 }),
  containers: fc.array(containerArb, { minLength: 1, maxLength: 3 }),
  hostAliases: fc.option(fc.array(userHostAlias, { minLength: 1, maxLength: 3 }), { nil: undefined }),
  dnsPolicy: fc.constantFrom<string | undefined>(undefined, 'ClusterFirst', 'Default', 'None'),
  dnsConfig: fc.option(dnsConfigArb, { nil: undefined }),
  restartPolicy: fc.constantFrom<string | undefined>(undefined, 'Always', 'OnFailure'),
});
type WindowsPodCase = typeof windowsPodArb extends fc.Arbitrary<infer T> ? T : never;

function nonEmpty<T extends object>(o: T): T | undefined {
  return Object.keys(o).length > 0 ? o : undefined;
}

function buildWindowsPod(c: WindowsPodCase): { pod: PodLike; outboundText?: string; mode: Mode } {
  const annotations: Record<string, string> = { ...c.annotations };
  const labels: Record<string, string> = { ...c.labels };
  let outboundText: string | undefined;
  if (c.hasOutbound) {
    const entries = c.dests.map((d) => d.text);
    if (c.repeatFirst && entries.length > 0) entries.push(entries[0]!);
    outboundText = joinEntries(entries, c.seps);
    annotations['wpgw.io/outbound'] = outboundText;
  }
  if (c.podMode) annotations['wpgw.io/resolver'] = c.podMode;
  if (c.injectTrue === 'label') labels['wpgw.io/inject'] = 'true';
  if (c.injectTrue === 'annotation') annotations['wpgw.io/inject'] = 'true';
  const ev = new Set(c.evidence);
  const spec: Record<string, unknown> = { containers: c.containers };
  if (ev.has('os')) spec.os = { name: 'windows' };
  if (ev.has('nodeSelector')) spec.nodeSelector = { ...c.extraNodeSelector, 'kubernetes.io/os': 'windows' };
  if (ev.has('affinity')) {
    spec.affinity = {
      nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: c.affinityTerms } },
    } satisfies V1Affinity;
  }
  if (ev.has('runtimeClass')) spec.runtimeClassName = 'windows-rc';
  if (c.hostAliases) spec.hostAliases = c.hostAliases;
  if (c.dnsPolicy) spec.dnsPolicy = c.dnsPolicy;
  if (c.dnsConfig) spec.dnsConfig = c.dnsConfig;
  if (c.restartPolicy) spec.restartPolicy = c.restartPolicy;
  const metadata: Record<string, unknown> = c.generateName ? { generateName: `${c.name}-` } : { name: c.name };
  const l = nonEmpty(labels);
  const a = nonEmpty(annotations);
  if (l) metadata.labels = l;
  if (a) metadata.annotations = a;
  const mode: Mode = c.podMode ?? c.nsMode ?? 'hostAliases';
  return {
    pod: deepCopy({ apiVersion: 'v1', kind: 'Pod', metadata, spec }) as unknown as PodLike,
    ...(outboundText !== undefined ? { outboundText } : {}),
    mode,
  };
}

function ctxFor(nsMode: Mode | undefined) {
  return staticContext({ namespaceAnnotations: nsMode ? { [NS]: { 'wpgw.io/resolver': nsMode } } : {} });
}

function podReview(pod: unknown) {
  return review({ kind: 'Pod', namespace: NS, object: pod });
}

function expectOk(res: AdmitResult): asserts res is Extract<AdmitResult, { ok: true }> {
  if (!res.ok) throw new Error(`admit returned ok:false: ${res.message}`);
}

// ---- pods ---------------------------------------------------------------------------------------

describe('properties: Windows pods', () => {
  it("are denied with a message or patched cleanly; the patch is idempotent and keeps the user's spec", () => {
    let patched = 0;
    let denied = 0;
    const injected = { hostAliases: 0, dnsConfig: 0 };
    fc.assert(
      fc.property(windowsPodArb, (c) => {
        const { pod, mode } = buildWindowsPod(c);
        const dests = c.hasOutbound ? c.dests : [];
        const ctx = ctxFor(c.nsMode);
        const res = admit(podReview(pod), ctx);
        expectOk(res);
        expect(res.review.response.uid).toBe('uid-1');

        // An external upstream port in Istio's reserved range (the gateway's own ports): denied first.
        const reserved = dests.find((d) => d.host.kind !== 'service' && d.upstream >= 15000 && d.upstream <= 15090);
        if (reserved) {
          denied++;
          expect(res.decision.decision).toBe('denied');
          expect(res.decision.reason).toBe('invalid_outbound');
          expect(res.review.response.status?.message).toContain(
            `"${reserved.text}": upstream port ${reserved.upstream} is in Istio's reserved range`,
          );
          return;
        }
        const wildcard = dests.find((d) => d.wildcard);
        if (wildcard && mode === 'hostAliases') {
          denied++;
          expect(res.decision.decision).toBe('denied');
          expect(res.review.response.allowed).toBe(false);
          expect(res.review.response.patch).toBeUndefined();
          expect(res.review.response.status?.message).toContain(wildcard.text);
          expect(res.decision.reason).toBe('wildcard_needs_dns');
          return;
        }
        // dnsConfig mode would replace nameservers the pod lists itself: denied, not dropped.
        if (mode === 'dnsConfig' && dests.length > 0 && (pod.spec?.dnsConfig?.nameservers ?? []).length > 0) {
          denied++;
          expect(res.decision.decision).toBe('denied');
          expect(res.decision.reason).toBe('own_nameservers');
          expect(res.review.response.status?.message).toContain(pod.spec!.dnsConfig!.nameservers!.join(', '));
          return;
        }
        expect(res.decision.decision).toBe('patched');
        expect(res.review.response.allowed).toBe(true);
        expect(res.review.response.patchType).toBe('JSONPatch');
        const stored = applyResponse(pod, res);
        patched++;

        // The managed label and the status record.
        expect(stored.metadata?.labels?.[MANAGED]).toBe('true');
        const status = JSON.parse(stored.metadata?.annotations?.[STATUS] ?? 'null') as Record<string, unknown>;
        expect(status).toMatchObject({ v: 1, mode, outbound: dests.map((d) => d.canonical) });

        // hostAliases: every user entry kept, in order, then exactly one entry of ours.
        const userAliases = pod.spec?.hostAliases;
        if (dests.length > 0) injected[mode]++;
        if (mode === 'hostAliases' && dests.length > 0) {
          const names = [...new Set(dests.flatMap((d) => expectedNames(d.host)))].sort();
          expect(stored.spec?.hostAliases).toEqual([...(userAliases ?? []), { ip: GATEWAY_IP, hostnames: names }]);
          expect(status).toMatchObject({ gatewayIP: GATEWAY_IP, hostnames: names });
        } else {
          expect(stored.spec?.hostAliases).toEqual(userAliases);
        }

        // dnsConfig: our resolver first, ClusterFirst's search path kept, one ndots.
        if (mode === 'dnsConfig' && dests.length > 0) {
          expect(stored.spec?.dnsPolicy).toBe('None');
          const cfg = stored.spec?.dnsConfig;
          expect(cfg?.nameservers).toEqual([DNS_IP]);
          expect(cfg?.searches?.slice(0, 3)).toEqual([`${NS}.svc.cluster.local`, 'svc.cluster.local', 'cluster.local']);
          for (const s of pod.spec?.dnsConfig?.searches ?? []) expect(cfg?.searches).toContain(s);
          expect(cfg?.options?.filter((o) => o.name === 'ndots')).toEqual([{ name: 'ndots', value: '5' }]);
          for (const o of (pod.spec?.dnsConfig?.options ?? []).filter((o) => o.name !== 'ndots'))
            expect(cfg?.options).toContainEqual(o);
          expect(status.dnsIP).toBe(DNS_IP);
          expect(status.previousDnsPolicy).toBe(pod.spec?.dnsPolicy ?? null);
          expect(status.previousDnsConfig).toEqual(pod.spec?.dnsConfig ?? null);
        } else {
          expect(stored.spec?.dnsPolicy).toBe(pod.spec?.dnsPolicy);
          expect(stored.spec?.dnsConfig).toEqual(pod.spec?.dnsConfig);
        }

        // Nothing else changed.
        const expected = deepCopy(pod);
        expected.metadata = {
          ...expected.metadata,
          // Istio's injector is told to skip the pod, unless the user already said something.
          labels: { [ISTIO_INJECT]: 'false', ...expected.metadata?.labels, [MANAGED]: 'true' },
          annotations: { ...expected.metadata?.annotations, [STATUS]: stored.metadata!.annotations![STATUS]! },
        };
        expected.spec = {
          ...expected.spec!,
          hostAliases: stored.spec?.hostAliases,
          dnsPolicy: stored.spec?.dnsPolicy,
          dnsConfig: stored.spec?.dnsConfig,
        };
        expect(stored).toEqual(expected);

        // Idempotency: admitting the stored pod again changes nothing.
        const again = admit(podReview(stored), ctx);
        expectOk(again);
        expect(again.decision.decision).toBe('unchanged');
        expect(again.review.response.allowed).toBe(true);
        expect(again.review.response.patch).toBeUndefined();
      }),
      { numRuns: 800 },
    );
    // The generator reaches both outcomes (a property that never patches proves nothing).
    expect(patched).toBeGreaterThan(100);
    expect(denied).toBeGreaterThan(5);
    expect(injected.hostAliases).toBeGreaterThan(50);
    expect(injected.dnsConfig).toBeGreaterThan(50);
  });
});

// Node-selection evidence that is NOT Windows.
const nonWindowsSpecArb = fc
  .record({
    os: fc.constantFrom<string | undefined>(undefined, 'linux'),
    nodeSelector: fc.constantFrom<Record<string, string> | undefined>(
      undefined,
      { 'kubernetes.io/os': 'linux' },
      { disk: 'ssd' },
      { 'kubernetes.io/os': 'Windows' },
    ),
    affinity: fc.constantFrom<'none' | 'linux' | 'mixed' | 'notin' | 'empty-values'>(
      'none',
      'linux',
      'mixed',
      'notin',
      'empty-values',
    ),
    runtimeClassName: fc.constantFrom<string | undefined>(undefined, 'linux-rc', 'unknown-rc'),
    containers: fc.array(containerArb, { minLength: 1, maxLength: 2 }),
    hostAliases: fc.option(fc.array(userHostAlias, { minLength: 1, maxLength: 2 }), { nil: undefined }),
  })
  .map((r) => {
    const term = (operator: string, values: string[]) => ({
      matchExpressions: [{ key: 'kubernetes.io/os', operator, values }],
    });
    const terms = {
      none: undefined,
      linux: [term('In', ['linux'])],
      // Terms are ORed: one Windows term and one Linux term do not pin Windows.
      mixed: [term('In', ['windows']), term('In', ['linux'])],
      notin: [term('NotIn', ['windows'])],
      'empty-values': [term('In', [])],
    }[r.affinity];
    return {
      containers: r.containers,
      ...(r.os ? { os: { name: r.os } } : {}),
      ...(r.nodeSelector ? { nodeSelector: r.nodeSelector } : {}),
      ...(terms
        ? {
            affinity: {
              nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } },
            },
          }
        : {}),
      ...(r.runtimeClassName ? { runtimeClassName: r.runtimeClassName } : {}),
      ...(r.hostAliases ? { hostAliases: r.hostAliases } : {}),
    };
  });

describe('properties: non-Windows pods', () => {
  it('without any wpgw.io/* key are never touched', () => {
    fc.assert(
      fc.property(
        fc.record({
          name: dnsLabel,
          labels: metaMap,
          annotations: metaMap,
          foreignOutbound: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
          spec: nonWindowsSpecArb,
        }),
        ({ name, labels, annotations, foreignOutbound, spec }) => {
          const a = {
            ...annotations,
            ...(foreignOutbound !== undefined ? { 'example.com/outbound': foreignOutbound } : {}),
          };
          const pod = {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name, ...(nonEmpty(labels) ? { labels } : {}), ...(nonEmpty(a) ? { annotations: a } : {}) },
            spec,
          };
          const res = admit(podReview(pod), staticContext());
          expectOk(res);
          expect(res.decision).toMatchObject({ allowed: true, decision: 'skipped', reason: 'not_windows' });
          expect(res.review.response).toEqual({ uid: 'uid-1', allowed: true });
        },
      ),
      { numRuns: 300 },
    );
  });
});

// ---- invalid outbound annotations ----------------------------------------------------------------

const port = fc.integer({ min: 1, max: 65535 });
/** Entries the documented grammar rejects, each with the rule it breaks. */
const garbageArb: fc.Arbitrary<string> = fc.oneof(
  fc
    .tuple(
      fc.stringMatching(/^[a-z]{1,8}$/).filter((s) => !['http', 'tls', 'tcp'].includes(s)),
      externalHost,
      port,
    )
    .map(([s, h, p]) => `${s}://${h}:${p}`), // unknown scheme
  fc.tuple(externalHost, fc.constantFrom('', '/x')).map(([h, tail]) => `${h}${tail}`), // no port
  fc.tuple(externalHost, fc.oneof(fc.constant(0), fc.integer({ min: 65536, max: 99999 }))).map(([h, p]) => `${h}:${p}`), // port out of range
  fc
    .tuple(dnsLabel, fc.constantFrom('_', '!', '$', '@', '&'), externalHost, port)
    .map(([l, ch, h, p]) => `${l}${ch}x.${h}:${p}`), // bad character
  fc.tuple(fc.ipV4(), port).map(([ip, p]) => `${ip}:${p}`), // IP literal
  fc.tuple(fc.constantFrom('tls', 'tcp'), externalHost, port).map(([s, h, p]) => `${s}://${h}:${p}+tls`), // +tls on tls/tcp
  fc.tuple(externalHost, port).map(([h, p]) => `tcp://*.${h}:${p}`), // wildcard tcp
  fc.tuple(externalHost, port).map(([h, p]) => `*.${h}:${p}+tls`), // wildcard with origination
  fc.tuple(externalHost, port).map(([h, p]) => `${'a'.repeat(64)}.${h}:${p}`), // label longer than 63
  fc
    .tuple(dnsLabel, externalHost, port, fc.boolean())
    .map(([l, h, p, lead]) => `${lead ? `-${l}` : `${l}-`}.${h}:${p}`), // hyphen at a label edge
  fc.tuple(dnsLabel, externalHost, port).map(([l, h, p]) => `*${l}.${h}:${p}`), // "*" inside a label
  fc.tuple(externalHost, port).map(([h, p]) => `${h}:${p}/path`), // a path
  port.map((p) => `:${p}`), // no host
  fc.tuple(externalHost, port).map(([h, p]) => `ex\u00e4mple.${h}:${p}`), // not ASCII
  fc
    .tuple(externalHost, port, fc.oneof(fc.constant(0), fc.integer({ min: 65536, max: 99999 })))
    .map(([h, p, u]) => `${h}:${p}+tls:${u}`), // upstream out of range
  fc.tuple(externalHost, port).map(([h, p]) => `https://${h}:${p}`), // https is not a protocol here
  fc.tuple(externalHost, port).map(([h, p]) => `${h}:${p}+ssl`), // unknown suffix
);

describe('properties: invalid outbound annotations', () => {
  function check(garbage: string, before: GenDest[], after: GenDest[], seps: string[]): void {
    const text = joinEntries([...before.map((d) => d.text), garbage, ...after.map((d) => d.text)], seps);
    const pod = {
      metadata: { name: 'legacy', annotations: { 'wpgw.io/outbound': text } },
      spec: { os: { name: 'windows' }, containers: [{ name: 'c' }] },
    };
    const res = admit(podReview(pod), staticContext());
    expectOk(res);
    expect(res.decision).toMatchObject({ allowed: false, decision: 'denied', reason: 'invalid_outbound' });
    expect(res.review.response.allowed).toBe(false);
    expect(res.review.response.patch).toBeUndefined();
    expect(res.review.response.status?.code).toBe(400);
    const message = res.review.response.status?.message ?? '';
    expect(message).toContain(`"${garbage}"`);
    expect(message).toContain('pod "legacy"');
    expect(res.decision.message).toBe(message);
  }

  // Valid entries around the bad one must not collide with each other (that is its own error).
  const context = fc.tuple(destsArb, fc.nat(), separators).map(([dests, cut, seps]) => ({
    before: dests.slice(0, cut % (dests.length + 1)),
    after: dests.slice(cut % (dests.length + 1)),
    seps,
  }));

  it('entries breaking a grammar rule are denied naming the entry', () => {
    fc.assert(
      fc.property(garbageArb, context, (garbage, { before, after, seps }) => {
        expect(garbage.length).toBeLessThanOrEqual(120); // messages quote entries up to 120 characters whole
        check(garbage, before, after, seps);
      }),
      { numRuns: 400 },
    );
  });

  it('arbitrary tokens the grammar rejects are denied naming the token', () => {
    const token = fc
      .oneof(fc.string({ minLength: 1, maxLength: 60 }), fc.stringMatching(/^[a-z0-9.*:+\/_-]{1,40}$/))
      .filter((t) => !/[\s,]/.test(t))
      .filter((t) => {
        try {
          parseOutbound(t);
          return false;
        } catch {
          return true;
        }
      });
    fc.assert(
      fc.property(token, context, (garbage, { before, after, seps }) => check(garbage, before, after, seps)),
      { numRuns: 300 },
    );
  });

  it('two entries of one pod the gateway cannot route side by side are denied naming the later one, whatever else is declared', () => {
    // Istio's reserved ports are denied for their own reason first (the Windows pods property above).
    const port = fc.integer({ min: 1, max: 65535 }).filter((p) => p < 15000 || p > 15090);
    const pair = fc.oneof(
      fc
        .tuple(externalHost, externalHost, port)
        .filter(([a, b]) => a !== b)
        .map(([a, b, p]) => [`tcp://${a}:${p}`, `tcp://${b}:${p}`] as const),
      fc.tuple(externalHost, externalHost, port).map(([a, b, p]) => [`${a}:${p}`, `tls://${b}.x:${p}`] as const),
      fc
        .tuple(externalHost, port, port)
        .filter(([, p, q]) => p !== q)
        .map(([h, p, q]) => [`${h}:${p}+tls:${q}`, `tls://${h}:${q}`] as const),
      fc.tuple(serviceHost, port).map(([h, p]) => [`${h.host}:${p}+tls`, ''] as const),
    );
    fc.assert(
      fc.property(pair, fc.boolean(), ([first, second], swap) => {
        const entries = second === '' ? [first] : swap ? [second, first] : [first, second];
        const pod = {
          metadata: { name: 'legacy', annotations: { 'wpgw.io/outbound': entries.join(', ') } },
          spec: { os: { name: 'windows' }, containers: [{ name: 'c' }] },
        };
        const res = admit(podReview(pod), staticContext());
        expectOk(res);
        expect(res.decision.reason).toBe('invalid_outbound');
        expect(res.review.response.allowed).toBe(false);
        expect(res.review.response.status?.message).toContain(`entry "${entries[entries.length - 1]}"`);
      }),
      { numRuns: 300 },
    );
  });

  it('a second declaration of one host:port with other settings is denied naming the second', () => {
    const pod = {
      metadata: {
        name: 'legacy',
        annotations: { 'wpgw.io/outbound': 'example.com:443, orders.sales.svc:9080 tls://EXAMPLE.com.:443' },
      },
      spec: { os: { name: 'windows' }, containers: [{ name: 'c' }] },
    };
    const res = admit(podReview(pod), staticContext());
    expectOk(res);
    expect(res.decision.reason).toBe('invalid_outbound');
    expect(res.decision.message).toContain('"tls://EXAMPLE.com.:443"');
    expect(res.decision.message).toContain('conflicts with "example.com:443"');
  });

  it('an entry longer than 120 characters is quoted by its first 117 characters', () => {
    const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.com:80/x`;
    const pod = {
      metadata: { name: 'legacy', annotations: { 'wpgw.io/outbound': `example.com:80 ${long}` } },
      spec: { os: { name: 'windows' }, containers: [{ name: 'c' }] },
    };
    const res = admit(podReview(pod), staticContext());
    expectOk(res);
    expect(res.decision.reason).toBe('invalid_outbound');
    expect(res.decision.message).toContain(`"${long.slice(0, 117)}..."`);
  });
});

// ---- Services -------------------------------------------------------------------------------------

const labelKey = fc.oneof(
  fc.stringMatching(/^([a-z0-9.-]{1,10}\/)?[a-z][a-z0-9._-]{0,10}$/),
  fc.constantFrom('app', 'app.kubernetes.io/name', 'tier'),
);
const labelValue = fc.stringMatching(/^([a-z0-9][a-z0-9._-]{0,10})?$/);
const windowsLabelsArb = fc
  .uniqueArray(
    fc.tuple(
      labelKey.filter((k) => !k.startsWith('wpgw.io/')),
      labelValue,
    ),
    { selector: ([k]) => k, minLength: 1, maxLength: 4 },
  )
  .map((e) => Object.fromEntries(e) as Record<string, string>);

const servicePortsArb: fc.Arbitrary<V1ServicePort[]> = fc
  .uniqueArray(
    fc.record({
      port: fc.oneof(
        fc.integer({ min: 1, max: 65535 }),
        fc.integer({ min: INBOUND_POD_PORTS.min, max: INBOUND_POD_PORTS.max }),
      ),
      target: fc.oneof(
        fc.constant(undefined),
        fc.integer({ min: 1, max: 65535 }),
        fc.constantFrom('http', 'web', 'metrics'),
      ),
      protocol: fc.constantFrom<string | undefined>(undefined, 'TCP'),
      appProtocol: fc.constantFrom<string | undefined>(undefined, 'http', 'kubernetes.io/h2c'),
      prefix: fc.constantFrom('http', 'tcp', 'grpc', 'web'),
      nodePort: fc.option(fc.integer({ min: 30000, max: 32767 }), { nil: undefined }),
    }),
    { selector: (p) => p.port, minLength: 1, maxLength: 5 },
  )
  .map((ports) =>
    ports.map((p, i) => ({
      ...(ports.length > 1 || i % 2 === 0 ? { name: `${p.prefix}-${i}` } : {}),
      ...(p.protocol ? { protocol: p.protocol } : {}),
      ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}),
      port: p.port,
      ...(p.target !== undefined ? { targetPort: p.target } : {}),
      ...(p.nodePort !== undefined ? { nodePort: p.nodePort } : {}),
    })),
  );

const serviceCaseArb = windowsLabelsArb
  .chain((windowsLabels) =>
    fc.record({
      windowsLabels: fc.constant(windowsLabels),
      selectorKeys: fc.subarray(Object.keys(windowsLabels), { minLength: 1 }),
      name: dnsLabel,
      ports: servicePortsArb,
      type: fc.constantFrom<string | undefined>(undefined, 'ClusterIP', 'NodePort', 'LoadBalancer'),
      labels: metaMap,
      annotations: metaMap,
      taken: fc.uniqueArray(fc.integer({ min: INBOUND_POD_PORTS.min, max: INBOUND_POD_PORTS.max }), { maxLength: 30 }),
      selecting: fc.uniqueArray(
        fc.oneof(
          fc.integer({ min: 1, max: 65535 }),
          fc.integer({ min: INBOUND_POD_PORTS.min, max: INBOUND_POD_PORTS.max }),
        ),
        { maxLength: 10 },
      ),
      otherLabels: windowsLabelsArb,
    }),
  )
  .map((c) =>
    // NodePort and LoadBalancer Services are re-pointed only when the user asks (service-rules.test.ts).
    c.type === 'NodePort' || c.type === 'LoadBalancer'
      ? { ...c, annotations: { ...c.annotations, 'wpgw.io/inject': 'true' } }
      : c,
  );

describe('properties: Services selecting Windows pods', () => {
  it('are re-pointed at the gateway, recorded, stable on re-admission and on re-apply of the user spec', () => {
    fc.assert(
      fc.property(serviceCaseArb, (c) => {
        const selector = Object.fromEntries(c.selectorKeys.map((k) => [k, c.windowsLabels[k]!]));
        const user: V1Service = deepCopy({
          apiVersion: 'v1',
          kind: 'Service',
          metadata: {
            name: c.name,
            namespace: NS,
            ...(nonEmpty(c.labels) ? { labels: c.labels } : {}),
            ...(nonEmpty(c.annotations) ? { annotations: c.annotations } : {}),
          },
          spec: { ...(c.type ? { type: c.type } : {}), selector, ports: c.ports },
        });
        const ctx = staticContext({
          // The matching label set need not be the first.
          windowsLabelSets: { [NS]: [c.otherLabels, c.windowsLabels] },
          takenInboundPorts: c.taken,
          gatewaySelectingServicePorts: c.selecting,
        });

        const first = admit(review({ kind: 'Service', namespace: NS, object: user }), ctx);
        expectOk(first);
        expect(first.decision).toMatchObject({ allowed: true, decision: 'patched', reason: 'repointed' });
        const stored = applyResponse(user, first);

        expect(stored.spec?.selector).toEqual({ 'wpgw.io/gateway': NS });
        expect(stored.metadata?.labels).toEqual({
          ...c.labels,
          'wpgw.io/repointed': 'true',
          'experimental.istio.io/disable-gateway-port-translation': 'true',
        });
        const targets = (stored.spec?.ports ?? []).map((p) => p.targetPort);
        const forbidden = new Set([...c.taken, ...c.selecting, ...c.ports.map((p) => p.port)]);
        for (const t of targets) {
          expect(typeof t).toBe('number');
          expect(t).toBeGreaterThanOrEqual(INBOUND_POD_PORTS.min);
          expect(t).toBeLessThanOrEqual(INBOUND_POD_PORTS.max);
          expect(forbidden.has(t as number)).toBe(false);
        }
        expect(new Set(targets).size).toBe(targets.length);
        // Port by port: only targetPort changed (names, protocols, nodePorts stay).
        expect(stored.spec?.ports?.map(({ targetPort: _t, ...rest }) => rest)).toEqual(
          c.ports.map(({ targetPort: _t, ...rest }) => rest),
        );
        // The original is recorded, without nodePorts.
        const recorded = JSON.parse(stored.metadata?.annotations?.['wpgw.io/original'] ?? 'null') as {
          selector: unknown;
          ports: V1ServicePort[];
        };
        expect(recorded.selector).toEqual(selector);
        expect(recorded.ports).toEqual(c.ports.map(({ nodePort: _n, ...rest }) => rest));
        // Everything else is the user's.
        expect({
          ...stored,
          metadata: { ...stored.metadata, labels: c.labels, annotations: c.annotations },
          spec: { ...stored.spec, selector, ports: c.ports },
        }).toEqual({
          ...user,
          metadata: { ...user.metadata, labels: c.labels, annotations: c.annotations },
        });

        // Re-admitting the stored Service (any UPDATE, e.g. a label change elsewhere) is a no-op.
        const again = admit(
          review({ kind: 'Service', operation: 'UPDATE', namespace: NS, object: stored, oldObject: stored }),
          ctx,
        );
        expectOk(again);
        expect(again.decision.decision).toBe('unchanged');
        expect(again.review.response.patch).toBeUndefined();

        // Re-applying the user's spec (server-side apply or replace: the user's fields win) re-points
        // it to the very same result, whether or not wpgw's own metadata survived the update.
        const userWithIds = { ...deepCopy(user), metadata: { ...user.metadata, uid: 'svc-uid', resourceVersion: '7' } };
        for (const update of [
          userWithIds,
          {
            ...userWithIds,
            metadata: {
              ...userWithIds.metadata,
              labels: stored.metadata?.labels,
              annotations: stored.metadata?.annotations,
            },
          },
        ]) {
          const reapply = admit(
            review({ kind: 'Service', operation: 'UPDATE', namespace: NS, object: update, oldObject: stored }),
            ctx,
          );
          expectOk(reapply);
          expect(reapply.decision.decision).toBe('patched');
          const restored = applyResponse(update, reapply);
          expect(restored).toEqual({
            ...stored,
            metadata: { ...stored.metadata, uid: 'svc-uid', resourceVersion: '7' },
          });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('allocation never hands out a port the Service itself exposes (Istio would translate through it)', () => {
    const ctx = staticContext({ windowsLabelSets: { [NS]: [{ app: 'win' }] } });
    const make = (ports: V1ServicePort[]) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'legacy', namespace: NS },
      spec: { selector: { app: 'win' }, ports },
    });
    const single = make([{ name: 'http', port: 8080, targetPort: 80 }]);
    const preferred = applyResponse(single, admit(review({ kind: 'Service', namespace: NS, object: single }), ctx)).spec
      .ports[0]!.targetPort as number;
    // Same Service, now also exposing the pod port 8080 would have been given.
    const both = make([
      { name: 'http', port: 8080, targetPort: 80 },
      { name: 'http-alt', port: preferred, targetPort: 81 },
    ]);
    const stored = applyResponse(both, admit(review({ kind: 'Service', namespace: NS, object: both }), ctx));
    const targets = stored.spec.ports.map((p) => p.targetPort as number);
    expect(targets).not.toContain(preferred);
    expect(targets).not.toContain(8080);
    expect(new Set(targets).size).toBe(2);
  });

  it('allocation probes past every taken pod port and fails only when none is free', () => {
    const size = INBOUND_POD_PORTS.max - INBOUND_POD_PORTS.min + 1;
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: INBOUND_POD_PORTS.min, max: INBOUND_POD_PORTS.max }), {
          minLength: 0,
          maxLength: 4,
        }),
        fc.integer({ min: 1, max: 4 }),
        dnsLabel,
        (free, nPorts, name) => {
          const freeSet = new Set(free);
          const taken: number[] = [];
          for (let p = INBOUND_POD_PORTS.min; p < INBOUND_POD_PORTS.min + size; p++) if (!freeSet.has(p)) taken.push(p);
          const ports = Array.from({ length: nPorts }, (_, i) => ({
            name: `http-${i}`,
            port: 8080 + i,
            targetPort: 80 + i,
          }));
          const user = {
            apiVersion: 'v1',
            kind: 'Service',
            metadata: { name, namespace: NS },
            spec: { selector: { app: 'win' }, ports },
          };
          const ctx = staticContext({ windowsLabelSets: { [NS]: [{ app: 'win' }] }, takenInboundPorts: taken });
          const res = admit(review({ kind: 'Service', namespace: NS, object: user }), ctx);
          expectOk(res);
          if (free.length < nPorts) {
            expect(res.decision).toMatchObject({ allowed: false, reason: 'no_free_port' });
            expect(res.decision.message).toContain(`${INBOUND_POD_PORTS.min}-${INBOUND_POD_PORTS.max}`);
            return;
          }
          const stored = applyResponse(user, res) as V1Service;
          const got = stored.spec!.ports!.map((p) => p.targetPort as number);
          for (const g of got) expect(freeSet.has(g)).toBe(true);
          expect(new Set(got).size).toBe(nPorts);
        },
      ),
      { numRuns: 50 },
    );
  });
});

// ---- malformed AdmissionReviews --------------------------------------------------------------------

function expectWellFormed(body: unknown, res: AdmitResult): void {
  if (!res.ok) {
    expect(typeof res.message).toBe('string');
    expect(res.message.length).toBeGreaterThan(0);
    return;
  }
  const request = (body as { request: { uid: string; object?: unknown } }).request;
  const r = res.review;
  expect(r.apiVersion).toBe('admission.k8s.io/v1');
  expect(r.kind).toBe('AdmissionReview');
  expect(r.response.uid).toBe(request.uid);
  expect(typeof r.response.allowed).toBe('boolean');
  expect(res.decision.allowed).toBe(r.response.allowed);
  expect(res.decision.uid).toBe(request.uid);
  expect(JSON.parse(JSON.stringify(r))).toEqual(r); // serialisable as is
  if (!r.response.allowed) {
    expect(res.decision.decision).toBe('denied');
    expect(r.response.status?.message.length).toBeGreaterThan(0);
    expect([400, 503]).toContain(r.response.status?.code);
    expect(r.response.patch).toBeUndefined();
  }
  if (r.response.patch !== undefined) {
    expect(res.decision.decision).toBe('patched');
    expect(r.response.patchType).toBe('JSONPatch');
    const patch = decodePatch(res);
    expect(Array.isArray(patch)).toBe(true);
    expect(patch!.length).toBeGreaterThan(0);
    // The patch applies to the object it was computed from.
    applyResponse(request.object, res, false);
  }
}

const anyJson = fc.jsonValue({ maxDepth: 3 });

// Malformed reviews: a valid review (a Windows pod, maybe with a bad annotation, or a Service
// selecting Windows pods, maybe with a UDP port) with up to two nodes replaced by an arbitrary
// JSON value or removed. Half of the corruptions hit an envelope field, the rest any node.
const validReviewArb: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.tuple(windowsPodArb, fc.option(garbageArb, { nil: undefined })).map(([c, garbage]) => {
    const { pod } = buildWindowsPod(c);
    if (garbage !== undefined)
      pod.metadata = { ...pod.metadata, annotations: { ...pod.metadata?.annotations, 'wpgw.io/outbound': garbage } };
    return review({ kind: 'Pod', namespace: NS, object: pod });
  }),
  fc
    .tuple(dnsLabel, servicePortsArb, fc.boolean(), fc.constantFrom<'CREATE' | 'UPDATE'>('CREATE', 'UPDATE'))
    .map(([name, ports, udp, operation]) => {
      const object = {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name, namespace: NS },
        spec: { selector: { app: 'win' }, ports: udp ? [{ ...ports[0], protocol: 'UDP' }, ...ports.slice(1)] : ports },
      };
      return review({
        kind: 'Service',
        operation,
        namespace: NS,
        object,
        ...(operation === 'UPDATE' ? { oldObject: object } : {}),
      });
    }),
);
const ENVELOPE_PATHS = [
  ['apiVersion'],
  ['kind'],
  ['request'],
  ['request', 'uid'],
  ['request', 'kind'],
  ['request', 'kind', 'group'],
  ['request', 'kind', 'kind'],
  ['request', 'operation'],
  ['request', 'namespace'],
  ['request', 'name'],
  ['request', 'object'],
  ['request', 'object', 'metadata'],
  ['request', 'object', 'metadata', 'labels'],
  ['request', 'object', 'metadata', 'annotations'],
  ['request', 'object', 'spec'],
  ['request', 'subResource'],
];
const DELETE = Symbol('delete');

function allPaths(v: unknown, prefix: string[] = []): string[][] {
  if (typeof v !== 'object' || v === null) return [];
  return Object.entries(v).flatMap(([k, child]) => [[...prefix, k], ...allPaths(child, [...prefix, k])]);
}

function setPath(doc: Record<string, unknown>, path: string[], value: unknown, createParents = false): void {
  let node: unknown = doc;
  for (const key of path.slice(0, -1)) {
    if (typeof node !== 'object' || node === null) return;
    const parent = node as Record<string, unknown>;
    if (createParents && (typeof parent[key] !== 'object' || parent[key] === null)) parent[key] = {};
    node = parent[key];
  }
  if (typeof node !== 'object' || node === null) return;
  const last = path[path.length - 1]!;
  if (value === DELETE) delete (node as Record<string, unknown>)[last];
  else (node as Record<string, unknown>)[last] = value;
}

const corruptedReviewArb = fc
  .tuple(
    validReviewArb,
    fc.array(fc.tuple(fc.boolean(), fc.nat(), fc.oneof(anyJson, fc.constant(DELETE))), { maxLength: 2 }),
  )
  .map(([valid, picks]) => {
    const doc = deepCopy(valid);
    for (const [envelope, index, value] of picks) {
      const paths = envelope ? ENVELOPE_PATHS : allPaths(doc);
      if (paths.length > 0) setPath(doc, paths[index % paths.length]!, value);
    }
    return doc;
  });

// Fields the shape check does not descend into, read by the mutations.
const DEEP_PATHS = [
  ['spec', 'affinity', 'nodeAffinity', 'requiredDuringSchedulingIgnoredDuringExecution', 'nodeSelectorTerms'],
  [
    'spec',
    'affinity',
    'nodeAffinity',
    'requiredDuringSchedulingIgnoredDuringExecution',
    'nodeSelectorTerms',
    '0',
    'matchExpressions',
  ],
  [
    'spec',
    'affinity',
    'nodeAffinity',
    'requiredDuringSchedulingIgnoredDuringExecution',
    'nodeSelectorTerms',
    '0',
    'matchExpressions',
    '0',
    'values',
  ],
  ['spec', 'dnsConfig', 'options'],
  ['spec', 'dnsConfig', 'searches'],
  ['spec', 'dnsConfig', 'options', '0'],
  ['spec', 'containers', '0', 'securityContext'],
  ['spec', 'containers', '0', 'securityContext', 'windowsOptions'],
  ['spec', 'securityContext', 'windowsOptions'],
  ['spec', 'hostAliases', '0', 'hostnames', '0'],
  ['spec', 'os', 'name'],
  ['spec', 'nodeSelector', 'kubernetes.io/os'],
  ['metadata', 'name'],
  ['metadata', 'generateName'],
];

describe('properties: malformed AdmissionReviews', () => {
  const ctx = staticContext({ windowsLabelSets: { [NS]: [{ app: 'win' }] } });

  it('arbitrary JSON bodies never make admit() throw', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (body) => {
        const res = admit(body, ctx);
        expect(res.ok).toBe(false); // no arbitrary value is an AdmissionReview
        expectWellFormed(body, res);
      }),
      { numRuns: 500 },
    );
  });

  it('wrong types in any envelope or object field give {ok:false, message} or a well-formed response', () => {
    const seen = new Map<string, number>();
    fc.assert(
      fc.property(corruptedReviewArb, (raw) => {
        const body = JSON.parse(JSON.stringify(raw)) as unknown; // what the HTTP edge would have parsed
        const res = admit(body, ctx);
        const key = res.ok ? res.decision.decision : 'not ok';
        seen.set(key, (seen.get(key) ?? 0) + 1);
        expectWellFormed(body, res);
      }),
      { numRuns: 500 },
    );
    // The generator reaches every outcome, including the mutations. The rarest ('skipped') comes
    // 7-13 times in 500 runs, so the floor is 1: it fails when an outcome is never generated, not by chance.
    for (const outcome of ['not ok', 'skipped', 'patched', 'denied'])
      expect(seen.get(outcome) ?? 0, outcome).toBeGreaterThan(0);
  });

  it('wrong types deep inside a pod that the shape check does not look at are answered, never thrown', () => {
    let caught = 0;
    const basePod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'legacy',
        annotations: { 'wpgw.io/outbound': 'example.com:80', 'wpgw.io/resolver': 'dnsConfig' },
      },
      spec: {
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['windows'] }] },
              ],
            },
          },
        },
        containers: [{ name: 'app' }],
        hostAliases: [{ ip: '172.16.0.1', hostnames: ['db.internal'] }],
        dnsConfig: { searches: ['corp.example'], options: [{ name: 'timeout', value: '2' }] },
      },
    };
    fc.assert(
      fc.property(fc.constantFrom(...DEEP_PATHS), anyJson, (path, value) => {
        const pod = deepCopy(basePod) as unknown as Record<string, unknown>;
        setPath(pod, path, value, true);
        const body = review({ kind: 'Pod', namespace: NS, object: pod });
        const res = admit(body, ctx);
        if (!res.ok && res.message.includes('could not be processed')) caught++;
        expectWellFormed(body, res);
      }),
      { numRuns: 300 },
    );
    // Some of these do throw inside the mutation; admit() turns that into {ok:false}.
    expect(caught).toBeGreaterThan(10);
  });
});
