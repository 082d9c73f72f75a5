// Mutation testing of the deciders (`npm run test:mutation`): every mutant of domain/ must be caught by a
// unit test (tests/unit, given/when/then). Reports land in reports/mutation/ (not in git).
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.unit.config.ts', related: true },
  mutate: ['domain/**/*.ts'],
  // Each mutant runs only the tests that cover it. On Vitest 5 this needs the test-name fix in vitest.unit.config.ts.
  coverageAnalysis: 'perTest',
  // TypeScript 7 has no JS API: Stryker would import it to rewrite this tsconfig in its sandbox. This file does
  // not exist, so nothing is rewritten (tsconfig.json has no `extends` or `references` to fix) and no TS checker runs.
  tsconfigFile: 'tsconfig.stryker-none.json',
  checkers: [],
  disableTypeChecks: 'domain/**/*.ts',
  concurrency: 2,
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  ignorePatterns: ['.data', 'coverage', 'reports'],
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 90, low: 80, break: 80 },
  timeoutMS: 10_000,
}
