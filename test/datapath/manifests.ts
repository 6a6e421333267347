// What the data-path suite applies: plain manifests, as a user writes them. The runner label opts
// a namespace into the pod runner (runner.ts); everything else is ordinary Kubernetes and Istio.
import { deployment } from '../lib/manifests.js';
import { RUNNER_LABEL } from './runner.js';

export const ISTIO_NS = 'istio-system';
export const SHOP = 'shop';
export const DEPOT = 'depot';
export const SALES = 'sales';
/** Mesh apps of sales besides orders (flow 10: mesh-wide outbound); invoices is created mid-test. */
export const PAYMENTS = 'payments';
export const INVOICES = 'invoices';
export const EXTERNAL = 'external';
export const INGRESS_HOST = 'shop.example.com';
export const ECHO_IMAGE = 'wpgw.test/echo:1';
/** Names only the harness's DNS stand-in knows (the "internet" of the suite). */
export const EXT_HOST = 'ext.test';
export const WRONG_HOST = 'wrong.test';
export const TCP_HOST = 'ext-tcp.test';

export const SHOP_OUTBOUND = [
  `orders.${SALES}.svc.cluster.local:9080`,
  `${EXT_HOST}:80+tls`,
  `${WRONG_HOST}:80+tls`,
  `tls://${EXT_HOST}:8443`,
  `tcp://${TCP_HOST}:9000`,
].join('\n');
/** A wildcard http destination: dnsConfig mode only (a hosts file cannot hold one). */
export const WILDCARD = '*.zone.test';
export const DEPOT_OUTBOUND = [`orders.${SALES}.svc.cluster.local:9080`, `${WILDCARD}:80`].join('\n');

type Obj = Record<string, unknown>;

export function namespace(name: string, labels: Record<string, string>): Obj {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { [RUNNER_LABEL]: 'enabled', ...labels } } };
}

const echo = (env: Record<string, string>, port: number, extra: Obj = {}) => ({
  name: 'app',
  image: ECHO_IMAGE,
  env: [
    ...Object.entries(env).map(([name, value]) => ({ name, value })),
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
  ],
  ports: [{ name: 'http', containerPort: port }],
  ...extra,
});

/** A Windows app (the echo server stands in for it) that calls its declared destinations. */
export function windowsApp(
  name: string,
  ns: string,
  outbound: string,
  resolver?: 'dnsConfig',
  labels: Record<string, string> = {},
): Obj[] {
  return [
    deployment(name, ns, {
      labels,
      annotations: { 'wpgw.io/outbound': outbound, ...(resolver ? { 'wpgw.io/resolver': resolver } : {}) },
      spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [echo({ ECHO_HTTP: '8080' }, 8080)] },
    }),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: ns },
      spec: { selector: { app: name }, ports: [{ name: 'http', port: 8080, targetPort: 'http' }] },
    },
  ];
}

/**
 * A second version of a Windows app: its own Deployment `<app>-<version>` whose pods the app's
 * Service also selects (app=<app>), told apart by `version` (a user's DestinationRule subsets).
 */
export function windowsVersion(app: string, ns: string, version: string): Obj {
  const labels = { app, version };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: `${app}-${version}`, namespace: ns },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [echo({ ECHO_HTTP: '8080' }, 8080)] },
      },
    },
  };
}

/**
 * What a user applies for the wpgw hop of `app` (docs/user-policies.md): a DestinationRule for
 * `<app>-app` with subsets v1/v2, and a delegate VirtualService: header x-dp-fault=abort gets an
 * injected 418, x-dp-retry=please goes to v1 with 2 retries on 5xx, everything else 90/10 v1/v2.
 * And a caller-side DestinationRule for `<app>` without tls (it must not cost callers their mTLS).
 */
