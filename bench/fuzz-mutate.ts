// Hostile input at scale (issue 17), not part of `npm test`:
//   npm run build && npm run fuzz:mutate [-- --rounds R --scale N]
// starts the built webhook in its own process (dist/bench/server.js --mode wpgw: startWebhook with
// dev TLS, the real admit(), info logs), then runs test/unit/fuzz-mutate.test.ts's generators
// against its /mutate over HTTPS R times (WPGW_FUZZ_TARGET, WPGW_FUZZ_SCALE=N; each round ~3,900 x N
// requests). Prints requests and answers by status per round, the server's RSS before, after each
// round and its peak, and PASS/MISS for: >= 100,000 requests, zero 5xx (every round's assertions
// pass), the server alive and healthy at the end, RSS flat (after the last round within 10% + 16 MiB
// of after the first, once warm).
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { procStatusMiB } from '../test/lib/proc.js';
import type { ServerReady } from './server.js';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, '../..');

interface Round {
  requests: number;
  statuses: string;
  ok: boolean;
  seconds: number;
  rssMiB: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, scale: { type: 'string' } } });
  const rounds = Number(values.rounds ?? 3);
  const scale = Number(values.scale ?? 9);
  if (!Number.isInteger(rounds) || rounds < 1 || !(scale > 0))
    throw new Error('usage: fuzz-mutate.js [--rounds R (>= 1)] [--scale N (> 0)]');
  const certDir = mkdtempSync(join(tmpdir(), 'wpgw-fuzz-'));
  const server = fork(join(here, 'server.js'), ['--mode', 'wpgw', '--cert-dir', certDir], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  let exit: string | undefined;
  server.on('exit', (code, signal) => (exit = `exit code ${code} signal ${signal}`));
  const ready = await new Promise<ServerReady>((res, rej) => {
    server.once('message', (m) => res(m as ServerReady));
    server.once('exit', () => rej(new Error(`the webhook exited before it listened (${exit})`)));
  });
  const pid = server.pid!;
  const caFile = join(certDir, 'ca.crt');
  const idle = procStatusMiB(pid, 'VmRSS');
  process.stderr.write(
    `fuzz-mutate: webhook pid ${pid} on 127.0.0.1:${ready.port}, RSS ${idle.toFixed(1)} MiB; ${rounds} round(s) at WPGW_FUZZ_SCALE=${scale}\n`,
  );

  const results: Round[] = [];
  for (let i = 1; i <= rounds; i++) {
    const t0 = performance.now();
    const { code, out } = await vitest({
      WPGW_FUZZ_TARGET: JSON.stringify({ port: ready.port, caFile }),
      WPGW_FUZZ_SCALE: String(scale),
    });
    const line = /fuzz-mutate: (\d+) requests \(.*\); answers by status ([\d: ]+)/.exec(out);
    const round: Round = {
      requests: Number(line?.[1] ?? 0),
      statuses: line?.[2]?.trim() ?? '(no summary)',
      ok: code === 0 && line !== null,
      seconds: (performance.now() - t0) / 1000,
      rssMiB: exit ? NaN : procStatusMiB(pid, 'VmRSS'),
    };
    results.push(round);
    process.stderr.write(
      `fuzz-mutate: round ${i}: ${round.requests} requests in ${round.seconds.toFixed(0)} s, statuses ${round.statuses}, vitest exit ${code}, RSS ${round.rssMiB.toFixed(1)} MiB\n`,
    );
    if (!round.ok)
      process.stderr.write(
        out
          .split('\n')
          .filter((l) => /FAIL|Error|5xx|expected/.test(l))
          .slice(0, 40)
          .join('\n') + '\n',
      );
    if (exit) break;
  }
  const healthy = exit ? false : await healthz(ready.port, readFileSync(caFile, 'utf8'));
  const peak = exit ? NaN : procStatusMiB(pid, 'VmHWM');
  const died = exit; // before our own disconnect below ends it
  server.disconnect();
  await new Promise((r) => (exit ? r(undefined) : server.once('exit', r)));
  rmSync(certDir, { recursive: true, force: true });

  const total = results.reduce((a, r) => a + r.requests, 0);
  const first = results[0]!.rssMiB;
  const last = results.at(-1)!.rssMiB;
  const limit = first * 1.1 + 16;
  const checks: Array<[string, boolean, string]> = [
    ['>= 100,000 hostile requests', total >= 100_000, `${total}`],
    [
      'zero 5xx, every answer well-formed (all rounds passed)',
      results.every((r) => r.ok),
      results.map((r) => r.statuses).join(' | '),
    ],
    ['server alive and /healthz ok afterwards', healthy && !died, died ?? 'alive, /healthz 200'],
    [
      'RSS flat: last round <= first round x 1.1 + 16 MiB',
      results.length > 1 && last <= limit,
      `${first.toFixed(1)} -> ${last.toFixed(1)} MiB (limit ${limit.toFixed(1)})`,
    ],
  ];
  console.log('| round | requests | seconds | answers by status | RSS after (MiB) |');
  console.log('|---|---|---|---|---|');
  results.forEach((r, i) =>
    console.log(`| ${i + 1} | ${r.requests} | ${r.seconds.toFixed(0)} | ${r.statuses} | ${r.rssMiB.toFixed(1)} |`),
  );
  console.log(`\nserver RSS: idle ${idle.toFixed(1)} MiB, peak (VmHWM) ${peak.toFixed(1)} MiB\n`);
  for (const [what, pass, detail] of checks) console.log(`${pass ? 'PASS' : 'MISS'} ${what}: ${detail}`);
  process.exitCode = checks.every((c) => c[1]) ? 0 : 1;
}

function vitest(env: Record<string, string>): Promise<{ code: number; out: string }> {
  return new Promise((res) => {
    const child = spawn(
      process.execPath,
      [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--project', 'unit', 'test/unit/fuzz-mutate.test.ts'],
      {
        cwd: ROOT,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('close', (code) => res({ code: code ?? 1, out }));
  });
}

function healthz(port: number, ca: string): Promise<boolean> {
  return new Promise((res) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', ca, servername: 'localhost' }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode === 200));
    });
    req.on('error', () => res(false));
    req.end();
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`fuzz-mutate failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
