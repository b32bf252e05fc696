/**
 * Issue 28 item 6: the error that predict/eval/train print for a checkpoint with foreign objects
 * names what works (convert --allow-unknown-globals, which only inspect and convert take), and
 * following it gives a checkpoint those commands read; the foreign objects are never called.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildTorchZip, PickleWriter, repoRoot } from './helpers.js';
import { makeTempDir } from '../temp.js';
import { readCheckpoint } from '../../src/checkpoint/read_checkpoint.js';

test('the foreign-global error suggests convert --allow-unknown-globals, and following it works', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const w = new PickleWriter().proto(2).emptyDict();
  w.str('meta').global('mylib.hooks', 'make_meta').emptyTuple().reduce().setitem();
  w.str('state_dict').emptyDict().str('backbone.ln1.weight');
  w.tensor('FloatStorage', '0', 1, 0, [1], [1]).setitem().setitem();
  const file = path.join(dir, 'foreign.pth');
  fs.writeFileSync(file, buildTorchZip('f', w.stop().bytes(), { 0: new Uint8Array(Float32Array.of(2.5).buffer) }));
  await assert.rejects(readCheckpoint(file), (e: Error) => {
    assert.match(e.message, /refusing to load global 'mylib\.hooks\.make_meta'/);
    assert.match(e.message, /`beitseg convert --allow-unknown-globals IN OUT`/);
    assert.doesNotMatch(e.message, /opaqueGlobals \/ --allow-unknown-globals/);
    return true;
  });
  const out = path.join(dir, 'clean.pth');
  const bin = path.join(repoRoot, 'bin', 'beitseg.js');
  const r = spawnSync(process.execPath, [bin, 'convert', '--allow-unknown-globals', file, out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const clean = await readCheckpoint(out);
  assert.deepEqual([...new Float32Array(clean.stateDict.get('backbone.ln1.weight')!.data.slice().buffer)], [2.5]);
});
