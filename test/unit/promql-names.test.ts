// test/lib/promql.ts: series names against the metric families a scrape exports.
import { describe, expect, it } from 'vitest';
import { exposedFamilies, isExposed } from '../lib/promql.js';

describe('isExposed', () => {
  const families = exposedFamilies(
    '# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 0\n# TYPE c_total counter\n# TYPE s summary\n# TYPE g gauge\n',
  );
  it.each([
    ['h_bucket', true],
    ['h_sum', true],
    ['h_count', true],
    ['h', false],
    ['c_total', true],
    ['s_sum', true],
    ['s_bucket', false],
    ['g_bucket', false],
    ['c', false],
    ['c_total_count', false],
    ['missing', false],
  ])('%s: %s', (name, want) => expect(isExposed(name as string, families)).toBe(want));
});
