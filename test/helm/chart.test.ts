// charts/wpgw rendered by a real helm (test/helm/build.sh) and compared with manifests/ rendered by
// a real kustomize (kubectl kustomize, test/harness/build.sh). Its own vitest project ("helm"),
// run by .ci/run after both builds: `npm test` stays offline and never needs them, and here a
// missing binary fails every test, naming the build to run, instead of skipping.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments, parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { isIstioRevision } from '../../src/core/desired/gateway.js';
import { CONTROLLER_NODE_FLAGS, SERVER_ENTRY } from '../../src/node-flags.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CHART = join(ROOT, 'charts/wpgw');
const HELM = join(ROOT, 'test/helm/bin/helm');
const KUBECTL = join(ROOT, 'test/harness/bin/kubectl');
const NS = 'wpgw-system';

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: any;
}

function exec(bin: string, args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(bin, args, {
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      ...process.env,
      HELM_CACHE_HOME: join(ROOT, 'test/helm/bin/.cache'),
      HELM_CONFIG_HOME: join(ROOT, 'test/helm/bin/.config'),
      HELM_DATA_HOME: join(ROOT, 'test/helm/bin/.data'),
    },
  });
  return { code: r.status ?? -1, out: r.stdout ?? '', err: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

function docs(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => Boolean(o));
}

/** helm template with these --set / -f arguments; throws with helm's message on failure. */
function template(...args: string[]): Obj[] {
  const r = exec(HELM, ['template', 'wpgw', CHART, '--namespace', NS, ...args]);
  if (r.code !== 0) throw new Error(`helm template ${args.join(' ')} failed (${r.code}): ${r.err}`);
  return docs(r.out);
}

/** NOTES.txt as `helm install` prints it (client-side dry run: no cluster). */
function notes(...args: string[]): string {
  const r = exec(HELM, [
    'install',
    'wpgw',
    CHART,
    '--namespace',
    NS,
    '--dry-run=client',
    '--hide-notes=false',
    ...args,
  ]);
  if (r.code !== 0) throw new Error(`helm install --dry-run=client failed (${r.code}): ${r.err}`);
  return r.out.slice(r.out.indexOf('NOTES:'));
}

const key = (o: Obj) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const find = (objs: Obj[], kind: string, name: string) => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`${kind}/${name} not rendered; got ${objs.map(key).join(', ')}`);
  return o;
};
const podSpec = (objs: Obj[], name: string) => find(objs, 'Deployment', name).spec.template.spec;
const container = (objs: Obj[], name: string) => podSpec(objs, name).containers[0];

/** Helm's release bookkeeping labels: identify the release, change with every chart version, select nothing. */
const HELM_LABELS = ['helm.sh/chart', 'app.kubernetes.io/instance', 'app.kubernetes.io/version'];

function withoutHelmLabels(o: Obj): Obj {
  const labels = Object.fromEntries(Object.entries(o.metadata.labels ?? {}).filter(([k]) => !HELM_LABELS.includes(k)));
  return { ...o, metadata: { ...o.metadata, labels } };
}

beforeAll(() => {
  for (const [bin, build] of [
    [HELM, 'test/helm/build.sh'],
    [KUBECTL, 'test/harness/build.sh'],
  ]) {
    if (!existsSync(bin!)) throw new Error(`${bin} is missing: run bash ${build} first (.ci/run does)`);
  }
});

describe('helm lint --strict', () => {
  const files = readdirSync(join(CHART, 'ci')).filter((f) => f.endsWith('-values.yaml'));
  it('has several ci values files', () => expect(files.length).toBeGreaterThanOrEqual(3));
  it.each(files)('ci/%s lints clean', (file) => {
    const r = exec(HELM, ['lint', '--strict', CHART, '-f', join(CHART, 'ci', file)]);
    expect(r.code, r.out + r.err).toBe(0);
  });
});

