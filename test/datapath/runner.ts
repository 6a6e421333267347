// The pod runner: a small stand-in for kubelet on the kwok nodes, for the data-path suite only.
// kwok still owns pod status (scheduling, Running, the pod IP); the runner makes those pods real:
// for every pod in a namespace labelled RUNNER_LABEL that kwok reports Running with an IP, it
//   - creates the pod's network namespace with that IP (network.ts),
//   - writes /etc/hosts from spec.hostAliases and /etc/resolv.conf from dnsPolicy/dnsConfig as
//     kubelet does (kubelet-files.ts),
//   - runs its containers: `istio-proxy` (as Istio's injector rendered it: args, env) becomes
//     pilot-agent + Envoy (proxy.ts); app containers become the test programs in apps/ chosen by
//     image name; other containers (istio-init: no iptables capture here) are not run;
// and tears all of that down when the pod goes away. Logs: <state>/pods/<ns>_<pod>/<container>.log.
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { hostsFile, resolvConf, type PodForFiles } from './kubelet-files.js';
import { type Network, nsExec } from './network.js';
import { alive, startProc, stopProc, type Proc } from './procs.js';
import { expandVars, resolveEnv } from './pod-env.js';
import { startProxy, type ProxySettings } from './proxy.js';

export const RUNNER_LABEL = 'wpgw.test/pod-runner';
const APPS = resolve(import.meta.dirname, 'apps');

/**
 * Images the runner knows: image name prefix -> the command line (run with the container's env).
 * CoreDNS (wpgw-dns) is the real one, built from its Go module, with the container's own args.
 */
function programFor(image: string, args: string[], opts: RunnerOptions): string[] | undefined {
  if (image.startsWith('wpgw.test/echo')) return [process.execPath, join(APPS, 'echo.mjs')];
  if (/(^|\/)coredns\/coredns:/.test(image) && opts.coredns) return [opts.coredns, ...args];
  return undefined;
}

export interface RunningPod {
  key: string;
  uid: string;
  namespace: string;
  name: string;
  ip: string;
  netns: string;
  dir: string;
  procs: Proc[];
  pod: V1Pod;
  adminPort?: number;
  configMaps: Array<{ name: string; dir: string }>;
  /** Deleted, still running out its termination grace (see PodRunner.terminationGraceMs). */
  terminating?: boolean;
}

export interface RunnerOptions {
  kubeconfig: string;
  stateDir: string;
  network: Network;
  proxy: Omit<ProxySettings, 'netns' | 'dir' | 'adminPort' | 'statusPort'>;
  /** Extra files for every pod namespace (relative to /etc), e.g. ssl/certs/ca-certificates.crt */
  podEtc?: Record<string, string>;
  /** The coredns binary, for coredns/coredns images (wpgw-dns) */
  coredns?: string;
  log?: (line: string) => void;
  /**
   * Containers the suite handles itself (dns-stack.ts: no istio-proxy where no istiod runs): the
   * processes it started for one, null to run nothing, undefined for the runner's own handling.
   */
  containers?: (
    c: NonNullable<V1Pod['spec']>['containers'][number],
    ctx: ContainerContext,
  ) => Promise<Proc[] | null | undefined>;
}

export interface ContainerContext {
  pod: V1Pod;
  netns: string;
  /** The pod's directory (logs, volumes). */
  dir: string;
  env: Record<string, string>;
}

export class PodRunner {
  readonly pods = new Map<string, RunningPod>();
  private readonly core: CoreV1Api;
  private readonly opts: RunnerOptions;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private nextPort = 20000;
  private stopped = false;
  readonly errors: string[] = [];
  /**
   * How long a deleted pod keeps running, as a kubelet lets it during terminationGracePeriodSeconds
   * (Envoy drains meanwhile). kwok deletes pods at once; 0 (the default) tears them down at once.
   */
  terminationGraceMs = 0;
  private readonly goneSince = new Map<string, number>();

  constructor(opts: RunnerOptions) {
    this.opts = opts;
    const kc = new KubeConfig();
    kc.loadFromFile(opts.kubeconfig);
    this.core = kc.makeApiClient(CoreV1Api);
  }

