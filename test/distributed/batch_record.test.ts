import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkResumeBatch } from '../../src/engine/batch_record.js';

test('resume: a changed global batch is refused unless allowed; another split of the same one is said', () => {
  const saved = { worldSize: 8, perRank: 2, accum: 1, global: 16 };
  assert.deepEqual(checkResumeBatch(undefined, saved, false, 'ck'), []);
  assert.deepEqual(checkResumeBatch(saved, { ...saved }, false, 'ck'), []);
  const half = { worldSize: 4, perRank: 2, accum: 1, global: 8 };
  assert.throws(
    () => checkResumeBatch(saved, half, false, 'w/iter_8'),
    new RegExp(
      '^Error: w/iter_8 was trained with a global batch of 8 ranks x batch 2 x accumulation 1 = 16; ' +
        'this run has 4 ranks x batch 2 x accumulation 1 = 8: .*pass --allow-batch-change\\)$',
    ),
  );
  assert.match(checkResumeBatch(saved, half, true, 'ck')[0]!, /^warning: .*--allow-batch-change: continuing/);
  const accumulated = { worldSize: 4, perRank: 2, accum: 2, global: 16 };
  assert.match(
    checkResumeBatch(saved, accumulated, false, 'ck')[0]!,
    /^resume: the same global batch of 16 as 8 ranks/,
  );
});
