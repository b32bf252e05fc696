import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { buildSegmentor } from '../../src/models/builder.js';
import type { Dict } from '../../src/config/schema.js';
import { manualSeed } from '../../src/tensor/runtime.js';
import { tempDir } from '../temp.js';
import { lastJson, runRanks } from './helpers.js';
import { deterministicTinyConfig, flatGradsAndStats } from './tiny.js';
import { fixedBatch } from './worker_inputs.js';

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

for (const mode of ['reducer', 'flat'] as const) {
  test(`one iteration: 2 ranks x batch 1 (DDP ${mode} + SyncBN) = 1 process x batch 2: gradients and BN running ` +
    `stats`, {
    timeout: 120_000,
  }, async () => {
    const dir = tempDir('beitseg-ddp-');
    const out = path.join(dir, 'grads');
    const results = await runRanks('worker_grads.js', {
      args: [out],
      env: (): Record<string, string> => (mode === 'flat' ? { BEITSEG_DDP: 'flat' } : {}),
    });
    for (const r of results) assert.equal(r.code, 0, `rank ${r.rank}: ${r.stderr}`);
    // batch 1: the class token's gradient arrives as a strided view (issue 27.7)
    for (const r of results) assert.doesNotMatch(r.stderr, /Grad strides do not match/);
    const info = lastJson(results[0]!);
    assert.ok((info.bytes as number) > 0 && (info.buckets as number) >= 1);
    assert.equal(info.mode, mode);

    manualSeed(0);
    const model = buildSegmentor(deterministicTinyConfig('/nonexistent').model as Dict).train();
    const { img, label } = fixedBatch(0, 2);
    model.loss(img, label).loss.backward();
    const expected = flatGradsAndStats(model.namedParameters(), model.namedBuffers());
    const rank0 = new Float32Array(fs.readFileSync(`${out}.rank0`).buffer.slice(0));
    const rank1 = new Float32Array(fs.readFileSync(`${out}.rank1`).buffer.slice(0));
    assert.equal(maxDiff(rank0, rank1), 0, 'ranks hold different averaged gradients');
    const d = maxDiff(rank0, expected);
    assert.ok(d <= 1e-5, `2 ranks vs 1 process: max |diff| ${d}`);
    // the comparison is not vacuous: gradients are far from zero and a one-sample step differs
    assert.ok(expected.some((v) => Math.abs(v) > 1e-3));
    model.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });
}
