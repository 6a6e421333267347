// `wpgw render` (src/render.ts) over the examples, and the CLI (src/cli.ts) run for real once.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { render, type RenderOptions } from '../../src/render.js';
import { INBOUND_POD_PORTS } from '../../src/names.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SHOP = readFileSync(join(ROOT, 'examples/shop.yaml'), 'utf8');
const DNS_MODE = readFileSync(join(ROOT, 'examples/dns-mode.yaml'), 'utf8');

type Doc = any;

function docs(yaml: string): Doc[] {
  const parsed = parseAllDocuments(yaml);
  for (const d of parsed) expect(d.errors, 'render output must be valid YAML').toEqual([]);
  return parsed.map((d) => d.toJS() as Doc).filter((d) => d !== null);
}

function renderOk(input: string, opts: RenderOptions = {}) {
  const r = render(input, opts);
  expect(r.errors).toEqual([]);
  return { ...r, docs: docs(r.yaml) };
}

function pick(all: Doc[], kind: string, name: string, namespace?: string): Doc {
  const found = all.filter(
    (d) =>
      d.kind === kind && d.metadata?.name === name && (namespace === undefined || d.metadata?.namespace === namespace),
  );
  expect(found, `${kind}/${name}`).toHaveLength(1);
  return found[0];
}

const generated = (all: Doc[]) => all.filter((d) => d.metadata?.labels?.['app.kubernetes.io/managed-by'] === 'wpgw');

