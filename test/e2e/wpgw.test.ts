// End-to-end on a real control plane (kube-apiserver, kube-controller-manager, kube-scheduler,
// etcd, kwok nodes), with the wpgw webhook and controller running as real processes under their
// own RBAC. Each part uses its own namespace; timings are printed per test.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fetchInsecure, isReady, startProcess, stopProcess } from './global-setup.js';
import {
  appService,
  apply,
  controllerMetric,
  createNamespace,
  endpointIPs,
  env,
  eventually,
  getJson,
  k,
  kubectl,
  linuxDeployment,
  list,
  managedObjects,
  podIPs,
  sleep,
  waitForDefaultServiceAccount,
  windowsDeployment,
  printTestTimes,
} from './helpers.js';

const ORDERS = 'orders.sales.svc.cluster.local:9080';
const OUTBOUND = `${ORDERS}, example.com:80+tls`;

printTestTimes();

async function gatewayIP(ns: string): Promise<string> {
  return eventually(
    `Service wpgw in ${ns} with a ClusterIP`,
    () => getJson(['service', 'wpgw', '-n', ns])?.spec?.clusterIP as string | undefined,
  );
}

async function optedInNamespace(ns: string, annotations: Record<string, string> = {}): Promise<string> {
  createNamespace(ns, true, annotations);
  await waitForDefaultServiceAccount(ns);
  return gatewayIP(ns);
}

function windowsPods(ns: string, app: string): any[] {
  return list(['pods', '-n', ns, '-l', `app=${app}`]).filter((p) => !p.metadata.deletionTimestamp);
}

/** The Windows app converged: pods routed, `<name>` on the gateway, `<name>-app` on the pods. */
async function expectConverged(ns: string, app: string, replicas: number): Promise<void> {
  const ip = await gatewayIP(ns);
  const pods = await eventually(`${replicas} running ${app} pods in ${ns}`, () => {
    const p = windowsPods(ns, app);
    return p.length === replicas && p.every((x) => x.status?.podIP) ? p : undefined;
  });
  for (const pod of pods) {
    expect(pod.spec.nodeName).toBe('windows-1');
    expect(pod.metadata.labels['wpgw.io/managed']).toBe('true');
    expect(pod.spec.hostAliases).toEqual([
      { ip, hostnames: ['example.com', 'orders.sales', 'orders.sales.svc', 'orders.sales.svc.cluster.local'] },
    ]);
  }
  const svc = await eventually(`Service ${app} re-pointed`, () => {
    const s = getJson(['service', app, '-n', ns]);
    return s?.spec?.selector?.['wpgw.io/gateway'] === ns ? s : undefined;
  });
  expect(svc.spec.selector).toEqual({ 'wpgw.io/gateway': ns });
  const appSvc = await eventually<any>(`Service ${app}-app`, () => getJson(['service', `${app}-app`, '-n', ns]));
  expect(appSvc.spec.selector).toEqual({ app });
  expect(appSvc.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'Service', name: app, uid: svc.metadata.uid });
  const gwPodIPs = await eventually('gateway pods with IPs', () => {
    const ips = podIPs(ns, `wpgw.io/gateway=${ns}`);
    return ips.length === 2 ? ips : undefined;
  });
  await eventually(
    `EndpointSlices of ${app} = gateway pods`,
    () => JSON.stringify(endpointIPs(ns, app)) === JSON.stringify(gwPodIPs),
  );
  const winIPs = pods.map((p) => p.status.podIP).sort();
  await eventually(
    `EndpointSlices of ${app}-app = Windows pods`,
    () => JSON.stringify(endpointIPs(ns, `${app}-app`)) === JSON.stringify(winIPs),
  );
  expect(winIPs.every((x: string) => x.startsWith('10.244.64.'))).toBe(true);
}

describe('1. opting a namespace in and out', () => {
  it('labelling brings up the gateway and its policies; unlabelling removes only them', async () => {
    const ns = 'e2e-label';
    createNamespace(ns, false);
    apply([
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'user-config', namespace: ns }, data: { a: 'b' } },
    ]);
    await sleep(1500);
    expect(managedObjects(ns)).toEqual([]);
    k(['label', 'namespace', ns, 'wpgw.io/inject=enabled']);
    const want = [
      'AuthorizationPolicy/wpgw',
      'ConfigMap/wpgw-egress-report',
      'Deployment/wpgw',
      'NetworkPolicy/wpgw-gateway',
      'NetworkPolicy/wpgw-gateway-egress',
      'NetworkPolicy/wpgw-managed-pods',
      'PodDisruptionBudget/wpgw',
      'Service/wpgw',
      'ServiceAccount/wpgw',
    ];
    await eventually('gateway objects', () => JSON.stringify(managedObjects(ns)) === JSON.stringify(want));
    const deploy = getJson(['deployment', 'wpgw', '-n', ns, '--show-managed-fields']);
    expect(deploy.spec.template.spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(
      deploy.metadata.managedFields.some(
        (f: { manager: string; operation: string }) => f.manager === 'wpgw' && f.operation === 'Apply',
      ),
    ).toBe(true);
    k(['label', 'namespace', ns, 'wpgw.io/inject-']);
    await eventually('gateway objects removed', () => managedObjects(ns).length === 0);
    expect(getJson(['configmap', 'user-config', '-n', ns])?.data).toEqual({ a: 'b' });
  });
});

