import { describe, expect, it } from 'vitest';
import { alternate, capacityRatio, median, pairedCpuRatio, summarize, type Sample } from '../../bench/measure.js';

// One slice of a saturation run: `requests` answers for `cpuSeconds` of server CPU.
function slice(requests: number, cpuSeconds: number): Sample {
  return {
    requests,
    seconds: 1,
    latencies: [1],
    non2xx: 0,
    errors: 0,
    serverCpu: cpuSeconds,
    serverCpuSeconds: cpuSeconds,
    serverWait: 0,
    clientCpu: 0,
  };
}

describe('bench capacity ratio', () => {
  it('pairs slices by round and takes the median, so one disturbed round does not move it', () => {
    // floor 100 us/req every round; wpgw 140 us/req except round 2, which the machine slowed 2x.
    const floor = summarize([slice(10_000, 1), slice(10_000, 1), slice(10_000, 1), slice(10_000, 1), slice(10_000, 1)]);
    const wpgw = summarize([slice(5000, 0.7), slice(5000, 0.7), slice(5000, 1.4), slice(5000, 0.7), slice(5000, 0.7)]);
    const c = capacityRatio(wpgw, floor);
    expect(c.median).toBeCloseTo(100 / 140, 6);
    expect(c.min).toBeCloseTo(100 / 280, 6);
    expect(c.max).toBeCloseTo(100 / 140, 6);
    expect(wpgw.cpuPerRequestUs).toBeCloseTo(140, 6);
    expect(wpgw.cpuPerRequestSlicesUs).toHaveLength(5);
  });

  it('cancels drift that hits both servers of a round alike', () => {
    // The machine gets 30% slower in round 2 and stays there: each round's ratio is unchanged.
    const floor = summarize([slice(10_000, 1), slice(10_000, 1.3)]);
    const wpgw = summarize([slice(10_000, 1.25), slice(10_000, 1.625)]);
    const c = capacityRatio(wpgw, floor);
    expect(c.min).toBeCloseTo(0.8, 6);
    expect(c.max).toBeCloseTo(0.8, 6);
  });

  it('median of an even count is the mean of the middle two; none is NaN', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([5])).toBe(5);
    expect(median([])).toBeNaN();
  });

  it('alternates two sides, flipping the order each round, and pairs their slices by round', async () => {
    const order: string[] = [];
    let clock = 0;
    // Each slice's CPU/req grows with the machine's drift (clock); b costs 1.2x a in every round.
    const run = (name: string, cost: number) => async () => {
      order.push(name);
      clock++;
      return slice(1000, (cost * (1 + clock / 10)) / 1000);
    };
    const r = await alternate(4, { name: 'a', run: run('a', 1) }, { name: 'b', run: run('b', 1.2) }, 'test');
    expect(order).toEqual(['a', 'b', 'b', 'a', 'a', 'b', 'b', 'a']);
    expect(r.a).toHaveLength(4);
    const ratio = pairedCpuRatio(summarize(r.b), summarize(r.a));
    // Within a round the later slice pays one step of drift more, in alternating directions.
    expect(ratio.median).toBeGreaterThan(1.1);
    expect(ratio.median).toBeLessThan(1.3);
    expect(ratio.min).toBeLessThan(1.2);
    expect(ratio.max).toBeGreaterThan(1.2);
  });
});
