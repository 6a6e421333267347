// The pure half of `npm run bench:datapath`: vegeta's CSV, latencies from the intended send time
// (no coordinated omission), the summaries over rounds and the PASS/MISS of issue 10's targets.
import { describe, expect, it } from 'vitest';
import {
  formatReport,
  openLoop,
  parseCsv,
  summarize,
  throughput,
  vcpuPer1k,
  vegetaResults,
  verdicts,
  type RoundResult,
  type VegetaResult,
} from '../datapath/report.js';

const T = 1_800_000_000_000_000_000n; // ns since the epoch: beyond Number's exact range
/** A result started `startMs` after T, answered after `latencyMs`. */
const res = (seq: number, startMs: number, latencyMs: number, code = 200, error = ''): VegetaResult => ({
  startNs: T + BigInt(Math.round(startMs * 1e6)),
  code,
  latencyNs: Math.round(latencyMs * 1e6),
  error,
  seq,
});

describe('vegeta CSV', () => {
  it('parses quoted fields with commas, quotes and newlines, and keeps nanosecond timestamps exact', () => {
    expect(parseCsv('a,"b,c","say ""hi""",\n"x\ny",2\n')).toEqual([
      ['a', 'b,c', 'say "hi"', ''],
      ['x\ny', '2'],
    ]);
    const csv =
      '1800000000000000001,200,1500000,0,512,,,,0,GET,http://x/,\n1800000000000000002,0,30000000000,0,0,"Get ""http://x/"": dial tcp: connection refused",,,1,GET,http://x/,\n';
    const r = vegetaResults(csv);
    expect(r).toEqual([
      { startNs: 1800000000000000001n, code: 200, latencyNs: 1500000, error: '', seq: 0 },
      {
        startNs: 1800000000000000002n,
        code: 0,
        latencyNs: 30000000000,
        error: 'Get "http://x/": dial tcp: connection refused',
        seq: 1,
      },
    ]);
  });

  it('rejects lines that are not vegeta results', () => {
    expect(() => vegetaResults('timestamp,code,latency,a,b,c,d,e,seq\n')).toThrow(/not a vegeta CSV result/);
  });
});

describe('open-loop latency from the intended send time', () => {
  it('charges a request that left late for the time it waited (no coordinated omission)', () => {
    // 1,000 req/s: due at 0, 1, 2, 3 ms. The third left 5 ms late (the generator or a full
    // connection pool held it) and took 1 ms: 6 ms from when it was due, not 1 ms.
    const r = openLoop([res(0, 0, 1), res(1, 1, 1), res(2, 7, 1), res(3, 3, 1)], 1000);
    expect(r.latenciesMs.map((x) => Number(x.toFixed(3)))).toEqual([1, 1, 1, 6]);
    expect(r.lagMs.map((x) => Number(x.toFixed(3)))).toEqual([0, 0, 0, 5]);
    expect(r).toMatchObject({ rate: 1000, due: 4, sent: 4, ok: 4, failed: 0 });
    expect(openLoop([res(0, 0, 1)], 1000, 5)).toMatchObject({ due: 5, sent: 1 });
    expect(r.seconds).toBeCloseTo(0.008, 6);
  });

  it('estimates the schedule start from the request that left least late', () => {
    // every request 2 ms after its due time except seq 1 (on time): t0 = 0 (seq 1 started at 5 ms = 0 + 1 * 5)
    const r = openLoop([res(0, 2, 1), res(1, 5, 1), res(2, 12, 1)], 200);
    expect(r.lagMs.map((x) => Number(x.toFixed(3)))).toEqual([0, 2, 2]);
    expect(r.latenciesMs.map((x) => Number(x.toFixed(3)))).toEqual([1, 3, 3]);
  });

  it('counts failures by error, without a latency', () => {
    const r = openLoop(
      [
        res(0, 0, 1),
        res(1, 1, 2, 503, '503 Service Unavailable'),
        res(2, 2, 30, 0, 'timeout'),
        res(3, 3, 1, 503, '503 Service Unavailable'),
      ],
      1000,
    );
    expect(r).toMatchObject({ ok: 1, failed: 3, errors: { '503 Service Unavailable': 2, timeout: 1 } });
    expect(r.latenciesMs).toHaveLength(1);
  });

  it('closed-loop throughput: answers over first start to last end', () => {
    expect(throughput([res(0, 0, 10), res(1, 0, 10), res(2, 10, 10), res(3, 10, 10, 500)])).toEqual({
      rps: 150,
      ok: 3,
      failed: 1,
    });
  });
});

/** A round of a path at two rates, latencies spread uniformly up to `maxMs`. */
function round(path: RoundResult['path'], n: number, maxMs: number, proxy?: { cpu: number }): RoundResult {
  const run = (rate: number) => ({
    rate,
    due: 100,
    sent: 100,
    ok: 100,
    failed: 0,
    errors: {},
    latenciesMs: Array.from({ length: 100 }, (_, i) => ((i + 1) * maxMs) / 100),
    lagMs: Array.from({ length: 100 }, () => 0.1),
    seconds: 100 / rate,
    ...(proxy ? { proxy: { cpuSeconds: proxy.cpu / 10, requests: 100, rssMiB: 40 + n } } : {}),
  });
  return {
    path,
    round: n,
    runs: [run(200), run(1000)],
    saturation: { rps: 3000 + n * 100, ok: 100, failed: 0, workers: 16 },
  };
}

