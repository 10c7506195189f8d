// Every test file: sidecar logs go to a file (test-log.ts) and are shown for a failed test only.
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import { witness, witnessDone } from './crash-witness.js';
import { logFile, logMark, logSince, openTestLog } from './test-log.js';

const testFile = () => expect.getState().testPath ?? 'unknown.test.ts';

beforeAll(() => {
  openTestLog(testFile());
  witness(testFile());
});
afterAll(() => witnessDone());

beforeEach((ctx) => {
  const mark = logMark();
  witness(`${testFile()} > ${ctx.task.name}`);
  ctx.onTestFailed(() => {
    const text = logSince(mark);
    if (text)
      process.stderr.write(
        `\n--- sidecar log of the failed test "${ctx.task.name}" ---\n${text}--- end (the whole file: ${logFile()}) ---\n`,
      );
  });
});
