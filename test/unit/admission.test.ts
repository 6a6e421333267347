import { describe, expect, it } from 'vitest';
import jsonpatch from 'fast-json-patch';
import { admit } from '../../src/core/admission.js';
import { review as reviewOf, staticContext } from '../lib/admission.js';

const ctx = staticContext({
  gatewayIPs: { shop: '10.96.0.50' },
  dnsIP: undefined,
  windowsLabelSets: { shop: [{ app: 'legacy' }] },
});

/** A review of `object` in shop (uid u-1); `extra` are further request fields. */
function review(kind: string, object: unknown, operation = 'CREATE', extra: Record<string, unknown> = {}) {
  return reviewOf({ kind, object, operation, namespace: 'shop', uid: 'u-1', extra });
}

const pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    generateName: 'legacy-7d9f-',
    namespace: 'shop',
    labels: { app: 'legacy', 'example.com/a~b': 'x' },
    annotations: { 'wpgw.io/outbound': 'example.com:80', 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
    managedFields: [{ manager: 'kube-controller-manager', operation: 'Update' }],
  },
  spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [{ name: 'app', image: 'app' }] },
};

function applyResponse(object: unknown, patchB64: string | undefined) {
  const ops = JSON.parse(Buffer.from(patchB64 ?? '', 'base64').toString()) as jsonpatch.Operation[];
  return { ops, result: jsonpatch.applyPatch(structuredClone(object), ops, true).newDocument as Record<string, any> };
}

describe('admit()', () => {
  it('returns a JSONPatch that applies to the pod and injects the routing', () => {
    const r = admit(review('Pod', pod), ctx);
    if (!r.ok) throw new Error(r.message);
    expect(r.review.response).toMatchObject({ uid: 'u-1', allowed: true, patchType: 'JSONPatch' });
    expect(r.decision).toMatchObject({
      decision: 'patched',
      reason: 'injected',
      kind: 'Pod',
      namespace: 'shop',
      name: 'legacy-7d9f-*',
    });
    const { ops, result } = applyResponse(pod, r.review.response.patch);
    expect(result.spec.hostAliases).toEqual([{ ip: '10.96.0.50', hostnames: ['example.com'] }]);
    expect(result.metadata.labels['example.com/a~b']).toBe('x');
    expect(result.metadata.labels['wpgw.io/managed']).toBe('true');
    expect(ops.some((o) => o.path.includes('managedFields'))).toBe(false);
    // Re-invocation (reinvocationPolicy IfNeeded) of the patched pod changes nothing.
    const again = admit(review('Pod', result), ctx);
    if (!again.ok) throw new Error(again.message);
    expect(again.decision.decision).toBe('unchanged');
    expect(again.review.response.patch).toBeUndefined();
  });

  it('re-points a Service on CREATE and keeps it on UPDATE', () => {
    const service = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'legacy', namespace: 'shop' },
      spec: { selector: { app: 'legacy' }, ports: [{ name: 'http', port: 8080, targetPort: 80 }] },
    };
    const r = admit(review('Service', service), ctx);
    if (!r.ok) throw new Error(r.message);
    const { result } = applyResponse(service, r.review.response.patch);
    expect(result.spec.selector).toEqual({ 'wpgw.io/gateway': 'shop' });
    const update = admit(
      review('Service', { ...result, spec: { ...result.spec, selector: { app: 'legacy' } } }, 'UPDATE', {
        oldObject: result,
      }),
      ctx,
    );
    if (!update.ok) throw new Error(update.message);
    const { result: updated } = applyResponse(
      { ...result, spec: { ...result.spec, selector: { app: 'legacy' } } },
      update.review.response.patch,
    );
    expect(updated.spec).toEqual(result.spec);
  });

  it('denies a bad outbound annotation with a message naming the entry', () => {
    const bad = structuredClone(pod);
    bad.metadata.annotations['wpgw.io/outbound'] = 'example.com:80, example.com:http';
    const r = admit(review('Pod', bad), ctx);
    if (!r.ok) throw new Error(r.message);
    expect(r.review.response.allowed).toBe(false);
    expect(r.review.response.status?.code).toBe(400);
    expect(r.review.response.status?.message).toContain('"example.com:http"');
    expect(r.decision).toMatchObject({ decision: 'denied', reason: 'invalid_outbound' });
  });

  it('denies with 503 when the namespace has no gateway', () => {
    const r = admit({ ...review('Pod', pod), request: { ...review('Pod', pod).request, namespace: 'empty' } }, ctx);
    if (!r.ok) throw new Error(r.message);
    expect(r.review.response).toMatchObject({ allowed: false, status: { code: 503 } });
  });

  it('passes through what it does not handle', () => {
    for (const body of [
      review('Pod', pod, 'UPDATE'),
      review('Pod', pod, 'DELETE'),
      review('ConfigMap', { metadata: { name: 'x' } }),
      { ...review('Pod', pod), request: { ...review('Pod', pod).request, subResource: 'status' } },
      {
        ...review('Pod', pod),
        request: { ...review('Pod', pod).request, kind: { group: 'apps', version: 'v1', kind: 'Pod' } },
      },
    ]) {
      const r = admit(body, ctx);
      if (!r.ok) throw new Error(r.message);
      expect(r.review.response.allowed).toBe(true);
      expect(r.review.response.patch).toBeUndefined();
    }
  });

  it.each([
    [null, 'JSON object'],
    [[], 'JSON object'],
    [
      { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} },
      'apiVersion must be "admission.k8s.io/v1"',
    ],
    [{ apiVersion: 'admission.k8s.io/v1', kind: 'Review' }, 'kind must be "AdmissionReview"'],
    [{ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, 'request must be an object'],
    [{ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 5 } }, 'request.uid'],
    [
      { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'a', kind: 'Pod' } },
      'request.kind',
    ],
    [review('Pod', 'not an object'), 'request.object must be an object'],
    [
      review('Pod', { metadata: { labels: { a: 1 } }, spec: { containers: [] } }),
      'metadata.labels["a"] must be a string',
    ],
    [review('Pod', { metadata: {}, spec: { containers: 'x' } }), 'spec.containers must be a list'],
    [review('Pod', { metadata: {}, spec: { containers: [], hostAliases: [{ hostnames: 'x' }] } }), 'hostAliases'],
    [review('Service', { metadata: {}, spec: { ports: 'x' } }), 'spec.ports'],
    [review('Pod', undefined), 'request.object is required'],
  ])('rejects a malformed review (%#) with a specific message', (body, message) => {
    const r = admit(body, ctx);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain(message);
  });
});