describe('summaries and targets', () => {
  it('takes the median over rounds and reports the p90 spread', () => {
    const s = summarize([round('a', 0, 10), round('a', 1, 20), round('a', 2, 30)]);
    expect(s).toHaveLength(1);
    const at1k = s[0]!.rates.find((r) => r.rate === 1000)!;
    expect(at1k.p90).toBeCloseTo(18, 6);
    expect(at1k.p90min).toBeCloseTo(9, 6);
    expect(at1k.p90max).toBeCloseTo(27, 6);
    expect(at1k.p50).toBeCloseTo(10, 6);
    expect(s[0]!.saturationRps).toBe(3100);
    expect([s[0]!.saturationMin, s[0]!.saturationMax]).toEqual([3000, 3200]);
  });

  it('vCPU per 1,000 req/s: 0.2 ms of CPU per answered request is 0.2 (1 CPU-second for 5,000 answers); no answers: NaN', () => {
    expect(vcpuPer1k({ cpuSeconds: 1, requests: 5000, rssMiB: 1 })).toBeCloseTo(0.2, 9);
    expect(vcpuPer1k({ cpuSeconds: 1, requests: 0, rssMiB: 1 })).toBeNaN();
  });

  it('PASS when (c),(d) stay within 1.1x of (b) and 1 ms of (a) and the gateway within 0.35 vCPU; MISS otherwise', () => {
    // (a) p90 1.8 ms, (b) 3.6, (c) 3.78 (1.05x of b but +1.98 ms over a), (d) 4.5 (1.25x)
    const rounds = [
      round('a', 0, 2),
      round('b', 0, 4, { cpu: 0.2 }),
      round('c', 0, 4.2, { cpu: 0.2 }),
      round('d', 0, 5, { cpu: 0.5 }),
    ];
    const v = verdicts(summarize(rounds));
    const by = Object.fromEntries(v.map((x) => [x.what, x.pass]));
    expect(by).toEqual({
      '(c) mesh -> wpgw -> Windows: p90 vs (b) at 1000/s': true,
      '(c) mesh -> wpgw -> Windows: p90 over (a) at 1000/s': false,
      '(c) mesh -> wpgw -> Windows: wpgw CPU at 1000/s': true,
      '(d) Windows -> wpgw -> mesh: p90 vs (b) at 1000/s': false,
      '(d) Windows -> wpgw -> mesh: p90 over (a) at 1000/s': false,
      '(d) Windows -> wpgw -> mesh: wpgw CPU at 1000/s': false,
    });
    const text = formatReport(summarize(rounds), v, ['# header']);
    expect(text).toContain('PASS  (c) mesh -> wpgw -> Windows: p90 vs (b) at 1000/s: 1.05x');
    expect(text).toContain('MISS  (d) Windows -> wpgw -> mesh: wpgw CPU at 1000/s: 0.500 vCPU per 1,000 req/s');
    expect(text).toMatch(
      /\| \(c\) mesh app sidecar -> wpgw -> Windows app \| 1000 \| 2\.10 \| 3\.78 \(3\.78-3\.78\) \| 4\.16 \| 100 of 100 \/ 0 \|/,
    );
    expect(text.split('\n').pop()).toMatch(/^MISS: /);
    expect(text, 'saturation 3,000+ req/s: 1,000 req/s is not over it').not.toContain('over saturation');
    // at another rate, without the CPU target; a path faster than (a) shows a minus
    const at200 = verdicts(summarize([round('a', 0, 5), round('c', 0, 4)]), 200, false);
    expect(at200.map((x) => [x.what, x.value, x.pass])).toEqual([
      ['(c) mesh -> wpgw -> Windows: p90 over (a) at 200/s', '-0.90 ms (3.60 vs 4.50 ms)', true],
    ]);
  });

  it('says when a rate is over a path`s saturation (the latency is queueing, not the hop)', () => {
    const slow = (path: RoundResult['path'], maxMs: number) => ({
      ...round(path, 0, maxMs),
      saturation: { rps: 800, ok: 100, failed: 0, workers: 8 },
    });
    const s = summarize([round('a', 0, 2), slow('b', 4), slow('c', 4.2)]);
    const v = verdicts(s);
    expect(v[0]!.note).toBe(' [1000/s is over the saturation of (b), (c) on this machine: queueing]');
    const text = formatReport(s, v, []);
    expect(text).toContain('| (b) mesh baseline: sidecar -> sidecar (mTLS) | 1000 (over saturation) |');
    expect(text).toContain('| (b) mesh baseline: sidecar -> sidecar (mTLS) | 200 |');
  });
});
