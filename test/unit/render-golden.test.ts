// Golden `wpgw render` of every file in examples/ (as Istio keeps its injection testdata): each
// change to the objects wpgw generates shows up in review as a diff of these files.
// After an intended change: `npm run golden:update`, then review the diff.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/commands/main.js';

const ROOT = resolve(import.meta.dirname, '../..');
const GOLDEN = join(ROOT, 'test/unit/testdata/render-golden');
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const examples = readdirSync(join(ROOT, 'examples'))
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();

describe('golden render of examples/', () => {
  it('has examples to render', () => expect(examples.length).toBeGreaterThan(0));

  it.each(examples)('%s', async (file) => {
    let out = '';
    let err = '';
    const code = await runCli(['render', '-f', join(ROOT, 'examples', file)], {
      stdout: (t) => void (out += t),
      stderr: (t) => void (err += t),
    });
    // One file holds all of it: the exit code, the report (stderr) and the objects (stdout).
    const got = `# exit code: ${code}\n# --- report (stderr)\n${err}# --- objects (stdout)\n${out}`.replaceAll(
      ROOT,
      '<repo>',
    );
    const path = join(GOLDEN, file.replace(/\.ya?ml$/, '.golden.yaml'));
    if (UPDATE) writeFileSync(path, got);
    const want = readFileSync(path, 'utf8');
    expect(got, `render of examples/${file} differs from ${path}; if intended: npm run golden:update`).toBe(want);
  });
});