  start(intervalMs = 500): void {
    const tick = () => {
      if (this.stopped) return;
      this.syncing = this.sync()
        .catch((e) => this.log(`sync error: ${(e as Error).message}`))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, intervalMs);
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.syncing;
    await Promise.all([...this.pods.values()].map((p) => this.teardown(p)));
  }

  /** The running pod (by namespace/name), once its processes are started. */
  get(namespace: string, name: string): RunningPod | undefined {
    return [...this.pods.values()].find((p) => p.namespace === namespace && p.name === name);
  }

  /** Runs argv inside the pod's network namespace (with its /etc/hosts and resolv.conf): `kubectl exec`. */
  exec(p: RunningPod, argv: string[], timeoutMs = 60_000): Promise<string> {
    return nsExec(p.netns, argv, timeoutMs);
  }

  private log(line: string): void {
    (this.opts.log ?? ((l: string) => process.stdout.write(`${l}\n`)))(`[pod-runner] ${line}`);
  }

  private async sync(): Promise<void> {
    const nss = await this.core.listNamespace({ labelSelector: `${RUNNER_LABEL}=enabled` });
    const wanted = new Set(nss.items.map((n) => n.metadata!.name!));
    const pods = (await this.core.listPodForAllNamespaces({})).items.filter((p) => wanted.has(p.metadata!.namespace!));
    const live = new Map(
      pods
        .filter((p) => !p.metadata!.deletionTimestamp && p.status?.phase === 'Running' && p.status.podIP)
        .map((p) => [p.metadata!.uid!, p]),
    );
    for (const rp of [...this.pods.values()]) {
      if (live.has(rp.uid)) continue;
      const since = this.goneSince.get(rp.uid) ?? Date.now();
      this.goneSince.set(rp.uid, since);
      rp.terminating = true;
      if (Date.now() - since < this.terminationGraceMs) continue;
      this.goneSince.delete(rp.uid);
      await this.teardown(rp);
    }
    for (const rp of this.pods.values()) {
      for (const cm of rp.configMaps)
        await this.writeConfigMap(rp.namespace, cm.name, cm.dir).catch((e) =>
          this.log(`configmap ${cm.name}: ${(e as Error).message}`),
        );
    }
    for (const [uid, pod] of live) {
      if (this.pods.has(uid)) continue;
      // kwok may hand a deleted pod's IP to a new one: wait until the old one is gone
      if ([...this.pods.values()].some((p) => p.ip === pod.status!.podIP)) continue;
      try {
        await this.startPod(pod);
      } catch (e) {
        const msg = `start ${pod.metadata!.namespace}/${pod.metadata!.name}: ${(e as Error).message}`;
        this.errors.push(msg);
        this.log(msg);
      }
    }
  }

  private async startPod(pod: V1Pod): Promise<void> {
    const ns = pod.metadata!.namespace!;
    const name = pod.metadata!.name!;
    const ip = pod.status!.podIP!;
    const dir = join(this.opts.stateDir, 'pods', `${ns}_${name}`);
    mkdirSync(dir, { recursive: true });
    const files = {
      hosts: hostsFile(pod as PodForFiles),
      'resolv.conf': resolvConf(pod as PodForFiles),
      ...(this.opts.podEtc ?? {}),
    };
    const key = pod.metadata!.uid!;
    const netns = await this.opts.network.addPod(key, ip, files);
    const rp: RunningPod = { key, uid: key, namespace: ns, name, ip, netns, dir, procs: [], pod, configMaps: [] };
    this.pods.set(key, rp);
    const containers = [
      ...(pod.spec!.initContainers ?? []).filter((c) => c.restartPolicy === 'Always'),
      ...pod.spec!.containers,
    ];
    for (const c of containers) {
      const env = await resolveEnv(pod, c, (n, k) => this.secretValue(ns, n, k));
      const own = await this.opts.containers?.(c, { pod, netns, dir, env });
      if (own !== undefined) {
        rp.procs.push(...(own ?? []));
        continue;
      }
      if (c.name === 'istio-proxy') {
        rp.adminPort = this.nextPort++;
        const statusPort = this.nextPort++;
        const token = await this.token(pod);
        rp.procs.push(
          await startProxy(pod, c, env, token, {
            ...this.opts.proxy,
            netns,
            dir: join(dir, 'proxy'),
            adminPort: rp.adminPort,
            statusPort,
          }),
        );
        continue;
      }
      const mounts = await this.configMapMounts(rp, c);
      // paths under a mountPath point into the pod directory, where the volume's files are
      const mapPath = (a: string) =>
        mounts.reduce((acc, m) => (acc.startsWith(m.mountPath) ? m.dir + acc.slice(m.mountPath.length) : acc), a);
      const program = programFor(
        c.image ?? '',
        (c.args ?? []).map((a) => mapPath(expandVars(a, env))),
        this.opts,
      );
      if (!program) {
        this.log(`${ns}/${name}: container ${c.name} (${c.image}) not run: no test program for that image`);
        continue;
      }
      rp.procs.push(
        startProc(`${ns}/${name}/${c.name}`, 'ip', ['netns', 'exec', netns, ...program], {
          log: join(dir, `${c.name}.log`),
          env: { PATH: process.env.PATH, ...env },
        }),
      );
    }
    this.log(
      `${ns}/${name} ${ip} (${netns}): ${rp.procs.map((p) => p.name.split('/').pop()).join(', ') || 'nothing to run'}`,
    );
  }

