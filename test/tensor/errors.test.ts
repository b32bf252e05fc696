/**
 * Failures surface as JS Errors carrying libtorch's own message (never a native crash):
 * shape and dtype mismatches, bad indices, disposed tensors, wrong argument types, and
 * CUDA requests on a CPU-only build. The last test repeats a set of them in a child
 * process and checks that it exits normally.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { native } from '../../src/tensor/native.js';
import {
  F,
  buildInfo,
  cat,
  cuda,
  fromArray,
  ones,
  resolveDevice,
  setRngState,
  stack,
  tensor,
  tidy,
  zeros,
  type Tensor,
} from '../../src/tensor/index.js';

/** Asserts fn throws an Error (of `cls`) whose message matches every pattern. */
function throwsWith(fn: () => unknown, patterns: RegExp[], cls: ErrorConstructor = Error): Error {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, 'expected an error');
  assert.ok(caught instanceof cls, `expected ${cls.name}, got ${String(caught)}`);
  const msg = (caught as Error).message;
  for (const p of patterns) assert.match(msg, p);
  assert.doesNotMatch(msg, /Exception raised from|frame #\d/, 'no C++ backtrace in the message');
  return caught as Error;
}

describe('libtorch errors become JS Errors', () => {
  it('matmul shape mismatch names both shapes', () =>
    tidy(() => {
      throwsWith(() => zeros([2, 3]).matmul(zeros([4, 5])), [/2x3/, /4x5/, /cannot be multiplied/]);
      throwsWith(() => zeros([2, 2, 3]).matmul(zeros([2, 4, 5])), [/\[2, 3\]|2x3|3/]);
      throwsWith(() => F.linear(zeros([2, 3]), zeros([4, 5])), [/2x3/, /5x4/]);
    }));

  it('conv2d with the wrong number of input channels', () =>
    tidy(() => {
      throwsWith(
        () => F.conv2d(zeros([1, 3, 8, 8]), zeros([4, 5, 3, 3])),
        [/weight of size \[4, 5, 3, 3\]/, /input\[1, 3, 8, 8\]/, /5 channels/],
      );
      throwsWith(() => F.conv2d(zeros([1, 4, 8, 8]), zeros([4, 2, 3, 3]), null, { groups: 3 }), [/groups|divisible/i]);
      throwsWith(
        () => F.conv2d(zeros([1, 1, 2, 2]), zeros([1, 1, 3, 3])),
        [/Kernel size can't be greater than actual input size/],
      );
    }));

  it('cat / stack of mismatched shapes', () =>
    tidy(() => {
      throwsWith(
        () => cat([zeros([2, 3]), zeros([2, 4])], 0),
        [/Sizes of tensors must match except in dimension 0/, /Expected size 3 but got size 4/],
      );
      throwsWith(() => stack([zeros([2]), zeros([3])]), [/stack expects each tensor to be equal size/]);
      throwsWith(() => cat([zeros([2]), zeros([2])], 5), [/Dimension out of range/]);
    }));

  it('index out of range: indexSelect, gather, select, slice dim', () =>
    tidy(() => {
      throwsWith(() => tensor([1, 2, 3]).indexSelect(0, tensor([0, 3], [2], 'int64')), [/index out of range in self/]);
      throwsWith(
        () => tensor([1, 2, 3]).indexSelect(0, tensor([0], [1], 'float32')),
        [/index_select\(\): Expected dtype int32 or int64 for index/],
      );
      throwsWith(
        () => zeros([2, 2]).gather(1, tensor([0, 2], [2, 1], 'int64')),
        [/index 2 is out of bounds for dimension 1 with size 2/],
      );
      throwsWith(() => zeros([2, 3]).select(1, 3), [/index 3 out of range for tensor of size \[2, 3\] at dimension 1/]);
      throwsWith(() => zeros([2, 3]).slice(2, 0, 1), [/Dimension out of range/]);
    }));

  it('cross_entropy: target of the wrong dtype or shape, class out of range', () =>
    tidy(() => {
      throwsWith(
        () => F.crossEntropy(zeros([2, 3]), tensor([0, 1], [2], 'int32')),
        [/expected scalar type Long but found Int/],
      );
      throwsWith(
        () => F.crossEntropy(zeros([2, 3]), tensor([0, 1], [2], 'float32')),
        [/expected scalar type Long but found Float/],
      );
      throwsWith(
        () => F.crossEntropy(zeros([2, 3, 4, 4]), zeros([2, 5, 5], 'int64')),
        [/size mismatch|dimension|shape/i],
      );
      throwsWith(() => F.crossEntropy(zeros([2, 3]), tensor([0, 7], [2], 'int64')), [/Target 7 is out of bounds/]);
    }));

  it('fromArray / shapes: wrong byte count, negative dims, view of a non-contiguous tensor', () =>
    tidy(() => {
      throwsWith(() => fromArray(new Float32Array(5), [2, 3]), [/20 bytes given/, /\[2, 3\]/, /needs 24/]);
      throwsWith(() => fromArray(new Uint8Array(6), [2], { dtype: 'float32' }), [/6 bytes given/, /needs 8/]);
      throwsWith(() => fromArray(new Float32Array(4), [-1, 4]), [/negative dimension/]);
      throwsWith(
        () => fromArray(new Int16Array(4) as unknown as Float32Array, [4]),
        [/cannot infer a dtype from Int16Array/],
      );
      throwsWith(() => zeros([2, 3]).reshape(4, 2), [/shape '\[4, 2\]' is invalid for input of size 6/]);
      throwsWith(
        () => zeros([2, 3]).transpose(0, 1).view(6),
        [/view size is not compatible with input tensor's size and stride/],
      );
      throwsWith(() => zeros([2, 3]).permute(0, 0), [/permute\(\): duplicate dims are not allowed/]);
      throwsWith(() => zeros([2]).expand(3), [/expanded size of the tensor \(3\) must match the existing size \(2\)/]);
      throwsWith(() => zeros([2, 3]).add(zeros([4])), [/size of tensor a \(3\) must match the size of tensor b \(4\)/]);
      throwsWith(() => zeros([3]).item(), [/item: tensor with 3 elements, expected 1/]);
      // neither a dtype nor a device
      throwsWith(() => zeros([2]).to('float8' as 'float32'), [/unknown device 'float8'/]);
      throwsWith(() => zeros([2], 'complex' as 'float32'), [/unknown dtype 'complex'/]);
    }));

  it('a disposed tensor cannot be used, disposing twice is harmless', () => {
    const t = ones([2]);
    t.dispose();
    assert.equal(t.isDisposed, true);
    t.dispose();
    throwsWith(() => t.add(1), [/argument 0 is a disposed tensor/]);
    throwsWith(() => ones([2]).add(t), [/argument 1 is a disposed tensor/]);
    throwsWith(() => t.toFloat32Array(), [/disposed tensor/]);
    throwsWith(() => cat([ones([1]), t]), [/argument 0\[1\] is a disposed tensor/]);
    assert.equal(String(t), 'Tensor(disposed)');
  });

  it('wrong argument types are TypeErrors, not crashes', () =>
    tidy(() => {
      const x = ones([1, 1, 4, 4]);
      const bad = 'x' as unknown as Tensor;
      throwsWith(() => x.add(bad), [/argument 1 must be a tensor/], TypeError);
      throwsWith(() => F.conv2d(bad, x), [/must be a tensor|Cannot read properties/], TypeError);
      throwsWith(() => native.add('x' as never, 1), [/argument 0 must be a tensor/], TypeError);
      throwsWith(() => native.relu({} as never), [/argument 0 must be a tensor/], TypeError);
      throwsWith(() => native.relu(undefined as never), [/argument 0 must be a tensor/], TypeError);
      throwsWith(() => (native.relu as () => unknown)(), [/missing argument 0/], TypeError);
      throwsWith(() => native.softmax(x.handle, 'a' as never), [/argument 1 must be an integer/], TypeError);
      throwsWith(() => native.softmax(x.handle, 1.5), [/argument 1 must be an integer/], TypeError);
      throwsWith(() => x.reshape(2.5, 2), [/argument 1\[0\] must be an integer/], TypeError);
      throwsWith(() => F.dropout(x, 0.5, 'yes' as never), [/argument 2 must be a boolean/], TypeError);
      throwsWith(() => native.cat([x.handle, 3] as never, 0), [/argument 0\[1\] must be a tensor/], TypeError);
      throwsWith(() => native.fromBuffer([1, 2] as never, 'float32', [2], true), [/must be a TypedArray/], TypeError);
      throwsWith(
        () => F.crossEntropy(x, ones([1], 'int64'), { reduction: 'avg' as 'mean' }),
        [/unknown reduction 'avg'/],
      );
      throwsWith(() => x.contiguous('nhwc' as 'channels_last'), [/unknown memory format 'nhwc'/]);
      throwsWith(() => setRngState(ones([4])), [/RNG state|ByteTensor|uint8|Byte/i]);
    }));

  it('an empty handle built from JS (no tensor inside) gives Errors, never a crash', () => {
    const h = new native.TensorHandle();
    for (const fn of [
      () => native.add(h, 1),
      () => native.relu(h),
      () => native.matmul(h, h),
      () => native.toBuffer(h),
      () => native.dataView(h),
      () => native.device(h),
      () => native.grad(h),
      () => native.cat([h], 0),
      () => native.setRngState(h),
      () => native.conv2d(h, h, null, [1, 1], [0, 0], [1, 1], 1),
      () => native.fillInplace(h, 1),
      () => native.item(h),
    ]) {
      throwsWith(fn, [/./]);
    }
  });

  it('CUDA requests on a CPU-only build give Errors', () =>
    tidy(() => {
      if (buildInfo().cudaBuild && cuda.isAvailable()) return; // a GPU build with a GPU: nothing to refuse
      assert.equal(cuda.isAvailable(), false);
      assert.equal(cuda.deviceCount(), 0);
      cuda.synchronize(); // a no-op without CUDA
      assert.deepEqual(cuda.memory(), { allocated: 0, peak: 0 });
      throwsWith(() => zeros([2], 'float32', 'cuda'), [/cuda|CUDA/]);
      throwsWith(() => ones([2]).to('cuda'), [/cuda|CUDA/]);
      throwsWith(() => ones([2]).to('cuda:1'), [/cuda|CUDA/]);
      throwsWith(() => resolveDevice('cuda'), [/CUDA is not available/]);
      throwsWith(() => resolveDevice('tpu'), [/unknown device 'tpu'/]);
      throwsWith(() => zeros([2], 'float32', 'gpu'), [/unknown device 'gpu'/]);
      assert.equal(resolveDevice('auto'), 'cpu');
    }));

  it('after errors the process keeps working and exits normally (child process)', () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const indexUrl = pathToFileURL(path.resolve(here, '../../src/tensor/index.js')).href;
    const script = `
      import * as T from ${JSON.stringify(indexUrl)};
      const msgs = [];
      const attempt = (fn) => {
        try { fn(); msgs.push('no error'); } catch (e) { msgs.push(e.constructor.name + ': ' + e.message); }
      };
      for (let i = 0; i < 25; i++) {
        attempt(() => T.zeros([2, 3]).matmul(T.zeros([4, 5])));
        attempt(() => T.tensor([1, 2]).indexSelect(0, T.tensor([9], [1], 'int64')));
        attempt(() => T.zeros([2], 'float32', 'cuda'));
        attempt(() => T.F.conv2d(T.zeros([1, 3, 4, 4]), T.zeros([2, 4, 3, 3])));
        attempt(() => T.fromArray(new Float32Array(3), [2, 2]));
        attempt(() => { const t = T.ones([1]); t.dispose(); t.add(1); });
        attempt(() => T.ones([1]).add('x'));
        attempt(() => T.F.crossEntropy(T.zeros([2, 3]), T.tensor([0, 1], [2], 'int32')));
      }
      const ok = T.ones([2, 2]).matmul(T.ones([2, 2])).sum().item();
      process.stdout.write(JSON.stringify({ msgs: msgs.slice(0, 8), count: msgs.length, ok }));
    `;
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-err-')), 'errors.mjs');
    fs.writeFileSync(file, script);
    const r = spawnSync(process.execPath, [file], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, BEITSEG_NUM_THREADS: '1' },
    });
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
    assert.equal(r.signal, null, `child killed by ${r.signal}: ${r.stderr}`);
    assert.equal(r.status, 0, `child exit ${r.status}: ${r.stderr}`);
    const out = JSON.parse(r.stdout) as { msgs: string[]; count: number; ok: number };
    assert.equal(out.count, 200);
    assert.equal(out.ok, 8);
    assert.match(out.msgs[0], /^Error: .*2x3 and 4x5/);
    assert.match(out.msgs[1], /^Error: index out of range in self/);
    assert.match(out.msgs[2], /^Error: .*(cuda|CUDA)/);
    assert.match(out.msgs[3], /^Error: .*expected input\[1, 3, 4, 4\] to have 4 channels, but got 3 channels/);
    assert.match(out.msgs[4], /^Error: fromBuffer: 12 bytes given/);
    assert.match(out.msgs[5], /^Error: argument 0 is a disposed tensor/);
    assert.match(out.msgs[6], /^TypeError: argument 1 must be a tensor/);
    assert.match(out.msgs[7], /^Error: expected scalar type Long but found Int/);
  });
});
