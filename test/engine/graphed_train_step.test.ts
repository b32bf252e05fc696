/**
 * CUDA-graphed training steps (src/engine/graphed_train_step.ts) on the CPU. A CUDA capture
 * records kernels without running them and a replay runs them on the captured tensors; the
 * stand-in below runs the step once when "capturing" (and says so: executed) and again on every
 * "replay", with host reads forbidden inside as in a capture. What is tested is everything but
 * the CUDA capture itself: that the captured step needs nothing from the host (losses, accuracy,
 * the fp16 inf/NaN verdict and the AdamW settings stay on the device), that it trains exactly as
 * the eager step (checkpoints byte for byte, skipped fp16 steps included) and its clear errors.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { Batch } from '../../src/data/loader.js';
import { AdamW } from '../../src/engine/adamw.js';
import { GraphedTrainStep, type LossValues } from '../../src/engine/graphed_train_step.js';
import { AmpOptimWrapper } from '../../src/engine/optim_wrapper.js';
import { singleParamGroup, type ParamGroup } from '../../src/engine/param_groups.js';
import { eagerTrainIter } from '../../src/engine/train_loop.js';
import { Trainer } from '../../src/engine/trainer.js';
import type { EncoderDecoder } from '../../src/models/segmentors/encoder_decoder.js';
import type { CaptureFn } from '../../src/tensor/cuda_graph.js';
import { adamwStep, adamwStepDevice, ampUnscaleDevice } from '../../src/tensor/functional.js';
import { withoutHostReads } from '../../src/tensor/host_reads.js';
import { cpuMemory, manualSeed } from '../../src/tensor/runtime.js';
import { tidy } from '../../src/tensor/scope.js';
import { fromArray, randn, zeros, type Tensor } from '../../src/tensor/tensor.js';
import { loadTinyModel, maxAbsDiff } from '../helpers.js';
import { sameCheckpointFiles, trainOptionsOn } from './fixtures.js';
import { tempDir } from '../temp.js';

const standIn: CaptureFn = (fn) => {
  const output = fn();
  return {
    output,
    executed: true,
    replay: () => tidy(() => void output.copy_(fn())),
    dispose: () => output.dispose(),
  };
};

const tmp = tempDir('beitseg-graphed-train-');
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function bitsEqual(a: Tensor, b: Tensor): boolean {
  return Buffer.from(a.toBytes()).equals(Buffer.from(b.toBytes()));
}

describe('device-side optimizer pieces', () => {
  const shapes = [[3, 5], [7], [2, 3, 4]];
  const make = () => shapes.map((s) => randn(s));
  const settingsFor = (n: number, [b1, b2]: number[], rows: number[][]) =>
    fromArray(new Float32Array([b1!, 1 - b1!, b2!, 1 - b2!, ...rows.flat()]), [4 + 3 * n]);

  it('adamwStepDevice equals adamwStep bit for bit, and with foundInf set changes nothing', () => {
    manualSeed(1);
    const params = make(),
      grads = make(),
      m = make().map((t) => t.mul(0.1)),
      v = make().map((t) => t.abs().mul(0.01));
    const copies = (ts: Tensor[]) => ts.map((t) => t.clone());
    const [p1, m1, v1] = [copies(params), copies(m), copies(v)];
    const stepSizes = [1e-3, 2e-3, 5e-4],
      bc2 = [0.3, 0.5, 0.7];
    const decay = 1 - 1e-3 * 0.05;
    adamwStep(p1, grads, m1, v1, stepSizes, bc2, { decay, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    const settings = settingsFor(
      3,
      [0.9, 0.999],
      stepSizes.map((s, i) => [decay, -s, bc2[i]!]),
    );
    const [p2, m2, v2] = [copies(params), copies(m), copies(v)];
    adamwStepDevice(p2, grads, m2, v2, settings, 1e-8, null);
    for (let i = 0; i < 3; i++) {
      assert.ok(bitsEqual(p1[i]!, p2[i]!), `param ${i}`);
      assert.ok(bitsEqual(m1[i]!, m2[i]!) && bitsEqual(v1[i]!, v2[i]!), `moments ${i}`);
      assert.ok(maxAbsDiff(p1[i]!, params[i]!) > 0, 'the step moved the parameter');
    }
    // a skipped step: non-finite gradients, foundInf = 1, everything stays as it was
    const bad = grads.map((g) => g.clone());
    bad[1]!.fill_(Number.NaN);
    bad[2]!.fill_(Number.POSITIVE_INFINITY);
    const skip = settingsFor(
      3,
      [1, 1],
      [0, 1, 2].map(() => [1, 0, 1]),
    );
    // "1, 1" above gives 1 − β = 0 in the skip row, as the step's own skip settings do
    const [p3, m3, v3] = [copies(params), copies(m), copies(v)];
    adamwStepDevice(p3, bad, m3, v3, settings, 1e-8, {
      foundInf: fromArray(new Float32Array([1]), [1]),
      settings: skip,
    });
    for (let i = 0; i < 3; i++) {
      assert.ok(bitsEqual(p3[i]!, params[i]!), `param ${i} unchanged`);
      assert.ok(bitsEqual(m3[i]!, m[i]!) && bitsEqual(v3[i]!, v[i]!), `moments ${i} unchanged`);
    }
    // foundInf = 0 with skip settings given: the real step
    const [p4, m4, v4] = [copies(params), copies(m), copies(v)];
    adamwStepDevice(p4, grads, m4, v4, settings, 1e-8, { foundInf: zeros([1]), settings: skip });
    for (let i = 0; i < 3; i++) assert.ok(bitsEqual(p4[i]!, p1[i]!), `param ${i} stepped`);
  });

  it('adamwStepDevice checks its settings layout', () => {
    const p = [zeros([2])];
    assert.throws(
      () => adamwStepDevice(p, p, p, p, zeros([5]), 1e-8, null),
      /settings must be a float32 vector of 4 \+ 3 \* params.length/,
    );
  });

  it('ampUnscaleDevice unscales and records a non-finite gradient without reading it back', () => {
    const found = zeros([1]);
    const inv = fromArray(new Float32Array([0.25]), [1]);
    const grads = [fromArray(new Float32Array([4, 8]), [2]), fromArray(new Float32Array([2]), [1])];
    withoutHostReads('this test', () => ampUnscaleDevice(grads, found, inv));
    assert.deepEqual([...grads[0]!.toTypedArray()], [1, 2]);
    assert.equal(found.item(), 0);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const f = zeros([1]);
      ampUnscaleDevice([fromArray(new Float32Array([1, bad]), [2]), fromArray(new Float32Array([3]), [1])], f, inv);
      assert.equal(f.item(), 1, `found ${bad}`);
      // not cleared by a later clean call (the step zeroes it itself)
      ampUnscaleDevice([fromArray(new Float32Array([1]), [1])], f, inv);
      assert.equal(f.item(), 1);
    }
  });

  it('a host read inside withoutHostReads names the read and the capture', () => {
    const t = zeros([1]);
    assert.throws(
      () => withoutHostReads('a captured training step', () => t.item()),
      /item\(\): reads or copies a tensor's elements on the host inside a captured training step/,
    );
    assert.equal(t.item(), 0, 'allowed again afterwards');
  });
});

describe('Trainer --cuda-graphs (CPU stand-in capture)', () => {
  // valInterval 4: a validation (eval mode, eager) between replays
  const base = trainOptionsOn(
    tmp,
    { n: 8, height: 64, width: 72, classes: 6, seed: 5, splitVal: 2 },
    { maxIters: 5, batchSize: 2, valInterval: 4, valLimit: 2, checkpointInterval: 100, logInterval: 1, seed: 3 },
  );

  for (const amp of ['fp32', 'bf16'] as const) {
    it(`${amp}: 2 eager iterations, a capture, replays: checkpoints equal eager training byte for byte`, async () => {
      const eager = await Trainer.create(base(path.join(tmp, `eager-${amp}`), { amp }));
      const eagerValues: LossValues[] = [];
      eager.hooks.register({ name: 'values', afterTrainIter: (_r, _t, _b, out) => void eagerValues.push(out.values) });
      await eager.run();
      const lines: string[] = [];
      const graphedValues: LossValues[] = [];
      const graphed = await Trainer.create(
        base(path.join(tmp, `graphed-${amp}`), {
          amp,
          cudaGraphs: true,
          cudaGraphCapture: standIn,
          log: (l) => lines.push(l),
        }),
      );
      graphed.hooks.register({
        name: 'values',
        afterTrainIter: (_r, _t, _b, out) => void graphedValues.push(out.values),
      });
      await graphed.run();
      assert.ok(
        lines.some((l) => /^cuda graphs: training step captured for batch 2x64x64 after 2 eager iteration/.test(l)),
        lines.join('\n'),
      );
      assert.equal(graphed.graphedStep!.replays, 3, 'iterations 3..5 from the graph');
      assert.deepEqual(graphedValues, eagerValues, 'logged losses and accuracies');
      sameCheckpointFiles(path.join(tmp, `eager-${amp}`, 'iter_5'), path.join(tmp, `graphed-${amp}`, 'iter_5'));
      eager.model.dispose();
      graphed.model.dispose();
    });
  }

  it('refuses what it cannot capture, with the reason', async () => {
    await assert.rejects(
      Trainer.create(base(path.join(tmp, 'refused'), { cudaGraphs: true })),
      /--cuda-graphs needs a CUDA device \(got cpu\)/,
    );
    await assert.rejects(
      Trainer.create(base(path.join(tmp, 'refused'), { cudaGraphs: true, cudaGraphCapture: standIn, accum: 2 })),
      /CUDA-graphed training steps need accumulative_counts 1 \(got 2\)/,
    );
  });
});

/** A random batch for the tiny model (labels of `classes` classes with an ignored band). */
function randomBatch(seed: number, classes: number): Batch {
  manualSeed(seed);
  const [n, h, w] = [2, 32, 32];
  const img = tidy(() => randn([n, 3, h, w]).toFloat32Array());
  const label = tidy(() =>
    randn([n, h, w])
      .abs()
      .mul(6)
      .floor()
      .clamp(0, classes - 1)
      .to('uint8')
      .toTypedArray(),
  ) as Uint8Array;
  for (let i = 0; i < w * 4; i++) label[i] = 255;
  return { img, label, n, height: h, width: w, metas: [], sizes: [] } as unknown as Batch;
}