describe('2. a Windows Deployment and its Service converge in either order', () => {
  it('Deployment first', async () => {
    const ns = 'e2e-deploy-first';
    await optedInNamespace(ns);
    apply([windowsDeployment('legacy', ns, OUTBOUND), linuxDeployment('frontend', ns)]);
    await eventually('Windows pods admitted', () => windowsPods(ns, 'legacy').length === 2);
    apply([appService('legacy', ns)]);
    await expectConverged(ns, 'legacy', 2);
    const linux = await eventually('frontend pod', () => list(['pods', '-n', ns, '-l', 'app=frontend'])[0]);
    expect(linux.spec.hostAliases).toBeUndefined();
    expect(linux.metadata.labels['wpgw.io/managed']).toBeUndefined();
    expect(linux.metadata.annotations?.['wpgw.io/status']).toBeUndefined();
  });

  it('Service first (the controller nudges it once the Windows pods exist)', async () => {
    const ns = 'e2e-service-first';
    await optedInNamespace(ns);
    apply([appService('legacy', ns)], ['--server-side', '--field-manager=e2e-user']);
    await sleep(1000);
    expect(getJson(['service', 'legacy', '-n', ns]).spec.selector).toEqual({ app: 'legacy' });
    apply([windowsDeployment('legacy', ns, OUTBOUND)], ['--server-side', '--field-manager=e2e-user']);
    await expectConverged(ns, 'legacy', 2);
    expect(getJson(['service', 'legacy', '-n', ns]).metadata.annotations['wpgw.io/nudge']).toBeTruthy();
    // The nudge is explained on the Service itself.
    const events = list(['events', '-n', ns, '--field-selector', 'reason=ServiceNudged,involvedObject.name=legacy']);
    expect(events.length).toBe(1);
    expect(events[0].message).toMatch(/re-admitting it through the wpgw webhook/);
  });

  it('wpgw status reports the gateway, the re-pointed Service and the destinations', async () => {
    const ns = 'e2e-deploy-first';
    const ip = await gatewayIP(ns);
    const r = spawnSync(process.execPath, [resolve(import.meta.dirname, '../../dist/src/cli.js'), 'status', '-n', ns], {
      env: { ...process.env, KUBECONFIG: env().kubeconfig },
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`Namespace ${ns}`);
    expect(r.stdout).toContain(`Service wpgw ${ip}`);
    expect(r.stdout).toContain('legacy -> gateway (app reachable as legacy-app)');
    expect(r.stdout).toContain('example.com:80+tls');
    expect(r.stdout).toContain('conflicts:    none');
  });
});

describe('3. re-applying changes nothing; changing destinations rolls out and re-routes', () => {
  it('client-side apply of the same manifests is a no-op', async () => {
    const ns = 'e2e-deploy-first';
    const before = {
      svc: getJson(['service', 'legacy', '-n', ns]),
      deploy: getJson(['deployment', 'legacy', '-n', ns]),
    };
    apply([windowsDeployment('legacy', ns, OUTBOUND), appService('legacy', ns)]);
    await sleep(1500);
    const after = {
      svc: getJson(['service', 'legacy', '-n', ns]),
      deploy: getJson(['deployment', 'legacy', '-n', ns]),
    };
    expect(after.svc.spec).toEqual(before.svc.spec);
    expect(after.svc.metadata.resourceVersion).toBe(before.svc.metadata.resourceVersion);
    expect(after.deploy.metadata.generation).toBe(before.deploy.metadata.generation);
  });

  it('server-side apply of the same manifests is a no-op', async () => {
    const ns = 'e2e-service-first';
    const before = getJson(['service', 'legacy', '-n', ns]);
    const beforeDeploy = getJson(['deployment', 'legacy', '-n', ns]);
    apply(
      [windowsDeployment('legacy', ns, OUTBOUND), appService('legacy', ns)],
      ['--server-side', '--field-manager=e2e-user'],
    );
    await sleep(1500);
    const after = getJson(['service', 'legacy', '-n', ns]);
    expect(after.spec).toEqual(before.spec);
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    expect(getJson(['deployment', 'legacy', '-n', ns]).metadata.generation).toBe(beforeDeploy.metadata.generation);
  });

  it('changing wpgw.io/outbound rolls out and updates the routes; the last user of a destination takes its route along', async () => {
    const ns = 'e2e-deploy-first';
    await eventually('route to orders', () =>
      getJson(['virtualservice', `wpgw-out-orders.sales.svc.cluster.local-9080`, '-n', ns]),
    );
    apply([windowsDeployment('legacy', ns, 'example.com:80+tls, rates.shop.svc.cluster.local:8080')]);
    await eventually('new pods carry the new names', () => {
      const pods = windowsPods(ns, 'legacy');
      return pods.length === 2 && pods.every((p) => p.spec.hostAliases?.[0]?.hostnames.includes('rates.shop.svc'));
    });
    await eventually('route to rates appears', () =>
      getJson(['virtualservice', 'wpgw-out-rates.shop.svc.cluster.local-8080', '-n', ns]),
    );
    await eventually(
      'route to orders removed with its last user',
      () => !getJson(['virtualservice', 'wpgw-out-orders.sales.svc.cluster.local-9080', '-n', ns]),
    );
    const svc = getJson(['service', 'wpgw', '-n', ns]);
    expect(svc.spec.ports.map((p: { port: number }) => p.port).sort((a: number, b: number) => a - b)).toEqual([
      80, 8080, 15021,
    ]);
  });
});

describe('4. deleting leaves no orphans', () => {
  it('deleting the Service removes <name>-app and its inbound config; deleting the Deployment its routes; the namespace finishes', async () => {
    const ns = 'e2e-service-first';
    expect(managedObjects(ns)).toEqual(
      expect.arrayContaining(['Service/legacy-app', 'Gateway/wpgw-in-legacy', 'VirtualService/wpgw-in-legacy']),
    );
    k(['delete', 'service', 'legacy', '-n', ns]);
    await eventually(
      'inbound objects gone',
      () =>
        !managedObjects(ns).some(
          (o) => o.includes('legacy-app') || o.includes('wpgw-in-legacy') || o.includes('wpgw-app-legacy'),
        ),
    );
    k(['delete', 'deployment', 'legacy', '-n', ns]);
    await eventually(
      'outbound routes gone',
      () => !managedObjects(ns).some((o) => o.startsWith('VirtualService/') || o.startsWith('ServiceEntry/')),
    );
    expect(managedObjects(ns)).toContain('Deployment/wpgw');
    k(['delete', 'namespace', ns, '--wait=false']);
    await eventually('namespace deleted', () => !getJson(['namespace', ns]), 90_000);
  });
});

describe('5. a bad wpgw.io/outbound is rejected by the API server with our message', () => {
  it('denies the pod and creates nothing', async () => {
    const ns = 'e2e-deploy-first';
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'bad-outbound',
        namespace: ns,
        annotations: { 'wpgw.io/outbound': 'example.com:80, example.com' },
      },
      spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [{ name: 'app', image: 'app' }] },
    };
    const r = kubectl(['apply', '-f', '-'], JSON.stringify(pod));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('admission webhook "pods.wpgw.io" denied the request');
    expect(r.stderr).toContain('invalid wpgw.io/outbound entry "example.com"');
    expect(getJson(['pod', 'bad-outbound', '-n', ns])).toBeUndefined();
  });
});

