// test/lib/promql.ts: the metric names of the chart's alert and dashboard expressions.
import { describe, expect, it } from 'vitest';
import { exposedFamilies, isExposed, metricNames } from '../lib/promql.js';

describe('metricNames', () => {
  it.each([
    ['sum by (name) (rate(apiserver_admission_webhook_rejection_count{name=~"(pods|services)[.]wpgw[.]io", error_type="calling_webhook_error"}[5m])) > 0', ['apiserver_admission_webhook_rejection_count']],
    ['histogram_quantile(0.99, sum by (le, name) (rate(x_seconds_bucket{a="b"}[5m]))) > 1.5', ['x_seconds_bucket']],
    ['min by (certificate) (wpgw_cert_ts) - time() < 604800', ['wpgw_cert_ts']],
    ['(max(wpgw_controller_is_leader) or vector(0)) < 1', ['wpgw_controller_is_leader']],
    ['sum(rate(a_total[10m] offset 1h)) / ignoring(x) group_left(y) sum(b_total) unless on (z) c', ['a_total', 'b_total', 'c']],
    ['sum(rate(a_total[1h:5m])) by (le) and bool 2e3', ['a_total']],
    ['count by (component, version) (wpgw_build_info{component!="x"})', ['wpgw_build_info']],
    ['rate(namespace:errors:rate5m[5m])', ['namespace:errors:rate5m']],
  ])('%s', (expr, names) => {
    expect(metricNames(expr)).toEqual(names);
  });

  it('a misspelt metric is reported as it is written, so the exported-metrics check catches it', () => {
    expect(metricNames('rate(wpwg_controller_errors_total[5m]) > 0')).toEqual(['wpwg_controller_errors_total']);
  });
});

describe('isExposed', () => {
  const families = exposedFamilies('# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 0\n# TYPE c_total counter\n# TYPE s summary\n# TYPE g gauge\n');
  it.each([
    ['h_bucket', true], ['h_sum', true], ['h_count', true], ['h', false], ['c_total', true], ['s_sum', true],
    ['s_bucket', false], ['g_bucket', false], ['c', false], ['c_total_count', false], ['missing', false],
  ])('%s: %s', (name, want) => expect(isExposed(name as string, families)).toBe(want));
});
