// The layering docs/architecture.md draws, checked on the import statements of src/: the core at the
// bottom (no I/O, no edge), shared infrastructure (tls, telemetry) under the programs, and no program
// (webhook, controller) importing the other. A new import that breaks a rule names file and import.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');

interface Import {
  file: string;
  /** Relative imports as a path below the repository root ("src/cluster/client.ts"), others as written. */
  target: string;
  typeOnly: boolean;
  names: string[];
}

// Static `import ... from`, `export ... from` and dynamic `import('...')`.
const STATIC = /^\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"]([^'"]+)['"]/gm;
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

export function importsOf(file: string, text: string): Import[] {
  const resolve = (spec: string) =>
    spec.startsWith('.') ? normalize(join(dirname(file), spec)).replace(/\.js$/, '.ts') : spec;
  const out: Import[] = [];
  for (const m of text.matchAll(STATIC)) {
    const clause = m[3] ?? '';
    const names = [...clause.replace(/^\{|\}$/g, '').matchAll(/(?:^|,|\{)\s*(?:type\s+)?(\w+)/g)].map((n) => n[1]!);
    out.push({ file, target: resolve(m[4]!), typeOnly: Boolean(m[2]), names });
  }
  for (const m of text.matchAll(DYNAMIC)) out.push({ file, target: resolve(m[1]!), typeOnly: false, names: [] });
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

const under = (folder: string) => (path: string) => path.startsWith(`src/${folder}/`);
const PROGRAMS = ['webhook', 'controller', 'commands'] as const;
const EDGES = ['cluster', 'tls', 'telemetry', ...PROGRAMS] as const;
/** Node modules that do I/O. node:net is allowed for its pure isIP* helpers only. */
const IO_MODULES = new Set([
  'node:fs',
  'node:fs/promises',
  'node:http',
  'node:https',
  'node:http2',
  'node:tls',
  'node:dgram',
  'node:dns',
  'node:dns/promises',
  'node:child_process',
  'node:worker_threads',
]);
const PURE_NET = new Set(['isIP', 'isIPv4', 'isIPv6']);

/** Every import of `imports` that breaks a layering rule, as "file: target (rule)". */
export function violations(imports: readonly Import[]): string[] {
  const out: string[] = [];
  const say = (i: Import, rule: string) => out.push(`${i.file}: ${i.target} (${rule})`);
  for (const i of imports) {
    if (under('core')(i.file)) {
      const edge = EDGES.find((e) => under(e)(i.target));
      if (edge) say(i, `core imports ${edge}`);
      if (IO_MODULES.has(i.target)) say(i, 'core does I/O');
      if (i.target === 'node:net' && !i.names.every((n) => PURE_NET.has(n))) say(i, 'core uses node:net beyond isIP');
      if (i.target === '@kubernetes/client-node' && !i.typeOnly) say(i, 'core imports client-node at run time');
    }
    if (under('webhook')(i.file) && (under('controller')(i.target) || under('commands')(i.target)))
      say(i, 'the webhook imports another program');
    if (under('controller')(i.file) && (under('webhook')(i.target) || under('commands')(i.target)))
      say(i, 'the controller imports another program');
    for (const shared of ['tls', 'telemetry', 'cluster'] as const) {
      const program = PROGRAMS.find((p) => under(p)(i.target));
      if (under(shared)(i.file) && program) say(i, `${shared} imports the ${program} program`);
    }
  }
  return out;
}

const all = sourceFiles('src').flatMap((f) => importsOf(f, readFileSync(join(root, f), 'utf8')));

describe('layering of src/', () => {
  it('reads the imports of every source file', () => {
    expect(all.length).toBeGreaterThan(300);
    expect(all).toContainEqual(
      expect.objectContaining({
        file: join('src', 'tls', 'secret-store.ts'),
        target: join('src', 'cluster', 'client.ts'),
      }),
    );
  });

  it('core imports no edge and does no I/O; no program imports another; tls, telemetry and cluster import no program', () => {
    expect(violations(all)).toEqual([]);
  });

  it('the rules catch what they forbid', () => {
    const sample = (file: string, text: string) => violations(importsOf(file, text));
    expect(sample('src/core/x.ts', "import { readFileSync } from 'node:fs';")).toEqual([
      'src/core/x.ts: node:fs (core does I/O)',
    ]);
    expect(sample('src/core/x.ts', "import { isIP } from 'node:net';")).toEqual([]);
    expect(sample('src/core/x.ts', "import { connect, isIP } from 'node:net';")).toHaveLength(1);
    expect(sample('src/core/desired/x.ts', "import { RawKubeClient } from '../../cluster/client.js';")).toEqual([
      'src/core/desired/x.ts: src/cluster/client.ts (core imports cluster)',
    ]);
    expect(sample('src/core/x.ts', "import type { V1Pod } from '@kubernetes/client-node';")).toEqual([]);
    expect(sample('src/core/x.ts', "import { CoreV1Api } from '@kubernetes/client-node';")).toHaveLength(1);
    expect(sample('src/controller/x.ts', "import { createMetrics } from '../webhook/metrics.js';")).toHaveLength(1);
    expect(sample('src/webhook/x.ts', "export { x } from '../controller/index.js';")).toHaveLength(1);
    expect(sample('src/tls/x.ts', "const m = await import('../webhook/start.js');")).toHaveLength(1);
    expect(sample('src/commands/x.ts', "import { startController } from '../controller/index.js';")).toEqual([]);
  });
});
