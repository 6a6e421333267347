// What `wpgw uninstall` refuses for (core/uninstall.ts): Windows pods whose in-mesh destinations
// require mTLS would fail once they call them directly. Pods are admitted by the real webhook core.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { leavingMeshBlockers, strictDestinations, type PeerAuthenticationLike } from '../../src/core/uninstall.js';
import { installObjects } from '../../src/commands/uninstall.js';
import { injectedPod } from './helpers/builders.js';

const pa = (ns: string, name: string, mode: string, selector?: Record<string, string>): PeerAuthenticationLike => ({
  metadata: { namespace: ns, name },
  spec: { ...(selector ? { selector: { matchLabels: selector } } : {}), mtls: { mode } },
});

describe('strictDestinations', () => {
  const pod = injectedPod({
    name: 'legacy-1',
    outbound: 'orders.sales.svc.cluster.local:9080, rates:8080, example.com:80+tls',
    ip: '10.0.0.1',
  });

  it('names each in-mesh destination a STRICT PeerAuthentication guards, and only those', () => {
    expect(strictDestinations(pod, [])).toEqual([]);
    expect(strictDestinations(pod, [pa('sales', 'default', 'STRICT')])).toEqual([
      { destination: 'orders.sales.svc.cluster.local:9080', policy: 'sales/default' },
    ]);
    // A bare name is a Service in the pod's own namespace; external hosts never count.
    expect(
      strictDestinations(pod, [pa('shop', 'only-rates', 'STRICT', { app: 'rates' }), pa('example', 'x', 'STRICT')]),
    ).toEqual([{ destination: 'rates:8080', policy: 'shop/only-rates' }]);
    expect(strictDestinations(pod, [pa('sales', 'default', 'PERMISSIVE')])).toEqual([]);
  });

  it('mesh-wide STRICT in the root namespace applies unless the destination namespace says otherwise', () => {
    const mesh = pa('istio-system', 'default', 'STRICT');
    expect(strictDestinations(pod, [mesh]).map((s) => s.destination)).toEqual([
      'orders.sales.svc.cluster.local:9080',
      'rates:8080',
    ]);
    expect(strictDestinations(pod, [mesh, pa('sales', 'default', 'PERMISSIVE')]).map((s) => s.destination)).toEqual([
      'rates:8080',
    ]);
    expect(strictDestinations(pod, [pa('istio-system', 'only-some', 'STRICT', { app: 'x' })])).toEqual([]);
    expect(strictDestinations(pod, [pa('mesh-root', 'default', 'STRICT')], 'mesh-root')).toHaveLength(2);
  });

  it('says what fails and what to do, per pod', () => {
    const [b] = leavingMeshBlockers([pod], [pa('sales', 'default', 'STRICT')]);
    expect(b).toEqual({
      subject: 'Pod shop/legacy-1',
      message:
        'once replaced without wpgw it calls orders.sales.svc.cluster.local:9080 (PeerAuthentication sales/default is STRICT) directly, without mTLS: those calls fail. Make them PERMISSIVE for it first',
    });
    // A pod without wpgw's record (never injected, or already replaced) is not named.
    expect(
      leavingMeshBlockers([{ metadata: { name: 'plain', namespace: 'shop' } }], [pa('sales', 'default', 'STRICT')]),
    ).toEqual([]);
  });
});

describe('installObjects', () => {
  it('covers every object manifests/ installs (the chart installs the same: test/helm), but the namespace and the webhook configuration', () => {
    const dir = join(import.meta.dirname, '../../manifests');
    const installed = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
      .flatMap((f) =>
        parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map(
          (d) => d.toJS() as { kind?: string; metadata?: { name?: string } } | null,
        ),
      )
      .filter(
        (o): o is { kind: string; metadata: { name: string } } =>
          Boolean(o?.kind) && o!.kind !== 'Namespace' && o!.kind !== 'MutatingWebhookConfiguration',
      )
      .map((o) => `${o.kind.toLowerCase()}s/${o.metadata.name}`);
    const removed = installObjects('wpgw-system').map((o) => o.what.replace(/ in wpgw-system$/, ''));
    expect(installed.length).toBeGreaterThan(10);
    expect(removed).toEqual(expect.arrayContaining(installed));
  });

  it('names what manifests/ installs by its fixed names, namespaced ones in the install namespace', () => {
    const objs = installObjects('wpgw-system');
    expect(objs.map((o) => o.path)).toContain('/apis/apps/v1/namespaces/wpgw-system/deployments/wpgw-controller');
    expect(objs.map((o) => o.path)).toContain('/apis/rbac.authorization.k8s.io/v1/clusterroles/wpgw-webhook');
    expect(objs.map((o) => o.path)).toContain('/api/v1/namespaces/wpgw-system/secrets/wpgw-webhook-tls');
    // The Deployments go first (no process left writing), the ServiceAccounts last.
    expect(objs[0]!.what).toBe('deployments/wpgw-controller in wpgw-system');
    expect(objs.at(-1)!.what).toBe('serviceaccounts/wpgw-webhook in wpgw-system');
  });
});
