// e2e global setup: the wpgw stack (bench/cluster-stack.ts) on a real control plane built from Go
// modules, unless WPGW_E2E_KUBECONFIG points at a cluster.
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { freePort, getInsecure, startProcess as startStackProcess, startStack, stopProcess, type ManagedProcess } from '../../bench/cluster-stack.js';

export { freePort, stopProcess, type ManagedProcess };

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

declare module 'vitest' {
  export interface ProvidedContext {
    e2e: E2eEnv;
  }
}

const ROOT = resolve(import.meta.dirname, '../..');

export function startProcess(_name: string, p: ManagedProcess): void {
  startStackProcess(ROOT, p);
}

/** Status code of a GET to a local health endpoint (0 when nothing answers). */
export async function fetchInsecure(url: string): Promise<number> {
  return (await getInsecure(url)).status;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const t0 = Date.now();
  execFileSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(ROOT, 'tsconfig.json')], { stdio: 'inherit' });
  process.stdout.write(`[e2e setup] build wpgw (tsc): ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
  const stack = await startStack({
    root: ROOT,
    stateDir: join(ROOT, '.e2e-state'),
    ...(process.env.WPGW_E2E_KUBECONFIG ? { externalKubeconfig: process.env.WPGW_E2E_KUBECONFIG } : {}),
    ...(process.env.WPGW_E2E_KUBECTL ? { externalKubectl: process.env.WPGW_E2E_KUBECTL } : {}),
    keepCluster: Boolean(process.env.WPGW_E2E_KEEP),
    log: (line) => process.stdout.write(`${line}\n`),
  });
  project.provide('e2e', {
    kubeconfig: stack.kubeconfig,
    kubectl: stack.kubectl,
    stateDir: stack.stateDir,
    ...(stack.harnessBin ? { harnessBin: stack.harnessBin } : {}),
    webhookPort: stack.webhookPort,
    controllerPort: stack.controllerPort,
    processes: stack.processes,
    ownCluster: stack.ownCluster,
  });
  return async () => {
    await stack.stop();
    process.stdout.write(`[e2e] setup timings: ${stack.timings.map(([n, ms]) => `${n} ${(ms / 1000).toFixed(1)}s`).join(', ')}\n`);
  };
}
