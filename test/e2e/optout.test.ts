// End-to-end: opting a namespace out hands it back on the real control plane. Every re-pointed
// Service (client-side applied, server-side applied) ends with exactly its original selector and
// ports, the Windows workload is rolled and comes back without wpgw's routing, everything the
// controller made is deleted last, and nothing else changes.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fetchInsecure, startProcess, stopProcess } from './global-setup.js';
import { appService, apply, createNamespace, env, eventually, getJson, k, kubectl, list, managedObjects, waitForDefaultServiceAccount, windowsDeployment, printTestTimes } from './helpers.js';

printTestTimes();

const OUTBOUND = 'orders.sales.svc.cluster.local:9080';
const DEADLINE = 240_000; // a loaded machine: pods roll on kwok nodes, the controller resyncs

/** What a user Service looks like apart from fields the API server or wpgw own. */
function userView(ns: string, name: string): unknown {
  const s = getJson(['service', name, '-n', ns]);
  return { labels: s.metadata.labels ?? {}, annotations: Object.keys(s.metadata.annotations ?? {}).sort(), selector: s.spec.selector, ports: s.spec.ports, clusterIP: s.spec.clusterIP };
}

async function repointed(ns: string, name: string): Promise<void> {
  await eventually(`Service ${name} re-pointed`, () => getJson(['service', name, '-n', ns])?.spec?.selector?.['wpgw.io/gateway'] === ns, DEADLINE);
  await eventually(`Service ${name}-app`, () => getJson(['service', `${name}-app`, '-n', ns]), DEADLINE);
}

/** An opted-in namespace holding one object of the user's, which nothing may change. */
async function optedInWithUserObject(ns: string): Promise<void> {
  createNamespace(ns, true);
  await waitForDefaultServiceAccount(ns);
  apply([{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'user-config', namespace: ns }, data: { a: 'b' } }]);
}

/** Service legacy exactly as the user client-side applied it (appService), at its first address. */
function legacyAsApplied(clusterIP: string): unknown {
  return {
    labels: {},
    annotations: ['kubectl.kubernetes.io/last-applied-configuration'],
    selector: { app: 'legacy' },
    ports: [{ name: 'http', port: 8080, protocol: 'TCP', targetPort: 'http' }],
    clusterIP,
  };
}

describe('opting a namespace out', () => {
  it('restores every re-pointed Service exactly, rolls the Windows pods, then removes all wpgw made and nothing else', async () => {
    const ns = 'e2e-optout';
    await optedInWithUserObject(ns);
    apply([windowsDeployment('legacy', ns, OUTBOUND), windowsDeployment('billing', ns, OUTBOUND, 1)]);
    await eventually('Windows pods admitted', () => list(['pods', '-n', ns, '-l', 'wpgw.io/managed=true']).length === 3, DEADLINE);
    // Client-side apply (last-applied annotation) and server-side apply (managedFields).
    const csa = appService('legacy', ns);
    const ssa = { ...appService('billing', ns, 9090, 8443), metadata: { name: 'billing', namespace: ns, labels: { team: 'pay' } } };
    apply([csa]);
    apply([ssa], ['--server-side', '--field-manager=e2e-user']);
    await repointed(ns, 'legacy');
    await repointed(ns, 'billing');
    // A client-side re-apply merges the user's selector key back beside the gateway's (issue 12).
    apply([csa]);
    await eventually('legacy re-admitted', () => getJson(['service', 'legacy', '-n', ns]).metadata.annotations['wpgw.io/original']);
    const userConfig = getJson(['configmap', 'user-config', '-n', ns]).metadata.resourceVersion;
    const legacyIP = getJson(['service', 'legacy', '-n', ns]).spec.clusterIP;
    const billingIP = getJson(['service', 'billing', '-n', ns]).spec.clusterIP;
    const oldPods = new Set(list(['pods', '-n', ns, '-l', 'wpgw.io/managed=true']).map((p) => p.metadata.uid));

    k(['label', 'namespace', ns, 'wpgw.io/inject-']);

    await eventually('Services restored', () => {
      const l = getJson(['service', 'legacy', '-n', ns]);
      const b = getJson(['service', 'billing', '-n', ns]);
      return l.metadata.annotations?.['wpgw.io/original'] === undefined && b.metadata.annotations?.['wpgw.io/original'] === undefined;
    }, DEADLINE);
    expect(userView(ns, 'legacy')).toEqual(legacyAsApplied(legacyIP));
    expect(userView(ns, 'billing')).toEqual({
      labels: { team: 'pay' },
      annotations: [],
      selector: { app: 'billing' },
      ports: [{ name: 'http', port: 9090, protocol: 'TCP', targetPort: 8443 }],
      clusterIP: billingIP,
    });
    expect(list(['events', '-n', ns, '--field-selector', 'reason=ServiceRestored']).map((e) => e.involvedObject.name).sort()).toEqual(['billing', 'legacy']);

    // The controller rolls the owners; the new pods are not admitted by wpgw (namespaceSelector).
    await eventually('Windows pods replaced, without wpgw routing', () => {
      const pods = list(['pods', '-n', ns]).filter((p) => !p.metadata.deletionTimestamp && p.metadata.labels?.app !== 'wpgw' && !p.metadata.labels?.['wpgw.io/gateway']);
      return pods.length === 3 && pods.every((p) => !oldPods.has(p.metadata.uid) && !p.spec.hostAliases && !p.metadata.annotations?.['wpgw.io/status']);
    }, DEADLINE);
    await eventually('everything the controller made removed', () => managedObjects(ns).length === 0, DEADLINE);
    expect(getJson(['configmap', 'user-config', '-n', ns]).metadata.resourceVersion).toBe(userConfig);
    expect(getJson(['service', 'legacy-app', '-n', ns])).toBeUndefined();
    const phases = list(['events', '-n', ns, '--field-selector', 'reason=OptingOut']).map((e) => e.message as string);
    expect(phases.some((m) => m.includes('deleting the gateway'))).toBe(true);

    // The user's tools keep working on the restored Services: same apply, no conflict, no change.
    const before = [userView(ns, 'legacy'), userView(ns, 'billing')];
    apply([csa]);
    expect(kubectl(['apply', '--server-side', '--field-manager=e2e-user', '-f', '-'], JSON.stringify(ssa)).status).toBe(0);
    expect([userView(ns, 'legacy'), userView(ns, 'billing')]).toEqual(before);
  });
});

function wpgw(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [resolve(import.meta.dirname, '../../dist/src/cli.js'), ...args], {
    env: { ...process.env, KUBECONFIG: env().kubeconfig },
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('wpgw restore, with the controller gone', () => {
  it('restores the Services, rolls the owners, removes what the controller made; a second run does nothing', async () => {
    const ns = 'e2e-restore';
    await optedInWithUserObject(ns);
    apply([windowsDeployment('legacy', ns, OUTBOUND)]);
    const csa = appService('legacy', ns);
    apply([csa]);
    await repointed(ns, 'legacy');
    await eventually('gateway objects', () => managedObjects(ns).includes('Deployment/wpgw'), DEADLINE);
    const legacyIP = getJson(['service', 'legacy', '-n', ns]).spec.clusterIP;
    const userConfig = getJson(['configmap', 'user-config', '-n', ns]).metadata.resourceVersion;
    const e = env();
    await stopProcess(e.processes.controller);
    try {
      // Refused while the namespace is opted in: the webhook would re-point what it restores.
      const refused = wpgw('restore', '-n', ns);
      expect(refused.code).toBe(1);
      expect(refused.err).toContain('still labelled wpgw.io/inject=enabled');
      expect(getJson(['service', 'legacy', '-n', ns]).spec.selector).toEqual({ 'wpgw.io/gateway': ns });

      k(['label', 'namespace', ns, 'wpgw.io/inject-']);
      // Without --roll: Services restored, owners listed, the gateway kept for the injected pods.
      const listed = wpgw('restore', '-n', ns);
      expect(listed.code).toBe(1);
      expect(listed.out).toContain(`${ns}: restored Service/legacy`);
      expect(listed.out).toContain('Deployment/legacy: pods ');
      expect(userView(ns, 'legacy')).toEqual(legacyAsApplied(legacyIP));
      expect(managedObjects(ns)).toContain('Deployment/wpgw');

      const rolled = wpgw('restore', '-n', ns, '--roll');
      expect(rolled.err).toBe('');
      expect(rolled.code).toBe(0);
      expect(rolled.out).toContain('restarted Deployment/legacy');
      expect(rolled.out).toContain('deleted Deployment/wpgw');
      expect(managedObjects(ns)).toEqual([]);
      const pods = list(['pods', '-n', ns, '-l', 'app=legacy']).filter((p) => !p.metadata.deletionTimestamp);
      expect(pods.length).toBe(2);
      expect(pods.every((p) => !p.spec.hostAliases && !p.metadata.annotations?.['wpgw.io/status'])).toBe(true);
      expect(getJson(['configmap', 'user-config', '-n', ns]).metadata.resourceVersion).toBe(userConfig);

      const before = userView(ns, 'legacy');
      // --all covers every namespace of the shared cluster: other files' opted-out namespaces may
      // still hold injected pods (its exit code is theirs); this one has nothing left.
      const again = wpgw('restore', '--all');
      expect(again.out).not.toContain(ns);
      const one = wpgw('restore', '-n', ns);
      expect(one.code).toBe(0);
      expect(one.out).toBe(`${ns}: nothing to restore\n`);
      expect(userView(ns, 'legacy')).toEqual(before);
    } finally {
      startProcess('controller', e.processes.controller);
      await eventually('controller back', async () => (await fetchInsecure(`https://127.0.0.1:${e.controllerPort}/readyz`)) === 200, DEADLINE);
    }
  });
});
