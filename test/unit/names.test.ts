// Public names have one home (src/names.ts) and one reference (the README's table): a label or
// annotation spelled out elsewhere in src, or missing from the table, fails here.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as names from '../../src/names.js';

const root = join(import.meta.dirname, '../..');

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

const publicNames = Object.values(names as Record<string, unknown>).filter(
  (v): v is string => typeof v === 'string' && v.startsWith('wpgw.io/'),
);

describe('public names', () => {
  it('every wpgw.io/ label and annotation in src/names.ts has a row in the README reference table', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const table = readme.slice(
      readme.indexOf('## Annotation and label reference'),
      readme.indexOf('\n## ', readme.indexOf('## Annotation and label reference') + 1),
    );
    const rows = table.split('\n').filter((l) => l.startsWith('| `'));
    expect(publicNames.length).toBeGreaterThan(15);
    const missing = publicNames.filter(
      (n) => !rows.some((r) => r.split('|')[1]!.includes(`\`${n}`) || r.split('|')[1]!.includes(`, \`${n}\``)),
    );
    expect(missing).toEqual([]);
  });

  it('no source file outside src/names.ts spells a wpgw.io/ name as a string literal', () => {
    const spelled = sourceFiles('src')
      .filter((f) => f !== join('src', 'names.ts'))
      .flatMap((f) =>
        [...readFileSync(join(root, f), 'utf8').matchAll(/['"](wpgw\.io\/[A-Za-z][\w.-]*)['"]/g)].map(
          (m) => `${f}: ${m[1]}`,
        ),
      );
    expect(spelled).toEqual([]);
  });
});
