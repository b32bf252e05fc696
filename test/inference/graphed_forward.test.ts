/**
 * GraphedForward (src/inference/graphed_forward.ts): the bookkeeping around CUDA graphs, on the
 * CPU. A CUDA capture records kernels and a replay runs them on the captured tensors; the
 * stand-in below does the same with the CPU: "capture" runs the function once for its output
 * tensor, "replay" runs it again on the captured input and writes into that same output. So
 * what is tested here is GraphedForward's own logic (one capture per shape, new inputs copied
 * in, results copied out, least-recently-used eviction, nothing leaked on failure) with the
 * real tiny model; the CUDA capture itself needs a CUDA build and device (README "GPU").
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { initModel } from '../../src/inference/api.js';
import { GraphedForward } from '../../src/inference/graphed_forward.js';
import { captureCudaGraph, type CaptureFn } from '../../src/tensor/cuda_graph.js';
import { cpuMemory, noGrad } from '../../src/tensor/runtime.js';
import { tidy } from '../../src/tensor/scope.js';
import { randn, type Tensor } from '../../src/tensor/tensor.js';
import {
  fixtureFile,
  goldenGetter,
  loadFixtureTensors,
  loadTinyModel,
  maxAbsDiff,
  tinyConfigPath,
} from '../helpers.js';

let standInCaptures = 0;
const standIn: CaptureFn = (fn) => {
  standInCaptures++;
  const output = fn();
  return {
    output,
    replay: () => tidy(() => void output.copy_(fn())),
    dispose: () => output.dispose(),
  };
};

describe('GraphedForward', () => {
  const model = loadTinyModel();
  const eager = (x: Tensor): Tensor => model.encodeDecode(x);
  const window = (seed: number): Tensor => tidy(() => randn([1, 3, 32, 32]).mul(seed));

  it('captures once per shape and replays new inputs into it: results equal the eager forward', () => {
    noGrad(() => {
      const graphed = new GraphedForward(eager, { capture: standIn, warmup: 1 });
      const inputs = [1, 2, 3].map(window);
      const results = inputs.map((x) => graphed.run(x));
      assert.equal(graphed.captures, 1);
      assert.equal(graphed.replays, 3);
      // each result is its own copy: later replays did not overwrite earlier results
      inputs.forEach((x, k) => assert.equal(maxAbsDiff(results[k]!, eager(x)), 0, `input ${k}`));
      assert.ok(maxAbsDiff(results[0]!, results[1]!) > 0, 'different inputs, different outputs');
      graphed.dispose();
    });
  });

  it('keeps at most maxGraphs shapes, least recently used out first', () => {
    noGrad(() => {
      const graphed = new GraphedForward(eager, { capture: standIn, warmup: 0, maxGraphs: 2 });
      const a = randn([1, 3, 32, 32]),
        b = randn([2, 3, 32, 32]),
        c = randn([3, 3, 32, 32]);
      for (const x of [a, b, a, c]) graphed.run(x).dispose(); // c evicts b (a was used after b)
      assert.equal(graphed.captures, 3);
      assert.equal(graphed.size, 2);
      graphed.run(a).dispose();
      assert.equal(graphed.captures, 3, 'a stayed');
      graphed.run(b).dispose();
      assert.equal(graphed.captures, 4, 'b was evicted and is captured again');
      graphed.dispose();
      assert.equal(graphed.size, 0);
    });
  });

  it("survives the caller's tidy scopes and frees everything it holds on dispose", () => {
    noGrad(() => {
      const before = cpuMemory().tensorHandles;
      const graphed = new GraphedForward(eager, { capture: standIn, warmup: 1 });
      const x = window(1);
      const expected = eager(x);
      tidy(() => void graphed.run(x)); // the capture happens inside a scope that then closes
      const again = graphed.run(x);
      assert.equal(maxAbsDiff(again, expected), 0);
      for (const t of [x, expected, again]) t.dispose();
      graphed.dispose();
      assert.equal(cpuMemory().tensorHandles, before, 'no tensor handle left behind');
    });
  });

  it('a capture that fails leaves nothing behind and the error reaches the caller', () => {
    noGrad(() => {
      const before = cpuMemory().tensorHandles;
      let calls = 0;
      const failing: CaptureFn = () => {
        calls++;
        throw new Error('capture failed');
      };
      const graphed = new GraphedForward(eager, { capture: failing, warmup: 1 });
      const x = window(1);
      assert.throws(() => graphed.run(x), /capture failed/);
      assert.equal(calls, 1);
      assert.equal(graphed.size, 0);
      x.dispose();
      assert.equal(cpuMemory().tensorHandles, before);
    });
  });

  it('slide inference through it equals mmseg golden logits (batches of 4 and a smaller last one)', () => {
    noGrad(() => {
      const g = goldenGetter(loadFixtureTensors('tensors.safetensors'));
      const captures = standInCaptures;
      const graphed = new GraphedForward(eager, { capture: standIn, warmup: 0 });
      const logits = model.slideInference(g('slide.image'), {
        windowBatch: 4,
        windowForward: (crops) => graphed.run(crops),
      });
      assert.ok(maxAbsDiff(logits, g('slide.logits')) < 1e-4);
      assert.equal(standInCaptures - captures, graphed.size, 'one capture per window-batch shape');
      graphed.dispose();
    });
  });

  it('refuses a device that is not CUDA, in the capture and in initModel', async () => {
    assert.throws(() => captureCudaGraph(() => randn([1]), 'cpu'), /CUDA graphs need a CUDA device, got 'cpu'/);
    await assert.rejects(
      initModel(tinyConfigPath, fixtureFile('segmentor_state_dict.safetensors'), { device: 'cpu', cudaGraphs: true }),
      /CUDA graphs need a CUDA device, not cpu/,
    );
  });
});
