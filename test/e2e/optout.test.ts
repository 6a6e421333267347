// End-to-end: opting a namespace out hands it back on the real control plane. Every re-pointed
// Service (client-side applied, server-side applied, Helm three-way merged) ends with exactly its original selector and
// ports, the Windows workload is rolled and comes back without wpgw's routing, everything the
// controller made is deleted last, and nothing else changes.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isReady, startProcess, stopProcess } from './global-setup.js';
import {
  appService,
  apply,
  createNamespace,
  env,
  eventually,
  getJson,
  k,
  kubectl,
  list,
  managedObjects,
  waitForDefaultServiceAccount,
  windowsDeployment,
  printTestTimes,
} from './helpers.js';

printTestTimes();

const OUTBOUND = 'orders.sales.svc.cluster.local:9080';
const DEADLINE = 240_000; // a loaded machine: pods roll on kwok nodes, the controller resyncs

/** What a user Service looks like apart from fields the API server or wpgw own. */
function userView(ns: string, name: string): unknown {
  const s = getJson(['service', name, '-n', ns]);
  return {
    labels: s.metadata.labels ?? {},
    annotations: Object.keys(s.metadata.annotations ?? {}).sort(),
    selector: s.spec.selector,
    ports: s.spec.ports,
    clusterIP: s.spec.clusterIP,
  };
}

async function repointed(ns: string, name: string): Promise<void> {
  await eventually(
    `Service ${name} re-pointed`,
    () => getJson(['service', name, '-n', ns])?.spec?.selector?.['wpgw.io/gateway'] === ns,
    DEADLINE,
  );
  await eventually(`Service ${name}-app`, () => getJson(['service', `${name}-app`, '-n', ns]), DEADLINE);
}

/** An opted-in namespace holding one object of the user's, which nothing may change. */
async function optedInWithUserObject(ns: string): Promise<void> {
  createNamespace(ns, true);
  await waitForDefaultServiceAccount(ns);
  apply([{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'user-config', namespace: ns }, data: { a: 'b' } }]);
}