describe('defaults: the same objects as manifests/', () => {
  it('renders object for object what kubectl kustomize renders from manifests/', () => {
    const k = exec(KUBECTL, ['kustomize', join(ROOT, 'manifests')]);
    expect(k.code, k.err).toBe(0);
    // Differences by design: (1) the Namespace: Helm keeps its release record in the namespace it
    // installs into, so a chart cannot own that namespace (helm install --create-namespace, then
    // the label command NOTES prints); (2) Helm's bookkeeping labels; (3) the image tag: the
    // kustomization pins wpgw:latest, the chart its appVersion (checked below); (4) hooks: the
    // `helm test` pod (tests.enabled; Helm creates it only for `helm test`) and the pre-delete
    // uninstall hook (kustomize users run `wpgw uninstall` themselves; checked below).
    const want = docs(k.out).filter((o) => o.kind !== 'Namespace');
    const got = template('--set', 'image.tag=latest')
      .filter((o) => !isHook(o))
      .map(withoutHelmLabels);
    expect(got.map(key).sort()).toEqual(want.map(key).sort());
    const byKey = new Map(got.map((o) => [key(o), o]));
    for (const w of want) expect(byKey.get(key(w)), key(w)).toEqual(w);
  });

  it('every object carries the Helm labels; the image defaults to the appVersion, which is package.json version', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { version: string; appVersion: string };
    expect(chart).toMatchObject({ version: pkg.version, appVersion: pkg.version });
    const objs = template();
    for (const o of objs)
      expect(o.metadata.labels, key(o)).toMatchObject({
        'app.kubernetes.io/version': pkg.version,
        'app.kubernetes.io/instance': 'wpgw',
      });
    expect(container(objs, 'wpgw-webhook').image).toBe(`wpgw:${pkg.version}`);
    expect(container(objs, 'wpgw-controller').image).toBe(`wpgw:${pkg.version}`);
    // The controller runs the image's entry with its own V8 flags; the webhook keeps the ENTRYPOINT.
    expect(container(objs, 'wpgw-controller').command).toEqual(['node', ...CONTROLLER_NODE_FLAGS, SERVER_ENTRY]);
    expect(container(objs, 'wpgw-webhook').command).toBeUndefined();
  });

  it('the release namespace replaces wpgw-system everywhere it is named', () => {
    const r = exec(HELM, ['template', 'wpgw', CHART, '--namespace', 'platform-wpgw']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).not.toContain('wpgw-system');
    const objs = docs(r.out);
    const mwc = find(objs, 'MutatingWebhookConfiguration', 'wpgw');
    for (const w of mwc.webhooks) {
      expect(w.clientConfig.service.namespace).toBe('platform-wpgw');
      expect(w.namespaceSelector.matchExpressions[0].values).toEqual(['platform-wpgw', 'kube-system']);
    }
    expect(container(objs, 'wpgw-webhook').args).toContain('--tls-secret=platform-wpgw/wpgw-webhook-tls');
  });
});

