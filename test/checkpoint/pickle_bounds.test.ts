/**
 * Issue 25 item 6: a small (deflated) data.pkl that repeats one opcode, and a large list handed to
 * many foreign calls. Each case is read in a capped child (isolated.ts: 384 MiB heap, address-space
 * cap, per-case timeout) and must end in a clean one-line error within seconds. On the reader before
 * the maxObjects limit, the repeated-opcode cases ended in a heap OOM abort or V8's size errors, and
 * the 10M-item list case ran for hours (each numpy `_reconstruct` call walked the list).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildZip } from './helpers.js';
import { makeTempDir } from '../temp.js';
import { type CaseOutcome, isCleanError, readIsolated } from './isolated.js';
import { unpickle } from '../../src/checkpoint/formats/pickle.js';

/** A torch zip whose data.pkl (deflated: the file stays small) is `head`, `unit` x count, then `tail`. */
function repeatedPickle(head: number[], unit: number[], count: number, tail: number[]): Buffer {
  const body = Buffer.alloc(head.length + unit.length * count + tail.length);
  body.set(head, 0);
  if (unit.length === 1) body.fill(unit[0]!, head.length, head.length + count);
  else for (let i = 0; i < count; i++) body.set(unit, head.length + i * unit.length);
  body.set(tail, head.length + unit.length * count);
  return buildZip([
    { name: 'r/data.pkl', data: body, deflate: true },
    { name: 'r/version', data: Buffer.from('3\n') },
  ]);
}

const PROTO2 = [0x80, 2];
const STOP = [0x2e];

/** Each family repeats one opcode far past the maxObjects limit (1M). */
const FAMILIES: { name: string; head: number[]; unit: number[]; count: number }[] = [
  { name: 'EMPTY_DICT', head: PROTO2, unit: [0x7d], count: 4_000_000 },
  { name: 'NONE', head: PROTO2, unit: [0x4e], count: 150_000_000 },
  { name: 'MARK', head: [...PROTO2, 0x4e], unit: [0x28], count: 10_000_000 },
  { name: 'EMPTY_LIST', head: PROTO2, unit: [0x5d], count: 10_000_000 },
  { name: 'MEMOIZE', head: [...PROTO2, 0x7d], unit: [0x94], count: 20_000_000 },
];

test('a deflated data.pkl repeating one opcode ends in a clean maxObjects error (capped child)', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const files = FAMILIES.map((f) => {
    const zip = repeatedPickle(f.head, f.unit, f.count, STOP);
    assert.ok(zip.length < 1 << 20, `${f.name}: the hostile file is small (${zip.length} bytes)`);
    const file = path.join(dir, `${f.name}.pth`);
    fs.writeFileSync(file, zip);
    return file;
  });
  const outcomes = await readIsolated(files, dir, { heapMb: 384, addressSpaceMb: 3072, caseMs: 20_000 });
  const bad = outcomes.flatMap((o, i) => {
    const ok =
      isCleanError(o, files[i]!) &&
      o.kind === 'error' &&
      /limit maxObjects=1000000 .*BEITSEG_PICKLE_MAX_OBJECTS/.test(o.message) &&
      o.ms < 10_000;
    return ok ? [] : [`${FAMILIES[i]!.name}: ${JSON.stringify(o).slice(0, 300)}`];
  });
  assert.deepEqual(bad, []);
});

test('a 10M-item list passed to 100k numpy _reconstruct calls is read in linear time (capped child)', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const items = 10_000_000;
  const calls = 100_000;
  const parts: Buffer[] = [Buffer.from([...PROTO2, 0x5d, 0x71, 0])]; // [] memo 0
  const batch = Buffer.concat([Buffer.from([0x28]), Buffer.alloc(1000, 0x4e), Buffer.from([0x65])]);
  for (let i = 0; i < items / 1000; i++) parts.push(batch);
  parts.push(Buffer.from([0x30])); // POP the list (it stays in the memo)
  parts.push(Buffer.from('cnumpy.core.multiarray\n_reconstruct\nq\x01', 'latin1'));
  parts.push(Buffer.from([0x30]));
  // each call: _reconstruct(list), result popped
  const call = Buffer.from([0x68, 1, 0x68, 0, 0x85, 0x52, 0x30]);
  for (let i = 0; i < calls; i++) parts.push(call);
  parts.push(Buffer.from([0x7d, 0x2e]));
  const zip = buildZip([
    { name: 'l/data.pkl', data: Buffer.concat(parts), deflate: true },
    { name: 'l/version', data: Buffer.from('3\n') },
  ]);
  const file = path.join(dir, 'biglist.pth');
  fs.writeFileSync(file, zip);
  const old = process.env.BEITSEG_PICKLE_MAX_OBJECTS;
  process.env.BEITSEG_PICKLE_MAX_OBJECTS = '20000000';
  let outcome: CaseOutcome | undefined;
  try {
    [outcome] = await readIsolated([file], dir, { heapMb: 1024, addressSpaceMb: 4096, caseMs: 30_000 });
  } finally {
    if (old === undefined) delete process.env.BEITSEG_PICKLE_MAX_OBJECTS;
    else process.env.BEITSEG_PICKLE_MAX_OBJECTS = old;
  }
  // The pickle's result is an empty dict: read through, then refused for holding no tensors.
  assert.ok(isCleanError(outcome!, file), JSON.stringify(outcome).slice(0, 400));
  assert.match(outcome!.kind === 'error' ? outcome!.message : '', /no tensors found/);
});

test('a foreign call still may not receive a tensor, at any depth, with the check done once after the run', () => {
  // numpy.dtype(['storage' persistent id inside a list inside a dict])
  const pid = [0x28, 0x8c, 7, ...Buffer.from('storage'), 0x8c, 1, 0x78, 0x74, 0x51]; // ('storage','x') BINPERSID
  const pkl = Buffer.from([
    ...PROTO2,
    ...Buffer.from('cnumpy\ndtype\n', 'latin1'),
    0x7d, // {}
    0x8c,
    1,
    0x6b, // 'k'
    0x5d, // []
    ...pid,
    0x61, // append
    0x73, // setitem
    0x85, // (dict,)
    0x52, // REDUCE
    ...STOP,
  ]);
  assert.throws(
    () => unpickle(pkl, { foreignGlobals: 'data', persistentLoad: () => ({ storage: true }), label: 'x.pkl' }),
    /x\.pkl: refusing to load global 'numpy\.dtype': it receives a tensor or storage/,
  );
});

test('a global whose module is named like an Object prototype property is refused by name, not a crash', () => {
  for (const mod of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    const pkl = Buffer.from([...PROTO2, ...Buffer.from(`c${mod}\nx\n`, 'latin1'), 0x29, 0x52, ...STOP]);
    assert.throws(
      () => unpickle(pkl, { label: 'p.pkl' }),
      new RegExp(`p\\.pkl: refusing to load global '${mod}\\.x'`),
      mod,
    );
    // read as inert data it is a record, never a crash
    const v = unpickle(pkl, { foreignGlobals: 'inert' }) as { qualname: string };
    assert.equal(v.qualname, `${mod}.x`);
  }
});
