// Bundles the compiled CLI (dist/src/cli.js) into dist/bundle/ (SERVER_ENTRY): what the image runs
// (Dockerfile) and the e2e stack starts. Why a bundle: @kubernetes/client-node's index loads every generated API
// class and model (~1,000 modules, ~15 MiB of source kept in the V8 heap), and the webhook and the
// controller use a few of them (KubeConfig, the HTTP layer, Watch). esbuild drops what nothing
// reaches, once client-node's modules are declared free of side effects (its package.json does not
// say so; its only side-effect import, polyfill.js, sets `File` for Node 18, which wpgw does not
// run on). Chunks split at the CLI's lazy command imports, so `wpgw webhook` loads no CLI-only code.
// Measured: bench/README.md, "Footprint".
import { rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { build, type Plugin } from 'esbuild';
import { SERVER_ENTRY } from '../src/node-flags.js';

const ROOT = resolve(import.meta.dirname, '../..');
const OUT_DIR = dirname(SERVER_ENTRY);

const SIDE_EFFECT_FREE = /[\\/]node_modules[\\/]@kubernetes[\\/]client-node[\\/]/;

/** Marks the modules of SIDE_EFFECT_FREE packages as esbuild's `sideEffects: false`. */
const sideEffectFree: Plugin = {
  name: 'side-effect-free',
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === 'side-effect-free') return undefined;
      const r = await b.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: 'side-effect-free',
      });
      if (r.errors.length > 0 || !SIDE_EFFECT_FREE.test(r.path)) return undefined;
      return { ...r, sideEffects: false };
    });
  },
};

rmSync(resolve(ROOT, OUT_DIR), { recursive: true, force: true });
await build({
  absWorkingDir: ROOT,
  entryPoints: ['dist/src/cli.js'],
  outdir: OUT_DIR,
  entryNames: '[name]',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  // CommonJS dependencies call require() for Node's built-ins; an ES module has none of its own.
  banner: {
    js: "import { createRequire as __wpgwCreateRequire } from 'node:module'; const require = __wpgwCreateRequire(import.meta.url);",
  },
  plugins: [sideEffectFree],
  logLevel: 'warning',
});
