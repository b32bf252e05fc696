/**
 * mmseg's norm_cfg decides which BatchNorms synchronise in a distributed run: SyncBN (and the
 * BEiT configs' default) over the global batch, BN per rank. A stand-in default group that
 * throws when used tells which path a layer takes, without a second process.
 */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { setDefaultGroup } from '../../src/distributed/context.js';
import type { ProcessGroup } from '../../src/distributed/process_group.js';
import { buildSegmentor } from '../../src/models/builder.js';
import { loadConfig, type Dict } from '../../src/config/schema.js';
import { BatchNorm2d } from '../../src/nn/norm.js';
import { randn } from '../../src/tensor/tensor.js';
import { tinyConfigPath } from '../helpers.js';

/** A two-rank group whose every collective throws 'group used'. */
function tripwireGroup(): ProcessGroup {
  return new Proxy({ rank: 0, worldSize: 2 } as unknown as ProcessGroup, {
    get(target, key) {
      if (key === 'rank' || key === 'worldSize') return Reflect.get(target, key);
      throw new Error('group used');
    },
  });
}

afterEach(() => setDefaultGroup(null));

test('BatchNorm2d: sync (SyncBN) uses the default group in training, sync=false (BN) never does', () => {
  setDefaultGroup(tripwireGroup());
  const x = randn([2, 3, 4, 4]);
  const local = new BatchNorm2d(3, 1e-5, 0.1, false);
  local.train();
  local.forward(x).dispose();
  const synced = new BatchNorm2d(3);
  synced.train();
  assert.throws(() => synced.forward(x), /group used/);
  synced.eval();
  synced.forward(x).dispose();
  x.dispose();
});

test('norm_cfg type picks the layer: SyncBN or none synchronises, BN does not', () => {
  const bnFlags = (norm: Dict | null): boolean[] => {
    const cfg = structuredClone(loadConfig(tinyConfigPath).model) as Dict;
    for (const key of ['neck', 'decode_head', 'auxiliary_head']) {
      const part = cfg[key] as Dict;
      if (norm) part.norm_cfg = norm;
      else delete part.norm_cfg;
    }
    const model = buildSegmentor(cfg);
    const flags = [...model.namedModules()].flatMap(([, m]) => (m instanceof BatchNorm2d ? [m.sync] : []));
    model.dispose();
    return flags;
  };
  const syncBN = bnFlags({ type: 'SyncBN', requires_grad: true });
  assert.ok(syncBN.length > 5 && syncBN.every((s) => s));
  assert.ok(bnFlags(null).every((s) => s));
  const bn = bnFlags({ type: 'BN', requires_grad: true });
  assert.equal(bn.length, syncBN.length);
  assert.ok(bn.every((s) => !s));
});
