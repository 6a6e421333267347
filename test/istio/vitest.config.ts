// Standalone run of the Istio e2e file, without the e2e global setup (test/e2e/istio.test.ts then
// starts its own harness cluster and applies `wpgw render` output):
//   npx vitest run --config test/istio/vitest.config.ts
import path from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: path.resolve(import.meta.dirname, '../..'),
  test: {
    include: ['test/e2e/istio.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 900_000,
    fileParallelism: false,
  },
});
