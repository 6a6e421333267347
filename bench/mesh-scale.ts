// Mesh-wide outbound cost (issue 18): how the config of one namespace's gateway grows with the
// Services in its wpgw.io/mesh-outbound scope, and what one Service change costs the controller.
//
//   node dist/bench/mesh-scale.js [--sizes 100,1000,5000] [--rounds 5]
//
// Runs the controller's own code paths, in process: desiredNamespaceState over a cluster of N
// HTTP Services in scope (plus the seed's two declared destinations), then, per Service change
// (one Service added), the full recompute plus the controller's apply decision (needsApply against
// the previous state as the live objects). The baseline is the same namespace with no mesh-wide
// scope, measured in the same run. Prints numbers and PASS/MISS against targets; never fails.
import { parseArgs } from 'node:util';
import { needsApply } from '../src/controller/compare.js';
import { desiredNamespaceState } from '../src/core/desired.js';
import type { KubeObject } from '../src/core/desired-types.js';
import { input, OPTS, services } from './mesh-fixtures.js';
import { FIELD_MANAGER } from '../src/names.js';

/** ConfigMap data is limited to 1 MiB by the API server: the Corefile must fit. */
const CONFIGMAP_LIMIT = 1024 * 1024;
/** etcd's default request limit (1.5 MiB): no single object may be larger. */
const OBJECT_LIMIT = 1.5 * 1024 * 1024;
const TARGETS = { perChangeMs: 100, corefileBytes: CONFIGMAP_LIMIT, objectBytes: OBJECT_LIMIT };

function cpuMs<T>(fn: () => T): { value: T; ms: number } {
  const t0 = process.cpuUsage();
  const value = fn();
  const d = process.cpuUsage(t0);
  return { value, ms: (d.user + d.system) / 1000 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Row {
  label: string;
  inScope: number;
  objects: number;
  virtualServices: number;
  httpRoutes: number;
  dnsNames: number;
  corefileBytes: number;
  desiredBytes: number;
  largest: { name: string; bytes: number };
  fullMs: number;
  perChangeMs: number;
  writesPerChange: number;
}

function measure(label: string, mesh: boolean, n: number, rounds: number): Row {
  const cluster = services(n);
  const state = desiredNamespaceState(input(mesh, cluster), OPTS);
  const full = median(
    Array.from({ length: rounds }, () => cpuMs(() => desiredNamespaceState(input(mesh, cluster), OPTS)).ms),
  );
  // One Service change: a Service added; the controller recomputes the namespace and decides per object.
  const live = new Map(state.objects.map((o) => [key(o), o]));
  let writes = 0;
  const change = median(
    Array.from(
      { length: rounds },
      (_, r) =>
        cpuMs(() => {
          const next = desiredNamespaceState(input(mesh, [...cluster, ...services(1, n + r)]), OPTS);
          writes = next.objects.filter((o) => needsApply(o, live.get(key(o)), FIELD_MANAGER)).length;
          return next;
        }).ms,
    ),
  );
  const vs = state.objects.filter((o) => o.kind === 'VirtualService');
  const corefile =
    (state.objects.find((o) => o.kind === 'ConfigMap') as { data?: { Corefile?: string } } | undefined)?.data
      ?.Corefile ?? '';
  return {
    label,
    inScope: mesh ? n : 0,
    objects: state.objects.length,
    virtualServices: vs.length,
    httpRoutes: vs.reduce((a, v) => a + ((v as { spec?: { http?: unknown[] } }).spec?.http ?? []).length, 0),
    dnsNames: (/hosts \{\n\s+\S+ ([^\n]*)/.exec(corefile)?.[1] ?? '').split(' ').filter(Boolean).length,
    corefileBytes: Buffer.byteLength(corefile),
    desiredBytes: Buffer.byteLength(JSON.stringify(state.objects)),
    largest: state.objects
      .map((o) => ({ name: key(o), bytes: Buffer.byteLength(JSON.stringify(o)) }))
      .sort((a, b) => b.bytes - a.bytes)[0]!,
    fullMs: full,
    perChangeMs: change,
    writesPerChange: writes,
  };
}

function key(o: KubeObject): string {
  return `${o.kind}/${o.metadata.name}`;
}

function kib(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

function main(): void {
  const { values } = parseArgs({ options: { sizes: { type: 'string' }, rounds: { type: 'string' } } });
  const sizes = (values.sizes ?? '100,1000,5000').split(',').map(Number);
  const rounds = Number(values.rounds ?? 5);
  const rows: Row[] = [];
  for (const n of sizes) {
    process.stderr.write(`[mesh-scale] ${n} Services in the cluster: baseline, then mesh-wide */*\n`);
    rows.push(measure(`baseline (${n} in cluster, none in scope)`, false, n, rounds));
    rows.push(measure(`mesh-wide, ${n} in scope`, true, n, rounds));
  }
  const misses: string[] = [];
  console.log(
    "wpgw mesh-wide outbound: one namespace's gateway config vs Services in scope (desiredNamespaceState, in process)",
  );
  console.log(
    '| case | objects | VirtualServices | HTTP routes | wpgw-dns names | Corefile | desired JSON | largest object | full recompute CPU | per Service change CPU | writes per change |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const coreOk = r.corefileBytes <= TARGETS.corefileBytes;
    const changeOk = r.perChangeMs <= TARGETS.perChangeMs;
    if (!coreOk) misses.push(`${r.label}: Corefile ${kib(r.corefileBytes)} > ConfigMap limit 1 MiB`);
    const objOk = r.largest.bytes <= TARGETS.objectBytes;
    if (!objOk) misses.push(`${r.label}: ${r.largest.name} is ${kib(r.largest.bytes)} > etcd's 1.5 MiB request limit`);
    if (!changeOk) misses.push(`${r.label}: per change ${r.perChangeMs.toFixed(1)} ms > ${TARGETS.perChangeMs} ms`);
    console.log(
      `| ${r.label} | ${r.objects} | ${r.virtualServices} | ${r.httpRoutes} | ${r.dnsNames} | ${kib(r.corefileBytes)} ${coreOk ? 'PASS' : 'MISS'} | ${kib(r.desiredBytes)} | ${r.largest.name} ${kib(r.largest.bytes)} ${objOk ? 'PASS' : 'MISS'} | ${r.fullMs.toFixed(1)} ms | ${r.perChangeMs.toFixed(1)} ms ${changeOk ? 'PASS' : 'MISS'} | ${r.writesPerChange} |`,
    );
  }
  console.log(
    `targets: Corefile <= 1 MiB (the API server's ConfigMap limit), every object <= 1.5 MiB (etcd's request limit), per Service change <= ${TARGETS.perChangeMs} ms controller CPU; median of ${rounds} rounds`,
  );
  console.log(misses.length ? `MISS:\n${misses.map((m) => `  ${m}`).join('\n')}` : 'all PASS');
}

main();
