// Helpers of the data-path suite: exec'ing the client in a pod (or the node), reading the JSON
// lines the proxies and apps log, waiting on conditions, timing each part.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { eventually as poll } from '../lib/poll.js';
import { nsExec } from './network.js';
import type { PodRunner, RunningPod } from './runner.js';

export const CLIENT = resolve(import.meta.dirname, 'apps/client.mjs');

export interface ClientResult {
  ok: boolean;
  status?: number;
  body?: string;
  json?: any;
  headers?: Record<string, string>;
  error?: string;
  authorized?: boolean;
  addresses?: string[];
  /** repeat: "<status> <x-echo-pod>" -> how many answers. */
  tally?: Record<string, number>;
}

export type ClientRequest =
  | { url: string; headers?: Record<string, string>; timeoutMs?: number; repeat?: number }
  | {
      tls: {
        host: string;
        port: number;
        servername?: string;
        ca?: string;
        cert?: string;
        key?: string;
        path?: string;
        headers?: Record<string, string>;
      };
      timeoutMs?: number;
    }
  | { tcp: { host: string; port: number; data: string }; timeoutMs?: number }
  | { resolve: string; timeoutMs?: number };

/** Runs the client inside a network namespace (a pod's, with its hosts/resolv.conf, or the node's). */
export async function callFrom(netns: string, req: ClientRequest): Promise<ClientResult> {
  const out = await nsExec(
    netns,
    [process.execPath, CLIENT, JSON.stringify(req)],
    Math.max(60_000, (req.timeoutMs ?? 0) + 10_000),
  );
  return JSON.parse(out.trim().split('\n').pop()!) as ClientResult;
}

/** Polls until fn returns a value (generous default deadline: the machine may be very slow). */
export const eventually = <T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 180_000,
): Promise<T> => poll(what, fn, timeoutMs);

/** JSON lines of a pod container's log (apps log one object per event; proxies their access log). */
export function jsonLines(file: string): any[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return [];
      }
    });
}

/** Access-log entries (test/istio/start.sh ISTIO_DATAPATH format) of a pod's Envoy. */
export function accessLog(p: RunningPod): any[] {
  return jsonLines(join(p.dir, 'istio-proxy.log')).filter((e) => e.dp === 'access');
}

export function appLog(p: RunningPod, container = 'app'): any[] {
  return jsonLines(join(p.dir, `${container}.log`));
}

/** Running pods of a Deployment: "<prefix><replicaset hash>-<suffix>" ("wpgw-" is not "wpgw-dns-"). */
export function podsOf(runner: PodRunner, ns: string, prefix: string): RunningPod[] {
  return [...runner.pods.values()].filter(
    (p) => p.namespace === ns && p.name.startsWith(prefix) && /^[a-z0-9]+-[a-z0-9]+$/.test(p.name.slice(prefix.length)),
  );
}

export const timings: Array<[string, number]> = [];
export async function timed<T>(what: string, fn: () => Promise<T> | T): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    const s = (performance.now() - t0) / 1000;
    timings.push([what, s]);
    console.log(`[datapath] ${what}: ${s.toFixed(1)}s`);
  }
}

export const rid = (tag: string) => `${tag}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
