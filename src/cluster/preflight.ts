// Start-up checks against the cluster: load a kubeconfig and reach the API server once before
// any watch starts, so a replica that cannot work says why in one line and exits non-zero
// (Kubernetes restarts it) instead of running unready with a log full of retries.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { RawKubeClient, errorMessage, errorStatus } from './client.js';
import { withTimeout } from './timeout.js';

/** A start-up failure whose message is the whole story (printed as is, exit 1). */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** Where client-node's loadFromDefault looks, in its order, for messages. */
export function kubeconfigSource(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  if (env.KUBECONFIG) return `KUBECONFIG=${env.KUBECONFIG}`;
  const file = join(home, '.kube', 'config');
  if (existsSync(file)) return file;
  if (env.KUBERNETES_SERVICE_HOST && existsSync(IN_CLUSTER_TOKEN)) return 'the in-cluster service account';
  return 'no kubeconfig (KUBECONFIG unset, no ~/.kube/config, not in a pod)';
}

let contextOverride: string | undefined;

/** `--context NAME` (kubectl's global flag, so `kubectl wpgw --context x ...` works): the context loadKubeConfig picks. */
export function useKubeContext(name: string | undefined): void {
  contextOverride = name;
}

/** KUBECONFIG / ~/.kube/config / in-cluster service account, whichever is present (client-node's order). */
export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  try {
    kc.loadFromDefault();
  } catch (err) {
    throw new StartupError(`cannot load a kubeconfig from ${kubeconfigSource()}: ${errorMessage(err)}`);
  }
  if (contextOverride !== undefined) {
    if (!kc.getContextObject(contextOverride)) {
      throw new StartupError(
        `--context ${contextOverride}: no such context in the kubeconfig from ${kubeconfigSource()} (it has: ${
          kc
            .getContexts()
            .map((c) => c.name)
            .join(', ') || 'none'
        })`,
      );
    }
    kc.setCurrentContext(contextOverride);
  }
  if (!kc.getCurrentCluster())
    throw new StartupError(`the kubeconfig from ${kubeconfigSource()} has no current cluster`);
  return kc;
}

export interface ApiCheckOptions {
  /** Keep trying this long (an API server restarting under us is normal). */
  timeoutMs: number;
  /** Per attempt. */
  attemptTimeoutMs?: number;
  /** Between attempts. */
  retryMs?: number;
}

/** Resolves once GET /version answers; throws a StartupError naming the server and the kubeconfig. */
export async function checkApiServer(kc: KubeConfig, opts: ApiCheckOptions): Promise<void> {
  const server = kc.getCurrentCluster()?.server ?? '(none)';
  const client = new RawKubeClient(kc);
  const deadline = Date.now() + opts.timeoutMs;
  let last = 'no attempt';
  for (;;) {
    try {
      await withTimeout(client.request('GET', '/version'), opts.attemptTimeoutMs ?? 5_000);
      return;
    } catch (err) {
      const status = errorStatus(err);
      // 401/403 will not fix themselves by waiting.
      if (status === 401 || status === 403) {
        throw new StartupError(
          `the Kubernetes API server ${server} refused the credentials from ${kubeconfigSource()} (HTTP ${status})`,
        );
      }
      last = describeNetworkError(err);
    }
    if (Date.now() + (opts.retryMs ?? 1_000) > deadline) break;
    await new Promise((r) => setTimeout(r, opts.retryMs ?? 1_000));
  }
  throw new StartupError(
    `cannot reach the Kubernetes API server ${server} (kubeconfig: ${kubeconfigSource()}) within ${Math.round(opts.timeoutMs / 1000)}s: ${last}`,
  );
}

/** undici says "fetch failed" and hides the reason (ECONNREFUSED, ENOTFOUND, a TLS error) in `cause`. */
function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } } | null)?.cause;
  if (cause?.code && cause.message)
    return cause.message.includes(cause.code) ? cause.message : `${cause.code}: ${cause.message}`;
  if (cause?.message) return cause.message;
  return errorMessage(err);
}
