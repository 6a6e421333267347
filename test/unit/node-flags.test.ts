// The image runs the webhook with SERVER_NODE_FLAGS (src/node-flags.ts), the controller with
// CONTROLLER_NODE_FLAGS: the Dockerfile's ENTRYPOINT and the controller's Deployment must say the
// same, and start SERVER_ENTRY, since the benchmarks and e2e measure that file with those lists.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { CONTROLLER_NODE_FLAGS, SERVER_ENTRY, SERVER_NODE_FLAGS, nodeFlagsFor } from '../../src/node-flags.js';

describe('SERVER_NODE_FLAGS and SERVER_ENTRY', () => {
  it("are what the image's ENTRYPOINT passes to node", () => {
    const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
    const entry = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile);
    expect(entry, 'Dockerfile has a JSON-form ENTRYPOINT').not.toBeNull();
    expect(JSON.parse(entry![1]!)).toEqual(['node', ...SERVER_NODE_FLAGS, SERVER_ENTRY]);
  });

  it('the image copies the bundle and nothing of node_modules into its runtime stage', () => {
    const dockerfile = readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(runtime).toContain(`COPY --from=build /app/${SERVER_ENTRY.split('/').slice(0, -1).join('/')} `);
    expect(runtime).not.toContain('node_modules');
  });

  it("the controller's Deployment runs the same entry with CONTROLLER_NODE_FLAGS (the stack starts it so too)", () => {
    const docs = parseAllDocuments(readFileSync(new URL('../../manifests/controller.yaml', import.meta.url), 'utf8'));
    const deployment = docs.map((d) => d.toJSON()).find((o) => o?.kind === 'Deployment');
    const container = deployment.spec.template.spec.containers.find((c: { name: string }) => c.name === 'controller');
    expect(container.command).toEqual(['node', ...CONTROLLER_NODE_FLAGS, SERVER_ENTRY]);
    expect(nodeFlagsFor('controller')).toEqual(CONTROLLER_NODE_FLAGS);
    expect(nodeFlagsFor('webhook')).toEqual(SERVER_NODE_FLAGS);
    expect(CONTROLLER_NODE_FLAGS).toContain('--optimize-for-size');
  });
});