describe('values', () => {
  it("gatewayEgress.clusterCIDRs and istio.namespace become the controller's --cluster-cidrs and --istio-namespace; unset, neither", () => {
    const objs = template(
      '--set',
      'gatewayEgress.clusterCIDRs={10.244.0.0/16,fd00:10::/56}',
      '--set',
      'istio.namespace=aks-istio-system',
    );
    expect(container(objs, 'wpgw-controller').args).toEqual(
      expect.arrayContaining(['--cluster-cidrs=10.244.0.0/16,fd00:10::/56', '--istio-namespace=aks-istio-system']),
    );
    const plain = container(template(), 'wpgw-controller').args as string[];
    expect(plain.filter((a) => a.startsWith('--cluster-cidrs') || a.startsWith('--istio-namespace'))).toEqual([]);
  });

  it("istio.rootNamespace becomes the controller's --istio-root-namespace; unset, none; a bad name is refused by the schema", () => {
    const set = template('--set', 'istio.rootNamespace=aks-istio-system');
    expect(container(set, 'wpgw-controller').args).toContain('--istio-root-namespace=aks-istio-system');
    expect(
      (container(template(), 'wpgw-controller').args as string[]).filter((a) => a.startsWith('--istio-root-namespace')),
    ).toEqual([]);
    expect(() => template('--set', 'istio.rootNamespace=Not_A_Name')).toThrow(/rootNamespace/);
  });

  it('gatewayEgress.discoverNodeRanges=false: the controller gets --discover-node-ranges=false and its ClusterRole no nodes rule; by default both are there', () => {
    const nodesRule = (objs: Obj[]) =>
      (find(objs, 'ClusterRole', 'wpgw-controller').rules as Array<{ resources: string[]; verbs: string[] }>).filter(
        (r) => r.resources.includes('nodes'),
      );
    const off = template('--set', 'gatewayEgress.discoverNodeRanges=false');
    expect(container(off, 'wpgw-controller').args).toContain('--discover-node-ranges=false');
    expect(nodesRule(off)).toEqual([]);
    const on = template();
    expect(
      (container(on, 'wpgw-controller').args as string[]).filter((a) => a.startsWith('--discover-node-ranges')),
    ).toEqual([]);
    expect(nodesRule(on)).toEqual([{ apiGroups: [''], resources: ['nodes'], verbs: ['list', 'watch'] }]);
  });

  it('ci/aks-values.yaml: registry, pull secrets, revision, replicas, extra namespace selector, commonLabels', () => {
    const objs = template('-f', join(CHART, 'ci/aks-values.yaml'));
    for (const name of ['wpgw-webhook', 'wpgw-controller']) {
      expect(container(objs, name).image).toBe('myregistry.azurecr.io/platform/wpgw:0.1.0');
      expect(podSpec(objs, name).imagePullSecrets).toEqual([{ name: 'acr-pull' }]);
      // commonLabels on metadata only: selectors and pod templates are immutable or restart pods.
      const d = find(objs, 'Deployment', name);
      expect(d.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': name });
      expect(d.spec.template.metadata.labels).toEqual({ 'app.kubernetes.io/name': name });
    }
    for (const o of objs) expect(o.metadata.labels?.team, key(o)).toBe('platform');
    expect(container(objs, 'wpgw-controller').args).toContain('--istio-revision=asm-1-26');
    expect(find(objs, 'Deployment', 'wpgw-webhook').spec.replicas).toBe(3);
    expect(find(objs, 'Deployment', 'wpgw-webhook').spec.template.metadata.annotations).toEqual({
      'cluster-autoscaler.kubernetes.io/safe-to-evict': 'true',
    });
    expect(container(objs, 'wpgw-controller').resources.limits.memory).toBe('2Gi');
    const mwc = find(objs, 'MutatingWebhookConfiguration', 'wpgw');
    for (const w of mwc.webhooks) {
      expect(w.timeoutSeconds).toBe(10);
      // Merged: the opt-in label and the exclusions stay, the user's expression is added.
      expect(w.namespaceSelector).toEqual({
        matchLabels: { 'wpgw.io/inject': 'enabled' },
        matchExpressions: [
          { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [NS, 'kube-system'] },
          { key: 'environment', operator: 'In', values: ['prod', 'staging'] },
        ],
      });
    }
    expect(mwc.metadata.annotations).toEqual({ 'admissions.enforcer/disabled': 'true' });
  });

  it('ci/hostnetwork-values.yaml: the host network, Ignore, no PDBs, scheduling knobs', () => {
    const objs = template('-f', join(CHART, 'ci/hostnetwork-values.yaml'));
    const pod = podSpec(objs, 'wpgw-webhook');
    expect(pod).toMatchObject({ hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet' });
    expect(pod).not.toHaveProperty('priorityClassName');
    expect(pod).not.toHaveProperty('topologySpreadConstraints');
    expect(pod.tolerations).toEqual([{ key: 'dedicated', operator: 'Equal', value: 'system', effect: 'NoSchedule' }]);
    expect(container(objs, 'wpgw-webhook').args).toContain('--port=18443');
    expect(container(objs, 'wpgw-webhook').ports).toEqual([
      { name: 'https', containerPort: 18443 },
      { name: 'http-metrics', containerPort: 9090 },
    ]);
    expect(find(objs, 'Service', 'wpgw-webhook').spec.ports).toEqual([
      { name: 'https', port: 443, targetPort: 'https' },
    ]);
    expect(objs.filter((o) => o.kind === 'PodDisruptionBudget')).toEqual([]);
    expect(podSpec(objs, 'wpgw-controller').priorityClassName).toBe('system-cluster-critical');
    expect(podSpec(objs, 'wpgw-controller').affinity.nodeAffinity).toBeDefined();
    const mwc = find(objs, 'MutatingWebhookConfiguration', 'wpgw');
    expect(mwc.metadata).not.toHaveProperty('annotations');
    const pods = mwc.webhooks.find((w: any) => w.name === 'pods.wpgw.io');
    const services = mwc.webhooks.find((w: any) => w.name === 'services.wpgw.io');
    for (const w of [pods, services]) expect(w.failurePolicy).toBe('Ignore');
    expect(pods.objectSelector.matchLabels).toEqual({ team: 'windows' });
    // The built-in exclusions stay: the gateway's own pods must come up with the webhook down.
    expect(pods.objectSelector.matchExpressions).toContainEqual({ key: 'wpgw.io/gateway', operator: 'DoesNotExist' });
    expect(services.objectSelector.matchExpressions).toEqual([
      { key: 'app.kubernetes.io/managed-by', operator: 'NotIn', values: ['wpgw'] },
    ]);
    // Host networking is forbidden under restricted (and baseline) Pod Security: NOTES says so.
    const text = notes('-f', join(CHART, 'ci/hostnetwork-values.yaml'));
    expect(text).toContain('pod-security.kubernetes.io/enforce=privileged');
    expect(text).not.toContain('pod-security.kubernetes.io/enforce=restricted');
  });

  it('commonLabels cannot take the label the webhook checks before patching its caBundle', () => {
    const objs = template(
      '--set',
      'commonLabels.app\\.kubernetes\\.io/managed-by=Helm',
      '--set',
      'commonLabels.wpgw\\.io/ca-bundle=none',
    );
    expect(find(objs, 'MutatingWebhookConfiguration', 'wpgw').metadata.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'wpgw',
      'wpgw.io/ca-bundle': 'webhook',
    });
  });

  it('an image digest is written with @; pull secrets may be names or {name}', () => {
    const objs = template(
      '--set',
      'image.tag=sha256:0123abcd',
      '--set',
      'image.pullSecrets[0].name=one',
      '--set',
      'image.pullPolicy=Always',
    );
    expect(container(objs, 'wpgw-webhook').image).toBe('wpgw@sha256:0123abcd');
    expect(container(objs, 'wpgw-webhook').imagePullPolicy).toBe('Always');
    expect(podSpec(objs, 'wpgw-webhook').imagePullSecrets).toEqual([{ name: 'one' }]);
  });
});

const isHook = (o: Obj) => o.metadata.annotations?.['helm.sh/hook'] !== undefined;
/** The uninstall hook's objects (the `helm test` hooks are checked in their own describe). */
const isPreDelete = (o: Obj) => o.metadata.annotations?.['helm.sh/hook'] === 'pre-delete';

describe('uninstall hook', () => {
  it("pre-delete: wpgw uninstall --keep-install in a Job of the chart's image, with its own read-mostly RBAC", () => {
    const objs = template(
      '--set',
      'image.registry=registry.example.com',
      '--set',
      'image.tag=1.2.3',
      '--set',
      'uninstallHook.timeout=20m',
    );
    const hooks = objs.filter(isPreDelete);
    expect(hooks.map(key).sort()).toEqual(
      [
        'ClusterRole//wpgw-uninstall',
        'ClusterRoleBinding//wpgw-uninstall',
        `Job/${NS}/wpgw-uninstall`,
        `Role/${NS}/wpgw-uninstall`,
        `RoleBinding/${NS}/wpgw-uninstall`,
        `ServiceAccount/${NS}/wpgw-uninstall`,
      ].sort(),
    );
    for (const h of hooks) {
      expect(h.metadata.annotations!['helm.sh/hook'], key(h)).toBe('pre-delete');
      // RBAC first, then the Job; kept when the Job fails, so its log says why.
      expect(h.metadata.annotations!['helm.sh/hook-weight'], key(h)).toBe(h.kind === 'Job' ? '0' : '-10');
      expect(h.metadata.annotations!['helm.sh/hook-delete-policy'], key(h)).toBe('before-hook-creation,hook-succeeded');
    }
    const job = find(objs, 'Job', 'wpgw-uninstall');
    const pod = job.spec.template.spec;
    expect(pod.serviceAccountName).toBe('wpgw-uninstall');
    expect(pod.restartPolicy).toBe('Never');
    expect(job.spec.backoffLimit).toBe(0);
    expect(pod.containers[0].image).toBe('registry.example.com/wpgw:1.2.3');
    expect(pod.containers[0].args).toEqual([
      'uninstall',
      '--keep-install',
      '--require-controller',
      `--install-namespace=${NS}`,
      '--timeout=20m',
    ]);
    // Restricted Pod Security, like the controller.
    expect(pod.securityContext).toEqual(podSpec(objs, 'wpgw-controller').securityContext);
    expect(pod.containers[0].securityContext).toEqual(container(objs, 'wpgw-controller').securityContext);
    expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    // Least privilege: reads, plus patching Namespaces (the opt-in label); the Lease by name only.
    const rules = find(objs, 'ClusterRole', 'wpgw-uninstall').rules as Array<{ resources: string[]; verbs: string[] }>;
    const writes = rules.filter((r) => r.verbs.some((v) => !['get', 'list'].includes(v)));
    expect(writes).toEqual([{ apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'patch'] }]);
    expect(rules.flatMap((r) => r.verbs)).not.toContain('watch');
    expect(find(objs, 'Role', 'wpgw-uninstall').rules).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['wpgw-controller'], verbs: ['get'] },
    ]);
    expect(find(objs, 'ClusterRoleBinding', 'wpgw-uninstall').subjects).toEqual([
      { kind: 'ServiceAccount', name: 'wpgw-uninstall', namespace: NS },
    ]);
  });

  it('uninstallHook.enabled=false renders no hook; a bad timeout is rejected by the schema', () => {
    expect(template('--set', 'uninstallHook.enabled=false').filter(isPreDelete)).toEqual([]);
    const r = exec(HELM, ['template', 'wpgw', CHART, '--namespace', NS, '--set', 'uninstallHook.timeout=soon']);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/uninstallHook.*timeout|timeout.*pattern/i);
  });
});

describe('tls.mode', () => {
  const webhookRbac = (objs: Obj[]) => ({
    mwcRule: find(objs, 'ClusterRole', 'wpgw-webhook').rules.some((r: any) =>
      r.resources.includes('mutatingwebhookconfigurations'),
    ),
    secretRole: objs.some((o) => o.kind === 'Role' && o.metadata.name === 'wpgw-webhook'),
    secretRoleBinding: objs.some((o) => o.kind === 'RoleBinding' && o.metadata.name === 'wpgw-webhook'),
  });
  const fileArgs = ['--tls-cert-file=/etc/wpgw/tls/tls.crt', '--tls-key-file=/etc/wpgw/tls/tls.key'];

  it('self (default): the Secret and caBundle-patch RBAC, no mounted certificate', () => {
    const objs = template();
    expect(webhookRbac(objs)).toEqual({ mwcRule: true, secretRole: true, secretRoleBinding: true });
    expect(podSpec(objs, 'wpgw-webhook')).not.toHaveProperty('volumes');
    expect(container(objs, 'wpgw-webhook').args).toContain('--webhook-config=wpgw');
    expect(objs.filter((o) => o.apiVersion.startsWith('cert-manager.io'))).toEqual([]);
    expect(find(objs, 'MutatingWebhookConfiguration', 'wpgw').metadata.labels).toMatchObject({
      'wpgw.io/ca-bundle': 'webhook',
    });
  });

  it('certManager without an issuer: a self-signed CA chain, the serving Certificate, inject-ca-from, files, no patch RBAC', () => {
    const objs = template('--set', 'tls.mode=certManager');
    expect(
      objs
        .filter((o) => o.apiVersion === 'cert-manager.io/v1')
        .map((o) => `${o.kind}/${o.metadata.name}`)
        .sort(),
    ).toEqual(['Certificate/wpgw-ca', 'Certificate/wpgw-webhook-cert', 'Issuer/wpgw-ca', 'Issuer/wpgw-selfsigned']);
    const cert = find(objs, 'Certificate', 'wpgw-webhook-cert');
    expect(cert.spec).toMatchObject({
      secretName: 'wpgw-webhook-cert',
      issuerRef: { name: 'wpgw-ca', kind: 'Issuer' },
    });
    // The name the API server dials for a service reference is <service>.<namespace>.svc.
    expect(cert.spec.dnsNames).toContain(`wpgw-webhook.${NS}.svc`);
    expect(find(objs, 'Certificate', 'wpgw-ca').spec).toMatchObject({ isCA: true, secretName: 'wpgw-ca' });
    expect(find(objs, 'Issuer', 'wpgw-ca').spec).toEqual({ ca: { secretName: 'wpgw-ca' } });
    const mwc = find(objs, 'MutatingWebhookConfiguration', 'wpgw');
    expect(mwc.metadata.annotations).toMatchObject({ 'cert-manager.io/inject-ca-from': `${NS}/wpgw-webhook-cert` });
    for (const w of mwc.webhooks) expect(w.clientConfig).not.toHaveProperty('caBundle');
    expect(webhookRbac(objs)).toEqual({ mwcRule: false, secretRole: false, secretRoleBinding: false });
    // Nobody but the cainjector writes the caBundle: the webhook is not told it may.
    expect(mwc.metadata.labels).not.toHaveProperty('wpgw.io/ca-bundle');
    const args = container(objs, 'wpgw-webhook').args as string[];
    expect(args).toEqual(expect.arrayContaining(fileArgs));
    expect(args.filter((a) => a.startsWith('--tls-secret') || a.startsWith('--webhook-config'))).toEqual([]);
    expect(podSpec(objs, 'wpgw-webhook').volumes).toEqual([
      { name: 'tls', secret: { secretName: 'wpgw-webhook-cert' } },
    ]);
    expect(container(objs, 'wpgw-webhook').volumeMounts).toEqual([
      { name: 'tls', mountPath: '/etc/wpgw/tls', readOnly: true },
    ]);
    expect(notes('--set', 'tls.mode=certManager')).toContain("by cert-manager's cainjector");
  });

  it('certManager with an issuerRef: only the serving Certificate, from that issuer', () => {
    const objs = template('-f', join(CHART, 'ci/cert-manager-values.yaml'));
    expect(
      objs.filter((o) => o.apiVersion === 'cert-manager.io/v1').map((o) => `${o.kind}/${o.metadata.name}`),
    ).toEqual(['Certificate/wpgw-webhook-cert']);
    expect(find(objs, 'Certificate', 'wpgw-webhook-cert').spec.issuerRef).toEqual({
      kind: 'ClusterIssuer',
      name: 'corp-ca',
      group: 'cert-manager.io',
    });
    // Port 10250 in the pod network (private clusters): the Service still answers on 443.
    expect(container(objs, 'wpgw-webhook').ports).toEqual([
      { name: 'https', containerPort: 10250 },
      { name: 'http-metrics', containerPort: 9090 },
    ]);
    expect(find(objs, 'Service', 'wpgw-webhook').spec.ports).toEqual([
      { name: 'https', port: 443, targetPort: 'https' },
    ]);
    expect(() =>
      template('-f', join(CHART, 'ci/cert-manager-values.yaml'), '--set', 'webhook.hostNetwork=true'),
    ).toThrow(/kubelet/);
  });

  it('secret: the given Secret mounted, the given caBundle in both webhooks, no patch RBAC, no caBundle ignore in NOTES', () => {
    const objs = template('-f', join(CHART, 'ci/secret-values.yaml'));
    expect(podSpec(objs, 'wpgw-webhook').volumes).toEqual([{ name: 'tls', secret: { secretName: 'wpgw-serving' } }]);
    expect(container(objs, 'wpgw-webhook').args).toEqual(expect.arrayContaining(fileArgs));
    for (const w of find(objs, 'MutatingWebhookConfiguration', 'wpgw').webhooks)
      expect(w.clientConfig.caBundle).toBe('LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==');
    expect(webhookRbac(objs)).toEqual({ mwcRule: false, secretRole: false, secretRoleBinding: false });
    expect(objs.filter((o) => o.apiVersion.startsWith('cert-manager.io'))).toEqual([]);
    expect(notes('-f', join(CHART, 'ci/secret-values.yaml'))).not.toContain('clientConfig.caBundle');
  });

  it('secret without a name or caBundle, and an unknown mode, are rejected', () => {
    expect(() => template('--set', 'tls.mode=secret', '--set', 'tls.secret.caBundle=QUJD')).toThrow(/name/);
    expect(() => template('--set', 'tls.mode=secret', '--set', 'tls.secret.name=x')).toThrow(/caBundle/);
    expect(() => template('--set', 'tls.mode=helm')).toThrow(/mode/);
  });
});

