/**
 * `npm run fuzz:checkpoint -- [--count N] [--seed S]`: the checkpoint fuzz suite at a larger
 * count (default 3000 cases, seed from the clock, printed so a failure can be replayed).
 * Does nothing unless started with --count or --seed (the test runner loads every file under test/).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runFuzz } from './fuzz_run.js';

const args = process.argv.slice(2);
const value = (flag: string): string | undefined => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};

if (args.includes('--count') || args.includes('--seed')) {
  const count = Number(value('--count') ?? 3000);
  const seed = Number(value('--seed') ?? Date.now() % 2 ** 31);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-fuzz-ckpt-'));
  let failed = 0;
  const batch = 500;
  try {
    for (let start = 0; start < count; start += batch) {
      // Each batch has its own seed so memory for the generated files stays bounded.
      const report = await runFuzz(seed + start, Math.min(batch, count - start), dir);
      failed += report.failures.length;
      for (const f of report.failures) console.log(`FAIL ${f}`);
      console.log(
        `seed ${seed + start}: ${report.cases} cases, ${report.ok} results, ${report.cleanErrors} clean errors, ` +
          `${report.failures.length} failures, max RSS ${report.maxRssMb} MiB, ${Math.round(report.ms)} ms`,
      );
      for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.exitCode = failed ? 1 : 0;
}
