/**
 * Issue 28 item 3: `train --resume` on an mmengine work dir (last_checkpoint -> iter_N.pth).
 * A beitseg run's checkpoint at iteration 3 is rewritten as the runner checkpoint mmengine writes
 * (test/engine/make_mmengine_workdir.py: a real torch AdamW state_dict, with mmseg's group_name and
 * param_names or without them), resumed, and trained to 6: the result must equal 6 straight
 * iterations byte for byte (dropout and drop path off, so the random generators, which mmengine
 * does not hand over, play no part). A checkpoint of another model is refused naming the group.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { readPthContent } from '../../src/checkpoint/formats/pth.js';
import { scalarValue } from '../../src/checkpoint/numpy_scalar.js';
import type { Dict } from '../../src/config/merge.js';
import { mmengineCheckpointOf } from '../../src/engine/mmengine_work_dir.js';
import { Trainer, train, type TrainOptions } from '../../src/engine/trainer.js';
import { repoRoot } from '../helpers.js';
import { tempDir } from '../temp.js';
import { sameCheckpointFiles, trainOptionsOn } from './fixtures.js';

const python = '/usr/bin/python3';
const haveTorch = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
const converter = path.join(repoRoot, 'test', 'engine', 'make_mmengine_workdir.py');
const fixture = path.join(repoRoot, 'test', 'fixtures', 'checkpoint', 'mmengine_runner.pth');
const tmp = tempDir('beitseg-mmresume-');
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The options with dropout and drop path off, and without layer decay when `plain`. */
function deterministic(o: TrainOptions, plain = false): TrainOptions {
  const cfg = structuredClone(o.config) as Dict;
  const model = cfg.model as Dict;
  (model.backbone as Dict).drop_path_rate = 0;
  (model.decode_head as Dict).dropout_ratio = 0;
  (model.auxiliary_head as Dict).dropout_ratio = 0;
  if (plain) {
    const ow = cfg.optim_wrapper as Dict;
    Reflect.deleteProperty(ow, 'constructor');
    delete ow.paramwise_cfg;
  }
  return { ...o, config: cfg };
}

