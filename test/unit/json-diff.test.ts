// jsonDiff (src/core/json-diff.ts) must produce what fast-json-patch's compare() did, byte for
// byte once serialized, since the webhook's patches were that; and applied, it must give the target.
import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { jsonDiff } from '../../src/core/json-diff.js';

const key = fc.oneof(
  fc.constantFrom('a', 'b', 'c', 'x/y', 'm~n', '0', '1', 'metadata', 'spec'),
  fc.string({ maxLength: 4 }),
);
const tree = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.string({ maxLength: 5 }),
    tie('array'),
    tie('object'),
  ),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.dictionary(key, tie('value'), { maxKeys: 5 }),
})).object;

/** A target that shares most of its subtrees with `from`, as a mutation's output does. */
function mutate(from: unknown, edits: unknown[], i = { n: 0 }): unknown {
  if (typeof from !== 'object' || from === null) return from;
  const e = edits[i.n++ % edits.length];
  if (e === 'keep') return from;
  if (Array.isArray(from))
    return e === 'drop' ? from.slice(1) : [...from.map((v) => mutate(v, edits, i)), ...(e === 'grow' ? [e] : [])];
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(from)) if (e !== 'drop' || k.length % 2 === 0) out[k] = mutate(v, edits, i);
  if (e === 'grow') out.added = { nested: [1, 'two'] };
  if (e === 'replace') out.a = 'replaced';
  return out;
}

describe('jsonDiff', () => {
  it('equals fast-json-patch compare() and turns the source into the target', () => {
    fc.assert(
      fc.property(
        tree,
        tree,
        fc.array(fc.constantFrom('keep', 'drop', 'grow', 'replace', 'walk'), { minLength: 1, maxLength: 8 }),
        (a, b, edits) => {
          for (const [from, to] of [
            [a, b],
            [a, mutate(a, edits)],
          ] as const) {
            const ops = jsonDiff(from, to as object);
            expect(JSON.stringify(ops)).toBe(JSON.stringify(jsonpatch.compare(from, to as object)));
            expect(
              jsonpatch.applyPatch(structuredClone(from), structuredClone(ops) as jsonpatch.Operation[], true)
                .newDocument,
            ).toEqual(to);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("puts the target's values in the operations as they are (no copies)", () => {
    const added = { hostnames: ['a'] };
    const ops = jsonDiff({ spec: {} }, { spec: { hostAliases: added } });
    expect(ops).toEqual([{ op: 'add', path: '/spec/hostAliases', value: added }]);
    expect((ops[0] as { value: unknown }).value).toBe(added);
  });
});
