/**
 * Issue 25.9: `predict` counts an image's slide windows from its header before predicting any and
 * refuses over --max-windows (default 1000), naming the file and the option. Before, a 4000x4000
 * image under a config without a test Resize slid 8649 windows silently (295 s, 3.5 GB): the
 * refusal case runs in a capped child with a timeout, so the old behaviour fails the assertion.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { makeImage } from '../../src/data/types.js';
import { writeImage } from '../../src/data/image_io.js';
import { inferenceModel, initModel } from '../../src/inference/api.js';
import { runBounded } from '../bounded.js';
import { zeroPng } from '../data/bombs.js';
import { fixtureFile, repoRoot, tinyConfigPath } from '../helpers.js';

const cli = path.join(repoRoot, 'bin', 'beitseg.js');
const weights = fixtureFile('segmentor_state_dict.safetensors');
const run = promisify(execFile);

const predictArgs = (out: string, ...rest: string[]): string[] => [
  'predict',
  '--config',
  tinyConfigPath,
  '--weights',
  weights,
  '--device',
  'cpu',
  '--out',
  out,
  ...rest,
];

describe('predict --max-windows', () => {
  let dir = '';
  const file = (name: string): string => path.join(dir, name);

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-windows-'));
    fs.writeFileSync(file('big.png'), zeroPng(4000, 4000, 2));
    await writeImage(file('small.png'), makeImage(200, 200));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a 4000x4000 image without a test Resize is refused by the default limit, before any output', async () => {
    const out = file('out-big');
    const r = await runBounded(cli, predictArgs(out, file('big.png')), { memoryMb: 4096, timeoutMs: 60_000 });
    assert.equal(r.killed, null, `killed (${r.killed}) after ${r.ms} ms: still sliding?`);
    assert.notEqual(r.code, 0);
    assert.ok(
      r.stderr.includes(
        `${file('big.png')}: 8649 slide windows of 64x64 over 4000x4000 is over --max-windows 1000 ` +
          '(raise --max-windows, or keep the test Resize, or use --mode whole)',
      ),
      r.stderr,
    );
    assert.deepEqual(fs.existsSync(out) ? fs.readdirSync(out) : [], []);
  });

  it('counts TTA views: 2 scales x 2 flips of 200x200 are 212 windows', async () => {
    const args = predictArgs(
      file('out-tta'),
      '--tta',
      '--tta-scales',
      '1,2',
      '--max-windows',
      '211',
      file('small.png'),
    );
    await assert.rejects(run('node', [cli, ...args]), (e: Error & { stderr: string }) => {
      assert.match(e.stderr, /small\.png: 212 slide windows of 64x64 over 400x400 \(largest of 4 TTA views\) is over/);
      return true;
    });
  });

  it('at the limit it runs, printing the window count and an estimated time first', async () => {
    await assert.rejects(run('node', [cli, ...predictArgs(file('o1'), '--max-windows', '24', file('small.png'))]), {
      stderr: /small\.png: 25 slide windows of 64x64 over 200x200 is over --max-windows 24/,
    });
    const { stderr } = await run('node', [cli, ...predictArgs(file('o2'), '--max-windows', '25', file('small.png'))]);
    assert.match(stderr, /predict: 25 slide window\(s\) in all\n/);
    assert.match(stderr, /predict: about \d+\.\d (s|min) in all \(\d+ ms per window on the first batch\)\n/);
    assert.ok(stderr.indexOf('slide window(s) in all') < stderr.indexOf('about'));
    assert.ok(fs.existsSync(file('o2/small_pred.png')));
  });

  it('--max-windows 0 is a usage error naming the option', async () => {
    await assert.rejects(run('node', [cli, ...predictArgs(file('o3'), '--max-windows', '0', file('small.png'))]), {
      stderr: /--max-windows <n>.*'0' is invalid/,
    });
  });

  it('the library: maxWindows refuses before any forward pass; onWindow reports progress', async () => {
    const m = await initModel(tinyConfigPath, weights, { device: 'cpu' });
    const img = makeImage(200, 200);
    await assert.rejects(inferenceModel(m, img, { maxWindows: 24 }), {
      message: '200x200 image: 25 slide windows of 64x64 over 200x200 is over maxWindows 24',
    });
    const seen: number[] = [];
    const r = await inferenceModel(m, img, { maxWindows: 25, windowBatch: 10, onWindow: (done) => seen.push(done) });
    r.logits.dispose();
    assert.deepEqual(seen, [10, 20, 25]);
  });
});
