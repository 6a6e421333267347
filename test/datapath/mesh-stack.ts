// The data plane of the files that send traffic through real Envoy (datapath.test.ts: flows 1-7
// and 9; bench.datapath.ts: `npm run bench:datapath`): istiod for the data path with its injector
// registered, the node network namespace with the real kube-proxy, and the pod runner (Istio
// proxies as pilot-agent + Envoy), on the cluster and wpgw of the project's global setup. Each file
// then applies its own plain manifests. Teardown stops every process, deletes the namespaces and
// stops istiod; logs stay in <e2e state>/<dir>.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, inject } from 'vitest';
import { getJson } from '../e2e/helpers.js';
import { callFrom, eventually, podsOf, timed, timings } from './helpers.js';
import { rulesFor, startKubeProxy } from './kube-proxy.js';
import { EXT_HOST } from './manifests.js';
import { Network } from './network.js';
import { alive, killStale, registerPids, stopProc, type Proc } from './procs.js';
import { PodRunner, type RunningPod } from './runner.js';

const ROOT = resolve(import.meta.dirname, '../..');
const DP = join(ROOT, 'test/datapath');
const ISTIO = join(ROOT, 'test/istio');
/** The harness's DNS stand-in (apps/dns.mjs) listens here, in the node namespace. */
export const CLUSTER_DNS = '10.96.0.10';

export interface MeshStackOptions {
  /** Network namespace names "<tag>-*" (network.ts). */
  tag: string;
  /** State directory under the e2e state dir: logs, pods, pki. */
  dir: string;
}

export interface MeshStack {
  kubeconfig: string;
  clusterState: string;
  /** The harness's env.json (ports, CIDRs, bin dir), read once when the stack starts. */
  harnessEnv: Record<string, string>;
  state: string;
  network: Network;
  runner: PodRunner;
  /** The test CA (the pods' "system" trust store) and the external host's certificate for EXT_HOST. */
  pki: { ca: string; cert: string; key: string };
  /** Processes the file starts besides the runner's (stopped on teardown, last first). */
  procs: Proc[];
}

export const script = (file: string, args: string[], env: Record<string, string> = {}) =>
  execFileSync('bash', [file, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60 * 60_000,
  });

