/**
 * Checkpoint fuzz suite (issue 15): a couple hundred seeded cases, mutated fixtures and hostile
 * pickles, each read in a capped child process; every case must end in a result or a clean
 * Error within the budget. `npm run fuzz:checkpoint` runs the same generator for longer.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { makeTempDir } from '../temp.js';
import { runFuzz } from './fuzz_run.js';

test(
  'checkpoint fuzz: 210 seeded cases end in a result or a clean error, without crash, hang or memory ' + 'blow-up',
  async (t) => {
    const { dir, cleanup } = makeTempDir();
    t.after(cleanup);
    const report = await runFuzz(20261201, 210, dir);
    t.diagnostic(
      `${report.ok} results, ${report.cleanErrors} clean errors, max RSS ${report.maxRssMb} MiB, ` +
        `${Math.round(report.ms)} ms`,
    );
    assert.deepEqual(report.failures, []);
    assert.equal(report.ok + report.cleanErrors, report.cases);
    // The mutations must reach both outcomes, or the suite is not exercising the reader.
    assert.ok(report.ok > 10 && report.cleanErrors > 50, JSON.stringify(report));
  },
);
