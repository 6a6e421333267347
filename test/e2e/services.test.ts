// Issue 11 items 2, 3 and 5 through the real API server: Argo Rollouts (a CRD installed while
// wpgw runs, its selector patches), Services that cannot be re-pointed, Services non-mesh clients reach.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  apply,
  controllerMetric,
  createNamespace,
  endpointIPs,
  env,
  eventually,
  getJson,
  k,
  kubectl,
  list,
  sleep,
  waitForDefaultServiceAccount,
  windowsDeployment,
  printTestTimes,
} from './helpers.js';

printTestTimes();

const ROLLOUT_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'rollouts.argoproj.io' },
  spec: {
    group: 'argoproj.io',
    scope: 'Namespaced',
    names: { plural: 'rollouts', singular: 'rollout', kind: 'Rollout', listKind: 'RolloutList' },
    versions: [
      {
        name: 'v1alpha1',
        served: true,
        storage: true,
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      },
    ],
  },
};

const KWOK = [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }];
const windowsPodSpec = {
  nodeSelector: { 'kubernetes.io/os': 'windows' },
  tolerations: KWOK,
  containers: [{ name: 'app', image: 'app', ports: [{ name: 'http', containerPort: 80 }] }],
};

async function optedIn(ns: string): Promise<void> {
  createNamespace(ns);
  await waitForDefaultServiceAccount(ns);
  await eventually(`Service wpgw in ${ns}`, () => getJson(['service', 'wpgw', '-n', ns])?.spec?.clusterIP);
}

function service(
  name: string,
  ns: string,
  selector: Record<string, string>,
  extra: Record<string, unknown> = {},
  annotations?: Record<string, string>,
): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns, ...(annotations ? { annotations } : {}) },
    spec: { selector, ports: [{ name: 'http', port: 8080, targetPort: 'http' }], ...extra },
  };
}

/** What the API server would store for this Service now (admission runs on a server-side dry run). */
function dryRun(obj: Record<string, unknown>): any {
  return JSON.parse(k(['create', '--dry-run=server', '-o', 'json', '-f', '-'], JSON.stringify(obj)));
}

