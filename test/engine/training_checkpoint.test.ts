/** Checkpoint directories: atomic completion, listing, latest, retention, round trip. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  latestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  pruneCheckpoints,
  saveCheckpoint,
} from '../../src/engine/training_checkpoint.js';
import { GradScaler } from '../../src/engine/grad_scaler.js';
import { tensor } from '../../src/tensor/tensor.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-ckpt-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function save(workDir: string, iteration: number, kind: 'iter' | 'best' = 'iter'): string {
  return saveCheckpoint({
    workDir,
    iteration,
    kind,
    weights: new Map([['backbone.cls_token', tensor([iteration, 2, 3], [1, 1, 3])]]),
    stateTensors: new Map([['backbone.cls_token.exp_avg', tensor([0.5, 0.25, 0.125], [1, 1, 3])]]),
    state: { hello: 'world' },
    weightsMetadata: { config: 'tiny' },
  });
}

describe('training checkpoints', () => {
  it('round trip: weights with metadata, state tensors, JSON', () => {
    const wd = path.join(tmp, 'a');
    const dir = save(wd, 7);
    assert.equal(path.basename(dir), 'iter_7');
    const ck = loadCheckpoint(dir);
    assert.equal(ck.info.iteration, 7);
    assert.deepEqual([...ck.weights.get('backbone.cls_token')!.toFloat32Array()], [7, 2, 3]);
    assert.deepEqual(ck.weights.get('backbone.cls_token')!.shape, [1, 1, 3]);
    assert.equal(ck.weightsMetadata.iteration, '7');
    assert.equal(ck.weightsMetadata.config, 'tiny');
    assert.deepEqual([...ck.stateTensors.get('backbone.cls_token.exp_avg')!.toFloat32Array()], [0.5, 0.25, 0.125]);
    assert.equal(ck.state.hello, 'world');
    assert.equal(ck.state.iteration, 7);
  });

  it('incomplete (temporary) directories are ignored; latest = highest iteration', () => {
    const wd = path.join(tmp, 'b');
    save(wd, 10);
    save(wd, 20);
    // an interrupted save: files present but never renamed
    fs.mkdirSync(path.join(wd, '.iter_30.tmp-1-2'));
    for (const f of ['model.safetensors', 'state.safetensors', 'state.json'])
      fs.writeFileSync(path.join(wd, '.iter_30.tmp-1-2', f), 'x');
    // a final-named directory missing files (not produced by us) is not complete either
    fs.mkdirSync(path.join(wd, 'iter_40'));
    assert.deepEqual(
      listCheckpoints(wd).map((c) => c.iteration),
      [10, 20],
    );
    assert.equal(latestCheckpoint(wd)!.iteration, 20);
    save(wd, 20, 'best');
    assert.equal(latestCheckpoint(wd)!.kind, 'iter', 'on a tie the iter_ checkpoint wins');
    assert.equal(latestCheckpoint(path.join(tmp, 'nothing-here')), null);
  });

  it('keeps the newest K iteration checkpoints plus the newest best; sweeps stale temporaries', () => {
    const wd = path.join(tmp, 'c');
    for (const i of [1, 2, 3, 4]) save(wd, i);
    save(wd, 2, 'best');
    save(wd, 3, 'best');
    fs.mkdirSync(path.join(wd, '.iter_5.tmp-999999-1'));
    pruneCheckpoints(wd, 2);
    assert.deepEqual(fs.readdirSync(wd).sort(), ['best_mIoU_iter_3', 'iter_3', 'iter_4']);
    pruneCheckpoints(wd, -1);
    assert.equal(fs.readdirSync(wd).length, 3);
  });

  it('saving over an existing checkpoint of the same iteration replaces it', () => {
    const wd = path.join(tmp, 'd');
    save(wd, 5);
    const dir = save(wd, 5);
    assert.equal(loadCheckpoint(dir).info.iteration, 5);
    assert.deepEqual(fs.readdirSync(wd), ['iter_5']);
  });
});

describe('GradScaler', () => {
  it('halves on overflow, doubles after the growth interval', () => {
    const s = new GradScaler({ growthInterval: 3 });
    assert.equal(s.scale, 65536);
    s.update(true);
    assert.equal(s.scale, 32768);
    s.update(false);
    s.update(false);
    assert.equal(s.scale, 32768);
    s.update(false);
    assert.equal(s.scale, 65536);
    assert.deepEqual(s.state(), { scale: 65536, growthTracker: 0 });
  });

  it('unscales gradients in place and detects inf/NaN', () => {
    const s = new GradScaler({ initScale: 4 });
    const p = tensor([1, 2]);
    p.requiresGrad_(true);
    p.grad = tensor([4, 8]);
    assert.equal(s.unscaleAndCheck([p]), true);
    assert.deepEqual([...p.grad!.toFloat32Array()], [1, 2]);
    p.grad = tensor([Infinity, 8]);
    assert.equal(s.unscaleAndCheck([p]), false);
    p.grad = tensor([NaN, 8]);
    assert.equal(s.unscaleAndCheck([p]), false);
  });
});