export function userPolicies(app: string, ns: string): Obj[] {
  const dest = (subset: string) => ({ destination: { host: `${app}-app`, subset } });
  return [
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: `${app}-app`, namespace: ns },
      spec: { host: `${app}-app`, subsets: ['v1', 'v2'].map((v) => ({ name: v, labels: { version: v } })) },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: `${app}-routes`, namespace: ns },
      spec: {
        http: [
          {
            name: 'abort',
            match: [{ headers: { 'x-dp-fault': { exact: 'abort' } } }],
            fault: { abort: { httpStatus: 418, percentage: { value: 100 } } },
            route: [dest('v1')],
          },
          {
            name: 'retry',
            match: [{ headers: { 'x-dp-retry': { exact: 'please' } } }],
            retries: { attempts: 2, retryOn: '5xx' },
            route: [dest('v1')],
          },
          {
            name: 'canary',
            route: [
              { ...dest('v1'), weight: 90 },
              { ...dest('v2'), weight: 10 },
            ],
          },
        ],
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: `${app}-callers`, namespace: ns },
      spec: {
        host: `${app}.${ns}.svc.cluster.local`,
        trafficPolicy: { connectionPool: { http: { maxRequestsPerConnection: 100 } } },
      },
    },
  ];
}

/**
 * The user's DENY policy for Service `app` (targetRefs, as for a waypoint: Istio itself ignores it
 * for a classic gateway; wpgw carries it), and a second Service `<app>-canary` in front of the v2
 * pods only, which the policy must not touch.
 */
export function denyPolicy(app: string, ns: string, principal: string): Obj[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `${app}-canary`, namespace: ns },
      spec: { selector: { app, version: 'v2' }, ports: [{ name: 'http', port: 8080, targetPort: 'http' }] },
    },
    servicePolicy(app, ns, 'DENY', principal),
  ];
}
/** A mesh-wide default-deny: an ALLOW without rules in Istio's root namespace (binds every workload). */
export function meshDefaultDeny(): Obj {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'allow-nothing', namespace: ISTIO_NS },
    spec: {},
  };
}
/**
 * An ALLOW or DENY for one Service and one caller principal (targetRefs, which sidecar-mode Istio
 * ignores for a gateway: wpgw carries it), named `<app>-allow` / `<app>-deny`.
 */
export function servicePolicy(app: string, ns: string, action: 'ALLOW' | 'DENY', principal: string): Obj {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: `${app}-${action.toLowerCase()}`, namespace: ns },
    spec: {
      targetRefs: [{ kind: 'Service', group: '', name: app }],
      action,
      rules: [{ from: [{ source: { principals: [principal] } }] }],
    },
  };
}
/** A Windows app with no list at all: mesh-wide outbound (wpgw.io/mesh-outbound) gives it its Services. */
export function meshWindowsApp(name: string, ns: string, scope: string): Obj[] {
  return [
    deployment(name, ns, {
      annotations: { 'wpgw.io/mesh-outbound': scope },
      spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [echo({ ECHO_HTTP: '8080' }, 8080)] },
    }),
  ];
}

/** A Linux pod of an opted-in namespace that is not managed by wpgw (no sidecar either). */
export function unmanagedLinuxPod(name: string, ns: string): Obj {
  return deployment(name, ns, {
    spec: { nodeSelector: { 'kubernetes.io/os': 'linux' }, containers: [echo({ ECHO_HTTP: '8080' }, 8080)] },
  });
}

/**
 * The mesh app: Istio's injector adds its sidecar. No iptables capture here (captureMode NONE):
 * the Sidecar resource gives it an inbound listener on 9080 (the Service's targetPort) in front of
 * the app on 127.0.0.1:9081, and an outbound listener on 127.0.0.1:8080 for shop's Services.
 */
export function meshApp(name = 'orders'): Obj[] {
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: SALES } },
    deployment(name, SALES, {
      labels: { version: 'v1' },
      annotations: { 'sidecar.istio.io/interceptionMode': 'NONE' },
      spec: {
        serviceAccountName: name,
        nodeSelector: { 'kubernetes.io/os': 'linux' },
        containers: [echo({ ECHO_HTTP: '127.0.0.1:9081' }, 9081)],
      },
    }),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: SALES },
      spec: { selector: { app: name }, ports: [{ name: 'http', port: 9080, targetPort: 9080 }] },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Sidecar',
      metadata: { name, namespace: SALES },
      spec: {
        workloadSelector: { labels: { app: name } },
        ingress: [
          {
            port: { number: 9080, protocol: 'HTTP', name: 'http' },
            defaultEndpoint: '127.0.0.1:9081',
            captureMode: 'NONE',
          },
        ],
        egress: [
          {
            port: { number: 8080, protocol: 'HTTP', name: 'http' },
            bind: '127.0.0.1',
            captureMode: 'NONE',
            hosts: [`${SHOP}/*`],
          },
        ],
      },
    },
  ];
}

/**
 * A second mesh app (`sales/client`, injected sidecar) that only calls: the client of the data-path
 * benchmark. captureMode NONE as orders: the caller dials its sidecar's outbound listeners,
 * 127.0.0.1:9080 for sales' Services (orders: sidecar -> sidecar) and 127.0.0.1:8080 for shop's
 * (legacy: sidecar -> wpgw). Its own echo server listens on 127.0.0.1:9081, unused.
 */
export function meshClient(): Obj[] {
  const egress = (port: number, ns: string) => ({
    port: { number: port, protocol: 'HTTP', name: `http-${port}` },
    bind: '127.0.0.1',
    captureMode: 'NONE',
    hosts: [`${ns}/*`],
  });
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'client', namespace: SALES } },
    deployment('client', SALES, {
      annotations: { 'sidecar.istio.io/interceptionMode': 'NONE' },
      spec: {
        serviceAccountName: 'client',
        nodeSelector: { 'kubernetes.io/os': 'linux' },
        containers: [echo({ ECHO_HTTP: '127.0.0.1:9081' }, 9081)],
      },
    }),
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Sidecar',
      metadata: { name: 'client', namespace: SALES },
      spec: { workloadSelector: { labels: { app: 'client' } }, egress: [egress(9080, SALES), egress(8080, SHOP)] },
    },
  ];
}

/** Istio's ingress gateway (as the istio/gateway chart deploys it: injected with the gateway template). */
export function ingressGateway(): Obj[] {
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'istio-ingressgateway', namespace: ISTIO_NS } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'istio-ingressgateway', namespace: ISTIO_NS },
      spec: {
        replicas: 1,
        selector: { matchLabels: { istio: 'ingressgateway' } },
        template: {
          metadata: {
            labels: { app: 'istio-ingressgateway', istio: 'ingressgateway', 'sidecar.istio.io/inject': 'true' },
            annotations: { 'inject.istio.io/templates': 'gateway' },
          },
          spec: {
            serviceAccountName: 'istio-ingressgateway',
            nodeSelector: { 'kubernetes.io/os': 'linux' },
            containers: [{ name: 'istio-proxy', image: 'auto', ports: [{ name: 'http2', containerPort: 8080 }] }],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'istio-ingressgateway', namespace: ISTIO_NS },
      spec: { selector: { istio: 'ingressgateway' }, ports: [{ name: 'http2', port: 80, targetPort: 8080 }] },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: 'shop-ingress', namespace: ISTIO_NS },
      spec: {
        selector: { istio: 'ingressgateway' },
        servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: [INGRESS_HOST] }],
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'shop-legacy', namespace: ISTIO_NS },
      spec: {
        hosts: [INGRESS_HOST],
        gateways: ['shop-ingress'],
        http: [{ route: [{ destination: { host: `legacy.${SHOP}.svc.cluster.local`, port: { number: 8080 } } }] }],
      },
    },
  ];
}

/** The external host: TLS on 443 and 8443 with a certificate for EXT_HOST only, raw TCP on 9000, HTTP on 80. */
export function externalHost(certPem: string, keyPem: string): Obj[] {
  const fromSecret = (name: string, key: string) => ({ name, valueFrom: { secretKeyRef: { name: 'ext-tls', key } } });
  return [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'ext-tls', namespace: EXTERNAL },
      type: 'kubernetes.io/tls',
      stringData: { 'tls.crt': certPem, 'tls.key': keyPem },
    },
    deployment('ext', EXTERNAL, {
      spec: {
        nodeSelector: { 'kubernetes.io/os': 'linux' },
        containers: [
          {
            ...echo({ ECHO_TLS: '443,8443', ECHO_TCP: '9000' }, 443),
            env: [
              { name: 'ECHO_TLS', value: '443,8443' },
              { name: 'ECHO_TCP', value: '9000' },
              { name: 'ECHO_HTTP', value: '80' },
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              fromSecret('ECHO_TLS_CERT_PEM', 'tls.crt'),
              fromSecret('ECHO_TLS_KEY_PEM', 'tls.key'),
            ],
          },
        ],
      },
    }),
  ];
}
