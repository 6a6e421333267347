// Faults on the real control plane: the webhook down during a rollout, the controller and the
// API server restarted mid-reconcile, the serving certificate rotated under load, and the
// security properties of what is actually listening.
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { connect as netConnect } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { generateCa, generateLeaf } from '../../src/tls/certs.js';
import { freePort, isReady, startProcess, stopProcess } from './global-setup.js';
import {
  appService,
  apply,
  createNamespace,
  env,
  eventually,
  getJson,
  k,
  kubectl,
  list,
  managedObjects,
  sleep,
  waitForDefaultServiceAccount,
  windowsDeployment,
  printTestTimes,
} from './helpers.js';

printTestTimes();

async function optedIn(ns: string): Promise<string> {
  createNamespace(ns, true);
  await waitForDefaultServiceAccount(ns);
  return eventually(
    `gateway in ${ns}`,
    () => getJson(['service', 'wpgw', '-n', ns])?.spec?.clusterIP as string | undefined,
  );
}

function livePods(ns: string, app: string): any[] {
  return list(['pods', '-n', ns, '-l', `app=${app}`]).filter((p) => !p.metadata.deletionTimestamp);
}

/** A pod is correctly routed if its hostAliases entry is exactly what its status record says. */
function routedCorrectly(pod: any, gatewayIP: string): boolean {
  const status = JSON.parse(pod.metadata.annotations?.['wpgw.io/status'] ?? 'null');
  if (!status || pod.metadata.labels?.['wpgw.io/managed'] !== 'true') return false;
  const entry = (pod.spec.hostAliases ?? []).find((h: { ip: string }) => h.ip === gatewayIP);
  return status.gatewayIP === gatewayIP && JSON.stringify(entry?.hostnames) === JSON.stringify(status.hostnames);
}

function rolloutDeployment(name: string, ns: string, outbound: string): Record<string, unknown> {
  const d = windowsDeployment(name, ns, outbound, 4) as any;
  d.spec.strategy = { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } };
  return d;
}