describe('values.schema.json', () => {
  it.each([
    ['a misspelt key', ['--set', 'webhook.replica=3'], /replica/],
    ['a misspelt section', ['--set', 'webhoook.replicas=3'], /webhoook/],
    ['failurePolicy in the wrong case', ['--set', 'webhook.failurePolicy=fail'], /failurePolicy/],
    ['a port out of range', ['--set', 'webhook.port=70000'], /port/],
    ['both PDB fields', ['--set', 'webhook.pdb.maxUnavailable=1'], /pdb/],
    ['an invalid revision', ['--set', 'istio.revision=ASM_1'], /revision/],
    ['a misspelt monitoring key', ['--set', 'metrics.serviceMonitor.enable=true'], /enable/],
    ['a bad scrape interval', ['--set', 'metrics.podMonitor.interval=often'], /interval/],
    ['a misspelt networkPolicy key', ['--set', 'networkPolicy.enable=true'], /enable/],
  ])('rejects %s', (_what, args, message) => {
    expect(() => template(...(args as string[]))).toThrow(message as RegExp);
  });

  it('accepts anything under global (parent charts)', () => {
    expect(() =>
      template('--set', 'global.imageRegistry=example.com', '--set', 'global.anything.nested=1'),
    ).not.toThrow();
  });

  it("istio.revision's pattern accepts exactly what the controller's --istio-revision accepts", () => {
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
    const { pattern, maxLength } = schema.properties.istio.properties.revision;
    const schemaAccepts = (s: string) => s.length <= maxLength && new RegExp(pattern).test(s);
    for (const s of [
      'asm-1-26',
      'canary',
      '1-30',
      'a',
      'x'.repeat(63),
      'x'.repeat(64),
      'ASM',
      'a_b',
      '-a',
      'a-',
      'a.b',
    ]) {
      expect(schemaAccepts(s), s).toBe(isIstioRevision(s));
    }
    expect(schemaAccepts('')).toBe(true); // empty: no revision
  });
});

