/**
 * Issue 25 item 4: small .py configs that made the evaluator build gigabytes or loop for hours,
 * and `_base_` reading files anywhere. Each resource case runs in a child with a memory cap and a
 * timeout (test/bounded.ts) and must end in a one-line ConfigError naming the file and line within
 * seconds. Before the evaluation budget, each of these ended in a heap OOM abort, a RangeError or a
 * timeout (noted per case).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBounded } from '../bounded.js';
import { readConfigFile } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/errors.js';

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'config_child.js');

function tree(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-cfgbound-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

interface Outcome {
  ok?: boolean;
  name?: string;
  message?: string;
  ms?: number;
}

async function readBounded(file: string): Promise<{ outcome: Outcome | null; detail: string }> {
  const r = await runBounded(child, [file], { memoryMb: 3072, timeoutMs: 30_000, idleMs: 15_000 });
  const lines = r.stdout.trim().split('\n').filter(Boolean);
  const last = lines.length > 1 ? (JSON.parse(lines[lines.length - 1]!) as Outcome) : null;
  return {
    outcome: last,
    detail: `code ${r.code} signal ${r.signal} killed ${r.killed} ${r.ms} ms; ${r.stderr.slice(-300)}`,
  };
}

/** name -> [config text, the line the error names]; comments say how the evaluator before the budget ended. */
const CASES: Record<string, [string, number, RegExp]> = {
  // heap OOM abort: the repetition limit checked only the outer length
  listOfLists: ['a = [0] * 1000000\nb = [a] * 1000000\n', 2, /builds more than 4000000 values/],
  // a CPU loop of 10**15 iterations
  emptyRepeat: ['a = [] * 10 ** 15\n', 1, /repetition longer than 1000000 \(count 1000000000000000\)/],
  // 10**9 elements built
  nestedComprehensions: [
    'r = [0] * 1000\na = [[[x for x in r] for y in r] for z in r]\n',
    2,
    /builds more than 4000000 values|more than 1000000 evaluation steps/,
  ],
  // each name read copied 10x more than the one before
  nameCopies: [
    'a = [0] * 100000\nb = [a, a, a, a, a, a, a, a, a, a]\nc = [b, b, b, b, b, b, b, b, b, b]\n' +
      'd = [c, c, c, c, c, c, c, c, c, c]\n',
    3,
    /builds more than 4000000 values/,
  ],
  // 10**12 characters once serialised (RangeError: Invalid string length)
  bigStrings: ["s = 'x' * 1000000\nb = [s] * 1000000\n", 2, /builds more than 4000000 values/],
};

for (const [name, [text, line, pattern]] of Object.entries(CASES)) {
  test(`config resources: ${name} ends in a clean error within seconds (capped child)`, async (t) => {
    const dir = tree({ 'c.py': text });
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'c.py');
    const { outcome, detail } = await readBounded(file);
    assert.ok(outcome, detail);
    assert.equal(outcome.ok, false, JSON.stringify(outcome));
    assert.equal(outcome.name, 'ConfigError', outcome.message);
    assert.ok(outcome.message!.startsWith(`${file}:${line}: `), outcome.message);
    assert.match(outcome.message!, pattern);
    assert.ok(outcome.ms! < 10_000, `${outcome.ms} ms`);
  });
}

test('a _base_ fan-out (25 files each listing the next twice) reads each file once (capped child)', async (t) => {
  // before: 2^24 loads, killed at the timeout
  const files: Record<string, string> = {};
  for (let i = 0; i < 25; i++) files[`b${i}.py`] = `_base_ = ['./b${i + 1}.py', './b${i + 1}.py']\n`;
  files['b25.py'] = '"""the end of the chain"""\n';
  const dir = tree(files);
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const { outcome, detail } = await readBounded(path.join(dir, 'b0.py'));
  assert.ok(outcome, detail);
  assert.equal(outcome.ok, true, JSON.stringify(outcome));
  assert.ok(outcome.ms! < 5_000, `${outcome.ms} ms`);
});

test('a base listed twice whose keys then arrive twice is refused as mmengine does, after one read', () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 25; i++) files[`b${i}.py`] = `_base_ = ['./b${i + 1}.py', './b${i + 1}.py']\nz${i} = ${i}\n`;
  files['b25.py'] = '"""empty"""\n';
  const dir = tree(files);
  try {
    assert.throws(() => readConfigFile(path.join(dir, 'b0.py')), /b23\.py:1: key 'z24' is defined in two bases/);
    for (let i = 0; i < 25; i++)
      fs.writeFileSync(path.join(dir, `b${i}.py`), `_base_ = './b${i + 1}.py'\nz${i} = ${i}\n`);
    assert.equal(readConfigFile(path.join(dir, 'b0.py')).z24, 24);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('_base_ reads only the config tree, the mmseg folder and BEITSEG_CONFIG_ROOTS', () => {
  const outside = tree({ 'secret.py': 'password = "hunter2"\n', 'j.json': '{"k": 1}' });
  const dir = tree({
    'configs/_base_/models/m.py': 'model = dict(type="X")\n',
    'configs/beit/up.py': "_base_ = ['../_base_/models/m.py']\n",
    'configs/beit/passwd.py': "_base_ = '/etc/passwd'\n",
    'configs/beit/dots.py': "_base_ = '../../../../../../../../etc/passwd.py'\n",
    'configs/beit/abs.py': `_base_ = '${path.join(outside, 'secret.py')}'\n`,
    'configs/beit/link.py': "_base_ = './ln/secret.py'\n",
    'configs/beit/mm.py': "_base_ = 'mmseg::_base_/models/m.py'\n",
  });
  fs.symlinkSync(outside, path.join(dir, 'configs/beit/ln'));
  const cfgDir = path.join(dir, 'configs', 'beit');
  const read = (f: string, opts = {}) => readConfigFile(path.join(cfgDir, f), { env: {}, ...opts });
  try {
    assert.deepEqual(read('up.py'), { model: { type: 'X' } });
    const refused = (f: string, re: RegExp) =>
      assert.throws(
        () => read(f),
        (e: Error) => e instanceof ConfigError && re.test(e.message) && !/root:|hunter2/.test(e.message),
      );
    refused('passwd.py', /passwd\.py:1: _base_ '\/etc\/passwd' must be a \.py, \.json, \.yaml or \.yml file/);
    refused('dots.py', /dots\.py:1: _base_ .* is outside the config's tree/);
    refused('abs.py', /abs\.py:1: _base_ .* is outside the config's tree/);
    refused('link.py', /link\.py:1: _base_ .* is outside the config's tree/);
    assert.deepEqual(read('abs.py', { allowedRoots: [outside] }), { password: 'hunter2' });
    assert.throws(() => read('mm.py'), /--mmseg-configs DIR or BEITSEG_MMSEG_CONFIGS=DIR/);
    assert.deepEqual(read('mm.py', { mmsegConfigs: path.join(dir, 'configs') }), { model: { type: 'X' } });
  } finally {
    fs.rmSync(outside, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
