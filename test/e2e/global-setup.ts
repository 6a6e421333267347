// e2e global setup: a real control plane (test/harness, built from Go modules) unless
// WPGW_E2E_KUBECONFIG points at a cluster, then the wpgw webhook and controller as real child
// processes running with their own least-privilege RBAC (ServiceAccount tokens from the
// manifests), the webhook registered by URL with the caBundle it patches in itself.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { parse, stringify } from 'yaml';

export interface E2eEnv {
  /** Admin kubeconfig (tests act as the cluster admin / users). */
  kubeconfig: string;
  kubectl: string;
  stateDir: string;
  /** Harness bin dir, when the harness runs. */
  harnessBin?: string;
  webhookPort: number;
  controllerPort: number;
  /** How the webhook and controller were started, so a test can stop and start them again. */
  processes: Record<'webhook' | 'controller', ManagedProcess>;
  /** Whether this setup owns the cluster (false with WPGW_E2E_KUBECONFIG). */
  ownCluster: boolean;
}

export interface ManagedProcess {
  args: string[];
  kubeconfig: string;
  /** The live pid is kept here (tests that restart a process rewrite it). */
  pidFile: string;
  log: string;
  env: Record<string, string>;
}

declare module 'vitest' {
  export interface ProvidedContext {
    e2e: E2eEnv;
  }
}

const ROOT = resolve(import.meta.dirname, '../..');
const STATE = resolve(ROOT, '.e2e-state');
const CLUSTER_STATE = join(STATE, 'cluster');
const SYSTEM_NS = 'wpgw-system';

