// HotHistogram must expose exactly what prom-client's Histogram exposes for the same observations.
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HotHistogram } from '../../src/telemetry/hot-histogram.js';

const buckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

function pair() {
  const theirs = new Registry();
  const ours = new Registry();
  const opts = { name: 'x_duration_seconds', help: 'Time "spent"\\ here.', buckets };
  return {
    theirs,
    ours,
    reference: new Histogram({ ...opts, registers: [theirs] }),
    hot: new HotHistogram({ ...opts, registers: [ours] }),
  };
}

describe('HotHistogram', () => {
  it("serves the same exposition as prom-client's Histogram, bucket edges included", async () => {
    const { theirs, ours, reference, hot } = pair();
    const values = [...buckets, 0, 2, 5e-5, 0.3, 0.3, 1e3];
    let seed = 7;
    for (let i = 0; i < 500; i++) {
      seed = (seed * 48271) % 2147483647;
      values.push((seed / 2147483647) ** 4);
    }
    for (const v of values) {
      reference.observe(v);
      hot.observe(v);
    }
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('x_duration_seconds_bucket{le="0.0005"}');
    expect(text).toContain(`x_duration_seconds_count ${values.length}`);
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
  });

  it('resets with the registry, ignores NaN and refuses unusable buckets', async () => {
    const { ours, hot } = pair();
    hot.observe(0.002);
    hot.observe(Number.NaN);
    expect(await ours.metrics()).toContain('x_duration_seconds_count 1');
    ours.resetMetrics();
    expect(await ours.metrics()).toContain('x_duration_seconds_count 0');
    expect(() => new HotHistogram({ name: 'y', help: 'y', buckets: [1, 1], registers: [] })).toThrow(
      /strictly increasing/,
    );
    expect(() => new HotHistogram({ name: 'y', help: 'y', buckets: [], registers: [] })).toThrow(/strictly increasing/);
  });
});