describe('NOTES.txt', () => {
  it('prints the opt-in command, the namespace label command and the GitOps ignoreDifferences', () => {
    const text = notes();
    expect(text).toContain('kubectl label namespace <namespace> wpgw.io/inject=enabled');
    expect(text).toContain(`kubectl label namespace ${NS} pod-security.kubernetes.io/enforce=restricted`);
    expect(text).toContain('.webhooks[]?.clientConfig.caBundle');
    expect(text).toContain('.spec.selector');
    expect(text).not.toContain('WARNING');
    expect(text).toContain('set istio.revision');
  });

  it('warns when failurePolicy Fail runs on fewer than 2 replicas, and when it is Ignore', () => {
    expect(notes('--set', 'webhook.replicas=1')).toMatch(
      /WARNING: webhook.failurePolicy is Fail with 1 webhook replica/,
    );
    expect(notes('--set', 'webhook.failurePolicy=Ignore')).toMatch(/WARNING: webhook.failurePolicy is Ignore/);
    expect(notes('--set', 'istio.revision=asm-1-26')).toContain('injected by Istio revision "asm-1-26"');
    // A PDB no eviction can satisfy blocks node drains.
    expect(notes('--set', 'webhook.replicas=1')).toMatch(
      /webhook.pdb.minAvailable \(1\) is not below webhook.replicas \(1\)/,
    );
    expect(notes('--set', 'webhook.replicas=3', '--set', 'webhook.pdb.minAvailable=3')).toContain('node drains block');
    expect(notes('--set', 'webhook.replicas=3')).not.toContain('node drains block');
  });
});

