import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { unpickle, unpickleAt, OpaqueObject, StorageType, pickleState } from '../../src/checkpoint/formats/pickle.js';
import { PickleWriter } from './helpers.js';

test('protocol-2 values: containers, ints, floats, strings, memo', () => {
  const w = new PickleWriter()
    .proto(2)
    .emptyDict()
    .op(0x71, 0) // BINPUT 0
    .mark()
    .str('ints')
    .mark()
    .int(0)
    .int(255)
    .int(256)
    .int(65535)
    .int(65536)
    .int(-1)
    .int(-2147483648)
    .op(0x74) // TUPLE
    .str('long')
    .op(0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1) // LONG1 2**64
    .str('neglong')
    .op(0x8a, 1, 0xfb) // LONG1 -5
    .str('zero')
    .op(0x8a, 0) // LONG1 0
    .str('float')
    .float(-1.5e-300)
    .str('bools')
    .op(0x88)
    .op(0x89)
    .op(0x86) // NEWTRUE NEWFALSE TUPLE2
    .str('none')
    .none()
    .str('list')
    .op(0x5d)
    .op(0x71, 1)
    .int(1)
    .op(0x61)
    .mark()
    .str('a')
    .binunicode('bé')
    .op(0x65) // EMPTY_LIST BINPUT APPEND APPENDS
    .str('t1')
    .int(9)
    .op(0x85)
    .str('t3')
    .int(1)
    .int(2)
    .int(3)
    .op(0x87)
    .str('memo')
    .op(0x68, 1) // BINGET 1: the same list object
    .str('empty_tuple')
    .emptyTuple()
    .str('nested')
    .emptyDict()
    .str('k')
    .str('v')
    .setitem()
    .setitems()
    .stop();
  const v = unpickle(w.bytes()) as Map<string, unknown>;
  assert.ok(v instanceof Map);
  assert.deepEqual(v.get('ints'), [0, 255, 256, 65535, 65536, -1, -2147483648]);
  assert.equal(v.get('long'), 2n ** 64n);
  assert.equal(v.get('neglong'), -5);
  assert.equal(v.get('zero'), 0);
  assert.equal(v.get('float'), -1.5e-300);
  assert.deepEqual(v.get('bools'), [true, false]);
  assert.equal(v.get('none'), null);
  assert.deepEqual(v.get('list'), [1, 'a', 'bé']);
  assert.equal(v.get('memo'), v.get('list'), 'memo returns the same object');
  assert.deepEqual(v.get('t1'), [9]);
  assert.deepEqual(v.get('t3'), [1, 2, 3]);
  assert.deepEqual(v.get('empty_tuple'), []);
  assert.deepEqual(v.get('nested'), new Map([['k', 'v']]));
  assert.deepEqual(
    [...v.keys()],
    ['ints', 'long', 'neglong', 'zero', 'float', 'bools', 'none', 'list', 't1', 't3', 'memo', 'empty_tuple', 'nested'],
  );
});

test('protocol-4 framing, MEMOIZE, STACK_GLOBAL, BINBYTES and sets', () => {
  const w = new PickleWriter()
    .proto(4)
    .op(0x95, 0, 0, 0, 0, 0, 0, 0, 0) // FRAME (length ignored)
    .op(0x8c, 11, ...Buffer.from('collections'))
    .op(0x94)
    .op(0x8c, 11, ...Buffer.from('OrderedDict'))
    .op(0x94)
    .op(0x93)
    .op(0x94) // STACK_GLOBAL
    .emptyTuple()
    .reduce()
    .op(0x94)
    .str('b')
    .op(0x43, 3, 1, 2, 255) // SHORT_BINBYTES
    .setitem()
    .str('s')
    .op(0x8f)
    .mark()
    .int(1)
    .int(2)
    .op(0x90) // EMPTY_SET ADDITEMS
    .setitem()
    .str('fs')
    .mark()
    .int(3)
    .op(0x91) // FROZENSET
    .setitem()
    .stop();
  const v = unpickle(w.bytes()) as Map<string, unknown>;
  assert.deepEqual(v.get('b'), Uint8Array.from([1, 2, 255]));
  assert.deepEqual(v.get('s'), new Set([1, 2]));
  assert.deepEqual(v.get('fs'), new Set([3]));
});

test('torch globals: storage classes, rebuild callbacks, persistent ids, bytes via _codecs.encode, BUILD state', () => {
  const pids: unknown[] = [];
  const w = new PickleWriter()
    .proto(2)
    .global('collections', 'OrderedDict')
    .emptyTuple()
    .reduce()
    .str('t')
    .tensor('HalfStorage', '5', 12, 2, [2, 3], [1, 2])
    .setitem()
    .str('p')
    .global('torch._utils', '_rebuild_parameter')
    .mark()
    .tensor('FloatStorage', '0', 1, 0, [], [])
    .op(0x88)
    .global('collections', 'OrderedDict')
    .emptyTuple()
    .reduce()
    .tuple()
    .reduce()
    .setitem()
    .str('bytes')
    .global('_codecs', 'encode')
    .mark()
    .str('a\u00ff')
    .str('latin1')
    .tuple()
    .reduce()
    .setitem()
    .str('set')
    .global('__builtin__', 'set')
    .op(0x5d)
    .int(4)
    .op(0x61)
    .op(0x85)
    .reduce()
    .setitem()
    .emptyDict()
    .str('_metadata')
    .str('meta')
    .setitem()
    .op(0x62) // BUILD on the OrderedDict
    .stop();
  const rebuilt: unknown[] = [];
  const v = unpickle(w.bytes(), {
    persistentLoad: (pid) => {
      pids.push(pid);
      return { pid };
    },
    rebuildTensor: (storage, offset, size, stride) => {
      const r = { storage, offset, size, stride };
      rebuilt.push(r);
      return r;
    },
  }) as Map<string, unknown>;
  assert.equal(pids.length, 2);
  const pid0 = pids[0] as unknown[];
  assert.equal(pid0[0], 'storage');
  assert.ok(pid0[1] instanceof StorageType);
  assert.equal((pid0[1] as StorageType).dtype, 'float16');
  assert.deepEqual(pid0.slice(2), ['5', 'cpu', 12]);
  assert.deepEqual(v.get('t'), { storage: { pid: pid0 }, offset: 2, size: [2, 3], stride: [1, 2] });
  assert.equal(v.get('p'), rebuilt[1], '_rebuild_parameter returns the tensor itself');
  assert.deepEqual(v.get('bytes'), Uint8Array.from([0x61, 0xff]));
  assert.deepEqual(v.get('set'), new Set([4]));
  assert.deepEqual(pickleState(v), new Map([['_metadata', 'meta']]));
});