describe('faults', () => {
  it('webhook stopped during a rolling update: admitted pods are routed, the rest wait and finish once it is back', async () => {
    const e = env();
    const ns = 'e2e-fault-rollout';
    const ip = await optedIn(ns);
    apply([rolloutDeployment('roll', ns, 'example.com:80')]);
    await eventually('4 pods v1', () => livePods(ns, 'roll').filter((p) => p.status?.podIP).length === 4, 90_000);

    await stopProcess(e.processes.webhook);
    apply([rolloutDeployment('roll', ns, 'example.com:80, example.net:80')]);
    await sleep(4000);
    const during = livePods(ns, 'roll');
    expect(during.length).toBeGreaterThanOrEqual(4);
    for (const pod of during) expect(routedCorrectly(pod, ip)).toBe(true);
    // maxUnavailable 0: the old pods keep serving; no new-template pod exists unrouted.
    expect(during.filter((p) => p.spec.hostAliases?.[0]?.hostnames.includes('example.net'))).toHaveLength(0);
    const rsEvents = k([
      'get',
      'events',
      '-n',
      ns,
      '--field-selector',
      'reason=FailedCreate',
      '-o',
      'jsonpath={.items[*].message}',
    ]);
    expect(rsEvents).toMatch(/failed calling webhook "pods\.wpgw\.io"/);

    startProcess('webhook', e.processes.webhook);
    await eventually('webhook back', () => isReady(e.webhookPort));
    await eventually(
      'rollout finished with every pod on the new destinations',
      () => {
        const pods = livePods(ns, 'roll');
        return (
          pods.length === 4 &&
          pods.every((p) => routedCorrectly(p, ip) && p.spec.hostAliases[0].hostnames.includes('example.net'))
        );
      },
      120_000,
    );
  });

  it('controller killed mid-reconcile converges after restart, with no orphans and no duplicates', async () => {
    const e = env();
    const ns = 'e2e-fault-controller';
    await optedIn(ns);
    const apps = ['a1', 'a2', 'a3', 'a4', 'a5'];
    apply(apps.flatMap((a) => [windowsDeployment(a, ns, `${a}-dep.example.com:80`, 1), appService(a, ns)]));
    await sleep(700);
    await stopProcess(e.processes.controller, 'SIGKILL');
    // While it is down: one app goes away (its objects must not be orphaned), one arrives.
    k(['delete', 'service', 'a5', '-n', ns]);
    k(['delete', 'deployment', 'a5', '-n', ns]);
    apply([windowsDeployment('a6', ns, 'a6-dep.example.com:80', 1), appService('a6', ns)]);
    startProcess('controller', e.processes.controller);
    const live = ['a1', 'a2', 'a3', 'a4', 'a6'];
    const expected = live.flatMap((a) => [
      `Service/${a}-app`,
      `Gateway/wpgw-in-${a}`,
      `VirtualService/wpgw-in-${a}`,
      `VirtualService/wpgw-out-${a}-dep.example.com-80`,
    ]);
    await eventually(
      'converged after the restart',
      () => {
        const objects = managedObjects(ns);
        return expected.every((o) => objects.includes(o)) && !objects.some((o) => o.includes('a5'))
          ? objects
          : undefined;
      },
      120_000,
    );
    const objects = managedObjects(ns);
    expect(new Set(objects).size).toBe(objects.length);
    expect(objects.filter((o) => o.startsWith('Service/'))).toEqual(
      ['Service/wpgw', ...live.map((a) => `Service/${a}-app`)].sort(),
    );
    // Events are deduplicated by content: one GatewayReady for the namespace at most.
    const ready = list(['events', '-n', ns, '--field-selector', 'reason=GatewayReady']);
    expect(ready.length).toBeLessThanOrEqual(1);
  });

  it('API server restarted mid-reconcile: watches recover and the namespace converges', async (ctx) => {
    const e = env();
    if (!e.ownCluster) ctx.skip(); // cannot restart someone else's API server
    const ns = 'e2e-fault-apiserver';
    await optedIn(ns);
    apply(['b1', 'b2', 'b3'].flatMap((a) => [windowsDeployment(a, ns, `${a}.example.com:80`, 1), appService(a, ns)]));
    await sleep(500);
    await restartApiServer(join(e.stateDir, 'cluster'));
    apply([windowsDeployment('b4', ns, 'b4.example.com:80', 1), appService('b4', ns)]);
    await eventually(
      'converged after the API server restart',
      () =>
        ['b1', 'b2', 'b3', 'b4'].every(
          (a) =>
            managedObjects(ns).includes(`Service/${a}-app`) &&
            getJson(['service', a, '-n', ns])?.spec?.selector?.['wpgw.io/gateway'] === ns,
        ),
      120_000,
    );
    const objects = managedObjects(ns);
    expect(new Set(objects).size).toBe(objects.length);
  });

  it('rotating the serving certificate under load fails no admission', async () => {
    const e = env();
    const ns = 'e2e-fault-rotation';
    await optedIn(ns);
    const dir = join(e.stateDir, 'rotation');
    mkdirSync(dir, { recursive: true });
    const now = new Date();
    const ca = await generateCa({ now, validityMs: 86_400_000 });
    const identity = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] };
    const leaf1 = await generateLeaf({ ca, identity, now, validityMs: 3_600_000 });
    const leaf2 = await generateLeaf({ ca, identity, now, validityMs: 7_200_000 });
    writeFileSync(join(dir, 'tls.crt'), leaf1.cert);
    writeFileSync(join(dir, 'tls.key'), leaf1.key);
    const port = await freePort();
    const fileMode = {
      ...e.processes.webhook,
      args: [
        'webhook',
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--tls-cert-file',
        join(dir, 'tls.crt'),
        '--tls-key-file',
        join(dir, 'tls.key'),
        '--tls-reload-interval',
        '500ms',
      ],
      pidFile: join(dir, 'webhook.pid'),
      log: join(dir, 'webhook.log'),
    };
    // The Secret-mode webhook would patch its own CA back into the configuration: stop it here.
    await stopProcess(e.processes.webhook);
    startProcess('webhook-files', fileMode);
    const mwc = getJson(['mutatingwebhookconfiguration', 'wpgw']);
    const original = JSON.parse(JSON.stringify(mwc.webhooks.map((w: any) => w.clientConfig)));
    try {
      await eventually('file-mode webhook ready', () => isReady(port));
      const caBundle = Buffer.from(ca.cert).toString('base64');
      const patch = mwc.webhooks.map((_: unknown, i: number) => ({
        op: 'replace',
        path: `/webhooks/${i}/clientConfig`,
        value: { url: `https://127.0.0.1:${port}/mutate`, caBundle },
      }));
      k(['patch', 'mutatingwebhookconfiguration', 'wpgw', '--type=json', '-p', JSON.stringify(patch)]);

      const kc = new KubeConfig();
      kc.loadFromFile(e.kubeconfig);
      const api = kc.makeApiClient(CoreV1Api);
      const pod = (i: number) => ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `load-${i}`, namespace: ns, annotations: { 'wpgw.io/outbound': 'example.com:80' } },
        spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [{ name: 'app', image: 'app' }] },
      });
      let ok = 0;
      let failed = 0;
      const failures: string[] = [];
      let swapped = false;
      const deadline = Date.now() + 12_000;
      const worker = async (w: number) => {
        for (let i = 0; Date.now() < deadline; i++) {
          try {
            // dryRun: the full admission chain runs, nothing is stored.
            const created = await api.createNamespacedPod({ namespace: ns, body: pod(w * 100_000 + i), dryRun: 'All' });
            if (created.spec?.hostAliases?.[0]?.hostnames?.includes('example.com')) ok++;
            else {
              failed++;
              failures.push('admitted without routing');
            }
          } catch (err) {
            failed++;
            if (failures.length < 5) failures.push(String((err as { body?: unknown }).body ?? err));
          }
        }
      };
      const load = Promise.all([0, 1, 2, 3].map(worker));
      await sleep(5000);
      // Swap key and certificate; the reloader only takes a pair that matches.
      writeFileSync(join(dir, 'tls.key'), leaf2.key);
      writeFileSync(join(dir, 'tls.crt'), leaf2.cert);
      swapped = true;
      await load;
      process.stdout.write(`[e2e] rotation under load: ${ok} admissions ok, ${failed} failed\n`);
      expect(swapped).toBe(true);
      expect(failures).toEqual([]);
      expect(ok).toBeGreaterThan(20);
      expect(await servedFingerprint(port)).toBe(new X509Certificate(leaf2.cert).fingerprint256);
    } finally {
      await stopProcess(fileMode);
      const restore = original.map((c: unknown, i: number) => ({
        op: 'replace',
        path: `/webhooks/${i}/clientConfig`,
        value: c,
      }));
      k(['patch', 'mutatingwebhookconfiguration', 'wpgw', '--type=json', '-p', JSON.stringify(restore)]);
      startProcess('webhook', e.processes.webhook);
      await eventually('Secret-mode webhook back', () => isReady(e.webhookPort));
    }
  });

  it('nothing is served in plaintext and TLS below 1.2 is refused (webhook and controller)', async () => {
    const e = env();
    for (const port of [e.webhookPort, e.controllerPort]) {
      expect(await plaintextAnswer(port)).toBe('');
      expect(await tlsHandshake(port, 'TLSv1.1')).toBe('refused');
      expect(await tlsHandshake(port, 'TLSv1.2')).toBe('ok');
    }
  });
});

