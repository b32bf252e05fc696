/**
 * Hostile checkpoints (issue 15, point 4): each is built here by hand and must end in a one-line
 * error naming the file and the limit, before the work it guards is done; raising the limit (the
 * readers' `limits` option or the environment variable) lets a legitimate file of that shape through.
 * Cases that took the old reader down (V8 abort, memory) run in a capped child process.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCheckpoint } from '../../src/checkpoint/read_checkpoint.js';
import { readPth } from '../../src/checkpoint/formats/pth.js';
import { unpickle } from '../../src/checkpoint/formats/pickle.js';
import { DEFAULT_LIMITS, resolveLimits } from '../../src/checkpoint/formats/limits.js';
import { makeTempDir } from '../temp.js';
import { buildTorchZip, buildZip, PickleWriter } from './helpers.js';
import { isCleanError, readIsolated } from './isolated.js';

/** {'state_dict': {'w': tensor(size, stride) over a FloatStorage of `numel` elements}} */
function oneTensorPickle(numel: number, size: number[], stride: number[]): Uint8Array {
  return new PickleWriter()
    .proto(2)
    .emptyDict()
    .str('state_dict')
    .emptyDict()
    .str('w')
    .tensor('FloatStorage', '0', numel, 0, size, stride)
    .setitem()
    .setitem()
    .stop()
    .bytes();
}

function withEnv<T>(name: string, value: string, fn: () => Promise<T>): Promise<T> {
  const old = process.env[name];
  process.env[name] = value;
  return fn().finally(() => {
    if (old === undefined) delete process.env[name];
    else process.env[name] = old;
  });
}

test('a storage that deflates far beyond what its tensors use is refused before it is inflated', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const storageBytes = 80 * 2 ** 20; // above the 64 MiB slack; the one tensor uses 4 bytes of it
  const pkl = oneTensorPickle(storageBytes / 4, [1], [1]);
  const file = path.join(dir, 'bomb.pth');
  fs.writeFileSync(
    file,
    buildTorchZip('bomb', pkl, {}, [{ name: 'bomb/data/0', data: new Uint8Array(storageBytes), deflate: true }]),
  );
  assert.ok(fs.statSync(file).size < 1 << 20, 'the hostile file is small');
  await assert.rejects(readCheckpoint(file), (err: Error) => {
    assert.ok(
      err.message.startsWith(`${file}: storages hold ${storageBytes} bytes (decompressed) but the tensors use only 4`),
      err.message,
    );
    assert.match(err.message, /limit storageRatio=4 .*BEITSEG_CKPT_STORAGE_RATIO/);
    assert.ok(!err.message.includes('\n'));
    return true;
  });
  // Raised per call or per process, the same file is read (it is a valid, if wasteful, checkpoint).
  const r = await readCheckpoint(file, { limits: { slackBytes: 2 ** 30 } });
  assert.deepEqual(r.stateDict.get('w')!.shape, [1]);
  // The environment sets the limits for a process: a tighter slack refuses a 1 MiB storage behind a 4-byte tensor.
  const small = path.join(dir, 'small.pth');
  fs.writeFileSync(
    small,
    buildTorchZip('s', oneTensorPickle(2 ** 18, [1], [1]), {}, [
      { name: 's/data/0', data: new Uint8Array(2 ** 20), deflate: true },
    ]),
  );
  assert.ok((await readPth(small)) instanceof Map);
  await withEnv('BEITSEG_CKPT_SLACK_BYTES', '1024', async () => {
    await assert.rejects(readPth(small), /storages hold 1048576 bytes .* \(plus slackBytes=1024\)/);
  });
});

test('a stride-0 view is refused before it is materialised (and in a capped child: no memory blow-up)', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const storage = { 0: new Uint8Array(Float32Array.from([2.5]).buffer) };
  const mid = path.join(dir, 'expand96m.pth');
  fs.writeFileSync(mid, buildTorchZip('e', oneTensorPickle(1, [24 * 2 ** 20], [0]), storage));
  await assert.rejects(readCheckpoint(mid), (err: Error) => {
    assert.ok(
      err.message.startsWith(
        `${mid}: non-contiguous tensor views (e.g. stride-0 expanded) would materialise 100663296 bytes from 4 bytes`,
      ),
      err.message,
    );
    assert.match(err.message, /limit viewRatio=4 .*BEITSEG_CKPT_VIEW_RATIO/);
    return true;
  });
  const raised = await readCheckpoint(mid, { limits: { viewRatio: 1e9 } });
  const w = raised.stateDict.get('w')!;
  assert.equal(w.data.byteLength, 24 * 2 ** 22);
  assert.equal(new Float32Array(w.data.buffer, w.data.byteOffset, 4)[3], 2.5);

  const huge = path.join(dir, 'expand10g.pth'); // 1,2xx bytes on disk, 10 GB once expanded
  fs.writeFileSync(huge, buildTorchZip('e', oneTensorPickle(1, [50000, 50000], [0, 0]), storage));
  const [outcome] = await readIsolated([huge], dir);
  assert.ok(isCleanError(outcome!, huge), JSON.stringify(outcome));
  assert.match((outcome as { message: string }).message, /viewRatio/);
});