describe('item 5: Argo Rollouts', () => {
  it('a Rollout CRD installed while wpgw runs is picked up; its Windows template makes its Service re-pointed', async () => {
    const ns = 'e2e-argo';
    await optedIn(ns);
    // wpgw started without the CRD (the harness installs only Istio's and Gateway API's) and is ready.
    expect(getJson(['crd', 'rollouts.argoproj.io'])).toBeUndefined();
    apply([ROLLOUT_CRD]);
    k(['wait', '--for=condition=Established', '--timeout=60s', 'crd/rollouts.argoproj.io']);
    apply([
      {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Rollout',
        metadata: { name: 'legacy', namespace: ns },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'legacy' } },
          template: { metadata: { labels: { app: 'legacy' } }, spec: windowsPodSpec },
        },
      },
    ]);
    // The watches re-check a missing resource every 30 s: wait for the webhook to see the Rollout.
    const seen = await eventually(
      'the webhook re-points a Service selecting the Rollout',
      () => {
        const s = dryRun(service('legacy', ns, { app: 'legacy' }));
        return s.spec.selector['wpgw.io/gateway'] === ns ? s : undefined;
      },
      90_000,
    );
    expect(JSON.parse(seen.metadata.annotations['wpgw.io/original']).selector).toEqual({ app: 'legacy' });
  });

  it("Argo's selector patch is merged into wpgw.io/original, its re-sends are no-ops, and nothing loops", async () => {
    const ns = 'e2e-argo';
    const rollout = getJson(['rollout.argoproj.io', 'legacy', '-n', ns]);
    const rs = (hash: string, replicas: number) => ({
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: `legacy-${hash}`,
        namespace: ns,
        labels: { app: 'legacy', 'rollouts-pod-template-hash': hash },
        ownerReferences: [
          {
            apiVersion: 'argoproj.io/v1alpha1',
            kind: 'Rollout',
            name: 'legacy',
            uid: rollout.metadata.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: {
        replicas,
        selector: { matchLabels: { app: 'legacy', 'rollouts-pod-template-hash': hash } },
        template: { metadata: { labels: { app: 'legacy', 'rollouts-pod-template-hash': hash } }, spec: windowsPodSpec },
      },
    });
    // What Argo's controller creates: a stable and a canary ReplicaSet of the Rollout.
    apply([rs('stable1', 2), rs('canary1', 1)]);
    apply([service('legacy', ns, { app: 'legacy' })]);
    const stablePods = await eventually('2 stable pods with IPs', () => {
      const ips = list(['pods', '-n', ns, '-l', 'rollouts-pod-template-hash=stable1'])
        .map((p) => p.status?.podIP)
        .filter(Boolean)
        .sort();
      return ips.length === 2 ? ips : undefined;
    });
    await eventually(
      'legacy re-pointed',
      () => getJson(['service', 'legacy', '-n', ns])?.spec?.selector?.['wpgw.io/gateway'] === ns,
    );

    // Argo's switchServiceSelector: if the selector lacks the hash, strategic-merge-patch it in.
    const argoPatch = JSON.stringify({
      spec: { selector: { 'rollouts-pod-template-hash': 'stable1' } },
      metadata: { annotations: { 'argo-rollouts.argoproj.io/managed-by-rollouts': 'legacy' } },
    });
    const versions: string[] = [];
    let patches = 0;
    for (let i = 0; i < 12; i++) {
      const svc = getJson(['service', 'legacy', '-n', ns]);
      versions.push(svc.metadata.resourceVersion);
      if (svc.spec.selector['rollouts-pod-template-hash'] !== 'stable1') {
        k(['patch', 'service', 'legacy', '-n', ns, '--type', 'strategic', '-p', argoPatch]);
        patches++;
      }
      await sleep(500);
    }
    // Argo never sees its key in the live selector (that would select no gateway pod), so it keeps
    // re-sending; every re-send after the first is a no-op: the resourceVersion stops changing.
    expect(patches).toBe(12);
    expect(new Set(versions.slice(1)).size).toBe(1);
    const svc = getJson(['service', 'legacy', '-n', ns]);
    expect(svc.spec.selector).toEqual({ 'wpgw.io/gateway': ns });
    expect(JSON.parse(svc.metadata.annotations['wpgw.io/original']).selector).toEqual({
      app: 'legacy',
      'rollouts-pod-template-hash': 'stable1',
    });
    // legacy-app follows: only the stable ReplicaSet's pods, not the canary's.
    await eventually(
      'legacy-app selects the stable pods',
      () => getJson(['service', 'legacy-app', '-n', ns])?.spec?.selector?.['rollouts-pod-template-hash'] === 'stable1',
    );
    await eventually(
      'legacy-app endpoints = stable pods',
      () => JSON.stringify(endpointIPs(ns, 'legacy-app')) === JSON.stringify(stablePods),
    );

    // Converged: the controller writes nothing more while Argo keeps re-sending.
    await sleep(3000);
    const writes = await controllerMetric('wpgw_controller_writes_total');
    const rv = getJson(['service', 'legacy', '-n', ns]).metadata.resourceVersion;
    for (let i = 0; i < 6; i++) {
      k(['patch', 'service', 'legacy', '-n', ns, '--type', 'strategic', '-p', argoPatch]);
      await sleep(500);
    }
    expect(getJson(['service', 'legacy', '-n', ns]).metadata.resourceVersion).toBe(rv);
    expect(await controllerMetric('wpgw_controller_writes_total')).toBe(writes);
  });

  it('the controller may restart Rollouts and the webhook may watch them (RBAC from manifests/)', () => {
    const can = (sa: string, verb: string) =>
      kubectl([
        'auth',
        'can-i',
        verb,
        'rollouts.argoproj.io',
        '-n',
        'e2e-argo',
        `--as=system:serviceaccount:wpgw-system:${sa}`,
      ]).stdout.trim();
    expect([can('wpgw-controller', 'patch'), can('wpgw-controller', 'watch'), can('wpgw-webhook', 'watch')]).toEqual([
      'yes',
      'yes',
      'yes',
    ]);
    expect(can('wpgw-webhook', 'patch')).toBe('no');
  });
});

describe('item 3: a Service whose <name>-app cannot exist is refused by the API server with the reason', () => {
  it('a 60-character name, and a <name>-app the user owns', async () => {
    const ns = 'e2e-names';
    await optedIn(ns);
    apply([windowsDeployment('legacy', ns, 'example.com:80', 1)]);
    await eventually(
      'a managed legacy pod',
      () => list(['pods', '-n', ns, '-l', 'app=legacy,wpgw.io/managed=true']).length === 1,
    );
    const long = `l${'o'.repeat(58)}g`;
    const r = kubectl(['apply', '-f', '-'], JSON.stringify(service(long, ns, { app: 'legacy' })));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('admission webhook "services.wpgw.io" denied the request');
    expect(r.stderr).toContain(`service "${long}": cannot be re-pointed at the wpgw gateway`);
    expect(r.stderr).toContain('rename the Service to at most 59 characters');
    expect(getJson(['service', long, '-n', ns])).toBeUndefined();

    apply([service('legacy-app', ns, { app: 'something-else' })]);
    const taken = kubectl(['apply', '-f', '-'], JSON.stringify(service('legacy', ns, { app: 'legacy' })));
    expect(taken.status).not.toBe(0);
    expect(taken.stderr).toContain('"legacy-app", and a Service of that name already exists that wpgw does not manage');
    // The user's Service is untouched.
    expect(getJson(['service', 'legacy-app', '-n', ns]).spec.selector).toEqual({ app: 'something-else' });
  });
});