/** Restarts kube-apiserver with its own command line (harness clusters only). */
async function restartApiServer(clusterState: string): Promise<void> {
  const pid = Number(readFileSync(join(clusterState, 'apiserver.pid'), 'utf8'));
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  // Graceful first; open watches can hold a terminating API server for a while, then it is a crash.
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (alive() && Date.now() < deadline) await sleep(200);
  if (alive()) process.kill(pid, 'SIGKILL');
  await eventually('old API server gone', () => !alive());
  const log = join(clusterState, 'logs', 'apiserver.log');
  writeFileSync(log, `\n--- restarted by the e2e suite ---\n`, { flag: 'a' });
  const out = openSync(log, 'a');
  // detached: its own session, like up.sh starts it; the pid file keeps down.sh able to stop it.
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', out, out], detached: true, env: process.env });
  child.unref();
  writeFileSync(join(clusterState, 'apiserver.pid'), String(child.pid));
  await eventually('API server ready', () => kubectl(['get', '--raw', '/readyz']).stdout.trim() === 'ok', 90_000);
}

function plaintextAnswer(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = netConnect(port, '127.0.0.1', () => socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
    let data = '';
    socket.setTimeout(2000);
    socket.on('data', (d) => (data += d.toString('latin1')));
    const done = () => resolve(data.startsWith('HTTP/') ? data.split('\r\n')[0]! : '');
    socket.on('timeout', () => {
      socket.destroy();
      done();
    });
    socket.on('close', done);
    socket.on('error', done);
  });
}

function tlsHandshake(port: number, version: 'TLSv1.1' | 'TLSv1.2'): Promise<'ok' | 'refused'> {
  return new Promise((resolve) => {
    // SECLEVEL=0 lets this client offer TLS 1.1 at all, so a refusal is the server's doing.
    const socket = tlsConnect(
      {
        port,
        host: '127.0.0.1',
        rejectUnauthorized: false,
        minVersion: version,
        maxVersion: version,
        ciphers: 'DEFAULT@SECLEVEL=0',
      },
      () => {
        socket.end();
        resolve('ok');
      },
    );
    socket.on('error', () => resolve('refused'));
  });
}

function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.end();
      resolve(cert?.fingerprint256 ?? '');
    });
    socket.on('error', reject);
  });
}
