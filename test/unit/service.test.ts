import { describe, expect, it } from 'vitest';
import type { V1Service } from '@kubernetes/client-node';
import { readOriginal } from '../../src/core/records.js';
import { mutateService } from '../../src/core/service.js';
import { staticContext } from '../lib/admission.js';

const ctx = staticContext({
  gatewayIP: undefined,
  dnsIP: undefined,
  windowsLabelSets: { shop: [{ app: 'legacy', tier: 'web' }] },
});

function svc(spec: V1Service['spec'], name = 'legacy'): V1Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop' }, spec };
}

const legacy = () =>
  svc({
    selector: { app: 'legacy' },
    ports: [
      { name: 'http', port: 8080, targetPort: 'http' },
      { name: 'admin', port: 9000, targetPort: 9000 },
    ],
  });

describe('Service re-pointing', () => {
  it('re-points a Service selecting Windows pods and records the original', () => {
    const out = mutateService(legacy(), 'shop', ctx);
    if (out.action !== 'mutate') throw new Error(`expected mutate, got ${JSON.stringify(out)}`);
    const s = out.service;
    expect(s.spec?.selector).toEqual({ 'wpgw.io/gateway': 'shop' });
    const targets = s.spec?.ports?.map((p) => p.targetPort) as number[];
    expect(targets.every((t) => t >= 30000 && t <= 39999)).toBe(true);
    expect(new Set(targets).size).toBe(2);
    expect(s.spec?.ports?.map((p) => [p.name, p.port])).toEqual([
      ['http', 8080],
      ['admin', 9000],
    ]);
    expect(readOriginal(s)).toEqual({
      selector: { app: 'legacy' },
      ports: [
        { name: 'http', port: 8080, targetPort: 'http' },
        { name: 'admin', port: 9000, targetPort: 9000 },
      ],
    });
    expect(s.metadata?.labels?.['wpgw.io/repointed']).toBe('true');
  });

  it('keeps it re-pointed, on the same pod ports, when re-admitted or re-applied', () => {
    const first = mutateService(legacy(), 'shop', ctx);
    if (first.action !== 'mutate') throw new Error('expected mutate');
    const again = mutateService(first.service, 'shop', ctx);
    if (again.action !== 'mutate') throw new Error('expected mutate');
    expect(again.service).toEqual(first.service);
    // kubectl apply sends the user's selector and ports again on top of the live object.
    const reapplied = {
      ...first.service,
      spec: { ...first.service.spec, selector: { app: 'legacy' }, ports: legacy().spec?.ports },
    };
    const third = mutateService(reapplied, 'shop', ctx);
    if (third.action !== 'mutate') throw new Error('expected mutate');
    expect(third.service.spec).toEqual(first.service.spec);
  });

  it('stays re-pointed while its pods are gone (no flapping during a rollout)', () => {
    const first = mutateService(legacy(), 'shop', ctx);
    if (first.action !== 'mutate') throw new Error('expected mutate');
    const out = mutateService(first.service, 'shop', staticContext({ gatewayIP: undefined, dnsIP: undefined }));
    expect(out.action).toBe('mutate');
  });

  it('avoids pod ports other Services hold and ports of Services selecting the gateway', () => {
    const first = mutateService(legacy(), 'shop', ctx);
    if (first.action !== 'mutate') throw new Error('expected mutate');
    const taken = first.service.spec?.ports?.map((p) => p.targetPort as number) ?? [];
    const crowded = staticContext({
      gatewayIP: undefined,
      dnsIP: undefined,
      windowsLabelSets: { shop: [{ app: 'legacy' }] },
      takenInboundPorts: { shop: taken },
      gatewaySelectingServicePorts: { shop: [taken[0]! + 1] },
    });
    const out = mutateService(legacy(), 'shop', crowded);
    if (out.action !== 'mutate') throw new Error('expected mutate');
    for (const p of out.service.spec?.ports ?? []) {
      expect(taken).not.toContain(p.targetPort);
      expect(p.targetPort).not.toBe(taken[0]! + 1);
    }
  });

  it('leaves other Services alone, with warnings where the issue asks for them', () => {
    expect(mutateService(svc({ selector: { app: 'web' }, ports: [{ port: 80 }] }), 'shop', ctx)).toMatchObject({
      action: 'skip',
      reason: 'no_windows_pods',
    });
    const headless = mutateService(
      svc({ clusterIP: 'None', selector: { app: 'legacy' }, ports: [{ port: 80 }] }),
      'shop',
      ctx,
    );
    expect(headless).toMatchObject({ action: 'skip', reason: 'headless' });
    if (headless.action === 'skip') expect(headless.warnings[0]).toMatch(/headless/);
    const ext = mutateService(svc({ type: 'ExternalName', externalName: 'example.com' }), 'shop', ctx);
    expect(ext).toMatchObject({ action: 'skip', reason: 'external_name' });
    if (ext.action === 'skip') expect(ext.warnings).toHaveLength(1);
    const noSel = mutateService(svc({ ports: [{ port: 80 }] }), 'shop', ctx);
    expect(noSel).toMatchObject({ action: 'skip', reason: 'no_selector' });
    if (noSel.action === 'skip') expect(noSel.warnings).toHaveLength(1);
    const ours = svc({ selector: { app: 'legacy' }, ports: [{ port: 80 }] }, 'legacy-app');
    ours.metadata!.labels = { 'app.kubernetes.io/managed-by': 'wpgw' };
    expect(mutateService(ours, 'shop', ctx)).toMatchObject({ action: 'skip', reason: 'owned_by_wpgw' });
  });

  it('keeps a re-pointed Service that opts out re-pointed, for the controller to hand back in order (core/service-leave.ts)', () => {
    const first = mutateService(legacy(), 'shop', ctx);
    if (first.action !== 'mutate') throw new Error('expected mutate');
    const optOut = {
      ...first.service,
      metadata: { ...first.service.metadata, labels: { ...first.service.metadata?.labels, 'wpgw.io/inject': 'false' } },
    };
    const out = mutateService(optOut, 'shop', ctx);
    if (out.action !== 'mutate') throw new Error('expected mutate');
    expect(out.reason).toBe('repointed');
    expect(out.service.spec).toEqual(first.service.spec);
    expect(out.service.metadata?.annotations?.['wpgw.io/original']).toBe(
      first.service.metadata?.annotations?.['wpgw.io/original'],
    );
    expect(out.warnings).toEqual([
      expect.stringMatching(
        /^service "legacy": opted out \(wpgw.io\/inject: "false"\): stays re-pointed until the wpgw controller/,
      ),
    ]);
    // Once the controller restored it, the webhook leaves it alone.
    const restored = {
      ...optOut,
      metadata: { ...optOut.metadata, annotations: {} },
      spec: { ...optOut.spec, selector: { app: 'legacy' } },
    };
    expect(mutateService(restored, 'shop', ctx)).toMatchObject({ action: 'skip', reason: 'opted_out' });
  });

  it('denies UDP ports with a clear message', () => {
    const out = mutateService(
      svc({ selector: { app: 'legacy' }, ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }),
      'shop',
      ctx,
    );
    expect(out).toMatchObject({ action: 'deny', reason: 'udp_port' });
    if (out.action === 'deny') expect(out.message).toMatch(/53\/UDP/);
  });

  it('keeps NodePort assignments when a NodePort Service is re-pointed on request', () => {
    const np = svc({
      type: 'NodePort',
      selector: { app: 'legacy' },
      ports: [{ name: 'http', port: 80, targetPort: 80, nodePort: 30080 }],
    });
    np.metadata!.annotations = { 'wpgw.io/inject': 'true' };
    const first = mutateService(np, 'shop', ctx);
    if (first.action !== 'mutate') throw new Error('expected mutate');
    expect(first.warnings.join('\n')).toMatch(
      /service "legacy": re-pointed .* "true", although non-mesh clients reach it \(type NodePort/,
    );
    expect(first.service.spec?.ports?.[0]?.nodePort).toBe(30080);
    const again = mutateService(first.service, 'shop', ctx);
    if (again.action !== 'mutate') throw new Error('expected mutate');
    expect(again.service.spec?.ports?.[0]?.nodePort).toBe(30080);
  });
});
