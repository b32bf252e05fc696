/**
 * Config-evaluator fuzz family (issue 25): seeded hostile .py configs (config_fuzz_cases.ts) read in
 * one capped child; each must end in a result or a one-line ConfigError naming the file, in
 * bounded time and memory. A crash, a hang or any other error is a failure naming the case.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBounded } from '../bounded.js';
import { generateConfigCases } from './config_fuzz_cases.js';

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'config_fuzz_child.js');

test('config fuzz: 150 seeded hostile configs end in a result or a clean ConfigError (capped child)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-cfgfuzz-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const texts = generateConfigCases(20261207, 150);
  const files = texts.map((text, i) => {
    const f = path.join(dir, `c${i}.py`);
    fs.writeFileSync(f, text);
    return f;
  });
  const list = path.join(dir, 'cases.json');
  fs.writeFileSync(list, JSON.stringify(files));
  const r = await runBounded(child, [list], { memoryMb: 3072, timeoutMs: 120_000, idleMs: 10_000 });
  const events = r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map(
      (l) =>
        JSON.parse(l) as {
          i: number;
          phase: string;
          ok?: boolean;
          name?: string;
          message?: string;
          ms?: number;
          rss?: number;
        },
    );
  const done = events.filter((e) => e.phase === 'done');
  const last = events[events.length - 1];
  assert.equal(
    done.length,
    files.length,
    `child stopped in case ${last?.i} (${r.killed ?? r.signal ?? r.code}): ${texts[last?.i ?? 0]}\n` +
      r.stderr.slice(-300),
  );
  const bad = done.filter(
    (e) =>
      !(e.ok || (e.name === 'ConfigError' && e.message!.startsWith(files[e.i]!) && !e.message!.includes('\n'))) ||
      e.ms! > 8_000 ||
      e.rss! > 1536 * 2 ** 20,
  );
  assert.deepEqual(
    bad.map((e) => `case ${e.i}: ${JSON.stringify(e).slice(0, 300)}\n${texts[e.i]}`),
    [],
  );
  const ok = done.filter((e) => e.ok).length;
  t.diagnostic(`${ok} results, ${done.length - ok} clean errors, ${r.ms} ms`);
  assert.ok(ok > 5 && done.length - ok > 20, `both outcomes reached: ${ok} ok`);
});