describe('5b. a setting where wpgw does not read it is an Event on the object and a status hint', () => {
  it("wpgw.io/outbound on a Deployment's own metadata: MisplacedSetting Warning on the Deployment, hint in wpgw status", async () => {
    const ns = 'e2e-hints';
    await optedInNamespace(ns);
    const d = linuxDeployment('own-meta', ns) as { metadata: Record<string, unknown> };
    d.metadata.annotations = { 'wpgw.io/outbound': 'example.com:443' };
    apply([d]);
    const event = await eventually(
      'a MisplacedSetting Event on Deployment/own-meta',
      () => list(['events', '-n', ns, '--field-selector', 'reason=MisplacedSetting,involvedObject.name=own-meta'])[0],
    );
    expect(event.type).toBe('Warning');
    expect(event.involvedObject.kind).toBe('Deployment');
    expect(event.message).toBe(
      "wpgw.io/outbound is on the Deployment's own metadata, where it has no effect: wpgw reads it from the pod template (spec.template.metadata.annotations)",
    );
    const r = spawnSync(process.execPath, [resolve(import.meta.dirname, '../../dist/src/cli.js'), 'status', '-n', ns], {
      env: { ...process.env, KUBECONFIG: env().kubeconfig },
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`  hint:         Deployment/own-meta: ${event.message}`);
    kubectl(['delete', 'namespace', ns, '--wait=false']);
  });

  it('a bare Linux Pod that the re-pointed Service legacy selects is warned about at its admission (server-side dry run: nothing is created)', () => {
    const ns = 'e2e-deploy-first';
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'bare-linux', namespace: ns, labels: { app: 'legacy' } },
      spec: { containers: [{ name: 'nginx', image: 'nginx' }] },
    };
    const r = kubectl(['apply', '--dry-run=server', '-f', '-'], JSON.stringify(pod));
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('Warning: ');
    expect(r.stderr).toContain(
      'wpgw does not manage this pod (not Windows), yet the re-pointed Service "legacy" selects it, so "legacy-app" sends it',
    );
    expect(getJson(['pod', 'bare-linux', '-n', ns])).toBeUndefined();
  });
});