  /**
   * configMap volumes the container mounts, written under <pod dir>/volumes/<volume>/ and kept in
   * sync with the ConfigMap on every runner pass (kubelet's volume sync, without its delay).
   */
  private async configMapMounts(
    rp: RunningPod,
    c: { volumeMounts?: Array<{ name: string; mountPath: string }> },
  ): Promise<Array<{ mountPath: string; dir: string }>> {
    const out: Array<{ mountPath: string; dir: string }> = [];
    for (const vm of c.volumeMounts ?? []) {
      const vol = (rp.pod.spec!.volumes ?? []).find((v) => v.name === vm.name);
      if (!vol?.configMap?.name) continue;
      const dir = join(rp.dir, 'volumes', vm.name);
      rp.configMaps.push({ name: vol.configMap.name, dir });
      await this.writeConfigMap(rp.namespace, vol.configMap.name, dir);
      out.push({ mountPath: vm.mountPath.replace(/\/$/, ''), dir });
    }
    return out;
  }

  private async writeConfigMap(namespace: string, name: string, dir: string): Promise<void> {
    const cm = await this.core.readNamespacedConfigMap({ name, namespace });
    mkdirSync(dir, { recursive: true });
    for (const [k, v] of Object.entries(cm.data ?? {})) {
      const file = join(dir, k);
      if (existsSync(file) && readFileSync(file, 'utf8') === v) continue;
      writeFileSync(`${file}.tmp`, v);
      renameSync(`${file}.tmp`, file); // atomic, as kubelet's symlink swap
    }
  }

  private async secretValue(namespace: string, name: string, key: string): Promise<string> {
    const s = await this.core.readNamespacedSecret({ name, namespace });
    const v = s.data?.[key];
    if (v === undefined) throw new Error(`secret ${namespace}/${name} has no key ${key}`);
    return Buffer.from(v, 'base64').toString('utf8');
  }

  /** The projected ServiceAccount token the pod's istio-token volume asks for (audience, bound to the pod). */
  private async token(pod: V1Pod): Promise<string> {
    const src = (pod.spec!.volumes ?? [])
      .flatMap((v) => v.projected?.sources ?? [])
      .find((s) => s.serviceAccountToken)?.serviceAccountToken;
    const r = await this.core.createNamespacedServiceAccountToken({
      name: pod.spec!.serviceAccountName ?? 'default',
      namespace: pod.metadata!.namespace!,
      body: {
        spec: {
          audiences: [src?.audience ?? 'istio-ca'],
          expirationSeconds: src?.expirationSeconds ?? 43200,
          boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: pod.metadata!.name!, uid: pod.metadata!.uid! },
        },
      },
    });
    return r.status!.token!;
  }

  private async teardown(rp: RunningPod): Promise<void> {
    this.pods.delete(rp.key);
    await Promise.all(rp.procs.map((p) => stopProc(p)));
    await this.opts.network.removePod(rp.key);
    this.log(`${rp.namespace}/${rp.name}: stopped (${rp.procs.filter((p) => !alive(p)).length} processes)`);
  }
}
