// Undoing istiod's *real* sidecar injection: the golden fixtures in testdata/istio-injected were
// captured from istiod's /inject (test/istio/capture-injections.sh; see the README there), each
// holding the pod as the API server handed it to mutating admission (`original`: defaulted, with
// the creator's managedFields) and the pod after istiod's JSON patch (`injected`).
//
// Besides the 1.30 chart's own template, the sidecar templates of Istio 1.22, 1.24, 1.26 and 1.28
// (`<case>@<version>.json`). For every fixture, un-injection must give back exactly `original`:
// with managedFields (what the API server sends), without them (render, hand-made reviews), and
// through admit(), where the patch must apply to the injected pod (the API server applies it to
// what Istio produced) and re-admission (reinvocationPolicy: IfNeeded) must change nothing.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { admit } from '../../src/core/admission.js';
import { uninjectIstio } from '../../src/core/istio-uninject.js';
import { stripInjection, type PodLike } from '../../src/core/pod.js';
import { render } from '../../src/render.js';
import { applyResponse, deepCopy } from './helpers/builders.js';
import { review, staticContext } from '../lib/admission.js';

interface Fixture {
  case: string;
  about: string;
  original: PodLike;
  injected: PodLike;
}

const DIR = join(import.meta.dirname, 'testdata/istio-injected');
const fixtures: Fixture[] = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(DIR, f), 'utf8')) as Fixture);

/**
 * What istiod's injection itself does not keep, so no un-injection can give it back: DumpAppProbers
 * resolves a named probe port to its number before recording the probe (the same port to the
 * kubelet). Applied to `original` to get what un-injection must produce.
 */
const KNOWN_LOSSES: Record<string, (pod: PodLike) => void> = {
  'native-network-path': (pod) => {
    pod.spec!.containers[0]!.startupProbe!.httpGet!.port = 8080;
  },
};

function expected(f: Fixture): PodLike {
  const pod = deepCopy(f.original);
  KNOWN_LOSSES[f.case]?.(pod);
  return pod;
}

function withoutManagedFields(pod: PodLike): PodLike {
  const copy = deepCopy(pod);
  delete copy.metadata?.managedFields;
  return copy;
}

/**
 * Without managedFields a key the creator set to exactly the value Istio's template would have
 * written is indistinguishable from Istio's, and goes too (README: neither changes what it means
 * for the pod): a default-container naming the first container, the CNI traffic annotations in
 * CNI mode. The fixtures include such keys on purpose; here they are what changes.
 */
function withoutValueTwins(f: Fixture): PodLike {
  const want = withoutManagedFields(expected(f));
  const annotations = want.metadata?.annotations ?? {};
  const cni = f.injected.spec!.initContainers?.some((c) => c.name === 'istio-validation');
  for (const key of Object.keys(annotations)) {
    const defaultContainer =
      /^kubectl\.kubernetes\.io\/default-(logs-)?container$/.test(key) &&
      annotations[key] === want.spec!.containers[0]!.name;
    if (defaultContainer || (cni && /^traffic\.sidecar\.istio\.io\/|^sidecar\.istio\.io\/interceptionMode$/.test(key)))
      delete annotations[key];
  }
  return want;
}

const statusOf = (pod: PodLike) =>
  JSON.parse(pod.metadata!.annotations!['sidecar.istio.io/status']!) as Record<string, unknown>;

