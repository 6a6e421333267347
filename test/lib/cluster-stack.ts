// A running wpgw stack on a real control plane, shared by the e2e and data-path suites' global
// setups and the benchmarks on the control plane (bench:controller, bench:footprint): the harness cluster (test/harness, built from Go modules) unless a
// kubeconfig is given, then the webhook and controller as real processes with their own
// least-privilege RBAC (ServiceAccount tokens from manifests/), the webhook registered by URL and
// patching its own caBundle.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { eventually } from './poll.js';
import { SERVER_ENTRY, nodeFlagsFor } from '../../src/node-flags.js';

export interface ManagedProcess {
  args: string[];
  kubeconfig: string;
  /** The live pid is kept here (tests that restart a process rewrite it). */
  pidFile: string;
  log: string;
  env: Record<string, string>;
}

export interface Stack {
  kubeconfig: string;
  kubectl: string;
  stateDir: string;
  harnessBin?: string;
  webhookPort: number;
  controllerPort: number;
  processes: Record<'webhook' | 'controller', ManagedProcess>;
  ownCluster: boolean;
  timings: Array<[string, number]>;
  stop(): Promise<void>;
}

export interface StackOptions {
  root: string;
  stateDir: string;
  /** Use this cluster instead of starting the harness. */
  externalKubeconfig?: string;
  externalKubectl?: string;
  controllerArgs?: string[];
  keepCluster?: boolean;
  log?: (line: string) => void;
}

const SYSTEM_NS = 'wpgw-system';

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr ? res(addr.port) : rej(new Error('no port'))));
    });
  });
}

/**
 * The file a wpgw process of `root`'s build starts from: SERVER_ENTRY in a copy laid out as the
 * image is (package.json and the bundle, in a directory with no node_modules above it, so a
 * dependency the bundle failed to take in fails here as it would in the image). The copy is named
 * by the bundle's content: every test process and benchmark starting the same build shares one
 * (a process started from it may outlive whoever staged it, so none is ever removed under it),
 * and a rebuilt bundle gets its own. A build without the bundle (bench:footprint's baseline, an
 * older main) runs its compiled CLI.
 */
export function serverEntry(root: string): string {
  const bundle = join(root, SERVER_ENTRY);
  if (!existsSync(bundle)) return join(root, 'dist/src/cli.js');
  const files = [
    'package.json',
    ...readdirSync(dirname(bundle), { recursive: true, encoding: 'utf8' }).map((f) => join(dirname(SERVER_ENTRY), f)),
  ]
    .filter((f) => statSync(join(root, f)).isFile())
    .sort();
  const hash = createHash('sha256');
  for (const f of files)
    hash
      .update(f)
      .update('\0')
      .update(readFileSync(join(root, f)));
  const dir = join(tmpdir(), `wpgw-image-${hash.digest('hex').slice(0, 16)}`);
  if (!existsSync(join(dir, SERVER_ENTRY))) {
    // Staged beside it, then renamed into place: a parallel stager never sees half a copy.
    const tmp = mkdtempSync(`${dir}.tmp-`);
    for (const f of files) cpSync(join(root, f), join(tmp, f));
    try {
      renameSync(tmp, dir);
    } catch {
      rmSync(tmp, { recursive: true, force: true }); // another process staged it first
    }
  }
  return join(dir, SERVER_ENTRY);
}

/**
 * Starts a wpgw process as its Deployment does (node with nodeFlagsFor(command), serverEntry); its
 * pid goes to its pid file. `nodeFlags` overrides the flags (bench:footprint's baseline build runs
 * as it shipped).
 */
export function startProcess(
  root: string,
  p: ManagedProcess,
  nodeFlags: readonly string[] = nodeFlagsFor(p.args[0] ?? ''),
): ChildProcess {
  // The log file itself is the child's stdout/stderr (not a pipe through this process): a test
  // file that restarts the controller ends, its worker exits, and a piped child would die of
  // EPIPE at its next log line while the files after it still need it.
  const fd = openSync(p.log, 'a');
  try {
    const proc = spawn(process.execPath, [...nodeFlags, serverEntry(root), ...p.args], {
      env: { ...process.env, ...p.env, KUBECONFIG: p.kubeconfig },
      stdio: ['ignore', fd, fd],
    });
    writeFileSync(p.pidFile, String(proc.pid ?? ''));
    return proc;
  } finally {
    closeSync(fd);
  }
}

