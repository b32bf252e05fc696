/** consume(inputs, fn): fn's result, with the inputs and fn's temporaries freed, returned ones kept. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { consume, ones, tidy, type Tensor } from '../../src/tensor/index.js';

describe('consume', () => {
  it('frees the inputs and the temporaries, keeps the result and any input it returns', () =>
    tidy(() => {
      const a = ones([2]),
        b = ones([3]);
      let temp: Tensor | null = null;
      const sum = consume([a, b], ([x, y]) => {
        temp = x!.mul(2);
        return temp.sum().add(y!.sum());
      });
      assert.equal(sum.item(), 7);
      assert.ok(a.isDisposed && b.isDisposed, 'inputs freed');
      assert.ok(temp!.isDisposed, 'temporaries freed');
      assert.ok(!sum.isDisposed);
      const c = ones([1]);
      const same = consume(c, (x) => x);
      assert.equal(same, c);
      assert.ok(!c.isDisposed, 'an input that is returned survives');
      const d = ones([1]);
      assert.throws(
        () =>
          consume(d, () => {
            throw new Error('boom');
          }),
        /boom/,
      );
    }));
});
