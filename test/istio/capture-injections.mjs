// capture-injections.mjs <harness-state-dir> <out-dir>: golden fixtures of istiod's real sidecar
// injection, for the unit tests of src/core/istio-uninject.ts.
//
// Needs a harness cluster (test/harness/up.sh) and istiod with its injector on
// (ISTIO_INJECTOR=1 test/istio/start.sh); capture-injections.sh runs all three. For each case:
//   1. `kubectl create --dry-run=server -o json`: the pod as the API server hands it to mutating
//      admission (defaulted, with the managedFields of its creator), nothing stored;
//   2. POST that pod in an AdmissionReview to istiod's /inject (the URL in istio-env.json);
//   3. apply the returned JSON patch (fast-json-patch, validated) and write
//      <out-dir>/<case>.json = { note, case, injectorPath, values, original, injected }.
// Cases cover classic and native sidecars, HTTP/TCP/gRPC probes and lifecycle hooks, prometheus
// merge with and without the app's own annotations, holdApplicationUntilProxyStarts, a network
// from the injection path, and (after rewriting the injector's values file, which istiod watches)
// Istio CNI mode with global.imagePullSecrets.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import jsonpatch from 'fast-json-patch';
import { parseDocument } from 'yaml';

// Older sidecar templates (test/istio/legacy-templates, from Istio's release tags) run in this
// istiod as a chart of their own: `legacy-chart <chart> <template> <dest>` copies the chart with
// that template and the values keys only the old templates read (istio_cni, 1.22's defaults);
// `<state> <out> legacy <version> <classic|native>` then captures LEGACY_CASES of that mode.
if (process.argv[2] === 'legacy-chart') {
  const [src, template, dest] = process.argv.slice(3);
  cpSync(src, dest, { recursive: true });
  cpSync(template, join(dest, 'files', 'injection-template.yaml'));
  const valuesFile = join(dest, 'values.yaml');
  const doc = parseDocument(readFileSync(valuesFile, 'utf8'));
  doc.setIn(['_internal_defaults_do_not_set', 'istio_cni'], { enabled: false, chained: true, provider: 'default' });
  writeFileSync(valuesFile, doc.toString());
  process.exit(0);
}

const [stateDir, outDir, stage, legacyVersion, legacyMode] = process.argv.slice(2);
if (!stateDir || !outDir || (stage !== undefined && (stage !== 'legacy' || !legacyVersion || !['classic', 'native'].includes(legacyMode)))) {
  process.stderr.write('usage: capture-injections.mjs <harness-state-dir> <out-dir> [legacy <version> <classic|native>]\n       capture-injections.mjs legacy-chart <chart-dir> <template> <dest>\n');
  process.exit(2);
}
const harness = JSON.parse(readFileSync(join(stateDir, 'env.json'), 'utf8'));
const istio = JSON.parse(readFileSync(join(stateDir, 'istio-env.json'), 'utf8'));
if (istio.ISTIO_INJECTOR !== 'enabled') throw new Error('istiod runs without its injector (start it with ISTIO_INJECTOR=1)');
const NS = 'shop';
const ca = readFileSync(istio.ISTIO_WEBHOOK_CA);
const kubectl = (args, input) => execFileSync(harness.HARNESS_KUBECTL, args, { input, encoding: 'utf8', env: { ...process.env, KUBECONFIG: harness.KUBECONFIG } });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const WINDOWS = { 'kubernetes.io/os': 'windows' };
const IMAGE = 'mcr.microsoft.com/dotnet/samples:aspnetapp-nanoserver-ltsc2022';

/** A pod as the ReplicaSet controller creates it from a Deployment's template. */
function replicaSetPod(deployment, hash, { labels = {}, annotations = {}, spec }) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `${deployment}-${hash}-`,
      namespace: NS,
      labels: { app: deployment, 'pod-template-hash': hash, ...labels },
      annotations,
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${deployment}-${hash}`, uid: '6f1b7a52-3c1d-4d7e-9a43-0b5c2f9e1a10', controller: true, blockOwnerDeletion: true }],
    },
    spec: { nodeSelector: WINDOWS, ...spec },
  };
}

const probedApp = {
  name: 'app',
  image: IMAGE,
  ports: [{ name: 'http', containerPort: 8080 }, { name: 'grpc', containerPort: 9090 }, { name: 'metrics', containerPort: 9102 }],
  readinessProbe: { httpGet: { path: '/healthz/ready', port: 8080, httpHeaders: [{ name: 'X-Probe', value: 'kubelet' }] }, periodSeconds: 5 },
  livenessProbe: { tcpSocket: { port: 8080 }, initialDelaySeconds: 10, timeoutSeconds: 3 },
  startupProbe: { grpc: { port: 9090 }, failureThreshold: 30, periodSeconds: 2 },
  lifecycle: { preStop: { httpGet: { path: '/drain', port: 8080 } } },
  volumeMounts: [{ name: 'app-config', mountPath: 'C:\\app\\config' }],
};
const sidecarApp = { name: 'log-shipper', image: 'mcr.microsoft.com/windows/nanoserver:ltsc2022', args: ['cmd', '/c', 'ping -t localhost'] };

const CASES = [
  {
    case: 'classic-probes-prometheus',
    about: 'Deployment pod, classic sidecar (sidecar.istio.io/nativeSidecar: "false"), HTTP/TCP/gRPC probes, a preStop hook, the app\'s own prometheus.io/* annotations',
    pod: replicaSetPod('orders-win', '7c9d5f8b6d', {
      labels: { version: 'v2' },
      annotations: { 'sidecar.istio.io/nativeSidecar': 'false', 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9102', 'prometheus.io/path': '/metrics', 'wpgw.io/outbound': 'orders.sales:9080' },
      spec: { containers: [probedApp, sidecarApp], volumes: [{ name: 'app-config', configMap: { name: 'orders-win-config' } }], imagePullSecrets: [{ name: 'regcred' }] },
    }),
  },
  {
    case: 'native-probes-initcontainers',
    about: 'Deployment pod, native sidecar (istio-proxy as a restartPolicy: Always init container; the kwok nodes report kubelet 1.36), an init container of the app\'s own and an app native sidecar with a readiness probe',
    pod: replicaSetPod('orders-win', '5f6d7c8b9a', {
      annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9102' },
      spec: {
        initContainers: [
          { name: 'setup', image: IMAGE, command: ['cmd', '/c', 'echo setup'] },
          { name: 'config-sync', image: IMAGE, restartPolicy: 'Always', readinessProbe: { httpGet: { path: '/ready', port: 8081, scheme: 'HTTPS' } } },
        ],
        containers: [probedApp],
        volumes: [{ name: 'app-config', configMap: { name: 'orders-win-config' } }],
      },
    }),
  },
  {
    case: 'classic-bare-pod-no-prometheus',
    about: 'a bare Pod (no owner), classic sidecar, no prometheus annotations (Istio adds its own three), app.kubernetes.io/name and /version labels, a postStart TCP hook, the user\'s own kubectl.kubernetes.io/default-container',
    pod: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'reports-0',
        namespace: NS,
        labels: { 'app.kubernetes.io/name': 'reports', 'app.kubernetes.io/version': '3.1.0' },
        annotations: { 'sidecar.istio.io/nativeSidecar': 'false', 'kubectl.kubernetes.io/default-container': 'reports' },
      },
      spec: {
        nodeSelector: WINDOWS,
        containers: [
          { name: 'reports', image: IMAGE, ports: [{ containerPort: 80 }], readinessProbe: { httpGet: { path: '/', port: 80 } }, lifecycle: { postStart: { tcpSocket: { port: 80 } } } },
        ],
      },
    },
  },
  {
    case: 'classic-hold-application',
    about: 'classic sidecar with proxy.istio.io/config holdApplicationUntilProxyStarts (istio-proxy first, with a postStart hook), no probes, no volumes of the app',
    pod: replicaSetPod('billing', '6b7c8d9e0f', {
      annotations: { 'sidecar.istio.io/nativeSidecar': 'false', 'proxy.istio.io/config': 'holdApplicationUntilProxyStarts: true\n' },
      spec: { containers: [{ name: 'billing', image: IMAGE, ports: [{ containerPort: 5000 }] }] },
    }),
  },
  {
    case: 'native-network-path',
    about: 'native sidecar, injected through /inject/cluster/Kubernetes/net/network-1 (as a multi-network install does): Istio adds topology.istio.io/network; a startup probe on a named port (Istio resolves it to the number)',
    injectorPath: '/inject/cluster/Kubernetes/net/network-1',
    pod: replicaSetPod('catalog', '8d9e0f1a2b', {
      spec: { containers: [{ name: 'catalog', image: IMAGE, ports: [{ name: 'http', containerPort: 8080 }], startupProbe: { httpGet: { path: '/started', port: 'http' } } }] },
    }),
  },
];

const CNI_CASES = [
  {
    case: 'cni-classic-pull-secrets',
    about: 'Istio CNI on (pilot.cni.enabled: istio-validation instead of istio-init, the traffic.sidecar.istio.io/* annotations) and global.imagePullSecrets [istio-pull]; classic sidecar; the user\'s own regcred and excludeOutboundIPRanges',
    pod: replicaSetPod('orders-win', '9a0b1c2d3e', {
      annotations: { 'sidecar.istio.io/nativeSidecar': 'false', 'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.0.0.1/32', 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9102' },
      spec: { containers: [probedApp], volumes: [{ name: 'app-config', configMap: { name: 'orders-win-config' } }], imagePullSecrets: [{ name: 'regcred' }] },
    }),
  },
  {
    case: 'cni-native',
    about: 'Istio CNI on, native sidecar, global.imagePullSecrets [istio-pull], HTTP and TCP probes',
    pod: replicaSetPod('orders-win', '0b1c2d3e4f', {
      spec: { containers: [{ ...probedApp, startupProbe: undefined, lifecycle: undefined, volumeMounts: undefined }] },
    }),
  },
];

function post(url, body) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', ca, headers: { 'content-type': 'application/json' }, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 300)}`))));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

async function inject(pod, path = '/inject') {
  const url = new URL(istio.ISTIO_INJECT_URL);
  url.pathname = path;
  const review = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '00000000-0000-4000-8000-000000000001',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: NS,
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
      object: pod,
    },
  };
  const r = (await post(url, review)).response;
  if (r?.allowed !== true || !r.patch) throw new Error(`not injected: ${JSON.stringify(r).slice(0, 300)}`);
  const ops = JSON.parse(Buffer.from(r.patch, 'base64').toString('utf8'));
  return jsonpatch.applyPatch(structuredClone(pod), ops, true, false).newDocument;
}

/** The pod as mutating admission receives it: defaulted, with its creator's managedFields. */
function admissionView(pod) {
  const clean = JSON.parse(JSON.stringify(pod)); // drops the undefined fields of spread cases
  return JSON.parse(kubectl(['create', '--dry-run=server', '--show-managed-fields', '-o', 'json', '-f', '-'], JSON.stringify(clean)));
}

const valuesFile = join(stateDir, 'istio', 'root', 'var', 'lib', 'istio', 'inject', 'values');

async function capture(cases, values, suffix = '') {
  for (const c of cases) {
    const original = admissionView(c.pod);
    const injected = await inject(original, c.injectorPath);
    const templates = suffix ? `the chart with the sidecar template of Istio ${legacyVersion} (test/istio/legacy-templates)` : "the chart's templates";
    const note = `Generated by test/istio/capture-injections.sh: istiod (test/istio/bin/pilot-discovery, istio.io/istio release-1.30) serving /inject with ${templates} (test/istio/injector-config.mjs). original = kubectl create --dry-run=server (defaulted, with managedFields); injected = original + istiod's JSON patch. Do not edit by hand; regenerate.`;
    const doc = { note, case: `${c.case}${suffix}`, about: c.about, injectorPath: c.injectorPath ?? '/inject', values, original, injected };
    writeFileSync(join(outDir, `${c.case}${suffix}.json`), `${JSON.stringify(doc, null, 2)}\n`);
    process.stdout.write(`captured ${c.case}: ${injected.spec.containers.length} containers, ${(injected.spec.initContainers ?? []).length} init containers\n`);
  }
}

mkdirSync(outDir, { recursive: true });
kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }));
if (stage === 'legacy') {
  // Istio 1.22's template places the sidecar by ENABLE_NATIVE_SIDECARS alone (capture-injections.sh
  // runs istiod once with it false, once true); later ones honour sidecar.istio.io/nativeSidecar too.
  const cases = CASES.filter((c) => c.case.startsWith(legacyMode === 'classic' ? 'classic-' : 'native-') && !c.injectorPath);
  await capture(cases, `chart defaults, sidecar template of Istio ${legacyVersion}, ENABLE_NATIVE_SIDECARS=${legacyMode === 'native'}`, `@${legacyVersion}`);
  process.exit(0);
}
await capture(CASES, 'chart defaults (test/istio/injector-config.mjs)');

// CNI mode: istiod watches its injection directory and reloads the values file.
const defaults = readFileSync(valuesFile, 'utf8');
try {
  const v = JSON.parse(defaults);
  v.pilot = { ...v.pilot, cni: { ...v.pilot?.cni, enabled: true } };
  v.global = { ...v.global, imagePullSecrets: ['istio-pull'] };
  writeFileSync(valuesFile, JSON.stringify(v, null, 2));
  const probe = admissionView(CNI_CASES[0].pod);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const out = await inject(probe);
    if (out.spec.initContainers?.some((c) => c.name === 'istio-validation')) break;
    if (Date.now() > deadline) throw new Error('istiod did not pick up pilot.cni.enabled within 30 s');
    await sleep(250);
  }
  await capture(CNI_CASES, 'chart defaults + pilot.cni.enabled: true, global.imagePullSecrets: [istio-pull]');
} finally {
  writeFileSync(valuesFile, defaults);
}
