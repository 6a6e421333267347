// Label-selector semantics as the API server applies them to webhook selectors, with reasons.
import { describe, expect, it } from 'vitest';
import { coversPodCreate, unmetRequirement } from '../../src/core/label-selector.js';

describe('unmetRequirement', () => {
  const labels = { 'istio-injection': 'enabled', app: 'web' };
  it.each([
    [undefined, undefined],
    [{}, undefined],
    [{ matchLabels: { app: 'web' } }, undefined],
    [{ matchLabels: { app: 'api' } }, 'app=api required (is "web")'],
    [{ matchLabels: { tier: 'x' } }, 'tier=x required (absent)'],
    [{ matchExpressions: [{ key: 'istio-injection', operator: 'In', values: ['enabled'] }] }, undefined],
    [
      { matchExpressions: [{ key: 'istio.io/rev', operator: 'In', values: ['asm-1-26'] }] },
      'istio.io/rev in [asm-1-26] required (absent)',
    ],
    [
      { matchExpressions: [{ key: 'istio-injection', operator: 'NotIn', values: ['enabled'] }] },
      'istio-injection not in [enabled] required (is "enabled")',
    ],
    [{ matchExpressions: [{ key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] }] }, undefined],
    [
      { matchExpressions: [{ key: 'istio-injection', operator: 'DoesNotExist' }] },
      'istio-injection must not exist (is "enabled")',
    ],
    [
      {
        matchExpressions: [
          { key: 'app', operator: 'Exists' },
          { key: 'tier', operator: 'Exists' },
        ],
      },
      'tier must exist',
    ],
    [{ matchExpressions: [{ key: 'app', operator: 'Gt', values: ['1'] }] }, 'unknown operator Gt on app'],
  ])('%j', (selector, want) => expect(unmetRequirement(selector as never, labels)).toBe(want));
});

describe('coversPodCreate', () => {
  it.each([
    [[{ operations: ['CREATE'], apiGroups: [''], resources: ['pods'] }], true],
    [[{ operations: ['*'], apiGroups: ['*'], resources: ['*'] }], true],
    [[{ operations: ['UPDATE'], apiGroups: [''], resources: ['pods'] }], false],
    [[{ operations: ['CREATE'], apiGroups: [''], resources: ['services'] }], false],
    [[{ operations: ['CREATE'], apiGroups: ['apps'], resources: ['pods'] }], false],
    [undefined, false],
  ])('%j: %s', (rules, want) => expect(coversPodCreate(rules as never)).toBe(want));
});