/** Writes an mmengine work dir from `ckptDir`, with the model's parameter groups and order. */
async function convert(options: TrainOptions, ckptDir: string, workDir: string, named: boolean): Promise<void> {
  const t = await Trainer.create(options);
  const layout = {
    named,
    stateOrder: [...t.model.stateDict().keys()],
    groups: t.groups.map((g) => ({ name: g.name, lrScale: g.lrScale, paramNames: g.paramNames })),
  };
  t.model.dispose();
  const layoutFile = path.join(tmp, `layout-${path.basename(workDir)}.json`);
  fs.writeFileSync(layoutFile, JSON.stringify(layout));
  const r = spawnSync(python, [converter, ckptDir, layoutFile, workDir], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
}

describe('resume from an mmengine work dir', () => {
  const lines: string[] = [];
  const base = trainOptionsOn(
    tmp,
    { n: 12, height: 64, width: 72, classes: 6, seed: 5, splitVal: 2 },
    {
      maxIters: 6,
      batchSize: 2,
      valInterval: 3,
      checkpointInterval: 3,
      valLimit: 2,
      seed: 3,
      log: (l) => lines.push(l),
    },
  );

  for (const plain of [false, true]) {
    const kind = plain
      ? 'a plain AdamW (indices in state-dict order)'
      : "mmseg's layer decay (group_name, param_names)";
    it(`3 iterations + mmengine checkpoint + resume + 3 = 6 straight, byte for byte: ${kind}`, async (t) => {
      if (!haveTorch) {
        t.skip('python3-torch is not installed (scripts/setup.sh installs it): no mmengine checkpoint to resume');
        return;
      }
      const straight = path.join(tmp, `straight-${plain}`);
      const done = await train(deterministic(base(straight), plain));
      assert.equal(done.iteration, 6);
      done.model.dispose();
      const work = path.join(tmp, `mmengine-${plain}`);
      await convert(deterministic(base(path.join(tmp, 'probe')), plain), path.join(straight, 'iter_3'), work, !plain);
      assert.equal(mmengineCheckpointOf(work), path.join(work, 'iter_3.pth'));

      lines.length = 0;
      const resumed = await train(deterministic(base(work, { resume: true }), plain));
      assert.equal(resumed.iteration, 6);
      resumed.model.dispose();
      const carried = /^resumed mmengine checkpoint .*iter_3\.pth at iteration 3: weights, AdamW moments of \d+ /;
      const best = /, best mIoU [\d.]+ \(iteration 3\);/;
      assert.ok(
        lines.some((l) => carried.test(l) && best.test(l)),
        lines.join('\n'),
      );
      sameCheckpointFiles(path.join(straight, 'iter_6'), path.join(work, 'iter_6'));
    });
  }

  it("refuses a checkpoint whose optimizer groups are not the config's, naming the group", async (t) => {
    if (!haveTorch) {
      t.skip('python3-torch is not installed (scripts/setup.sh installs it): no mmengine checkpoint to resume');
      return;
    }
    // the layer-decay runner checkpoint resumed by the plain config (one group, 'default')
    const ckpt = path.join(tmp, 'mmengine-false', 'iter_3.pth');
    await assert.rejects(
      train(deterministic(base(path.join(tmp, 'refused'), { resume: ckpt }), true)),
      new RegExp(
        "the optimizer's parameter group layer_0_decay \\(\\d+ parameters\\) does not match the config's " +
          '\\(no such group\\).*--load-from .*iter_3\\.pth instead',
      ),
    );
  });
});

describe('mmengine work dirs', () => {
  it("numpy scalars of the message hub are read (mmengine's best_score)", async () => {
    const root = (await readPthContent(fixture, { foreignGlobals: 'data' })).value as Map<string, unknown>;
    const info = (root.get('message_hub') as Map<string, unknown>).get('runtime_info') as Map<string, unknown>;
    assert.equal(scalarValue(info.get('best_score')), 0.4125);
    assert.equal(scalarValue(info.get('best_iter')), 4);
    assert.equal(scalarValue(info.get('dataset_meta')), null);
  });

  it('are recognised by last_checkpoint (even after a move) or the newest iter_N.pth', () => {
    const dir = tempDir('beitseg-mmwd-');
    try {
      assert.equal(mmengineCheckpointOf(dir), null);
      fs.copyFileSync(fixture, path.join(dir, 'iter_4.pth'));
      fs.copyFileSync(fixture, path.join(dir, 'iter_12.pth'));
      assert.equal(mmengineCheckpointOf(dir), path.join(dir, 'iter_12.pth'));
      fs.writeFileSync(path.join(dir, 'last_checkpoint'), '/gone/work_dirs/run/iter_4.pth');
      assert.equal(mmengineCheckpointOf(dir), path.join(dir, 'iter_4.pth'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("train --resume on another model's runner checkpoint ends in a one-line error, before any training", () => {
    const dir = tempDir('beitseg-mmwd-');
    try {
      fs.copyFileSync(fixture, path.join(dir, 'iter_8.pth'));
      fs.writeFileSync(path.join(dir, 'last_checkpoint'), path.join(dir, 'iter_8.pth'));
      const bin = path.join(repoRoot, 'bin', 'beitseg.js');
      const config = path.join(repoRoot, 'configs', 'tiny_synthetic.json');
      const args = [bin, 'train', '--config', config, '--work-dir', dir, '--device', 'cpu', '--resume'];
      const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /iter_8\.pth/);
      assert.equal(
        r.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('beitseg: error:')).length,
        1,
        r.stderr,
      );
      assert.ok(!fs.readdirSync(dir).some((f) => f.startsWith('iter_') && !f.endsWith('.pth')), 'nothing was trained');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
