/**
 * AdamW + layer-decay groups against torch.optim.AdamW: the tiny model (eval mode, dropout
 * off) with the fixture weights, loss on input.image / loss.label, backward, one step
 * (base lr 1e-3, wd 0.05, betas 0.9/0.999, eps 1e-8), parameters compared with
 * `adamw.after.*` of tensors.safetensors.
 *
 * Tolerance (manifest grad_stats_note): the first step moves an element by about
 * lr·g/(|g| + eps), so float32 rounding differences in g matter only where |g| is tiny. Every
 * element must agree within 4 ulps (of the largest of the value before, after and the step
 * size lr), except elements whose reference gradient is
 * below 1e-4 in magnitude, which may differ by up to 2·lr; those are counted and bounded.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { AdamW } from '../../src/engine/adamw.js';
import { layerDecayParamGroups } from '../../src/engine/param_groups.js';
import type { EncoderDecoder } from '../../src/models/segmentors/encoder_decoder.js';
import { noGrad } from '../../src/tensor/runtime.js';
import { zeros, type Tensor } from '../../src/tensor/tensor.js';
import { goldenGetter, loadFixtureTensors, loadTinyModel } from '../helpers.js';

function ulp(x: number): number {
  const a = Math.fround(Math.abs(x));
  if (a === 0) return 1.4e-45;
  const e = Math.floor(Math.log2(a));
  return 2 ** (Math.max(e, -126) - 23);
}

describe('AdamW one step vs torch.optim.AdamW', () => {
  let model: EncoderDecoder;
  let golden: Map<string, Tensor>;
  let opt: AdamW;
  const initial = new Map<string, Float32Array>();
  let g: (key: string) => Tensor;

  before(() => {
    model = loadTinyModel();
    for (const [n, p] of model.namedParameters()) initial.set(n, p.detach().toFloat32Array());
    golden = loadFixtureTensors('tensors.safetensors');
    g = goldenGetter(golden);
    const groups = layerDecayParamGroups(model.namedParameters(), {
      numLayers: 4,
      decayRate: 0.9,
      baseLr: 1e-3,
      baseWeightDecay: 0.05,
    });
    opt = new AdamW(groups, { betas: [0.9, 0.999], eps: 1e-8 });
    opt.zeroGrad();
    const out = model.loss(g('input.image'), g('loss.label').to('int64').unsqueeze(0));
    out.loss.backward();
    opt.step();
  });

  it('parameters after one step equal adamw.after.* (ulps; tiny-gradient elements bounded)', () => {
    const params = new Map(model.namedParameters());
    const keys = [...golden.keys()].filter((k) => k.startsWith('adamw.after.'));
    assert.equal(keys.length, 10);
    const report: string[] = [];
    let tinyTotal = 0,
      elements = 0;
    for (const k of keys) {
      const name = k.slice('adamw.after.'.length);
      const group = opt.groups.find((gr) => gr.paramNames.includes(name))!;
      const ours = params.get(name)!.detach().toFloat32Array();
      const before = initial.get(name)!;
      const ref = g(k).toFloat32Array();
      const grad = g(`grad.${name}`).toFloat32Array();
      let maxUlps = 0,
        tiny = 0,
        tinyMax = 0;
      for (let i = 0; i < ref.length; i++) {
        const d = Math.abs(ours[i]! - ref[i]!);
        if (Math.abs(grad[i]!) < 1e-4) {
          if (d > 4 * ulp(Math.max(Math.abs(ref[i]!), Math.abs(before[i]!), group.lr))) {
            tiny++;
            tinyMax = Math.max(tinyMax, d);
          }
          assert.ok(d <= 2 * group.lr, `${name}[${i}] (|g| ${Math.abs(grad[i]!)}): |diff| ${d} > 2·lr`);
        } else {
          // ulps of the largest operand: the parameter before or after, or the step (~lr)
          const u = d / ulp(Math.max(Math.abs(ref[i]!), Math.abs(before[i]!), group.lr));
          maxUlps = Math.max(maxUlps, u);
          assert.ok(
            u <= 4,
            `${name}[${i}] (|g| ${Math.abs(grad[i]!)}): ${ours[i]} vs ${ref[i]} (${u.toFixed(1)} ulps)`,
          );
        }
      }
      tinyTotal += tiny;
      elements += ref.length;
      report.push(
        `${name}: max ${maxUlps.toFixed(1)} ulps, ${tiny} tiny-|g| elements off (max ${tinyMax.toExponential(2)})`,
      );
    }
    console.log(report.join('\n'));
    assert.ok(tinyTotal <= elements * 1e-3, `${tinyTotal} tiny-gradient elements differ beyond 4 ulps`);
  });

  it('state: step, moments; stateDict round trip', () => {
    const p = new Map(model.namedParameters()).get('decode_head.conv_seg.weight')!;
    const st = opt.paramState(p)!;
    assert.equal(st.step, 1);
    const sd = opt.stateDict();
    assert.equal(sd.meta.steps['decode_head.conv_seg.weight'], 1);
    const copy = new Map([...sd.tensors].map(([k, t]) => [k, t.clone()]));
    const opt2 = new AdamW(opt.groups, { betas: [0.9, 0.999], eps: 1e-8 });
    opt2.loadStateDict({ tensors: copy, meta: JSON.parse(JSON.stringify(sd.meta)) });
    const st2 = opt2.paramState(p)!;
    assert.equal(st2.step, 1);
    assert.notEqual(st2.expAvg, st.expAvg);
    assert.deepEqual(st2.expAvg.toBytes(), st.expAvg.toBytes());
    assert.deepEqual(st2.expAvgSq.toBytes(), st.expAvgSq.toBytes());
  });

  it('skips parameters without a gradient and applies decoupled decay exactly', () => {
    noGrad(() => {
      const w = zeros([3]).add(2);
      w.requiresGrad_(true);
      const o = new AdamW([
        {
          name: 'g',
          layerId: 0,
          lrScale: 1,
          initialLr: 0.1,
          lr: 0.1,
          weightDecay: 0.5,
          paramNames: ['w'],
          params: [w],
        },
      ]);
      o.step();
      assert.deepEqual([...w.toFloat32Array()], [2, 2, 2]);
      assert.equal(o.paramState(w), undefined);
      w.grad = zeros([3]);
      o.step();
      // g = 0: only the decay acts: 2 · (1 − 0.1·0.5)
      assert.deepEqual([...w.toFloat32Array()], [1.9, 1.9, 1.9].map(Math.fround));
    });
  });

  it('parameters at different step counts in one group each get their own bias correction', () => {
    noGrad(() => {
      const [lr, b1, b2, eps] = [0.01, 0.9, 0.999, 1e-8];
      const a = zeros([2]).add(1),
        b = zeros([2]).add(-1);
      const o = new AdamW([
        {
          name: 'g',
          layerId: 0,
          lrScale: 1,
          initialLr: lr,
          lr,
          weightDecay: 0,
          paramNames: ['a', 'b'],
          params: [a, b],
        },
      ]);
      a.grad = zeros([2]).add(0.5);
      o.step(); // a: step 1; b has no gradient yet
      a.grad = zeros([2]).add(0.25);
      b.grad = zeros([2]).add(-2);
      o.step(); // a: step 2, b: step 1
      assert.equal(o.paramState(a)!.step, 2);
      assert.equal(o.paramState(b)!.step, 1);
      // float64 reference of torch.optim.AdamW
      const ref = (p0: number, grads: number[]) => {
        let p = p0,
          m = 0,
          v = 0;
        grads.forEach((g, i) => {
          const t = i + 1;
          m = b1 * m + (1 - b1) * g;
          v = b2 * v + (1 - b2) * g * g;
          p -= ((lr / (1 - b1 ** t)) * m) / (Math.sqrt(v) / Math.sqrt(1 - b2 ** t) + eps);
        });
        return p;
      };
      for (const x of a.toFloat32Array())
        assert.ok(Math.abs(x - ref(1, [0.5, 0.25])) < 1e-6, `a: ${x} vs ${ref(1, [0.5, 0.25])}`);
      for (const x of b.toFloat32Array()) assert.ok(Math.abs(x - ref(-1, [-2])) < 1e-6, `b: ${x} vs ${ref(-1, [-2])}`);
    });
  });
});
