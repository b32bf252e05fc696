/** mmengine LinearLR + PolyLR closed forms, with the numbers of notes §1.12 / Appendix A. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LrSchedule, lrAt, parseParamScheduler } from '../../src/engine/schedule.js';
import type { ParamGroup } from '../../src/engine/param_groups.js';

const near = (a: number, b: number, rel: number, what: string) =>
  assert.ok(Math.abs(a - b) <= rel * Math.abs(b), `${what}: ${a} vs ${b}`);

describe('lr schedule', () => {
  const base = parseParamScheduler([
    { type: 'LinearLR', start_factor: 1e-6, by_epoch: false, begin: 0, end: 1500 },
    { type: 'PolyLR', power: 1.0, begin: 1500, end: 160000, eta_min: 0.0, by_epoch: false },
  ]);

  it('base config numbers (1.x)', () => {
    near(lrAt(0, 3e-5, base), 3e-11, 1e-9, 't=0');
    near(lrAt(750, 3e-5, base), 1.501e-5, 1e-5, 't=750');
    near(lrAt(1499, 3e-5, base), 3e-5, 1e-12, 't=1499');
    near(lrAt(1500, 3e-5, base), 3e-5, 1e-12, 't=1500');
    near(lrAt(80000, 3e-5, base), 1.51419e-5, 1e-5, 't=80000');
    assert.equal(lrAt(159999, 3e-5, base), 0);
  });

  it('large config quirk: PolyLR end=160000 in a 320k loop leaves lr 0 after', () => {
    const large = parseParamScheduler([
      { type: 'LinearLR', start_factor: 1e-6, by_epoch: false, begin: 0, end: 3000 },
      { type: 'PolyLR', power: 1.0, begin: 3000, end: 160000, eta_min: 0.0, by_epoch: false },
    ]);
    assert.equal(lrAt(2999, 2e-5, large), 2e-5);
    assert.equal(lrAt(159999, 2e-5, large), 0);
    assert.equal(lrAt(160000, 2e-5, large), 0);
    assert.equal(lrAt(319999, 2e-5, large), 0);
  });

  it('multiplies each group initial lr (layer-decay ratios persist)', () => {
    const groups = [0.5, 1].map((s) => ({ name: `g${s}`, initialLr: s * 3e-5, lr: 0 }) as unknown as ParamGroup);
    new LrSchedule(base).apply(groups, 80000);
    near(groups[0]!.lr / groups[1]!.lr, 0.5, 1e-12, 'ratio');
    near(groups[1]!.lr, 1.51419e-5, 1e-5, 'lr');
  });

  it('rejects what it does not support', () => {
    assert.throws(() => parseParamScheduler([{ type: 'CosineAnnealingLR' }]), /not supported/);
    assert.throws(() => parseParamScheduler([{ type: 'PolyLR', by_epoch: true }]), /by_epoch/);
    assert.throws(() => parseParamScheduler([{ type: 'PolyLR', begin: 10, end: 5 }]), /greater/);
  });
});
