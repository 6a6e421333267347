// Users' own Istio policies for a re-pointed Service (issue 13, docs/user-policies.md), checked in
// the Envoy config a real istiod (test/istio/start.sh) serves, with the wpgw webhook and
// controller of the global setup writing wpgw's side from plain manifests:
//   item 5:    a user's DestinationRule for <name> without tls leaves the mesh caller on Istio
//              mTLS to the wpgw (auto-mTLS by the gateway pods' label, no wpgw DR for <name>);
//   items 1-2: the user's delegate VirtualService and DestinationRule for <name>-app reach the
//              wpgw's routes and clusters: 90/10 subsets by Windows pod labels, retries, timeout,
//              fault, outlier detection; plaintext to the Windows pods;
//   item 4:    the user's RequestAuthentication for the Windows pods is carried to the wpgw pods
//              (the only re-pointed Service here, so faithful): its issuer and inline JWKS in the
//              gateway's jwt_authn filter on legacy's listener; its reach onto the egress reported;
//   conflicts: a second delegate is reported as an Event on the user's object;
//   Istio's analyzers find no error in the namespace.
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  apply,
  appService,
  controllerMetric,
  env,
  eventually,
  kubectl,
  list,
  printTestTimes,
  windowsDeployment,
} from './helpers.js';
import {
  analyzeCluster,
  autoMtls,
  cluster,
  collect,
  endpointAddresses,
  httpFilters,
  httpRbac,
  isIstioMutualUpstream,
  isPlaintextCluster,
  ISTIO_DIR,
  listenerOnPort,
  meshApp,
  proxyForPod,
  rdsNames,
  readJson,
  routeConfig,
  run,
  selectVhost,
  xdsDump,
  type XdsDump,
} from './istio-helpers.js';

const NS = 'e2e-policies';
const LEGACY = `legacy.${NS}.svc.cluster.local`;
const APP = `legacy-app.${NS}.svc.cluster.local`;
const subsetCluster = (subset: string) => `outbound|8080|${subset}|${APP}`;
const ISSUER = 'https://issuer.e2e-policies.test';
const JWT_AUTHN = 'envoy.filters.http.jwt_authn';

/** An inline JWKS with one fresh RSA key (istiod checks it; no JWKS fetch needed). */
function jwks(): string {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'e2e', alg: 'RS256', use: 'sig' }] });
}
const JWT_RULES = [{ issuer: ISSUER, jwks: jwks(), forwardOriginalToken: true }];

let harnessState: string;
let istioEnv: Record<string, string>;

const istio = (kind: string, name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'networking.istio.io/v1',
  kind,
  metadata: { name, namespace: NS },
  spec,
});

/** What the user applies (docs/user-policies.md, README "Your own Istio policies"). */
function userObjects(): Record<string, unknown>[] {
  const dest = (subset: string, weight?: number) => ({
    destination: { host: 'legacy-app', subset },
    ...(weight !== undefined ? { weight } : {}),
  });
  return [
    // caller side: endpoint policy toward the wpgw pods, no tls
    istio('DestinationRule', 'legacy-callers', {
      host: LEGACY,
      trafficPolicy: { connectionPool: { tcp: { maxConnections: 500 } } },
    }),
    istio('DestinationRule', 'legacy-app', {
      host: 'legacy-app',
      trafficPolicy: { outlierDetection: { consecutive5xxErrors: 7, interval: '10s', baseEjectionTime: '30s' } },
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    }),
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'legacy-deny', namespace: NS },
      spec: {
        selector: { matchLabels: { app: 'legacy' } },
        action: 'DENY',
        rules: [{ from: [{ source: { principals: [`cluster.local/ns/${NS}/sa/frontend`] } }] }],
      },
    },
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'RequestAuthentication',
      metadata: { name: 'legacy-jwt', namespace: NS },
      spec: { selector: { matchLabels: { app: 'legacy' } }, jwtRules: JWT_RULES },
    },
    istio('VirtualService', 'legacy-routes', {
      http: [
        {
          name: 'abort',
          match: [{ headers: { 'x-fault': { exact: 'abort' } } }],
          fault: { abort: { httpStatus: 418, percentage: { value: 100 } } },
          route: [dest('v1')],
        },
        {
          name: 'canary',
          route: [dest('v1', 90), dest('v2', 10)],
          timeout: '7s',
          retries: { attempts: 4, perTryTimeout: '2s', retryOn: '5xx,connect-failure' },
        },
      ],
    }),
  ];
}

function v2Deployment(): Record<string, unknown> {
  const d = windowsDeployment('legacy-v2', NS, 'example.com:80', 1) as any;
  const labels = { app: 'legacy', version: 'v2' };
  return {
    ...d,
    spec: {
      ...d.spec,
      selector: { matchLabels: labels },
      template: { ...d.spec.template, metadata: { ...d.spec.template.metadata, labels } },
    },
  };
}

const podsOf = (selector: string) =>
  list<any>(['pods', '-n', NS, '-l', selector]).filter((p) => !p.metadata.deletionTimestamp && p.status?.podIP);

/** Dumps a proxy's xDS until `ready` holds; returns the last dump either way (a failure shows what Envoy got). */
async function dump(selector: string, type: 'router' | 'sidecar', ready: (d: XdsDump) => boolean): Promise<XdsDump> {
  let last: XdsDump | undefined;
  await eventually(
    `xDS of ${selector} converged`,
    () => {
      last = xdsDump(istioEnv.ISTIO_XDSDUMP!, istioEnv.ISTIO_XDS_ADDRESS!, proxyForPod(podsOf(selector)[0], type));
      return ready(last);
    },
    120_000,
  ).catch(() => undefined);
  if (!last) throw new Error(`no xDS for ${selector}`);
  return last;
}

let gw: XdsDump;
let frontend: XdsDump;
let inboundPort: number;
const ips: Record<string, string[]> = {};

beforeAll(async () => {
  harnessState = path.dirname(env().kubeconfig);
  run('bash', [path.join(ISTIO_DIR, 'build.sh')], { timeoutMs: 45 * 60_000 });
  run('bash', [path.join(ISTIO_DIR, 'start.sh'), harnessState]);
  istioEnv = readJson(path.join(harnessState, 'istio-env.json'));
  kubectl(['delete', 'namespace', NS, '--ignore-not-found', '--wait=true']);
  apply([
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: NS, labels: { 'wpgw.io/inject': 'enabled', 'istio-injection': 'enabled' } },
    },
  ]);
  await eventually(
    `Service wpgw in ${NS} with a ClusterIP`,
    () => list<any>(['services', '-n', NS]).find((s) => s.metadata.name === 'wpgw')?.spec?.clusterIP,
  );
  await eventually(`default ServiceAccount in ${NS}`, () =>
    list<any>(['serviceaccounts', '-n', NS]).some((s) => s.metadata.name === 'default'),
  );
  apply([
    windowsDeployment('legacy', NS, 'example.com:80', 2, { version: 'v1' }),
    v2Deployment(),
    appService('legacy', NS),
    ...meshApp('frontend', NS, 8000),
  ]);
  apply(userObjects());
  ips.v1 = (
    await eventually(
      '2 legacy v1 pods',
      () => (podsOf('app=legacy,version=v1').length === 2 ? podsOf('app=legacy,version=v1') : undefined),
      120_000,
    )
  )
    .map((p) => p.status.podIP)
    .sort();
  ips.v2 = (
    await eventually(
      '1 legacy v2 pod',
      () => (podsOf('app=legacy,version=v2').length === 1 ? podsOf('app=legacy,version=v2') : undefined),
      120_000,
    )
  ).map((p) => p.status.podIP);
  ips.gw = (
    await eventually(
      '2 wpgw pods',
      () => (podsOf(`wpgw.io/gateway=${NS}`).length === 2 ? podsOf(`wpgw.io/gateway=${NS}`) : undefined),
      120_000,
    )
  )
    .map((p) => p.status.podIP)
    .sort();
  await eventually('1 frontend pod', () => podsOf('app=frontend').length === 1, 120_000);
  inboundPort = await eventually('legacy re-pointed', () => {
    const s = list<any>(['services', '-n', NS]).find((x) => x.metadata.name === 'legacy');
    return s?.spec?.selector?.['wpgw.io/gateway'] === NS ? (s.spec.ports[0].targetPort as number) : undefined;
  });
  // the controller hands the root over to the user's delegate
  await eventually(
    'wpgw-in-legacy delegates to legacy-routes',
    () =>
      list<any>(['virtualservices.networking.istio.io', '-n', NS]).find((v) => v.metadata.name === 'wpgw-in-legacy')
        ?.spec?.http?.[0]?.delegate?.name === 'legacy-routes',
  );
  await eventually(
    'no wpgw DestinationRule for legacy (the gateway rolled out with the tlsMode label)',
    () =>
      !list<any>(['destinationrules.networking.istio.io', '-n', NS, '-l', 'app.kubernetes.io/managed-by=wpgw']).some(
        (d) => d.spec.host === LEGACY,
      ),
  );
  gw = await dump(
    `wpgw.io/gateway=${NS}`,
    'router',
    (d) =>
      endpointAddresses(d, subsetCluster('v2')).length === 1 &&
      endpointAddresses(d, subsetCluster('v1')).length === 2 &&
      !!listenerOnPort(d, inboundPort) &&
      httpFilters(listenerOnPort(d, inboundPort), JWT_AUTHN).length > 0,
  );
  frontend = await dump(
    'app=frontend',
    'sidecar',
    (d) =>
      endpointAddresses(d, `outbound|8080||${LEGACY}`).length === 2 &&
      cluster(d, `outbound|8080||${LEGACY}`)?.circuit_breakers?.thresholds?.[0]?.max_connections === 500,
  );
}, 60 * 60_000);

afterAll(() => {
  kubectl(['delete', 'namespace', NS, '--ignore-not-found', '--wait=false']);
  if (harnessState) run('bash', [path.join(ISTIO_DIR, 'stop.sh'), harnessState]);
});

describe("users' own Istio policies in the xDS a real istiod serves", () => {
  printTestTimes();

  it('item 5: with a user DestinationRule for legacy (no tls) the caller still sends Istio mTLS to every wpgw pod', () => {
    const managedForLegacy = list<any>([
      'destinationrules.networking.istio.io',
      '-n',
      NS,
      '-l',
      'app.kubernetes.io/managed-by=wpgw',
    ]).filter((d) => d.spec.host === LEGACY);
    expect(managedForLegacy, 'wpgw writes no DR for legacy').toEqual([]);
    const name = `outbound|8080||${LEGACY}`;
    const c = cluster(frontend, name);
    expect(c, name).toBeDefined();
    // the user's DR is in force (its connection pool) ...
    expect(c.circuit_breakers?.thresholds?.[0]?.max_connections, JSON.stringify(c.circuit_breakers)).toBe(500);
    // ... and auto-mTLS still picks Istio mTLS: the wpgw pods carry tlsMode=istio
    const auto = autoMtls(frontend, name);
    expect(auto.explicit).toBeUndefined();
    expect(isIstioMutualUpstream(auto.socket), JSON.stringify(c.transport_socket_matches)).toBe(true);
    expect(auto.endpointsMarked).toBe(true);
    expect(endpointAddresses(frontend, name)).toEqual(ips.gw!.map((ip) => `${ip}:${inboundPort}`).sort());
  });

  it("items 1-2: the wpgw's inbound routes are the user's: 90/10 subsets, timeout, retries, fault", () => {
    const l = listenerOnPort(gw, inboundPort);
    expect(l, `wpgw listener ${inboundPort}`).toBeDefined();
    const vhost = selectVhost(routeConfig(gw, rdsNames(l)[0]!), LEGACY);
    const routes: any[] = vhost?.routes ?? [];
    // The delegate's last route catches everything on that port, so istiod drops wpgw's plain
    // route after it (analyzer IST0130, a warning); it only serves while a deleted delegate is
    // still named by the root, or for requests a delegate without a catch-all does not match.
    expect(routes.map((r) => r.name)).toEqual(['user-8080-abort', 'user-8080-canary']);
    const [abort, canary] = routes;
    expect(abort.route.cluster).toBe(subsetCluster('v1'));
    expect(JSON.stringify(abort.typed_per_filter_config?.['envoy.filters.http.fault'] ?? {})).toContain('418');
    const weights = Object.fromEntries(canary.route.weighted_clusters.clusters.map((w: any) => [w.name, w.weight]));
    expect(weights).toEqual({ [subsetCluster('v1')]: 90, [subsetCluster('v2')]: 10 });
    expect(canary.route.timeout).toBe('7s');
    expect(canary.route.retry_policy.num_retries).toBe(4);
    expect(canary.route.retry_policy.retry_on).toContain('5xx');
  });

  it("items 1-2: the subsets select the Windows pods by their labels; the user's outlier detection acts on them; plaintext", () => {
    expect(endpointAddresses(gw, subsetCluster('v1'))).toEqual(ips.v1!.map((ip) => `${ip}:80`));
    expect(endpointAddresses(gw, subsetCluster('v2'))).toEqual(ips.v2!.map((ip) => `${ip}:80`));
    for (const name of [subsetCluster('v1'), subsetCluster('v2'), `outbound|8080||${APP}`]) {
      const c = cluster(gw, name);
      expect(c, name).toBeDefined();
      // wpgw's DR (tls DISABLE, workloadSelector: the wpgw pods) wins over the user's for the
      // wpgw whatever their creation order (an earlier run, without the selector, got the user's)
      expect(
        isPlaintextCluster(c),
        `${name}: ${JSON.stringify(c.transport_socket ?? c.transport_socket_matches)}`,
      ).toBe(true);
      expect(c.outlier_detection?.consecutive_5xx, name).toBe(7);
    }
  });

  it("item 3: the user's DENY for the legacy pods is in the wpgw's RBAC, scoped to legacy's listener port (not the egress port)", () => {
    const egressPort = list<any>(['services', '-n', NS])
      .find((x) => x.metadata.name === 'wpgw')
      .spec.ports.find((p: any) => p.port === 80).targetPort as number;
    for (const port of [inboundPort, egressPort]) {
      const configs = httpRbac(listenerOnPort(gw, port));
      const deny = configs.filter((c: any) => c.rules?.action === 'DENY');
      expect(
        deny.length,
        `listener ${port}: a DENY RBAC filter (Istio puts every policy on every chain)`,
      ).toBeGreaterThan(0);
      const text = JSON.stringify(deny);
      expect(text).toContain(`spiffe://cluster.local/ns/${NS}/sa/frontend`);
      // the DENY's permissions name only legacy's listener port
      const ports = collect(deny, 'destination_port').sort();
      expect(ports, `listener ${port}: DENY scoped by destination_port`).toEqual([inboundPort]);
    }
  });

  it("item 4: the user's RequestAuthentication for the legacy pods is carried to the wpgw pods: its issuer and keys in the jwt_authn filter on legacy's listener; its reach onto the egress reported", async () => {
    const carried = list<any>(['requestauthentications.security.istio.io', '-n', NS]).find(
      (r) => r.metadata.name === 'wpgw-authn-legacy-jwt',
    );
    expect(carried, 'wpgw-authn-legacy-jwt').toBeDefined();
    expect(carried.metadata.labels?.['app.kubernetes.io/managed-by']).toBe('wpgw');
    expect(carried.spec.selector.matchLabels).toEqual({ 'wpgw.io/gateway': NS });
    expect(carried.spec.jwtRules).toEqual(JWT_RULES);
    const filters = httpFilters(listenerOnPort(gw, inboundPort), JWT_AUTHN);
    expect(filters.length, `jwt_authn on listener ${inboundPort}`).toBeGreaterThan(0);
    const providers = Object.values(filters[0].providers ?? {}) as any[];
    const provider = providers.find((p) => p.issuer === ISSUER);
    expect(provider, JSON.stringify(filters[0].providers)).toBeDefined();
    // the keys are the user's (inline JWKS), not a fetched or placeholder set
    expect(JSON.parse(provider.local_jwks.inline_string).keys[0].n).toBe(JSON.parse(JWT_RULES[0]!.jwks).keys[0].n);
    expect(provider.forward).toBe(true);
    // a gateway applies it on every listener, the Windows egress too: said on the user's object
    const ev = await eventually('Event on RequestAuthentication/legacy-jwt', () =>
      list<any>(['events', '-n', NS, '--field-selector', 'involvedObject.name=legacy-jwt']).find((e) =>
        e.message.includes('RequestAuthenticationOnEgress'),
      ),
    );
    expect(ev.type).toBe('Warning');
    expect(ev.involvedObject).toMatchObject({ apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication' });
  });

  it('conflicts: a second delegate for legacy is reported as a Warning Event on that VirtualService, in wpgw status and in wpgw_controller_conflicts', async () => {
    apply([
      istio('VirtualService', 'legacy-routes-2', { http: [{ route: [{ destination: { host: 'legacy-app' } }] }] }),
    ]);
    const ev = await eventually('Event on VirtualService/legacy-routes-2', () =>
      list<any>(['events', '-n', NS, '--field-selector', 'involvedObject.name=legacy-routes-2']).find((e) =>
        e.message.includes('MultipleDelegates'),
      ),
    );
    expect(ev.type).toBe('Warning');
    expect(ev.involvedObject).toMatchObject({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService' });
    expect(ev.involvedObject.uid).toBeTruthy();
    expect(ev.message).toContain('legacy-routes');
    // wpgw status (reading the namespace's Istio objects itself) and the controller's metric
    const status = spawnSync(
      process.execPath,
      [path.resolve(import.meta.dirname, '../../dist/src/cli.js'), 'status', '-n', NS],
      { env: { ...process.env, KUBECONFIG: env().kubeconfig }, encoding: 'utf8' },
    );
    expect(status.status, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/VirtualService\/legacy-routes-2: MultipleDelegates: /);
    expect(
      await controllerMetric('wpgw_controller_conflicts', (l) => l.includes(`namespace="${NS}"`)),
    ).toBeGreaterThanOrEqual(1);
    kubectl(['delete', 'virtualservices.networking.istio.io', 'legacy-routes-2', '-n', NS]);
  });

  it("Istio's analyzers find no error in the namespace (wpgw's objects and the user's)", () => {
    const out = analyzeCluster(istioEnv.ISTIO_ANALYZE!, env().kubeconfig);
    const ours = out.messages.filter((m) => (m.origin ?? '').includes(` ${NS}/`));
    console.log(`[e2e] analyzer findings in ${NS}:\n  ${ours.map((m) => m.text).join('\n  ')}`);
    // The gateway pods keep "image: auto" (no injector here): IST0147 on them is a test artifact.
    const errors = ours.filter(
      (m) => m.level === 'Error' && !(m.code === 'IST0147' && (m.origin ?? '').startsWith(`Pod ${NS}/wpgw-`)),
    );
    expect(errors.map((m) => m.text)).toEqual([]);
  });
});
