// Issue 17 on the real control plane: the controller watches Nodes (with exactly its RBAC from
// manifests/) and a node that joins with a pod CIDR and an address outside the ranges denied
// anyway is excepted from every gateway's external egress within seconds, and is gone again when
// the node leaves; `wpgw status` shows the ranges in force and, with the controller pinning, a
// declared name it refused (from the controller's egress report ConfigMap).
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startProc, stopProc, type Proc } from '../datapath/procs.js';
import { freePort, isReady, startProcess, stopProcess } from './global-setup.js';
import {
  apply,
  createNamespace,
  env,
  eventually,
  getJson,
  k,
  waitForDefaultServiceAccount,
  windowsDeployment,
} from './helpers.js';

const ROOT = resolve(import.meta.dirname, '../..');
const NS = 'e2e-node-ranges';
const NODE = 'e2e-edge-1';
const POD_CIDR = '198.51.100.0/24';
const NODE_IP = '203.0.113.77';
/** "Within seconds": the watch batches for 1 s, the namespace's batching window adds a little. */
const DEADLINE = 30_000;

const status = () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist/src/cli.js'), 'status', '-n', NS], {
    env: { ...process.env, KUBECONFIG: env().kubeconfig },
    encoding: 'utf8',
  });
  return `${r.stdout}${r.stderr}`;
};
/** The except list of the policy's IPv4 internet rule. */
const internetExcept = (): string[] | undefined => {
  const p = getJson(['networkpolicy', 'wpgw-gateway-egress', '-n', NS]);
  const rules = (p?.spec?.egress ?? []) as Array<{ to?: Array<{ ipBlock?: { cidr: string; except?: string[] } }> }>;
  return rules.flatMap((r) => r.to ?? []).find((t) => t.ipBlock?.cidr === '0.0.0.0/0')?.ipBlock?.except;
};

describe('issue 17: the cluster ranges from Nodes, and refusals in wpgw status', () => {
  afterAll(() => {
    k(['delete', 'node', NODE, '--ignore-not-found', '--wait=false']);
  });

  it('a node added with a pod CIDR shows up in wpgw-gateway-egress within seconds, one removed goes away; status names both', async () => {
    createNamespace(NS);
    await waitForDefaultServiceAccount(NS);
    apply([windowsDeployment('prober', NS, 'example.com:80', 1)]);
    const before = await eventually(
      'wpgw-gateway-egress with the internet rule (an external destination is declared)',
      internetExcept,
      120_000,
    );
    expect(before).not.toContain(POD_CIDR);
    // a node kwok does not manage: its object is all the controller reads
    apply([
      {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: NODE, labels: { 'kubernetes.io/os': 'linux' } },
        spec: { podCIDR: POD_CIDR, podCIDRs: [POD_CIDR], taints: [{ key: 'e2e/no-pods', effect: 'NoSchedule' }] },
      },
    ]);
    // status.addresses is the status subresource: written as a kubelet would
    k([
      'patch',
      'node',
      NODE,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({
        status: {
          addresses: [
            { type: 'InternalIP', address: NODE_IP },
            { type: 'Hostname', address: NODE },
          ],
        },
      }),
    ]);
    const t0 = Date.now();
    const added = await eventually(
      "the new node's pod CIDR and address excepted",
      () => {
        const e = internetExcept();
        return e?.includes(POD_CIDR) && e.includes(`${NODE_IP}/32`) ? e : undefined;
      },
      DEADLINE,
    );
    process.stdout.write(`[e2e] node ${NODE} in wpgw-gateway-egress after ${Date.now() - t0} ms\n`);
    expect(added).toEqual(expect.arrayContaining(['10.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16']));
    const text = await eventually(
      'wpgw status shows the discovered ranges',
      () => {
        const s = status();
        return s.includes(`${POD_CIDR} (node ${NODE} podCIDR)`) ? s : undefined;
      },
      DEADLINE,
    );
    expect(text).toContain('egress ranges: --cluster-cidrs none; discovered: nodes watched, ServiceCIDRs watched');
    expect(text).toContain(`${NODE_IP}/32 (node ${NODE} InternalIP)`);

    const t1 = Date.now();
    k(['delete', 'node', NODE, '--wait=true']);
    await eventually(
      "the removed node's ranges gone",
      () => {
        const e = internetExcept();
        return e && !e.includes(POD_CIDR) && !e.includes(`${NODE_IP}/32`);
      },
      DEADLINE,
    );
    process.stdout.write(`[e2e] node ${NODE} gone from wpgw-gateway-egress after ${Date.now() - t1} ms\n`);
    expect(internetExcept()).toEqual(before);
  });

  describe('with the controller pinning external names', () => {
    let dns: Proc | undefined;
    afterAll(async () => {
      // the files after this one expect the controller as global setup started it
      const e = env();
      await stopProcess(e.processes.controller);
      startProcess('controller', e.processes.controller);
      if (dns) await stopProc(dns);
      await eventually('controller ready again', () => isReady(e.controllerPort), 60_000);
    });

    it('wpgw status shows a name refused for its address, on its workload, with the hint', async () => {
      const e = env();
      const port = await freePort();
      dns = startProc('dns for the controller', process.execPath, [join(ROOT, 'test/datapath/apps/dns.mjs')], {
        log: join(e.stateDir, 'e2e-dns.log'),
        env: {
          ...process.env,
          DNS_RECORDS: JSON.stringify({ 'meta.e2e.test': '169.254.169.254', 'example.com': '93.184.216.34' }),
          DNS_BIND: `127.0.0.1:${port}`,
        },
      });
      apply([windowsDeployment('prober', NS, 'meta.e2e.test:80 example.com:80', 1)]);
      await stopProcess(e.processes.controller);
      startProcess('controller', {
        ...e.processes.controller,
        args: [...e.processes.controller.args, '--external-names', 'pin', '--external-dns-server', `127.0.0.1:${port}`],
      });
      const text = await eventually(
        'wpgw status lists the refusal',
        () => {
          const s = status();
          return s.includes('refused:') ? s : undefined;
        },
        120_000,
      );
      expect(text).toMatch(
        /refused: {6}Deployment\/prober \(pod prober-[a-z0-9-]+\): "meta\.e2e\.test:80": meta\.e2e\.test resolves to 169\.254\.169\.254 \(in 169\.254\.0\.0\/16, link-local, incl\. the cloud metadata address 169\.254\.169\.254\); not routed; never allowed/,
      );
      // the good one is pinned, the refused one not routed
      const entries = JSON.parse(k(['get', 'serviceentries', '-n', NS, '-o', 'json'])).items as Array<{
        spec: { hosts: string[]; resolution: string };
      }>;
      expect(entries.map((x) => `${x.spec.hosts[0]} ${x.spec.resolution}`)).toEqual(['example.com STATIC']);
    });
  });
});
