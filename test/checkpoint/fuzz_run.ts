/**
 * Runs generated checkpoint fuzz cases (fuzz_cases.ts) through readCheckpoint in capped child
 * processes (isolated.ts) and judges each: a returned result or a clean one-line Error naming the
 * file, within the time and memory budget. A crash, a hang or an internal error is a failure.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateCases } from './fuzz_cases.js';
import { DEFAULT_BUDGET, isCleanError, readIsolated, type CaseOutcome, type IsolatedBudget } from './isolated.js';

export interface FuzzReport {
  cases: number;
  ok: number;
  cleanErrors: number;
  failures: string[];
  maxRssMb: number;
  ms: number;
}

/** Resident memory a case may leave the child at, MiB (the heap cap bounds V8; this bounds buffers too). */
export const RSS_BUDGET_MB = 1536;

export async function runFuzz(
  seed: number,
  count: number,
  workDir: string,
  budget: IsolatedBudget = DEFAULT_BUDGET,
): Promise<FuzzReport> {
  const t0 = performance.now();
  const cases = generateCases(seed, count);
  const files = cases.map((c, i) => {
    const file = path.join(workDir, `${String(i).padStart(5, '0')}-${c.name}.${c.ext}`);
    fs.writeFileSync(file, c.bytes);
    return file;
  });
  const outcomes = await readIsolated(files, workDir, budget);
  const failures: string[] = [];
  let ok = 0;
  let cleanErrors = 0;
  let maxRss = 0;
  outcomes.forEach((o: CaseOutcome, i) => {
    const file = files[i]!;
    const tag = `case ${i} (${path.basename(file)}, seed ${seed})`;
    if (o.kind === 'ok' || o.kind === 'error') {
      maxRss = Math.max(maxRss, o.rss);
      if (o.rss > RSS_BUDGET_MB * 2 ** 20)
        failures.push(`${tag}: resident memory ${Math.round(o.rss / 2 ** 20)} MiB over the budget`);
    }
    if (o.kind === 'ok') ok++;
    else if (o.kind === 'error' && isCleanError(o, file)) cleanErrors++;
    else if (o.kind === 'error')
      failures.push(`${tag}: unclean error ${o.name}: ${JSON.stringify(o.message.slice(0, 300))}`);
    else failures.push(`${tag}: ${o.kind}: ${o.detail}`);
  });
  return {
    cases: count,
    ok,
    cleanErrors,
    failures,
    maxRssMb: Math.round(maxRss / 2 ** 20),
    ms: performance.now() - t0,
  };
}
