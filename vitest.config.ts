import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        // charts/wpgw through a real helm and kustomize: needs test/helm/build.sh and
        // test/harness/build.sh first (.ci/run), so not part of the offline unit suite.
        test: {
          name: 'helm',
          include: ['test/helm/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/e2e/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          // Real bytes through real Envoy (test/datapath/README.md): its own cluster and istiod.
          name: 'datapath',
          include: ['test/datapath/**/*.test.ts'],
          globalSetup: ['test/datapath/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 1_800_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          // `npm run bench:datapath` only: a benchmark on the data-path stack (numbers and
          // PASS/MISS, bench/README.md), never part of npm test or test:e2e.
          name: 'bench-datapath',
          include: ['test/datapath/bench.datapath.ts'],
          globalSetup: ['test/datapath/global-setup.ts'],
          testTimeout: 3_600_000,
          hookTimeout: 1_800_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
