import { defineConfig } from 'vitest/config';

export default defineConfig({
  // `import 'warren'` runs the sources here, as in Node (.npmrc's --conditions=warren-source): without
  // the condition Vite would resolve warren to dist/ (a second, possibly stale copy of the runtime, and
  // one that `npm pack` in test/package rebuilds mid-run). The others are Vite's server defaults.
  ssr: { resolve: { conditions: ['warren-source', 'module', 'node', 'development|production'] } },
  test: {
    include: ['test/**/*.test.ts'],
    typecheck: { enabled: true, include: ['test/types/**/*.test-d.ts'] },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