/** A Service as the helm chart of helmServiceRelease installed it. */
function helmView(ns: string, name: string, port: number, targetPort: number, clusterIP: string): unknown {
  return {
    labels: { team: 'pay', 'app.kubernetes.io/managed-by': 'Helm' },
    annotations: ['meta.helm.sh/release-name', 'meta.helm.sh/release-namespace'],
    selector: { app: name },
    ports: [{ name: 'http', port, protocol: 'TCP', targetPort }],
    clusterIP,
  };
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

const HELM = resolve(import.meta.dirname, '../helm/bin/helm');

/**
 * A user's chart holding one Service, installed and upgraded by the real helm with its classic
 * three-way merge (`--server-side=false`): an upgrade patches the selector from the chart against
 * the live object, so the user's key comes back beside the gateway's.
 */
function helmServiceRelease(name: string, ns: string, port: number, targetPort: number) {
  const dir = mkdtempSync(join(tmpdir(), `wpgw-e2e-chart-${name}-`));
  mkdirSync(join(dir, 'chart/templates'), { recursive: true });
  writeFileSync(join(dir, 'chart/Chart.yaml'), `apiVersion: v2\nname: ${name}\nversion: 0.1.0\n`);
  const svc = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, labels: { team: 'pay' } },
    spec: { selector: { app: name }, ports: [{ name: 'http', port, targetPort }] },
  };
  writeFileSync(join(dir, 'chart/templates/service.yaml'), JSON.stringify(svc));
  const helm = (...args: string[]) => {
    const r = spawnSync(HELM, [...args, '--kubeconfig', env().kubeconfig], {
      encoding: 'utf8',
      timeout: 120_000,
      env: {
        ...process.env,
        HELM_CACHE_HOME: join(dir, 'cache'),
        HELM_CONFIG_HOME: join(dir, 'config'),
        HELM_DATA_HOME: join(dir, 'data'),
      },
    });
    if (r.status !== 0) throw new Error(`helm ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
    return r.stdout + r.stderr;
  };
  if (!existsSync(HELM)) throw new Error(`${HELM} is missing: run bash test/helm/build.sh first (.ci/run does)`);
  return {
    install: () => helm('install', name, join(dir, 'chart'), '-n', ns, '--server-side=false'),
    upgrade: () => helm('upgrade', name, join(dir, 'chart'), '-n', ns, '--server-side=false'),
  };
}

describe('opting a namespace out', () => {
  it('restores every re-pointed Service exactly, rolls the Windows pods, then removes all wpgw made and nothing else', async () => {
    const ns = 'e2e-optout';
    await optedInWithUserObject(ns);
    apply([
      windowsDeployment('legacy', ns, OUTBOUND),
      windowsDeployment('billing', ns, OUTBOUND, 1),
      windowsDeployment('ledger', ns, OUTBOUND, 1),
    ]);
    await eventually(
      'Windows pods admitted',
      () => list(['pods', '-n', ns, '-l', 'wpgw.io/managed=true']).length === 4,
      DEADLINE,
    );
    // Helm's three-way merge: installed, re-pointed, then upgraded (the user's key merged back).
    const ledger = helmServiceRelease('ledger', ns, 7070, 7000);
    ledger.install();
    // Client-side apply (last-applied annotation) and server-side apply (managedFields).
    const csa = appService('legacy', ns);
    const ssa = {
      ...appService('billing', ns, 9090, 8443),
      metadata: { name: 'billing', namespace: ns, labels: { team: 'pay' } },
    };
    apply([csa]);
    apply([ssa], ['--server-side', '--field-manager=e2e-user']);
    await repointed(ns, 'legacy');
    await repointed(ns, 'billing');
    await repointed(ns, 'ledger');
    // A client-side re-apply merges the user's selector key back beside the gateway's (issue 12).
    apply([csa]);
    await eventually(
      'legacy re-admitted',
      () => getJson(['service', 'legacy', '-n', ns]).metadata.annotations['wpgw.io/original'],
    );
    // Helm's strategic three-way patch merges the chart's selector key back beside the gateway's;
    // the webhook re-points what arrives, as for a client-side apply.
    ledger.upgrade();
    expect(getJson(['service', 'ledger', '-n', ns]).spec.selector).toEqual({ 'wpgw.io/gateway': ns });
    const ledgerIP = getJson(['service', 'ledger', '-n', ns]).spec.clusterIP;
    const userConfig = getJson(['configmap', 'user-config', '-n', ns]).metadata.resourceVersion;
    const legacyIP = getJson(['service', 'legacy', '-n', ns]).spec.clusterIP;
    const billingIP = getJson(['service', 'billing', '-n', ns]).spec.clusterIP;
    const oldPods = new Set(list(['pods', '-n', ns, '-l', 'wpgw.io/managed=true']).map((p) => p.metadata.uid));

    k(['label', 'namespace', ns, 'wpgw.io/inject-']);

    await eventually(
      'Services restored',
      () => {
        const l = getJson(['service', 'legacy', '-n', ns]);
        const b = getJson(['service', 'billing', '-n', ns]);
        const h = getJson(['service', 'ledger', '-n', ns]);
        return [l, b, h].every((x) => x.metadata.annotations?.['wpgw.io/original'] === undefined);
      },
      DEADLINE,
    );
    expect(userView(ns, 'ledger')).toEqual(helmView(ns, 'ledger', 7070, 7000, ledgerIP));
    expect(userView(ns, 'legacy')).toEqual(legacyAsApplied(legacyIP));
    expect(userView(ns, 'billing')).toEqual({
      labels: { team: 'pay' },
      annotations: [],
      selector: { app: 'billing' },
      ports: [{ name: 'http', port: 9090, protocol: 'TCP', targetPort: 8443 }],
      clusterIP: billingIP,
    });
    expect(
      list(['events', '-n', ns, '--field-selector', 'reason=ServiceRestored'])
        .map((e) => e.involvedObject.name)
        .sort(),
    ).toEqual(['billing', 'ledger', 'legacy']);

    // The controller rolls the owners; the new pods are not admitted by wpgw (namespaceSelector).
    await eventually(
      'Windows pods replaced, without wpgw routing',
      () => {
        const pods = list(['pods', '-n', ns]).filter(
          (p) =>
            !p.metadata.deletionTimestamp &&
            p.metadata.labels?.app !== 'wpgw' &&
            !p.metadata.labels?.['wpgw.io/gateway'],
        );
        return (
          pods.length === 4 &&
          pods.every(
            (p) => !oldPods.has(p.metadata.uid) && !p.spec.hostAliases && !p.metadata.annotations?.['wpgw.io/status'],
          )
        );
      },
      DEADLINE,
    );
    await eventually('everything the controller made removed', () => managedObjects(ns).length === 0, DEADLINE);
    expect(getJson(['configmap', 'user-config', '-n', ns]).metadata.resourceVersion).toBe(userConfig);
    expect(getJson(['service', 'legacy-app', '-n', ns])).toBeUndefined();
    const phases = list(['events', '-n', ns, '--field-selector', 'reason=OptingOut']).map((e) => e.message as string);
    expect(phases.some((m) => m.includes('deleting the gateway'))).toBe(true);

    // The user's tools keep working on the restored Services: same apply, no conflict, no change.
    const before = [userView(ns, 'legacy'), userView(ns, 'billing'), userView(ns, 'ledger')];
    apply([csa]);
    expect(kubectl(['apply', '--server-side', '--field-manager=e2e-user', '-f', '-'], JSON.stringify(ssa)).status).toBe(
      0,
    );
    ledger.upgrade();
    expect([userView(ns, 'legacy'), userView(ns, 'billing'), userView(ns, 'ledger')]).toEqual(before);
  });
});

describe('handing back one Service while the namespace stays in', () => {
  it('wpgw.io/inject=false and a Service no Windows pods back: restored exactly once its clients may reach the Windows pods (the gateway always labelled for auto-mTLS, no caller rule); the rest stays', async () => {
    const ns = 'e2e-svc-leave';
    await optedInWithUserObject(ns);
    apply([
      windowsDeployment('legacy', ns, OUTBOUND),
      windowsDeployment('billing', ns, OUTBOUND, 1),
      windowsDeployment('stays', ns, OUTBOUND, 1),
    ]);
    const csa = appService('legacy', ns);
    apply([csa, appService('stays', ns, 9000, 90)]);
    const billing = helmServiceRelease('billing', ns, 9090, 8443);
    billing.install();
    for (const name of ['legacy', 'billing', 'stays']) await repointed(ns, name);
    billing.upgrade();
    // Callers reach the gateway over mTLS by its pods' tlsMode label (docs/user-policies.md): no caller rules to stage.
    await eventually(
      'inbound objects of all three',
      () => ['legacy', 'billing', 'stays'].every((n) => managedObjects(ns).includes(`Service/${n}-app`)),
      DEADLINE,
    );
    await eventually(
      'gateway rolled out',
      () => getJson(['deployment', 'wpgw', '-n', ns])?.status?.readyReplicas === 2,
      DEADLINE,
    );
    expect(getJson(['deployment', 'wpgw', '-n', ns]).spec.template.metadata.labels['security.istio.io/tlsMode']).toBe(
      'istio',
    );
    expect(managedObjects(ns).filter((o) => o.startsWith('DestinationRule/wpgw-in-'))).toEqual([]);
    const legacyIP = getJson(['service', 'legacy', '-n', ns]).spec.clusterIP;
    const billingIP = getJson(['service', 'billing', '-n', ns]).spec.clusterIP;
    const stays = getJson(['service', 'stays', '-n', ns]);
    const userConfig = getJson(['configmap', 'user-config', '-n', ns]).metadata.resourceVersion;

    // Opted out: the webhook keeps it re-pointed and says why; nothing changes for callers yet.
    const labelled = kubectl(['label', 'service', 'legacy', '-n', ns, 'wpgw.io/inject=false']);
    expect(labelled.status).toBe(0);
    expect(labelled.stderr).toContain(
      'stays re-pointed until the wpgw controller has moved its mesh callers off the gateway',
    );
    expect(getJson(['service', 'legacy', '-n', ns]).spec.selector).toEqual({ 'wpgw.io/gateway': ns });

    // Watch the order: the Service is never restored while its caller rule still exists, or before
    // its clients are admitted to the Windows pods directly (wpgw-direct-legacy) and the gateway pods are labelled.
    const seen: string[] = [];
    await eventually(
      'legacy restored',
      () => {
        const svc = getJson(['service', 'legacy', '-n', ns]);
        const objs = managedObjects(ns);
        const gwLabel = getJson(['deployment', 'wpgw', '-n', ns]).spec.template.metadata.labels[
          'security.istio.io/tlsMode'
        ];
        const restored = svc.spec.selector['wpgw.io/gateway'] === undefined;
        const state = `${gwLabel ?? '-'} rule:${objs.includes('DestinationRule/wpgw-in-legacy')} direct:${objs.includes('NetworkPolicy/wpgw-direct-legacy')} restored:${restored}`;
        if (seen.at(-1) !== state) seen.push(state);
        return restored;
      },
      DEADLINE,
    );
    process.stdout.write(`[e2e] Service opt-out states seen: ${seen.join(' | ')}\n`);
    expect(seen.filter((x) => x.includes('rule:true') && x.endsWith('restored:true'))).toEqual([]);
    expect(seen.at(-1)).toBe('istio rule:false direct:true restored:true');
    expect(userView(ns, 'legacy')).toEqual({
      ...(legacyAsApplied(legacyIP) as object),
      labels: { 'wpgw.io/inject': 'false' },
    });
    // One Event per step, in the order they were written (etcd's resourceVersions).
    const steps = list([
      'events',
      '-n',
      ns,
      '--field-selector',
      'involvedObject.name=legacy,involvedObject.kind=Service',
    ])
      .filter((e) => e.reason === 'LeavingGateway' || e.reason === 'ServiceRestored')
      .sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion))
      .map(
        (e) =>
          `${e.reason}: ${/^labelled wpgw.io\/inject=false: (?:handing it back from the wpgw gateway: )?(\w+)/.exec(e.message)?.[1]}`,
      );
    // No gateway rollout and no caller rule to delete: straight to the restore, then the listener's grace.
    expect(steps).toEqual(expect.arrayContaining(['ServiceRestored: restored', 'LeavingGateway: restored']));
    expect(steps.filter((x) => /labelling|deleting/.test(x))).toEqual([]);

    // The Windows workload behind billing is deleted while its Service (Helm's) stays.
    k(['delete', 'deployment', 'billing', '-n', ns]);
    await eventually(
      'billing restored',
      () => getJson(['service', 'billing', '-n', ns]).metadata.annotations?.['wpgw.io/original'] === undefined,
      DEADLINE,
    );
    expect(userView(ns, 'billing')).toEqual(helmView(ns, 'billing', 9090, 8443, billingIP));
    expect(
      list(['events', '-n', ns, '--field-selector', 'reason=ServiceRestored,involvedObject.name=billing'])[0]?.message,
    ).toMatch(/^no Windows workload or pod matches it any more: restored/);

    // After the listener's grace: their inbound objects are gone (the gateway keeps its label); stays is untouched.
    await eventually(
      'inbound objects of legacy and billing pruned',
      () => {
        const objs = managedObjects(ns);
        return !objs.some((o) => /(legacy|billing)-app$|wpgw-in-(legacy|billing)$|wpgw-app-(legacy|billing)$/.test(o));
      },
      DEADLINE,
    );
    expect(getJson(['deployment', 'wpgw', '-n', ns]).spec.template.metadata.labels['security.istio.io/tlsMode']).toBe(
      'istio',
    );
    const objs = managedObjects(ns);
    expect(objs).toEqual(
      expect.arrayContaining([
        'Service/stays-app',
        'Gateway/wpgw-in-stays',
        'DestinationRule/wpgw-app-stays',
        'Deployment/wpgw',
        'NetworkPolicy/wpgw-direct-legacy',
      ]),
    );
    const staysNow = getJson(['service', 'stays', '-n', ns]);
    expect(staysNow.spec).toEqual(stays.spec);
    expect(getJson(['configmap', 'user-config', '-n', ns]).metadata.resourceVersion).toBe(userConfig);

    // The user's tools keep working: the same apply and upgrade change nothing.
    const before = [userView(ns, 'legacy'), userView(ns, 'billing')];
    apply([csa]);
    billing.upgrade();
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
      await eventually('controller back', () => isReady(e.controllerPort), DEADLINE);
    }
  });
});
