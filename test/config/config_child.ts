/**
 * Child process for the config resource tests (eval_bounds.test.ts): reads the config named in
 * argv[2] with readConfigFile, serialises it as print-config would, and prints one JSON line
 * with the outcome. Without an argument it does nothing (the test runner may load it).
 */
import * as fs from 'node:fs';
import { readConfigFile } from '../../src/config/load.js';

const file = process.argv[2];
if (file) {
  fs.writeSync(1, `${JSON.stringify({ phase: 'start' })}\n`);
  const t0 = performance.now();
  try {
    const text = JSON.stringify(readConfigFile(file));
    fs.writeSync(1, `${JSON.stringify({ ok: true, chars: text.length, ms: performance.now() - t0 })}\n`);
  } catch (err) {
    const e = err as Error;
    fs.writeSync(
      1,
      `${JSON.stringify({ ok: false, name: e.constructor.name, message: e.message, ms: performance.now() - t0 })}\n`,
    );
  }
}