/** Stops a wpgw process by its pid file (whoever started it). */
export async function stopProcess(p: ManagedProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const pid = Number(existsSync(p.pidFile) ? readFileSync(p.pidFile, 'utf8') : 0);
  if (!pid) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  for (let i = 0; i < 50; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * GET over HTTPS without verifying the peer: only for the local health endpoints of processes
 * this stack started (the webhook's CA is checked for real by the API server on every call).
 */
export function getInsecure(url: string): Promise<{ status: number; body: string }> {
  return new Promise((res) => {
    const req = request(url, { rejectUnauthorized: false, timeout: 5000 }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (body += c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
    });
    req.on('error', () => res({ status: 0, body: '' }));
    req.on('timeout', () => {
      req.destroy();
      res({ status: 0, body: '' });
    });
    req.end();
  });
}

/** Whether the wpgw process serving health on `port` (this host) answers /readyz with 200. */
export async function isReady(port: number): Promise<boolean> {
  return (await getInsecure(`https://127.0.0.1:${port}/readyz`)).status === 200;
}

function tail(file: string, lines = 40): string {
  if (!existsSync(file)) return `(no ${file})`;
  return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const log = opts.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const timings: Array<[string, number]> = [];
  const timed = async <T>(name: string, fn: () => T | Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      timings.push([name, Date.now() - t0]);
      log(`[stack] ${name}: ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    }
  };
  const root = resolve(opts.root);
  const state = resolve(opts.stateDir);
  const clusterState = join(state, 'cluster');
  mkdirSync(state, { recursive: true });

  let kubeconfig: string;
  let kubectlBin: string;
  let harnessBin: string | undefined;
  if (opts.externalKubeconfig) {
    kubeconfig = opts.externalKubeconfig;
    kubectlBin = opts.externalKubectl ?? 'kubectl';
  } else {
    harnessBin = join(root, 'test/harness/bin');
    await timed('build harness (cached)', () =>
      execFileSync('bash', [join(root, 'test/harness/build.sh')], { stdio: 'inherit' }),
    );
    execFileSync('bash', [join(root, 'test/harness/down.sh'), clusterState], { stdio: 'inherit' });
    rmSync(clusterState, { recursive: true, force: true });
    await timed('start control plane', () =>
      execFileSync('bash', [join(root, 'test/harness/up.sh'), clusterState], { stdio: 'inherit' }),
    );
    kubeconfig = join(clusterState, 'kubeconfig');
    kubectlBin = join(harnessBin, 'kubectl');
  }
  const kubectl = (args: string[], input?: string): string =>
    execFileSync(kubectlBin, args, {
      env: { ...process.env, KUBECONFIG: kubeconfig },
      input,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
    });

  const webhookPort = await freePort();
  const controllerPort = await freePort();
  const processes: Stack['processes'] = {
    webhook: {
      args: [
        'webhook',
        '--host',
        '127.0.0.1',
        '--port',
        String(webhookPort),
        '--tls-secret',
        `${SYSTEM_NS}/wpgw-webhook-tls`,
        '--webhook-config',
        'wpgw',
      ],
      kubeconfig: join(state, 'webhook.kubeconfig'),
      pidFile: join(state, 'webhook.pid'),
      log: join(state, 'webhook.log'),
      env: {},
    },
    controller: {
      // The gateways resolve external names here (--external-names gateway): the controller runs on
      // the host, whose resolver knows neither the suites' test names nor the data path's DNS,
      // which lives in a network namespace. Data-path flow 10 restarts it pinning, with
      // --external-dns-server; test/unit/pinning.test.ts covers the rest.
      args: [
        'controller',
        '--namespace',
        SYSTEM_NS,
        '--host',
        '127.0.0.1',
        '--port',
        String(controllerPort),
        '--external-names',
        'gateway',
        ...(opts.controllerArgs ?? ['--resync', '20s']),
      ],
      kubeconfig: join(state, 'controller.kubeconfig'),
      pidFile: join(state, 'controller.pid'),
      log: join(state, 'controller.log'),
      env: { POD_NAME: 'stack-controller' },
    },
  };
  for (const p of Object.values(processes)) writeFileSync(p.log, '');

  const stop = async () => {
    await Promise.all(Object.values(processes).map((p) => stopProcess(p)));
    if (!opts.externalKubeconfig && !opts.keepCluster)
      execFileSync('bash', [join(root, 'test/harness/down.sh'), clusterState], { stdio: 'inherit' });
  };

  try {
    await timed('install RBAC and webhook configuration', () => {
      for (const f of ['namespace.yaml', 'rbac-webhook.yaml', 'rbac-controller.yaml'])
        kubectl(['apply', '-f', join(root, 'manifests', f)]);
      // The production configuration, pointed at the local process by URL (no Service for it here).
      const mwc = parse(readFileSync(join(root, 'manifests/mutatingwebhook.yaml'), 'utf8')) as {
        webhooks: Array<{ clientConfig: Record<string, unknown> }>;
      };
      for (const w of mwc.webhooks) w.clientConfig = { url: `https://127.0.0.1:${webhookPort}/mutate` };
      kubectl(['apply', '-f', '-'], stringify(mwc));
      for (const p of ['webhook', 'controller'] as const)
        serviceAccountKubeconfig(kubectl, kubeconfig, `wpgw-${p}`, processes[p].kubeconfig);
    });
    await timed('start webhook and controller', async () => {
      startProcess(root, processes.webhook);
      startProcess(root, processes.controller);
      // The webhook patches its CA into the configuration itself; wait for that, then for it to serve.
      await eventually(
        'caBundle patched into MutatingWebhookConfiguration wpgw',
        () => {
          const out = kubectl([
            'get',
            'mutatingwebhookconfiguration',
            'wpgw',
            '-o',
            'jsonpath={.webhooks[*].clientConfig.caBundle}',
          ]);
          return out.trim().split(/\s+/).filter(Boolean).length === 2;
        },
        90_000,
      );
      await eventually('webhook ready', () => isReady(webhookPort), 90_000);
      await eventually('controller ready', () => isReady(controllerPort), 90_000);
    });
  } catch (e) {
    log(
      `[stack failed] ${(e as Error).message}\n--- webhook log ---\n${tail(processes.webhook.log)}\n--- controller log ---\n${tail(processes.controller.log)}`,
    );
    if (!opts.externalKubeconfig) {
      for (const c of ['apiserver', 'kcm', 'scheduler', 'kwok', 'etcd'])
        log(`--- ${c} log ---\n${tail(join(clusterState, 'logs', `${c}.log`), 20)}`);
    }
    await stop();
    throw e;
  }
  return {
    kubeconfig,
    kubectl: kubectlBin,
    stateDir: state,
    ...(harnessBin ? { harnessBin } : {}),
    webhookPort,
    controllerPort,
    processes,
    ownCluster: !opts.externalKubeconfig,
    timings,
    stop,
  };
}

/** A kubeconfig for a ServiceAccount (TokenRequest), so the processes run with their real RBAC. */
function serviceAccountKubeconfig(
  kubectl: (a: string[], i?: string) => string,
  adminKubeconfig: string,
  sa: string,
  file: string,
): void {
  const token = kubectl(['create', 'token', sa, '-n', SYSTEM_NS, '--duration=6h']).trim();
  const admin = parse(readFileSync(adminKubeconfig, 'utf8')) as {
    clusters: Array<{ name: string; cluster: Record<string, string> }>;
    'current-context': string;
    contexts: Array<{ name: string; context: { cluster: string } }>;
  };
  const ctx = admin.contexts.find((c) => c.name === admin['current-context']) ?? admin.contexts[0]!;
  const cluster = admin.clusters.find((c) => c.name === ctx.context.cluster)!;
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'stack', cluster: cluster.cluster }],
      users: [{ name: sa, user: { token } }],
      contexts: [{ name: sa, context: { cluster: 'stack', user: sa } }],
      'current-context': sa,
    }),
    { mode: 0o600 },
  );
}
