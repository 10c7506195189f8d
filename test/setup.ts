// Every test file: sidecar logs go to a file (test-log.ts) and are shown for a failed test only.
import { beforeAll, beforeEach, expect } from 'vitest';
import { logFile, logMark, logSince, openTestLog } from './test-log.js';

beforeAll(() => openTestLog(expect.getState().testPath ?? 'unknown.test.ts'));

beforeEach((ctx) => {
  const mark = logMark();
  ctx.onTestFailed(() => {
    const text = logSince(mark);
    if (text)
      process.stderr.write(
        `\n--- sidecar log of the failed test "${ctx.task.name}" ---\n${text}--- end (the whole file: ${logFile()}) ---\n`,
      );
  });
});