const timings: Array<[string, number]> = [];
async function timed<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    timings.push([name, Date.now() - t0]);
    process.stdout.write(`[e2e setup] ${name}: ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
  }
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr ? res(addr.port) : rej(new Error('no port'))));
    });
  });
}

function kubectlRunner(kubectl: string, kubeconfig: string) {
  return (args: string[], input?: string): string =>
    execFileSync(kubectl, args, { env: { ...process.env, KUBECONFIG: kubeconfig }, input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

/** A kubeconfig for a ServiceAccount (TokenRequest), so the processes run with their real RBAC. */
function serviceAccountKubeconfig(kubectl: (a: string[], i?: string) => string, adminKubeconfig: string, sa: string, file: string): void {
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
      clusters: [{ name: 'e2e', cluster: cluster.cluster }],
      users: [{ name: sa, user: { token } }],
      contexts: [{ name: sa, context: { cluster: 'e2e', user: sa } }],
      'current-context': sa,
    }),
    { mode: 0o600 },
  );
}

const children: Array<{ name: string; proc: ChildProcess; log: string }> = [];

/** Starts a wpgw process (also used by tests that restart one); its pid goes to its pid file. */
export function startProcess(name: string, p: ManagedProcess): ChildProcess {
  const out = createWriteStream(p.log, { flags: 'a' });
  const proc = spawn(process.execPath, [join(ROOT, 'dist/src/cli.js'), ...p.args], {
    env: { ...process.env, ...p.env, KUBECONFIG: p.kubeconfig },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout?.pipe(out);
  proc.stderr?.pipe(out);
  writeFileSync(p.pidFile, String(proc.pid ?? ''));
  children.push({ name, proc, log: p.log });
  return proc;
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
    // gone
  }
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (e) {
      lastError = e;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
}

function tail(file: string, lines = 40): string {
  if (!existsSync(file)) return `(no ${file})`;
  return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  mkdirSync(STATE, { recursive: true });
  const external = process.env.WPGW_E2E_KUBECONFIG;
  let kubeconfig: string;
  let kubectlBin: string;
  let harnessBin: string | undefined;

  await timed('build wpgw (tsc)', () => execFileSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(ROOT, 'tsconfig.json')], { stdio: 'inherit' }));
  if (external) {
    kubeconfig = external;
    kubectlBin = process.env.WPGW_E2E_KUBECTL ?? 'kubectl';
  } else {
    harnessBin = join(ROOT, 'test/harness/bin');
    await timed('build harness (cached)', () => execFileSync('bash', [join(ROOT, 'test/harness/build.sh')], { stdio: 'inherit' }));
    execFileSync('bash', [join(ROOT, 'test/harness/down.sh'), CLUSTER_STATE], { stdio: 'inherit' });
    rmSync(CLUSTER_STATE, { recursive: true, force: true });
    try {
      await timed('start control plane', () => execFileSync('bash', [join(ROOT, 'test/harness/up.sh'), CLUSTER_STATE], { stdio: 'inherit' }));
    } catch (e) {
      execFileSync('bash', [join(ROOT, 'test/harness/down.sh'), CLUSTER_STATE], { stdio: 'inherit' });
      throw e;
    }
    kubeconfig = join(CLUSTER_STATE, 'kubeconfig');
    kubectlBin = join(harnessBin, 'kubectl');
  }
  const kubectl = kubectlRunner(kubectlBin, kubeconfig);

  const webhookPort = await freePort();
  const controllerPort = await freePort();
  const logs = { webhook: join(STATE, 'webhook.log'), controller: join(STATE, 'controller.log') };
  for (const f of Object.values(logs)) writeFileSync(f, '');

  const processes: E2eEnv['processes'] = {
    webhook: {
      args: ['webhook', '--host', '127.0.0.1', '--port', String(webhookPort), '--tls-secret', `${SYSTEM_NS}/wpgw-webhook-tls`, '--webhook-config', 'wpgw'],
      kubeconfig: join(STATE, 'webhook.kubeconfig'),
      pidFile: join(STATE, 'webhook.pid'),
      log: logs.webhook,
      env: {},
    },
    controller: {
      args: ['controller', '--namespace', SYSTEM_NS, '--host', '127.0.0.1', '--port', String(controllerPort), '--resync', '20s'],
      kubeconfig: join(STATE, 'controller.kubeconfig'),
      pidFile: join(STATE, 'controller.pid'),
      log: logs.controller,
      env: { POD_NAME: 'e2e-controller' },
    },
  };
  const teardown = async () => {
    // Tests may have restarted either process: stop whatever the pid files name.
    await Promise.all(Object.values(processes).map((p) => stopProcess(p)));
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    if (!external && !process.env.WPGW_E2E_KEEP) execFileSync('bash', [join(ROOT, 'test/harness/down.sh'), CLUSTER_STATE], { stdio: 'inherit' });
    process.stdout.write(`[e2e] setup timings: ${timings.map(([n, ms]) => `${n} ${(ms / 1000).toFixed(1)}s`).join(', ')}\n`);
  };

  try {
    await timed('install RBAC and webhook configuration', () => {
      for (const f of ['namespace.yaml', 'rbac-webhook.yaml', 'rbac-controller.yaml']) kubectl(['apply', '-f', join(ROOT, 'manifests', f)]);
      // The production configuration, pointed at the local process by URL (no Service for it here).
      const mwc = parse(readFileSync(join(ROOT, 'manifests/mutatingwebhook.yaml'), 'utf8')) as { webhooks: Array<{ clientConfig: Record<string, unknown> }> };
      for (const w of mwc.webhooks) w.clientConfig = { url: `https://127.0.0.1:${webhookPort}/mutate` };
      kubectl(['apply', '-f', '-'], stringify(mwc));
      serviceAccountKubeconfig(kubectl, kubeconfig, 'wpgw-webhook', join(STATE, 'webhook.kubeconfig'));
      serviceAccountKubeconfig(kubectl, kubeconfig, 'wpgw-controller', join(STATE, 'controller.kubeconfig'));
    });

    await timed('start webhook and controller', async () => {
      startProcess('webhook', processes.webhook);
      startProcess('controller', processes.controller);
      // The webhook patches its CA into the configuration itself; wait for that, then for it to serve.
      await waitFor('caBundle patched into MutatingWebhookConfiguration wpgw', () => {
        const out = kubectl(['get', 'mutatingwebhookconfiguration', 'wpgw', '-o', 'jsonpath={.webhooks[*].clientConfig.caBundle}']);
        return out.trim().split(/\s+/).filter(Boolean).length === 2;
      });
      await waitFor('webhook ready', async () => (await fetchInsecure(`https://127.0.0.1:${webhookPort}/readyz`)) === 200);
      await waitFor('controller ready', async () => (await fetchInsecure(`https://127.0.0.1:${controllerPort}/readyz`)) === 200);
    });
  } catch (e) {
    process.stderr.write(`\n[e2e setup failed] ${(e as Error).message}\n--- webhook log ---\n${tail(logs.webhook)}\n--- controller log ---\n${tail(logs.controller)}\n`);
    if (!external) {
      for (const c of ['apiserver', 'kcm', 'scheduler', 'kwok', 'etcd']) {
        process.stderr.write(`--- ${c} log ---\n${tail(join(CLUSTER_STATE, 'logs', `${c}.log`), 20)}\n`);
      }
    }
    await teardown();
    throw e;
  }

  project.provide('e2e', {
    kubeconfig,
    kubectl: kubectlBin,
    stateDir: STATE,
    ...(harnessBin ? { harnessBin } : {}),
    webhookPort,
    controllerPort,
    processes,
    ownCluster: !external,
  });
  return teardown;
}

/**
 * GET over HTTPS without verifying the peer: only for the local health endpoints of processes
 * this setup started (the webhook's CA is checked for real by the API server on every call).
 */
export async function fetchInsecure(url: string): Promise<number> {
  const https = await import('node:https');
  return new Promise((res) => {
    const req = https.get(url, { rejectUnauthorized: false, timeout: 2000 }, (r) => {
      r.resume();
      res(r.statusCode ?? 0);
    });
    req.on('error', () => res(0));
    req.on('timeout', () => {
      req.destroy();
      res(0);
    });
  });
}