describe('item 2: a Service non-mesh clients reach is left alone, said so everywhere, and still reaches its pods', () => {
  it('NodePort: admitted unchanged with a warning; wpgw-direct NetworkPolicy; Warning Event; wpgw status', async () => {
    const ns = 'e2e-names';
    const r = kubectl(
      ['apply', '-f', '-'],
      JSON.stringify(service('legacy-np', ns, { app: 'legacy' }, { type: 'NodePort' })),
    );
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(
      /Warning: service "legacy-np": is left alone \(not re-pointed at the wpgw gateway\): non-mesh clients reach it \(type NodePort/,
    );
    // The whole warning arrives (the API server truncates warnings only past 4 KiB in total).
    expect(r.stderr).toContain(
      'set wpgw.io/inject: "true" on this Service to re-point it anyway (its non-mesh clients then fail)',
    );
    const svc = getJson(['service', 'legacy-np', '-n', ns]);
    expect(svc.spec.selector).toEqual({ app: 'legacy' });
    expect(svc.metadata.annotations?.['wpgw.io/original']).toBeUndefined();
    const np = await eventually<any>('NetworkPolicy wpgw-direct-legacy-np', () =>
      getJson(['networkpolicy', 'wpgw-direct-legacy-np', '-n', ns]),
    );
    expect(np.spec.podSelector.matchLabels).toEqual({ app: 'legacy', 'wpgw.io/managed': 'true' });
    expect(np.spec.ingress).toEqual([{ ports: [{ protocol: 'TCP', port: 'http' }] }]);
    const events = await eventually('a Warning Event on the Service', () => {
      const e = list(['events', '-n', ns, '--field-selector', 'involvedObject.name=legacy-np,type=Warning']);
      return e.length > 0 ? e : undefined;
    });
    expect(events[0].message).toMatch(/NotBehindGateway: is left alone/);
    const status = spawnSync(
      process.execPath,
      [resolve(import.meta.dirname, '../../dist/src/cli.js'), 'status', '-n', ns],
      {
        env: { ...process.env, KUBECONFIG: env().kubeconfig },
        encoding: 'utf8',
      },
    );
    expect(status.status).toBe(0);
    expect(status.stdout).toMatch(/Service\/legacy-np: NotBehindGateway: is left alone/);
    // Deleting the Service prunes its NetworkPolicy.
    k(['delete', 'service', 'legacy-np', '-n', ns]);
    await eventually(
      'wpgw-direct-legacy-np pruned',
      () => !getJson(['networkpolicy', 'wpgw-direct-legacy-np', '-n', ns]),
    );
  });

  it('an nginx Ingress added to a re-pointed Service: the controller nudges it, the webhook restores it, its clients are let in, once', async () => {
    const ns = 'e2e-names';
    apply([service('web', ns, { app: 'legacy' })]);
    await eventually(
      'web re-pointed',
      () => getJson(['service', 'web', '-n', ns])?.spec?.selector?.['wpgw.io/gateway'] === ns,
    );
    apply([
      {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'Ingress',
        metadata: { name: 'storefront', namespace: ns },
        spec: {
          ingressClassName: 'nginx',
          rules: [
            {
              host: 'store.example.com',
              http: {
                paths: [
                  { path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 8080 } } } },
                ],
              },
            },
          ],
        },
      },
    ]);
    const restored = await eventually<any>('web restored to its own selector', () => {
      const s = getJson(['service', 'web', '-n', ns]);
      return s?.spec?.selector?.app === 'legacy' ? s : undefined;
    });
    expect(restored.spec.selector).toEqual({ app: 'legacy' });
    expect(restored.spec.ports).toEqual([{ name: 'http', port: 8080, protocol: 'TCP', targetPort: 'http' }]);
    expect(restored.metadata.annotations['wpgw.io/original']).toBeUndefined();
    await eventually('NetworkPolicy wpgw-direct-web', () => getJson(['networkpolicy', 'wpgw-direct-web', '-n', ns]));
    await eventually('web-app pruned', () => !getJson(['service', 'web-app', '-n', ns]));
    const nudges = list([
      'events',
      '-n',
      ns,
      '--field-selector',
      'reason=ServiceNudged,involvedObject.name=web',
    ]).filter((e) => /restores its original selector/.test(e.message));
    expect(nudges).toHaveLength(1);
    expect(nudges[0].message).toContain('sent to by Ingress/storefront (class nginx)');
    // Converged: no more writes to the Service.
    const rv = getJson(['service', 'web', '-n', ns]).metadata.resourceVersion;
    await sleep(3000);
    expect(getJson(['service', 'web', '-n', ns]).metadata.resourceVersion).toBe(rv);
  });
});
