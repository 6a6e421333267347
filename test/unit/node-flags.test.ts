// The image runs the webhook and controller with SERVER_NODE_FLAGS (src/node-flags.ts): the
// Dockerfile's ENTRYPOINT must say the same, since the benchmarks and e2e measure with that list.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SERVER_NODE_FLAGS } from '../../src/node-flags.js';

describe('SERVER_NODE_FLAGS', () => {
  it("is what the image's ENTRYPOINT passes to node", () => {
    const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
    const entry = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile);
    expect(entry, 'Dockerfile has a JSON-form ENTRYPOINT').not.toBeNull();
    expect(JSON.parse(entry![1]!)).toEqual(['node', ...SERVER_NODE_FLAGS, 'dist/src/cli.js']);
  });
});