describe("render: examples/shop.yaml (the seed's four flows)", () => {
  const input = docs(SHOP);
  const { docs: out, report } = renderOk(SHOP, { gatewayIP: '10.96.100.10' });

  it("prints the input objects first, in order, then the controller's objects", () => {
    expect(out.slice(0, input.length).map((d) => `${d.kind}/${d.metadata.name}`)).toEqual(
      input.map((d) => `${d.kind}/${d.metadata.name}`),
    );
    const rest = out.slice(input.length);
    expect(rest.length).toBeGreaterThan(10);
    expect(generated(out)).toEqual(rest);
  });

  it("the Windows Deployment's pod template points every dialled name at the pinned gateway address", () => {
    const dep = pick(out, 'Deployment', 'legacy');
    const tpl = dep.spec.template;
    expect(tpl.spec.hostAliases).toEqual([
      {
        ip: '10.96.100.10',
        hostnames: ['example.com', 'orders.sales', 'orders.sales.svc', 'orders.sales.svc.cluster.local'],
      },
    ]);
    expect(tpl.metadata.labels).toEqual({
      app: 'legacy',
      'wpgw.io/managed': 'true',
      'sidecar.istio.io/inject': 'false',
    });
    expect(JSON.parse(tpl.metadata.annotations['wpgw.io/status'])).toMatchObject({
      v: 1,
      mode: 'hostAliases',
      gatewayIP: '10.96.100.10',
      outbound: ['orders.sales.svc.cluster.local:9080', 'example.com:80+tls'],
    });
    // Nothing else of the Deployment changed.
    const original = pick(input, 'Deployment', 'legacy');
    const { hostAliases: _h, ...restSpec } = tpl.spec;
    expect(restSpec).toEqual(original.spec.template.spec);
    expect({ ...dep, spec: { ...dep.spec, template: original.spec.template } }).toEqual(original);
    // The address in the pods is the wpgw Service's ClusterIP.
    expect(pick(out, 'Service', 'wpgw', 'shop').spec.clusterIP).toBe('10.96.100.10');
  });

  it('the mesh (Linux) Deployment and the Namespace are untouched', () => {
    expect(pick(out, 'Deployment', 'frontend')).toEqual(pick(input, 'Deployment', 'frontend'));
    expect(pick(out, 'Namespace', 'shop')).toEqual(pick(input, 'Namespace', 'shop'));
  });

  it('the Service fronting the Windows pods is re-pointed at the gateway, and its inbound listener matches', () => {
    const svc = pick(out, 'Service', 'legacy');
    expect(svc.spec.selector).toEqual({ 'wpgw.io/gateway': 'shop' });
    expect(svc.spec.ports).toHaveLength(1);
    const { targetPort, ...port } = svc.spec.ports[0];
    expect(port).toEqual({ name: 'http', port: 8080 });
    expect(targetPort).toBeGreaterThanOrEqual(INBOUND_POD_PORTS.min);
    expect(targetPort).toBeLessThanOrEqual(INBOUND_POD_PORTS.max);
    expect(JSON.parse(svc.metadata.annotations['wpgw.io/original'])).toEqual({
      selector: { app: 'legacy' },
      ports: [{ name: 'http', port: 8080, targetPort: 'http' }],
    });
    expect(svc.metadata.labels).toEqual({
      'wpgw.io/repointed': 'true',
      'experimental.istio.io/disable-gateway-port-translation': 'true',
    });
    // Cross-object consistency: the Gateway listens where the Service sends, legacy-app reaches the pods.
    expect(pick(out, 'Gateway', 'wpgw-in-legacy').spec.servers.map((s: Doc) => s.port.number)).toEqual([targetPort]);
    expect(pick(out, 'Service', 'legacy-app').spec).toEqual({
      type: 'ClusterIP',
      selector: { app: 'legacy' },
      ports: [{ name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' }],
    });
  });

  it("creates the controller's objects for the namespace, consistent with each other", () => {
    const gen = generated(out);
    for (const d of gen) expect(d.metadata.namespace, `${d.kind}/${d.metadata.name}`).toBe('shop');
    const names = gen.map((d) => `${d.kind}/${d.metadata.name}`);
    expect(names).toEqual(
      expect.arrayContaining([
        'ServiceAccount/wpgw',
        'Deployment/wpgw',
        'PodDisruptionBudget/wpgw',
        'Service/wpgw',
        'Gateway/wpgw-out',
        'VirtualService/wpgw-out-example.com-80',
        'VirtualService/wpgw-out-orders.sales.svc.cluster.local-9080',
        'ServiceEntry/wpgw-ext-example.com',
        'DestinationRule/wpgw-tls-example.com',
        'Service/legacy-app',
        'Gateway/wpgw-in-legacy',
        'VirtualService/wpgw-in-legacy',
        'AuthorizationPolicy/wpgw',
        'NetworkPolicy/wpgw-managed-pods',
        'NetworkPolicy/wpgw-gateway',
        'NetworkPolicy/wpgw-gateway-egress',
      ]),
    );
    expect(names.filter((n) => n.endsWith('wpgw-dns'))).toEqual([]); // hostAliases mode needs no DNS server
    const outPorts = pick(out, 'Service', 'wpgw').spec.ports.filter((p: Doc) => p.port !== 15021);
    expect(outPorts.map((p: Doc) => p.port)).toEqual([80, 9080]);
    expect(pick(out, 'Gateway', 'wpgw-out').spec.servers.map((s: Doc) => s.port.number)).toEqual(
      outPorts.map((p: Doc) => p.targetPort),
    );
    expect(report).toContain('Deployment/legacy in namespace shop: injected');
    expect(report).toContain('Service/legacy in namespace shop: repointed');
  });

  it('without --gateway-ip uses the documentation placeholder address, and says so', () => {
    const r = renderOk(SHOP);
    expect(pick(r.docs, 'Deployment', 'legacy').spec.template.spec.hostAliases[0].ip).toBe('192.0.2.1');
    expect(pick(r.docs, 'Service', 'wpgw').spec.clusterIP).toBe('192.0.2.1');
    expect(r.report.some((l) => l.includes('192.0.2.1'))).toBe(true);
  });
});

describe('render: examples/dns-mode.yaml', () => {
  const { docs: out } = renderOk(DNS_MODE, { gatewayIP: '10.96.100.10', dnsIP: '10.96.100.53' });

  it("points the StatefulSet's and the CronJob's pod templates at wpgw-dns", () => {
    const templates = [
      pick(out, 'StatefulSet', 'ledger').spec.template,
      pick(out, 'CronJob', 'nightly-export').spec.jobTemplate.spec.template,
    ];
    for (const t of templates) {
      expect(t.spec.dnsPolicy).toBe('None');
      expect(t.spec.dnsConfig.nameservers).toEqual(['10.96.100.53']);
      expect(t.spec.dnsConfig.searches).toEqual(['billing.svc.cluster.local', 'svc.cluster.local', 'cluster.local']);
      expect(t.spec.hostAliases).toBeUndefined();
      expect(t.metadata.labels['wpgw.io/managed']).toBe('true');
      expect(JSON.parse(t.metadata.annotations['wpgw.io/status']).mode).toBe('dnsConfig');
    }
    // The CronJob's schedule and the rest of its spec are kept.
    expect(pick(out, 'CronJob', 'nightly-export').spec.schedule).toBe('0 2 * * *');
  });

  it('runs the per-namespace DNS server answering the declared names (wildcards by template) with the gateway address', () => {
    for (const kind of ['ConfigMap', 'Deployment', 'Service', 'PodDisruptionBudget'])
      pick(out, kind, 'wpgw-dns', 'billing');
    const corefile: string = pick(out, 'ConfigMap', 'wpgw-dns').data.Corefile;
    const hosts = corefile.split('\n').find((l) => l.trim().startsWith('10.96.100.10 '));
    expect(hosts?.trim().split(/\s+/).slice(1)).toEqual(
      expect.arrayContaining([
        'db.billing-data.svc',
        'db.billing-data.svc.cluster.local',
        'rates',
        'rates.billing.svc.cluster.local',
        'sftp.partner.example',
      ]),
    );
    expect(corefile).toContain('template IN A payments.example.com');
    expect(corefile).toContain('forward . 10.96.0.10');
    // app-side TLS is passed through by SNI, opaque TCP routed by port.
    const servers = pick(out, 'Gateway', 'wpgw-out').spec.servers.map(
      (s: Doc) => `${s.port.name}:${s.port.protocol}:${s.tls?.mode ?? ''}`,
    );
    expect(servers).toEqual([
      'tcp-out-22:TCP:',
      'tls-out-443:TLS:PASSTHROUGH',
      'tcp-out-5432:TCP:',
      'http-out-8080:HTTP:',
    ]);
  });
});

const MULTI_KIND = `
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: win}
handler: runhcs
scheduling:
  nodeSelector: {kubernetes.io/os: windows}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: solo, annotations: {wpgw.io/outbound: "example.com:80"}}
  spec: {runtimeClassName: win, containers: [{name: c, image: x}], hostAliases: [{ip: 172.16.0.9, hostnames: [db.internal]}]}
- apiVersion: apps/v1
  kind: DaemonSet
  metadata: {name: agent}
  spec:
    selector: {matchLabels: {app: agent}}
    template:
      metadata: {labels: {app: agent}, annotations: {wpgw.io/outbound: "orders.sales.svc:9080"}}
      spec: {os: {name: windows}, containers: [{name: c, image: x}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    metadata: {annotations: {wpgw.io/outbound: "tcp://sftp.partner.example:22", wpgw.io/resolver: dnsConfig}}
    spec: {nodeSelector: {kubernetes.io/os: windows}, restartPolicy: Never, containers: [{name: c, image: x}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs, namespace: other}
spec:
  selector: {matchLabels: {app: rs}}
  template:
    metadata: {labels: {app: rs}, annotations: {wpgw.io/inject: "false", wpgw.io/outbound: "example.com:80"}}
    spec: {os: {name: windows}, containers: [{name: c, image: x}]}
`;

describe('render: every workload kind, Lists, RuntimeClasses, several namespaces', () => {
  const { docs: out, report } = renderOk(MULTI_KIND, {
    defaultNamespace: 'apps',
    gatewayIP: '10.96.5.5',
    dnsIP: '10.96.5.53',
  });

  it('injects Pods (Windows by RuntimeClass) and the templates of DaemonSets and Jobs', () => {
    const pod = pick(out, 'Pod', 'solo');
    expect(pod.spec.hostAliases).toEqual([
      { ip: '172.16.0.9', hostnames: ['db.internal'] },
      { ip: '10.96.5.5', hostnames: ['example.com'] },
    ]);
    expect(pick(out, 'DaemonSet', 'agent').spec.template.spec.hostAliases).toEqual([
      { ip: '10.96.5.5', hostnames: ['orders.sales', 'orders.sales.svc', 'orders.sales.svc.cluster.local'] },
    ]);
    expect(pick(out, 'Job', 'once').spec.template.spec.dnsConfig.nameservers).toEqual(['10.96.5.53']);
    // Opted out: untouched, and it routes nothing.
    expect(pick(out, 'ReplicaSet', 'rs').spec.template.metadata.annotations['wpgw.io/status']).toBeUndefined();
    expect(report).toContain('ReplicaSet/rs in namespace other: unchanged (opted_out)');
  });

  it("generates one set of controller objects per namespace, each routing its own pods' destinations", () => {
    const apps = generated(out).filter((d) => d.metadata.namespace === 'apps');
    const other = generated(out).filter((d) => d.metadata.namespace === 'other');
    expect(pick(apps, 'Service', 'wpgw').spec.ports.map((p: Doc) => p.port)).toEqual([22, 80, 9080, 15021]);
    expect(pick(other, 'Service', 'wpgw').spec.ports.map((p: Doc) => p.port)).toEqual([15021]);
    expect(apps.some((d) => d.kind === 'Deployment' && d.metadata.name === 'wpgw-dns')).toBe(true); // the Job chose dnsConfig
    expect(other.some((d) => d.metadata.name === 'wpgw-dns')).toBe(false);
    expect(generated(out)).toHaveLength(apps.length + other.length);
  });
});

describe('render: idempotent', () => {
  const cases: Array<[string, string, RenderOptions]> = [
    ['shop.yaml with --gateway-ip', SHOP, { gatewayIP: '10.96.100.10' }],
    ['shop.yaml with the placeholder address', SHOP, {}],
    ['dns-mode.yaml', DNS_MODE, { gatewayIP: '10.96.100.10', dnsIP: '10.96.100.53' }],
    ['every workload kind', MULTI_KIND, { defaultNamespace: 'apps', gatewayIP: '10.96.5.5' }],
  ];
  it.each(cases)('%s: rendering the rendered output gives byte-identical text', (_name, input, opts) => {
    const once = render(input, opts);
    expect(once.errors).toEqual([]);
    const twice = render(once.yaml, opts);
    expect(twice.errors).toEqual([]);
    expect(twice.yaml).toBe(once.yaml);
    expect(render(input, opts).yaml).toBe(once.yaml); // and deterministic
  });
});

describe('render: invalid input', () => {
  it('a bad outbound entry fails naming the object and the entry, and prints nothing', () => {
    const r = render(SHOP.replace('example.com:80+tls', 'https://example.com:443'));
    expect(r.yaml).toBe('');
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toContain('Deployment/legacy in namespace shop');
    expect(r.errors[0]).toContain('"https://example.com:443"');
    expect(r.errors[0]).toContain('unknown protocol "https"');
  });

  it('every denied object is reported, not only the first', () => {
    const bad = `${SHOP.replace('example.com:80+tls', 'example.com')}
---
apiVersion: v1
kind: Pod
metadata: {name: wild, namespace: shop, annotations: {wpgw.io/outbound: "*.example.com:80"}}
spec: {os: {name: windows}, containers: [{name: c, image: x}]}
`;
    const r = render(bad);
    expect(r.yaml).toBe('');
    expect(r.errors).toHaveLength(2);
    expect(r.errors[0]).toMatch(/^Deployment\/legacy in namespace shop: .*"example\.com"/);
    expect(r.errors[1]).toMatch(/^Pod\/wild in namespace shop: .*"\*\.example\.com:80".*wpgw\.io\/resolver: dnsConfig/);
  });

  it('a Service port the gateway cannot carry fails naming the Service', () => {
    const r = render(
      SHOP.replace(
        '- {name: http, port: 8080, targetPort: http}',
        '- {name: http, port: 8080, targetPort: http}\n  - {name: dns, port: 53, protocol: UDP}',
      ),
    );
    expect(r.yaml).toBe('');
    expect(r.errors).toEqual([expect.stringMatching(/^Service\/legacy in namespace shop: .*53\/UDP/)]);
  });

  it("a YAML syntax error fails with the parser's position", () => {
    const r = render(
      SHOP.replace(
        '  name: legacy\n  namespace: shop\nspec:\n  replicas: 2',
        '  name: legacy\n   namespace: [shop\nspec:\n  replicas: 2',
      ),
    );
    expect(r.yaml).toBe('');
    expect(r.errors.length).toBeGreaterThan(0);
    expect(r.errors[0]).toMatch(/^document \d+: YAML error: .*line \d+/);
  });

  it('a document that is not an object fails', () => {
    const r = render(`${SHOP}\n---\n- just\n- a list\n`);
    expect(r.errors).toEqual([
      `document ${docs(SHOP).length + 1}: not an object (a Kubernetes object or a List of them)`,
    ]);
    expect(r.yaml).toBe('');
  });

  it.each([
    [
      'an annotation that is not a string (a YAML boolean)',
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    wpgw.io/inject: false\nspec:\n  containers: [{name: c}]\n`,
      /^Pod\/p in namespace default: not a valid Pod: metadata.annotations\["wpgw.io\/inject"\] must be a string \(quote it: "false"\)$/,
    ],
    [
      'a pod without containers',
      `apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {os: {name: windows}}\n`,
      /^Pod\/p in namespace default: not a valid Pod: spec.containers must be a list$/,
    ],
    [
      'a Deployment whose template has no containers list',
      `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec: {containers: web}\n`,
      /^Deployment\/d in namespace default: not a valid pod template: spec.containers must be a list$/,
    ],
    [
      'Service ports that are not a list',
      `apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {selector: {app: a}, ports: 80}\n`,
      /^Service\/s in namespace default: not a valid Service: spec.ports must be a list of objects$/,
    ],
    [
      'a name that is not a string',
      `apiVersion: v1\nkind: Service\nmetadata: {name: 12}\n`,
      /^document 1: Service: metadata.name must be a string$/,
    ],
    [
      'recursive YAML anchors',
      `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: &a\n  x: *a\n`,
      /^document 1: a YAML alias refers to the node that contains it/,
    ],
  ])('%s is an error naming the object, never a TypeError', (_what, input, message) => {
    const r = render(input);
    expect(r.yaml).toBe('');
    expect(r.errors).toEqual([expect.stringMatching(message)]);
    expect(r.errors[0]).not.toMatch(/TypeError|Cannot read|undefined/);
  });
});

describe('render: input as people write it', () => {
  it('cluster-scoped objects do not invent a namespace (no gateway for "default")', () => {
    const r = renderOk(
      `apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\nrules: []\n---\napiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: win}\nhandler: runhcs-wcow-process\n`,
    );
    expect(r.docs.map((d) => d.kind)).toEqual(['ClusterRole', 'RuntimeClass']);
    expect(r.report.join('\n')).not.toContain('namespace default');
  });

  it('any *List is unwrapped; items of a typed list take its kind', () => {
    const list = {
      apiVersion: 'apps/v1',
      kind: 'DeploymentList',
      items: [docs(SHOP).find((d) => d.kind === 'Deployment' && d.metadata.name === 'legacy')].map(
        ({ kind: _k, apiVersion: _a, ...rest }) => rest,
      ),
    };
    const r = renderOk(JSON.stringify(list), { gatewayIP: '10.96.100.10' });
    const dep = pick(r.docs, 'Deployment', 'legacy', 'shop');
    expect(dep.apiVersion).toBe('apps/v1');
    expect(dep.spec.template.spec.hostAliases[0].ip).toBe('10.96.100.10');
    expect(generated(r.docs).some((d) => d.kind === 'Gateway')).toBe(true);
  });

  it('an unknown kind with a pod template is named as not examined', () => {
    const r = renderOk(
      `apiVersion: apps.kruise.io/v1alpha1\nkind: CloneSet\nmetadata: {name: web, namespace: shop}\nspec:\n  template:\n    spec:\n      os: {name: windows}\n      containers: [{name: c}]\n`,
    );
    expect(r.report).toEqual(
      expect.arrayContaining([expect.stringMatching(/^CloneSet\/web in namespace shop: not examined/)]),
    );
  });

  it('a denied object does not hide the report for the others', () => {
    const input = `${SHOP}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: bad, namespace: shop, annotations: {wpgw.io/outbound: "example.com"}}\nspec: {os: {name: windows}, containers: [{name: c}]}\n`;
    const r = render(input);
    expect(r.errors).toEqual([expect.stringMatching(/^Pod\/bad in namespace shop: /)]);
    expect(r.report).toContain('Deployment/legacy in namespace shop: injected');
  });

  it('duplicate objects are named', () => {
    const dep = SHOP.split(/^---$/m).find((d) => d.includes('kind: Deployment') && d.includes('name: legacy\n'))!;
    const r = renderOk(`${SHOP}\n---\n${dep}`);
    expect(r.report.filter((l) => l.includes('appears more than once'))).toEqual([
      'warning: Deployment/legacy in namespace shop appears more than once in the input; applied, the last one wins',
    ]);
  });

  it('settings where wpgw does not read them are warned about', () => {
    const input = [
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  labels: {wpgw.io/resolver: dnsConfig}\n  annotations: {wpgw.io/inject: enabled}',
      'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: legacy\n  namespace: shop\n  annotations: {wpgw.io/outbound: "example.com:80"}\nspec:\n  selector: {matchLabels: {app: legacy}}\n  template:\n    metadata: {labels: {app: legacy}}\n    spec: {os: {name: windows}, containers: [{name: c}]}',
      'apiVersion: v1\nkind: Pod\nmetadata:\n  name: linux\n  namespace: shop\n  annotations: {wpgw.io/outbound: "example.com:80"}\nspec: {containers: [{name: c}]}',
    ].join('\n---\n');
    const warnings = renderOk(input).report.filter((l) => l.startsWith('warning: '));
    expect(warnings).toEqual([
      'warning: Namespace/shop: wpgw.io/resolver is set as a label, but wpgw reads it as an annotation: kubectl annotate namespace shop wpgw.io/resolver=dnsConfig',
      'warning: Namespace/shop: wpgw.io/inject is set as an annotation, but opting in is the label (the webhook configuration selects on it): kubectl label namespace shop wpgw.io/inject=enabled',
      "warning: Deployment/legacy in namespace shop: wpgw.io/outbound is on the Deployment's own metadata, where it has no effect: wpgw reads it from the pod template (spec.template.metadata.annotations)",
      expect.stringMatching(
        /^warning: Pod\/linux in namespace shop: pod "linux": has wpgw.io\/outbound but is not recognised as Windows .* label it wpgw.io\/inject: "true"/,
      ),
    ]);
  });

  it('several namespaces: the shared address is called a placeholder per namespace', () => {
    const r = renderOk(`${SHOP}\n---\n${DNS_MODE}`, { gatewayIP: '10.96.100.10' });
    expect(r.report).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/namespaces share the gateway address 10.96.100.10 here, a placeholder per namespace/),
      ]),
    );
  });
});

/** dist/ is usable when every src/**\/*.ts has a compiled .js at least as new. */
function distIsFresh(): boolean {
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)],
    );
  return walk(join(ROOT, 'src'))
    .filter((f) => f.endsWith('.ts'))
    .every((ts) => {
      const js = join(ROOT, 'dist', ts.slice(ROOT.length + 1).replace(/\.ts$/, '.js'));
      return existsSync(js) && statSync(js).mtimeMs >= statSync(ts).mtimeMs;
    });
}

describe('render: the CLI', () => {
  let dir = '';
  let cli = '';

  // Use dist/ when it is up to date with src/; otherwise compile into a private directory (not
  // dist/, which others may be building at the same time).
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'wpgw-render-cli-'));
    if (distIsFresh()) {
      cli = join(ROOT, 'dist/src/cli.js');
      return;
    }
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    const tsc = spawnSync(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json'), '--outDir', dir],
      { cwd: ROOT, encoding: 'utf8' },
    );
    cli = join(dir, 'src/cli.js');
    // Type errors elsewhere in the tree still emit JavaScript; only a missing CLI is fatal here.
    if (!existsSync(cli)) throw new Error(`tsc did not emit ${cli}:\n${tsc.stdout}\n${tsc.stderr}`);
  }, 180_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const run = (args: string[], input?: string) =>
    spawnSync(process.execPath, [cli, ...args], { cwd: ROOT, encoding: 'utf8', input, timeout: 60_000 });

  it('render -f examples/shop.yaml: exit 0, the YAML on stdout, the report on stderr', () => {
    const r = run(['render', '-f', 'examples/shop.yaml', '--gateway-ip', '10.96.100.10']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(render(SHOP, { gatewayIP: '10.96.100.10' }).yaml);
    const out = docs(r.stdout);
    expect(pick(out, 'Deployment', 'legacy').spec.template.spec.hostAliases[0].ip).toBe('10.96.100.10');
    expect(r.stderr).toContain('# Deployment/legacy in namespace shop: injected');
  });

  it('render -f - reads stdin; -q silences the report', () => {
    const r = run(['render', '-f', '-', '-q'], SHOP);
    expect(r.status).toBe(0);
    expect(docs(r.stdout).length).toBeGreaterThan(10);
    expect(r.stderr).not.toContain('# ');
  });

  it('a bad file: exit 1, the error on stderr, nothing on stdout', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, SHOP.replace('example.com:80+tls', 'example.com:80+ssl'));
    const r = run(['render', '-f', bad]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('error: Deployment/legacy in namespace shop');
    expect(r.stderr).toContain('"example.com:80+ssl"');
  });

  it('-f DIR reads its manifests in name order; -f repeats', () => {
    const both = render(`${SHOP}\n---\n${DNS_MODE}`, { gatewayIP: '10.96.100.10' }).yaml;
    const sub = join(dir, 'manifests');
    rmSync(sub, { recursive: true, force: true });
    mkdirSync(sub);
    writeFileSync(join(sub, '1-shop.yaml'), SHOP);
    writeFileSync(join(sub, '2-dns.yml'), DNS_MODE);
    writeFileSync(join(sub, 'notes.txt'), 'not a manifest');
    const fromDir = run(['render', '-f', sub, '--gateway-ip', '10.96.100.10', '-q']);
    expect(fromDir.status).toBe(0);
    expect(fromDir.stdout).toBe(both);
    const repeated = run([
      'render',
      '-f',
      join(sub, '1-shop.yaml'),
      '-f',
      join(sub, '2-dns.yml'),
      '--gateway-ip',
      '10.96.100.10',
      '-q',
    ]);
    expect(repeated.stdout).toBe(both);
  });

  it('a missing file: exit 1 with the reason', () => {
    const r = run(['render', '-f', join(dir, 'nope.yaml')]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`wpgw render: -f ${join(dir, 'nope.yaml')}: no such file or directory\n`);
  });
});