describe("istiod's real injection, undone", () => {
  it('has the captured fixtures: classic and native sidecars, Istio CNI, probes, prometheus merge', () => {
    expect(fixtures.map((f) => f.case)).toEqual(
      expect.arrayContaining([
        'classic-probes-prometheus',
        'native-probes-initcontainers',
        'classic-bare-pod-no-prometheus',
        'classic-hold-application',
        'native-network-path',
        'cni-classic-pull-secrets',
        'cni-native',
      ]),
    );
    // The sidecar templates of older releases (test/istio/legacy-templates), as AKS's asm-1-2x run them.
    for (const v of ['1.22.8', '1.24.6', '1.26.8', '1.28.10']) {
      expect(fixtures.map((f) => f.case)).toEqual(
        expect.arrayContaining(
          [
            'classic-probes-prometheus',
            'classic-bare-pod-no-prometheus',
            'classic-hold-application',
            'native-probes-initcontainers',
          ].map((c) => `${c}@${v}`),
        ),
      );
    }
    // The fixtures really are injected the ways their names say (guards a silent re-capture change).
    const byCase = Object.fromEntries(fixtures.map((f) => [f.case, f.injected]));
    expect(byCase['classic-probes-prometheus']!.spec!.containers.map((c) => c.name)).toContain('istio-proxy');
    for (const [name, pod] of Object.entries(byCase)) {
      const native = pod.spec!.initContainers?.find((c) => c.name === 'istio-proxy');
      expect(native ? 'native' : 'classic', name).toBe(
        name.startsWith('native-') || name === 'cni-native' ? 'native' : 'classic',
      );
      if (native) expect(native.restartPolicy).toBe('Always');
    }
    expect(byCase['cni-native']!.spec!.initContainers!.map((c) => c.name)).toContain('istio-validation');
    expect(statusOf(byCase['cni-classic-pull-secrets']!).imagePullSecrets).toEqual(['istio-pull']);
    expect(byCase['classic-probes-prometheus']!.metadata!.annotations!['prometheus.io/port']).toBe('15020');
    expect(byCase['native-network-path']!.metadata!.labels!['topology.istio.io/network']).toBe('network-1');
  });

  describe.each(fixtures.map((f) => [f.case, f] as const))('%s', (_name, f) => {
    it('with the managedFields the API server sends: exactly the original pod', () => {
      const r = uninjectIstio(deepCopy(f.injected));
      expect(r.pod).toEqual(expected(f));
      expect(r.removed).toContain('istio-proxy');
    });

    it('without managedFields: the original pod, from the values Istio would have written', () => {
      expect(uninjectIstio(withoutManagedFields(f.injected)).pod).toEqual(withoutValueTwins(f));
    });

    it('through admit(): the patch applies to the injected pod, only wpgw additions remain, re-admission changes nothing', () => {
      const ctx = staticContext();
      const first = admit(review({ kind: 'Pod', namespace: f.injected.metadata!.namespace!, object: f.injected }), ctx);
      if (!first.ok) throw new Error(first.message);
      expect(first.decision.decision).toBe('patched');
      expect(first.decision.warnings.join(' ')).toMatch(/removed Istio's sidecar injection \(.*istio-proxy/);
      // applyResponse validates every operation against the document, as the API server does.
      const stored = applyResponse(f.injected, first);
      expect(stripInjection(stored)).toEqual(expected(f));
      expect(stored.metadata!.labels!['sidecar.istio.io/inject']).toBe('false');
      const again = admit(review({ kind: 'Pod', namespace: f.injected.metadata!.namespace!, object: stored }), ctx);
      if (!again.ok) throw new Error(again.message);
      expect(again.decision.decision).toBe('unchanged');
    });

    it('without the sidecar.istio.io/status record: the same, but for pull secrets only the record names', () => {
      const pod = withoutManagedFields(f.injected);
      const listed = (statusOf(pod).imagePullSecrets as string[] | null) ?? [];
      delete pod.metadata!.annotations!['sidecar.istio.io/status'];
      const want = withoutValueTwins(f);
      // Istio's global.imagePullSecrets are indistinguishable from the app's without the record.
      if (listed.length > 0) want.spec!.imagePullSecrets = f.injected.spec!.imagePullSecrets!;
      expect(uninjectIstio(pod).pod).toEqual(want);
    });

    it('wpgw render of a Deployment whose template Istio injected (istioctl kube-inject): the original template', () => {
      const { metadata, spec } = withoutManagedFields(f.injected);
      const name = 'orders-win';
      const deployment = {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name, namespace: metadata!.namespace },
        spec: { selector: { matchLabels: { app: 'x' } }, template: { metadata, spec } },
      };
      const out = render(stringify(deployment), { gatewayIP: '10.96.100.10' });
      expect(out.errors).toEqual([]);
      expect(out.report.join('\n')).toMatch(/removed Istio's sidecar injection/);
      const rendered = parseAllDocuments(out.yaml)
        .map((d) => d.toJS() as { kind?: string; metadata?: { name?: string }; spec?: { template?: PodLike } })
        .find((d) => d.kind === 'Deployment' && d.metadata?.name === name);
      const want = withoutValueTwins(f);
      expect(stripInjection(rendered!.spec!.template!)).toEqual({ metadata: want.metadata, spec: want.spec });
    });

    it('from a revisioned injector (istio.io/rev and the record carry the revision, e.g. AKS asm-1-22)', () => {
      // The template writes .Revision in exactly these two places; the rest of the pod is the same.
      const pod = withoutManagedFields(f.injected);
      const annotations = pod.metadata!.annotations!;
      annotations['istio.io/rev'] = 'asm-1-22';
      annotations['sidecar.istio.io/status'] = JSON.stringify({ ...statusOf(pod), revision: 'asm-1-22' });
      expect(uninjectIstio(pod).pod).toEqual(withoutValueTwins(f));
    });
  });
});