/** The test CA (the gateways' "system" trust store) and the external host's certificate (EXT_HOST only). */
function makePki(dir: string): MeshStack['pki'] {
  mkdirSync(dir, { recursive: true });
  const o = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  o(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
  o([
    'req',
    '-x509',
    '-new',
    '-key',
    'ca.key',
    '-sha256',
    '-days',
    '2',
    '-subj',
    '/CN=wpgw datapath test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
    '-out',
    'ca.crt',
  ]);
  o(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ext.key']);
  o(['req', '-new', '-key', 'ext.key', '-subj', `/CN=${EXT_HOST}`, '-out', 'ext.csr']);
  writeFileSync(join(dir, 'ext.ext'), `subjectAltName=DNS:${EXT_HOST}\nextendedKeyUsage=serverAuth\n`);
  o([
    'x509',
    '-req',
    '-in',
    'ext.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-sha256',
    '-extfile',
    'ext.ext',
    '-out',
    'ext.crt',
  ]);
  return {
    ca: join(dir, 'ca.crt'),
    cert: readFileSync(join(dir, 'ext.crt'), 'utf8'),
    key: readFileSync(join(dir, 'ext.key'), 'utf8'),
  };
}

export function meshPod(s: MeshStack, ns: string, prefix: string): RunningPod {
  const p = podsOf(s.runner, ns, prefix);
  if (p.length === 0) throw new Error(`no running pod ${ns}/${prefix}*`);
  return p[0]!;
}

export const runningMeshPods = (s: MeshStack, ns: string, prefix: string, n: number): Promise<RunningPod[]> =>
  eventually(`${n} pod(s) ${ns}/${prefix}* running in the pod runner`, () => {
    const ps = podsOf(s.runner, ns, prefix);
    return ps.length === n ? ps : undefined;
  });

export async function proxyLive(p: RunningPod): Promise<boolean> {
  const r = await callFrom(p.netns, { url: `http://127.0.0.1:${p.adminPort}/ready`, timeoutMs: 5000 });
  return r.ok && r.status === 200 && (r.body ?? '').trim() === 'LIVE';
}

/** Waits until each pod's Envoy is LIVE (the pod must have an istio-proxy container Istio injected). */
export async function proxiesLive(proxies: RunningPod[]): Promise<void> {
  for (const p of proxies) {
    if (p.adminPort === undefined)
      throw new Error(`${p.namespace}/${p.name} has no istio-proxy container (not injected by Istio)`);
    await eventually(`Envoy of ${p.namespace}/${p.name} LIVE`, async () => {
      const dead = p.procs.find((x) => !alive(x));
      if (dead)
        throw new Error(
          `${dead.name} exited; its log: ${dead.log}\n${readFileSync(dead.log, 'utf8').split('\n').slice(-15).join('\n')}`,
        );
      return proxyLive(p);
    });
  }
}

/** Registers the file's beforeAll/afterAll; the returned object is filled in by beforeAll. */
export function useMeshStack(o: MeshStackOptions): MeshStack {
  const s = { procs: [] as Proc[] } as MeshStack;
  let network: Network | undefined;
  let runner: PodRunner | undefined;
  let istioStarted = false;

  beforeAll(async () => {
    // Network namespaces, veths, iptables and bind mounts need root (CI runs as root).
    if (process.getuid?.() !== 0)
      throw new Error(
        'the data-path suite needs root: it creates network namespaces (run as root, or skip with --project e2e)',
      );
    const e2e = inject('e2e');
    s.kubeconfig = e2e.kubeconfig;
    s.clusterState = dirname(e2e.kubeconfig);
    s.state = join(e2e.stateDir, o.dir);
    rmSync(join(s.state, 'pods'), { recursive: true, force: true });
    mkdirSync(join(s.state, 'logs'), { recursive: true });
    // a run killed before its teardown leaves processes: stop them (only ours, by pid and path)
    const stale = killStale(join(s.state, 'pids'), ROOT);
    if (stale) console.log(`[datapath] stopped ${stale} process groups left by an earlier run`);
    registerPids(join(s.state, 'pids'));
    const harness = (s.harnessEnv = JSON.parse(readFileSync(join(s.clusterState, 'env.json'), 'utf8')) as Record<
      string,
      string
    >);

    await timed('install Envoy + packages (test/datapath/install.sh, cached)', () =>
      script(join(DP, 'install.sh'), []),
    );
    await timed('build istiod + pilot-agent (test/istio/build.sh, cached)', () => script(join(ISTIO, 'build.sh'), []));
    await timed('build CoreDNS (test/datapath/build.sh, cached)', () => script(join(DP, 'build.sh'), []));
    await timed('start istiod for the data path (ISTIO_DATAPATH=1, injector registered)', () => {
      script(join(ISTIO, 'start.sh'), [s.clusterState], { ISTIO_DATAPATH: '1', ISTIO_INJECTOR_REGISTER: '1' });
      istioStarted = true;
    });
    const istio = JSON.parse(readFileSync(join(s.clusterState, 'istio-env.json'), 'utf8')) as Record<string, string>;
    s.pki = makePki(join(s.state, 'pki'));

    await timed('node network namespace + kube-proxy', async () => {
      network = s.network = new Network(o.tag);
      await network.cleanupStale();
      await network.up(harness.HARNESS_SERVICE_CIDR!, [CLUSTER_DNS]);
      s.procs.push(
        ...startKubeProxy({
          kubeProxy: join(harness.HARNESS_BIN_DIR!, 'kube-proxy'),
          kubeconfig: s.kubeconfig,
          apiPort: Number(harness.HARNESS_APISERVER_PORT),
          nodeNetns: network.node,
          stateDir: s.state,
          clusterCIDR: '10.244.0.0/16',
          nodeName: 'linux-1',
        }),
      );
      const kubernetesIP = getJson(['service', 'kubernetes', '-n', 'default']).spec.clusterIP as string;
      await eventually(
        'kube-proxy programmed the kubernetes Service',
        async () => (await rulesFor(network!.node, kubernetesIP, 443)).length > 0,
        120_000,
      );
    });

    runner = s.runner = new PodRunner({
      kubeconfig: s.kubeconfig,
      stateDir: s.state,
      network: network!,
      podEtc: { 'ssl/certs/ca-certificates.crt': readFileSync(s.pki.ca, 'utf8') },
      coredns: join(DP, 'bin/coredns'),
      proxy: {
        agent: istio.ISTIO_PILOT_AGENT!,
        envoy: join(DP, 'bin/envoy'),
        discoveryAddress: istio.ISTIO_XDS_TLS_ADDRESS!,
        istiodCA: istio.ISTIO_WEBHOOK_CA!,
        bootstrapTemplate: join(
          execFileSync('go', ['list', '-m', '-f', '{{.Dir}}', 'istio.io/istio'], {
            cwd: ISTIO,
            encoding: 'utf8',
          }).trim(),
          'tools/packaging/common/envoy_bootstrap.json',
        ),
        systemCA: s.pki.ca,
      },
    });
    runner.start();
  });

  afterAll(async () => {
    await timed('teardown', async () => {
      await runner?.stop().catch((e) => console.error(e));
      for (const p of s.procs.reverse()) await stopProc(p);
      await network?.down().catch((e) => console.error(e));
      if (istioStarted) script(join(ISTIO, 'stop.sh'), [s.clusterState]);
    });
    console.log(`[datapath] timings: ${timings.map(([w, t]) => `${w} ${t.toFixed(1)}s`).join('; ')}`);
    console.log(`[datapath] logs kept in ${s.state}`);
  });
  return s;
}