/** Float32 training with dynamic loss scaling: the fp16 scaler path without fp16 (CPU has none). */
class ScaledFloat32Wrapper extends AmpOptimWrapper {
  override optimContext<T>(forward: () => T): T {
    return forward();
  }
}

function scaledTraining(model: EncoderDecoder, iterations: number) {
  const groups: ParamGroup[] = singleParamGroup(model.namedParameters(), 1e-3, 0.05);
  const ow = new ScaledFloat32Wrapper(
    new AdamW(groups),
    groups,
    { accum: 1, maxIters: iterations, deviceType: 'cpu' },
    'float16',
  );
  // far too large: the first steps overflow and are skipped while the scale halves
  ow.scaler!.scale = 2 ** 127;
  const eager = (t: number, batch: Batch): LossValues =>
    eagerTrainIter({ model, optimWrapper: ow, device: 'cpu' }, t, batch);
  return { ow, eager };
}

describe('GraphedTrainStep with dynamic loss scaling (fp16 path, float32 arithmetic)', () => {
  it('skips the same steps on the device as the eager step on the host, and ends equal', () => {
    const iterations = 6;
    const a = loadTinyModel().train(),
      b = loadTinyModel().train();
    const eager = scaledTraining(a, iterations);
    const graphed = scaledTraining(b, iterations);
    const step = new GraphedTrainStep(b, graphed.ow, 'cpu', { warmup: 1, capture: standIn });
    const skipped: number[] = [];
    for (let t = 0; t < iterations; t++) {
      const batch = randomBatch(100 + t, a.numClasses);
      // overflow (again) in a replayed step
      if (t === 3) for (const w of [eager.ow, graphed.ow]) w.scaler!.scale = 2 ** 127;
      manualSeed(t);
      const x = eager.eager(t, batch).loss;
      manualSeed(t);
      const y = step.run(batch, () => graphed.eager(t, batch)).loss;
      assert.equal(y, x, `iteration ${t} loss`);
      assert.equal(graphed.ow.skippedSteps, eager.ow.skippedSteps, `iteration ${t} skipped steps`);
      assert.equal(graphed.ow.scaler!.scale, eager.ow.scaler!.scale, `iteration ${t} loss scale`);
      skipped.push(graphed.ow.skippedSteps);
    }
    assert.ok(step.isCaptured && step.replays === iterations - 1);
    // steps from the graph (t ≥ 1) overflowed and were skipped, others ran
    assert.ok(skipped[5]! > skipped[0]! && skipped[5]! < 5, `skipped steps after each iteration: ${skipped}`);
    const pa = a.namedParameters(),
      pb = new Map(b.namedParameters());
    for (const [name, p] of pa) assert.ok(bitsEqual(p, pb.get(name)!), name);
    assert.deepEqual(graphed.ow.optimizer.stateDict().meta.steps, eager.ow.optimizer.stateDict().meta.steps);
    step.dispose();
  });

  it('a host read inside the step or a parameter without a gradient: a clear error, nothing kept', () => {
    const model = loadTinyModel().train();
    const { ow } = scaledTraining(model, 2);
    const reading = Object.create(model) as EncoderDecoder;
    reading.loss = (img, label) => {
      const out = model.loss(img, label);
      out.loss.item();
      return out;
    };
    const handles = cpuMemory().tensorHandles;
    const step = new GraphedTrainStep(reading, ow, 'cpu', { warmup: 0, capture: standIn });
    assert.throws(
      () => step.run(randomBatch(1, model.numClasses), () => ({})),
      /item\(\): reads or copies a tensor's elements on the host inside a captured training step/,
    );
    assert.equal(step.isCaptured, false);
    ow.optimizer.dispose();
    assert.equal(cpuMemory().tensorHandles, handles, 'no tensor left behind');

    const extra = zeros([3]).requiresGrad_();
    ow.groups[0]!.params.push(extra);
    ow.groups[0]!.paramNames.push('unused.weight');
    const unused = new GraphedTrainStep(model, ow, 'cpu', { warmup: 0, capture: standIn });
    assert.throws(
      () => unused.run(randomBatch(2, model.numClasses), () => ({})),
      /need a gradient for every trainable parameter; none for unused.weight/,
    );
  });
});