describe('6. with the webhook stopped, failurePolicy Fail holds', () => {
  it('no Windows pod is admitted without its routing; nothing outside opted-in namespaces is blocked', async () => {
    const e = env();
    const ns = 'e2e-deploy-first';
    await stopProcess(e.processes.webhook);
    await eventually(
      'webhook down',
      async () => (await fetchInsecure(`https://127.0.0.1:${e.webhookPort}/healthz`)) === 0,
    );
    const winPod = (name: string, namespace: string) =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace, annotations: { 'wpgw.io/outbound': 'example.org:80' } },
        spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [{ name: 'app', image: 'app' }] },
      });
    const denied = kubectl(['apply', '-f', '-'], winPod('while-down', ns));
    expect(denied.status).not.toBe(0);
    expect(denied.stderr).toMatch(/failed calling webhook "pods.wpgw.io"/);
    expect(getJson(['pod', 'while-down', '-n', ns])).toBeUndefined();
    createNamespace('e2e-not-opted-in', false);
    await waitForDefaultServiceAccount('e2e-not-opted-in');
    const outside = kubectl(['apply', '-f', '-'], winPod('outside', 'e2e-not-opted-in'));
    expect(outside.stderr).toBe('');
    expect(outside.status).toBe(0);
    expect(getJson(['pod', 'outside', '-n', 'e2e-not-opted-in']).spec.hostAliases).toBeUndefined();

    // Start it again (same Secret-held certificate): admissions resume.
    startProcess('webhook', e.processes.webhook);
    await eventually('webhook back', () => isReady(e.webhookPort));
    const ok = kubectl(['apply', '-f', '-'], winPod('after-restart', ns));
    expect(ok.stderr).toBe('');
    expect(getJson(['pod', 'after-restart', '-n', ns]).spec.hostAliases?.[0]?.hostnames).toEqual(['example.org']);
  });
});

describe('7. the gateway address is stable', () => {
  it('deleting the wpgw Service brings it back at the same address', async () => {
    const ns = 'e2e-deploy-first';
    const ip = await gatewayIP(ns);
    const uid = getJson(['service', 'wpgw', '-n', ns]).metadata.uid;
    k(['delete', 'service', 'wpgw', '-n', ns]);
    const back = await eventually('wpgw Service re-created', () => {
      const s = getJson(['service', 'wpgw', '-n', ns]);
      return s && s.metadata.uid !== uid ? s : undefined;
    });
    expect(back.spec.clusterIP).toBe(ip);
    for (const pod of windowsPods(ns, 'legacy')) expect(pod.spec.hostAliases[0].ip).toBe(ip);
  });
});

describe('8. CRD schemas accept everything; a no-op resync writes nothing', () => {
  it('every controller write was accepted and a resync makes zero writes', async () => {
    const ns = 'e2e-deploy-first';
    const objects = managedObjects(ns);
    for (const kind of [
      'Gateway/wpgw-out',
      'ServiceEntry/wpgw-ext-example.com',
      'DestinationRule/wpgw-tls-example.com',
      'AuthorizationPolicy/wpgw',
    ]) {
      expect(objects).toContain(kind);
    }
    // Settle, then watch the write counter across two full resyncs (--resync 20s).
    await sleep(5000);
    const errorsBefore = await controllerMetric('wpgw_controller_errors_total');
    const before = await controllerMetric('wpgw_controller_writes_total');
    const reconcilesBefore = await controllerMetric('wpgw_controller_reconciles_total');
    await sleep(45_000);
    const after = await controllerMetric('wpgw_controller_writes_total');
    const reconciles = (await controllerMetric('wpgw_controller_reconciles_total')) - reconcilesBefore;
    process.stdout.write(`[e2e] no-op resync: ${reconciles} reconciles, ${after - before} writes\n`);
    expect(reconciles).toBeGreaterThan(0);
    expect(after - before).toBe(0);
    expect(await controllerMetric('wpgw_controller_errors_total')).toBe(errorsBefore);
  });
});