describe('monitoring', () => {
  const monitoringKinds = (objs: Obj[]) =>
    objs
      .filter(
        (o) =>
          o.apiVersion.startsWith('monitoring.coreos.com/') ||
          o.metadata.name === 'wpgw-dashboard' ||
          o.metadata.name.endsWith('-metrics'),
      )
      .map(key);

  it('by default: the http-metrics port on both pods, no Prometheus Operator or Grafana object', () => {
    const objs = template();
    for (const [name, https] of [
      ['wpgw-webhook', 8443],
      ['wpgw-controller', 9443],
    ] as const) {
      expect(container(objs, name).ports).toEqual([
        { name: 'https', containerPort: https },
        { name: 'http-metrics', containerPort: 9090 },
      ]);
      expect(container(objs, name).args).toContain('--metrics-port=9090');
    }
    // The API server's Service stays HTTPS only.
    expect(find(objs, 'Service', 'wpgw-webhook').spec.ports).toEqual([
      { name: 'https', port: 443, targetPort: 'https' },
    ]);
    expect(monitoringKinds(objs)).toEqual([]);
  });

  it('metrics.port 0 drops the port and the flag; a monitor without it, or a port taken by https, is refused', () => {
    const objs = template('--set', 'metrics.port=0');
    expect(container(objs, 'wpgw-webhook').ports).toEqual([{ name: 'https', containerPort: 8443 }]);
    expect((container(objs, 'wpgw-controller').args as string[]).some((a) => a.startsWith('--metrics-port'))).toBe(
      false,
    );
    expect(() => template('--set', 'metrics.port=0', '--set', 'metrics.podMonitor.enabled=true')).toThrow(
      /set metrics.port/,
    );
    expect(() => template('--set', 'metrics.port=8443')).toThrow(/must differ from webhook.port/);
  });

  it('serviceMonitor: a metrics Service per component and a ServiceMonitor with the labels asked for', () => {
    const objs = template(
      '--set',
      'metrics.serviceMonitor.enabled=true',
      '--set',
      'metrics.serviceMonitor.labels.release=kube-prometheus-stack',
      '--set',
      'metrics.serviceMonitor.interval=30s',
    );
    const sm = find(objs, 'ServiceMonitor', 'wpgw');
    expect(sm.metadata.labels?.release).toBe('kube-prometheus-stack');
    expect(sm.spec).toEqual({
      namespaceSelector: { matchNames: [NS] },
      selector: { matchLabels: { 'app.kubernetes.io/part-of': 'wpgw', 'app.kubernetes.io/component': 'metrics' } },
      endpoints: [{ port: 'http-metrics', path: '/metrics', interval: '30s' }],
    });
    for (const name of ['wpgw-webhook', 'wpgw-controller']) {
      const svc = find(objs, 'Service', `${name}-metrics`);
      expect(svc.spec).toEqual({
        selector: { 'app.kubernetes.io/name': name },
        ports: [{ name: 'http-metrics', port: 9090, targetPort: 'http-metrics' }],
      });
      // The ServiceMonitor's selector really selects it.
      for (const [k, v] of Object.entries(sm.spec.selector.matchLabels))
        expect(svc.metadata.labels?.[k], `${name}-metrics ${k}`).toBe(v);
    }
    expect(objs.filter((o) => o.kind === 'PodMonitor')).toEqual([]);
  });

  it('podMonitor: both components by pod label, on http-metrics', () => {
    const objs = template(
      '--set',
      'metrics.podMonitor.enabled=true',
      '--set',
      'metrics.podMonitor.labels.team=platform',
    );
    const pm = find(objs, 'PodMonitor', 'wpgw');
    expect(pm.metadata.labels?.team).toBe('platform');
    expect(pm.spec.selector.matchExpressions).toEqual([
      { key: 'app.kubernetes.io/name', operator: 'In', values: ['wpgw-webhook', 'wpgw-controller'] },
    ]);
    expect(pm.spec.podMetricsEndpoints).toEqual([{ port: 'http-metrics', path: '/metrics' }]);
  });

  it('prometheusRule: the alerts, with the thresholds from values and $labels left for Prometheus', () => {
    const objs = template(
      '--set',
      'metrics.prometheusRule.enabled=true',
      '--set',
      'metrics.prometheusRule.certificateExpiryDays=10',
      '--set',
      'metrics.prometheusRule.labels.role=alert-rules',
    );
    const rule = find(objs, 'PrometheusRule', 'wpgw');
    expect(rule.metadata.labels?.role).toBe('alert-rules');
    const alerts = Object.fromEntries(rule.spec.groups.flatMap((g: any) => g.rules).map((r: any) => [r.alert, r]));
    expect(alerts.WpgwWebhookCallsFailing.expr).toBe(
      'sum by (name) (rate(apiserver_admission_webhook_rejection_count{name=~"(pods|services)[.]wpgw[.]io", error_type="calling_webhook_error"}[5m])) > 0',
    );
    expect(alerts.WpgwWebhookCertificateExpiring.expr).toMatch(/< 864000$/);
    expect(alerts.WpgwWebhookCallsFailing.annotations.summary).toContain('{{ $labels.name }}');
    expect(alerts.WpgwControllerNoLeader.labels.severity).toBe('critical');
  });

  it('dashboard: valid Grafana JSON in a ConfigMap labelled for the sidecar, in the namespace asked for', () => {
    const objs = template(
      '--set',
      'metrics.dashboard.enabled=true',
      '--set',
      'metrics.dashboard.namespace=monitoring',
      '--set',
      'metrics.dashboard.annotations.grafana_folder=wpgw',
    );
    const cm = find(objs, 'ConfigMap', 'wpgw-dashboard');
    expect(cm.metadata).toMatchObject({
      namespace: 'monitoring',
      labels: { grafana_dashboard: '1' },
      annotations: { grafana_folder: 'wpgw' },
    });
    const dash = JSON.parse(cm.data['wpgw.json']);
    expect(dash.uid).toBe('wpgw-overview');
    expect(dash.panels.length).toBeGreaterThanOrEqual(10);
    for (const p of dash.panels) expect(p.targets.length, p.title).toBeGreaterThan(0);
  });
});

describe('networkPolicy', () => {
  it('off by default; on: ingress only to the webhook port and the metrics port, egress to DNS and the API server', () => {
    expect(template().filter((o) => o.kind === 'NetworkPolicy')).toEqual([]);
    const objs = template(
      '--set',
      'networkPolicy.enabled=true',
      '--set',
      'webhook.port=10250',
      '--set',
      'networkPolicy.apiServer.to[0].ipBlock.cidr=10.0.0.1/32',
    );
    const webhook = find(objs, 'NetworkPolicy', 'wpgw-webhook');
    expect(webhook.spec.podSelector).toEqual({ matchLabels: { 'app.kubernetes.io/name': 'wpgw-webhook' } });
    expect(webhook.spec.ingress).toEqual([
      { ports: [{ port: 10250, protocol: 'TCP' }] },
      { ports: [{ port: 9090, protocol: 'TCP' }] },
    ]);
    expect(webhook.spec.egress).toEqual([
      {
        ports: [
          { port: 53, protocol: 'UDP' },
          { port: 53, protocol: 'TCP' },
        ],
      },
      {
        ports: [
          { port: 443, protocol: 'TCP' },
          { port: 6443, protocol: 'TCP' },
        ],
        to: [{ ipBlock: { cidr: '10.0.0.1/32' } }],
      },
    ]);
    // The controller serves nothing the API server calls: only the metrics port is open.
    expect(find(objs, 'NetworkPolicy', 'wpgw-controller').spec.ingress).toEqual([
      { ports: [{ port: 9090, protocol: 'TCP' }] },
    ]);
  });
});

describe('helm test', () => {
  it('a read-only `wpgw check` pod and its RBAC, all test hooks; none with tests.enabled=false', () => {
    const objs = template();
    const hooks = objs
      .filter((o) => o.metadata.annotations?.['helm.sh/hook'] === 'test')
      .map(key)
      .sort();
    expect(hooks).toEqual([
      'ClusterRole//wpgw-check',
      'ClusterRoleBinding//wpgw-check',
      `Pod/${NS}/wpgw-check`,
      `ServiceAccount/${NS}/wpgw-check`,
    ]);
    const pod = find(objs, 'Pod', 'wpgw-check');
    expect(pod.spec.containers[0].args).toEqual(['check', `--wpgw-namespace=${NS}`, '--no-dry-run', '--wait=2m']);
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true });
    const rules = find(objs, 'ClusterRole', 'wpgw-check').rules as Array<{ resources: string[]; verbs: string[] }>;
    // Read-only but for access reviews: no secrets, no writes.
    expect(rules.flatMap((r) => r.resources)).not.toContain('secrets');
    for (const r of rules)
      expect(
        r.verbs.filter((v) => !['get', 'list'].includes(v)),
        r.resources.join(),
      ).toEqual(r.resources.includes('subjectaccessreviews') ? ['create'] : []);
    expect(
      template('--set', 'tests.enabled=false').filter((o) => o.metadata.annotations?.['helm.sh/hook'] === 'test'),
    ).toEqual([]);
  });

  it('NOTES name wpgw check and helm test', () => {
    const text = notes();
    expect(text).toContain(`wpgw check --wpgw-namespace ${NS}`);
    expect(text).toContain(`helm test wpgw -n ${NS}`);
  });
});