test('a state dict that contains itself is a clean error, not a hang or a V8 abort', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  // d = {}; d['state_dict'] = d  (BINPUT 0 / BINGET 0)
  const selfRef = new PickleWriter()
    .proto(2)
    .emptyDict()
    .binput(0)
    .str('state_dict')
    .binget(0)
    .setitem()
    .stop()
    .bytes();
  const file = path.join(dir, 'cycle.pth');
  fs.writeFileSync(file, buildTorchZip('cycle', selfRef, {}));
  assert.ok(fs.statSync(file).size < 400);
  // A cycle further down, through a list in the metadata next to a valid state dict.
  const listCycle = new PickleWriter()
    .proto(2)
    .emptyDict()
    .str('meta')
    .emptyList()
    .binput(1)
    .binget(1)
    .append()
    .setitem()
    .str('state_dict')
    .emptyDict()
    .str('w')
    .tensor('FloatStorage', '0', 1, 0, [1], [1])
    .setitem()
    .setitem()
    .stop()
    .bytes();
  const file2 = path.join(dir, 'list-cycle.pth');
  fs.writeFileSync(file2, buildTorchZip('lc', listCycle, { 0: new Uint8Array(4) }));
  const outcomes = await readIsolated([file, file2], dir);
  for (const [k, f] of [file, file2].entries()) {
    assert.ok(isCleanError(outcomes[k]!, f), `${f}: ${JSON.stringify(outcomes[k])}`);
    assert.match((outcomes[k] as { message: string }).message, /contains itself/);
  }
});

test('containers nested deeper than maxDepth are refused; the limit can be raised', () => {
  const depth = 100_000;
  const w = new PickleWriter().proto(2);
  for (let i = 0; i < depth; i++) w.emptyList();
  for (let i = 1; i < depth; i++) w.append();
  const deep = w.stop().bytes();
  assert.throws(
    () => unpickle(deep, { label: 'deep.pkl' }),
    (err: Error) => {
      assert.match(
        err.message,
        /^deep\.pkl: containers nested more than 200 levels deep; limit maxDepth=200 .*BEITSEG_PICKLE_MAX_DEPTH/,
      );
      return true;
    },
  );
  let v = unpickle(deep, { limits: { maxDepth: depth + 1 } });
  let levels = 0;
  while (Array.isArray(v) && v.length === 1) {
    v = v[0];
    levels++;
  }
  assert.equal(levels, depth - 1);
  // Shared sub-objects (memo) are not cycles and are measured once.
  const shared = new PickleWriter()
    .proto(2)
    .emptyList()
    .binput(0)
    .mark()
    .binget(0)
    .binget(0)
    .binget(0)
    .tuple()
    .stop()
    .bytes();
  assert.equal((unpickle(shared) as unknown[]).length, 3);
});

test('long integers: capped by maxIntBytes before decoding, and decoded in linear time when allowed', () => {
  const n = 200_000;
  const body = new Uint8Array(n).fill(0xff);
  body[n - 1] = 0x00; // positive: 2^(8(n-1)) - 1
  const long4 = Buffer.concat([new PickleWriter().proto(2).op(0x8b).u32(n).bytes(), body, Uint8Array.of(0x2e)]);
  let t0 = performance.now();
  assert.throws(
    () => unpickle(long4, { label: 'long.pkl' }),
    /long\.pkl: LONG4 integer of 200000 bytes exceeds the limit; limit maxIntBytes=1024 .*BEITSEG_PICKLE_MAX_INT_BYTES/,
  );
  assert.ok(performance.now() - t0 < 1000);
  t0 = performance.now();
  const v = unpickle(long4, { limits: { maxIntBytes: n } });
  const ms = performance.now() - t0;
  assert.equal(v, (1n << BigInt(8 * (n - 1))) - 1n);
  assert.ok(ms < 3000, `decoding took ${ms} ms`);
  const digits = '7'.repeat(5000);
  const textInt = new PickleWriter()
    .op(0x49, ...Buffer.from(`${digits}\n`))
    .stop()
    .bytes();
  assert.throws(() => unpickle(textInt), /INT integer of 2075 bytes exceeds the limit/);
  assert.equal(unpickle(textInt, { limits: { maxIntBytes: 4096 } }), BigInt(digits));
});

test('a data.pkl larger than maxPickleBytes is refused before it is inflated', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const pkl = oneTensorPickle(1, [1], [1]);
  const file = path.join(dir, 'bigpkl.pth');
  fs.writeFileSync(file, rezip(pkl));
  await assert.rejects(readCheckpoint(file, { limits: { maxPickleBytes: 64 } }), (err: Error) => {
    assert.ok(
      err.message.startsWith(`${file}: b/data.pkl is ${pkl.length} bytes (decompressed); limit maxPickleBytes=64`),
      err.message,
    );
    return true;
  });
  assert.deepEqual((await readCheckpoint(file)).stateDict.get('w')!.shape, [1]);
});

/** A torch zip whose data.pkl is deflated, as a re-zipped checkpoint would have it. */
function rezip(pkl: Uint8Array): Buffer {
  return buildZip([
    { name: 'b/data.pkl', data: pkl, deflate: true },
    { name: 'b/data/0', data: new Uint8Array(4) },
    { name: 'b/version', data: Buffer.from('3\n') },
  ]);
}

test('limits: defaults, environment overrides, bad values named', () => {
  assert.deepEqual(resolveLimits({}, {}), DEFAULT_LIMITS);
  assert.equal(resolveLimits({}, { BEITSEG_PICKLE_MAX_DEPTH: '5000' }).maxDepth, 5000);
  assert.equal(resolveLimits({ maxDepth: 7 }, { BEITSEG_PICKLE_MAX_DEPTH: '5000' }).maxDepth, 7);
  assert.throws(
    () => resolveLimits({}, { BEITSEG_CKPT_VIEW_RATIO: 'lots' }),
    /BEITSEG_CKPT_VIEW_RATIO="lots": expected a positive number/,
  );
  assert.throws(() => resolveLimits({ storageRatio: -1 }, {}), /storageRatio must be a positive number/);
});
