/**
 * Child process of the config fuzz family (config_fuzz.test.ts): reads each config file named in
 * the JSON list argv[2] and prints one JSON line per case (start, then the outcome), so that the
 * parent can tell which case was running if this process is killed. Without an argument it does nothing.
 */
import * as fs from 'node:fs';
import { readConfigFile } from '../../src/config/load.js';

const list = process.argv[2];
if (list?.endsWith('.json')) {
  for (const [i, file] of (JSON.parse(fs.readFileSync(list, 'utf8')) as string[]).entries()) {
    fs.writeSync(1, `${JSON.stringify({ i, phase: 'start' })}\n`);
    const t0 = performance.now();
    let outcome: { ok: boolean; name?: string; message?: string };
    try {
      JSON.stringify(readConfigFile(file));
      outcome = { ok: true };
    } catch (err) {
      outcome = { ok: false, name: (err as Error).constructor.name, message: (err as Error).message };
    }
    const rss = process.memoryUsage().rss;
    fs.writeSync(1, `${JSON.stringify({ i, phase: 'done', ...outcome, ms: performance.now() - t0, rss })}\n`);
  }
}