test('globals outside the allow-list are refused, naming module.name', () => {
  const evil = new PickleWriter()
    .proto(2)
    .global('os', 'system')
    .mark()
    .str('echo pwned')
    .tuple()
    .reduce()
    .stop()
    .bytes();
  assert.throws(
    () => unpickle(evil, { label: 'evil.pkl' }),
    (err: Error) => {
      assert.match(err.message, /^evil\.pkl: refusing to load global 'os\.system'/);
      return true;
    },
  );
  const np = new PickleWriter().proto(2).global('numpy.core.multiarray', '_reconstruct').stop().bytes();
  assert.throws(() => unpickle(np), /refusing to load global 'numpy\.core\.multiarray\._reconstruct'/);
  const builtinsEval = new PickleWriter().proto(2).global('__builtin__', 'eval').stop().bytes();
  assert.throws(() => unpickle(builtinsEval), /refusing to load global 'builtins\.eval'/);
  // STACK_GLOBAL and INST go through the same allow-list.
  const stacked = new PickleWriter().proto(4).str('subprocess').str('Popen').op(0x93).stop().bytes();
  assert.throws(() => unpickle(stacked), /'subprocess\.Popen'/);
  const inst = new PickleWriter()
    .proto(2)
    .mark()
    .op(0x69, ...Buffer.from('os\nsystem\n'))
    .stop()
    .bytes();
  assert.throws(() => unpickle(inst), /'os\.system'/);
});

test('opaqueGlobals turns unknown globals into inert records', () => {
  const p = new PickleWriter()
    .proto(2)
    .global('numpy.core.multiarray', 'scalar')
    .mark()
    .str('x')
    .tuple()
    .reduce()
    .emptyDict()
    .str('k')
    .int(1)
    .setitem()
    .op(0x62)
    .stop()
    .bytes();
  const v = unpickle(p, { opaqueGlobals: true });
  assert.ok(v instanceof OpaqueObject);
  assert.equal(v.qualname, 'numpy.core.multiarray.scalar');
  assert.deepEqual(v.args, ['x']);
  assert.deepEqual(v.state, new Map([['k', 1]]));
});

test('malformed pickles fail with a clear message', () => {
  assert.throws(() => unpickle(Uint8Array.from([0x80, 0x02, 0x58, 10, 0, 0, 0, 0x61])), /truncated/);
  assert.throws(() => unpickle(Uint8Array.from([0x80, 0x02, 0x68, 3, 0x2e])), /memo entry 3 is missing/);
  assert.throws(() => unpickle(Uint8Array.from([0x80, 0x02, 0x2e])), /stack underflow/);
  assert.throws(() => unpickle(Uint8Array.from([0x80, 0x02, 0xff])), /unknown pickle opcode 0xff/);
  assert.throws(() => unpickle(Uint8Array.from([0x80, 0x02, 0x74, 0x2e])), /MARK missing/);
  assert.throws(() => unpickle(Uint8Array.from([0x80, 0x02, 0x82, 1])), /extension-registry/);
  assert.throws(
    () => unpickle(new PickleWriter().proto(2).mark().str('x').tuple().binpersid().stop().bytes()),
    /no persistent_load/,
  );
  assert.throws(
    () => unpickle(new PickleWriter().proto(2).global('torch', 'FloatStorage').emptyTuple().reduce().stop().bytes()),
    /torch\.FloatStorage cannot be called/,
  );
});

test('unpickleAt reads consecutive pickles', () => {
  const a = new PickleWriter().proto(2).int(7).stop().bytes();
  const b = new PickleWriter().proto(2).str('x').stop().bytes();
  const both = new Uint8Array([...a, ...b]);
  const first = unpickleAt(both, 0);
  assert.equal(first.value, 7);
  assert.equal(first.end, a.length);
  assert.equal(unpickleAt(both, first.end).value, 'x');
});

test('protocol-0 memo indices that are not numbers are refused with the label (found by the fuzz suite)', () => {
  assert.throws(
    () =>
      unpickle(
        new PickleWriter()
          .none()
          .op(0x70, ...Buffer.from('x1\n'))
          .stop()
          .bytes(),
        { label: 'p0.pkl' },
      ),
    /^Error: p0\.pkl: bad PUT memo index 'x1' \(at byte 1\)$/,
  );
  assert.throws(
    () =>
      unpickle(
        new PickleWriter()
          .op(0x67, ...Buffer.from('\n'))
          .stop()
          .bytes(),
        { label: 'p0.pkl' },
      ),
    /p0\.pkl: bad GET memo index ''/,
  );
});
