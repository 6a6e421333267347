// e2e global setup: the wpgw stack (test/lib/cluster-stack.ts) on a real control plane built from Go
// modules, unless WPGW_E2E_KUBECONFIG points at a cluster.
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import {
  freePort,
  getInsecure,
  isReady,
  startProcess as startStackProcess,
  startStack,
  stopProcess,
  type ManagedProcess,
  type Stack,
} from '../lib/cluster-stack.js';

export { freePort, isReady, stopProcess, type ManagedProcess };

/** What the suite sees of the running stack (test/lib/cluster-stack.ts). */
export type E2eEnv = Omit<Stack, 'timings' | 'stop'>;

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

export default async function setup(
  project: TestProject,
  extra: { controllerArgs?: string[] } = {},
): Promise<() => Promise<void>> {
  const t0 = Date.now();
  // The package's own build (tsc, then the bundle the image runs, which the stack starts).
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  process.stdout.write(`[e2e setup] build wpgw (tsc + bundle): ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
  const stack = await startStack({
    root: ROOT,
    // The data-path project (test/datapath/global-setup.ts) runs its own cluster beside this one.
    stateDir: process.env.WPGW_E2E_STATE_DIR ?? join(ROOT, '.e2e-state'),
    ...(process.env.WPGW_E2E_KUBECONFIG ? { externalKubeconfig: process.env.WPGW_E2E_KUBECONFIG } : {}),
    ...(process.env.WPGW_E2E_KUBECTL ? { externalKubectl: process.env.WPGW_E2E_KUBECTL } : {}),
    keepCluster: Boolean(process.env.WPGW_E2E_KEEP),
    ...(extra.controllerArgs ? { controllerArgs: extra.controllerArgs } : {}),
    log: (line) => process.stdout.write(`${line}\n`),
  });
  const { timings: _t, stop: _s, ...provided } = stack;
  project.provide('e2e', provided);
  return async () => {
    await stack.stop();
    process.stdout.write(
      `[e2e] setup timings: ${stack.timings.map(([n, ms]) => `${n} ${(ms / 1000).toFixed(1)}s`).join(', ')}\n`,
    );
  };
}
