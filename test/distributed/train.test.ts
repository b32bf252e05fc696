import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { readSafetensors } from '../../src/checkpoint/safetensors.js';
import { train } from '../../src/engine/trainer.js';
import type { Dict } from '../../src/models/config.js';
import { syntheticData, tempDir } from '../engine/fixtures.js';
import { lastJson, runRanks } from './helpers.js';
import { deterministicTinyConfig } from './tiny.js';

const ITERS = 3;

function trainConfig(dataRoot: string, batch: number): Dict {
  return deterministicTinyConfig(dataRoot, (cfg) => {
    (cfg.train_dataloader as Dict).batch_size = batch;
    cfg.train_cfg = { type: 'IterBasedTrainLoop', max_iters: ITERS, val_interval: 1000 };
    // The biases of convolutions followed by BN have a true gradient of zero: theirs is float
    // noise (~1e-9) that depends on the summation order, and AdamW with eps 1e-8 turns any
    // noise into a step of ±lr. A larger eps keeps such steps proportional to the gradient
    // (the one-iteration test compares the gradients themselves).
    ((cfg.optim_wrapper as Dict).optimizer as Dict).eps = 1e-6;
  });
}

function weightsOf(dir: string): Map<string, Float32Array> {
  const { tensors } = readSafetensors(path.join(dir, `iter_${ITERS}`, 'model.safetensors'));
  const out = new Map<string, Float32Array>();
  for (const [k, v] of tensors) if (v.dtype === 'float32') out.set(k, new Float32Array(v.data.buffer.slice(v.data.byteOffset, v.data.byteOffset + v.data.byteLength)));
  return out;
}

test('a few iterations: 2 ranks x batch 1 = 1 process x batch 2 (weights within 1e-5, identical validation); only rank 0 writes files',
  { timeout: 240_000 }, async () => {
    const dir = tempDir('beitseg-dtrain-');
    const data = await syntheticData(path.join(dir, 'data'), { n: 11, height: 64, width: 80, classes: 6, seed: 3, splitVal: 3 });
    const distCfg = path.join(dir, 'dist.json');
    fs.writeFileSync(distCfg, JSON.stringify(trainConfig(data, 1)));
    const ranks = await runRanks('worker_train.js', { args: [path.join(dir, 'dist'), distCfg], limitMs: 180_000 });
    for (const r of ranks) assert.equal(r.code, 0, `rank ${r.rank}: ${r.stderr}`);

    const single = await train({ config: trainConfig(data, 2), configPath: 'tiny.json', workDir: path.join(dir, 'single'), device: 'cpu',
      numWorkers: 0, handleSignals: false, log: () => undefined });
    assert.equal(single.iteration, ITERS);

    const a = weightsOf(path.join(dir, 'dist', 'rank0')), b = weightsOf(path.join(dir, 'single'));
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
    let worst = 0, moved = 0;
    for (const [k, va] of a) {
      const vb = b.get(k)!;
      for (let i = 0; i < va.length; i++) worst = Math.max(worst, Math.abs(va[i]! - vb[i]!));
    }
    assert.ok(worst <= 1e-5, `weights differ by ${worst}`);
    // training moved the weights away from the (shared) initialisation: compare with iteration 0 of a fresh model
    for (const [k, v] of b) if (k.endsWith('conv_seg.weight')) moved = Math.max(...v.map(Math.abs));
    assert.ok(moved > 0);

    // validation at the end: both ranks report the single-process metrics exactly
    for (const r of ranks) {
      const j = lastJson(r);
      assert.equal(j.iteration, ITERS);
      assert.deepEqual(j.metrics, JSON.parse(JSON.stringify(single.lastValidation)));
    }
    // only rank 0 writes: rank 1's work dir holds nothing
    const rank1 = path.join(dir, 'dist', 'rank1');
    assert.deepEqual(fs.existsSync(rank1) ? fs.readdirSync(rank1) : [], []);
    assert.ok(fs.readdirSync(path.join(dir, 'dist', 'rank0')).includes('log.jsonl'));
    single.model.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });
