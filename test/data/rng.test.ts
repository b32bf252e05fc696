import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deriveSeed, Rng } from '../../src/data/rng.js';

test('same seed -> same stream; different seeds differ', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const c = new Rng(43);
  const sa = Array.from({ length: 20 }, () => a.nextU32());
  const sb = Array.from({ length: 20 }, () => b.nextU32());
  const sc = Array.from({ length: 20 }, () => c.nextU32());
  assert.deepEqual(sa, sb);
  assert.notDeepEqual(sa, sc);
});

test('state save/restore resumes exactly (through JSON)', () => {
  const a = new Rng(7);
  for (let i = 0; i < 13; i++) a.random();
  const saved = JSON.parse(JSON.stringify(a.getState()));
  const next = [a.random(), a.randint(0, 100), a.uniform(-1, 1)];
  const b = Rng.fromState(saved);
  assert.deepEqual([b.random(), b.randint(0, 100), b.uniform(-1, 1)], next);
  assert.throws(() => b.setState({ algo: 'xoshiro128**', s: [0, 0, 0, 0] }), /all-zero/);
});

test('random() in [0,1), uniform(a,b) in [a,b), mean close to centre', () => {
  const r = new Rng(1);
  let sum = 0;
  for (let i = 0; i < 20000; i++) {
    const u = r.random();
    assert.ok(u >= 0 && u < 1);
    const v = r.uniform(-32, 32);
    assert.ok(v >= -32 && v < 32);
    sum += u;
  }
  assert.ok(Math.abs(sum / 20000 - 0.5) < 0.01);
});

test('randint: numpy semantics, high exclusive, single-arg form, all values hit', () => {
  const r = new Rng(3);
  const seen = new Map<number, number>();
  for (let i = 0; i < 20000; i++) {
    const v = r.randint(-18, 18);
    assert.ok(Number.isInteger(v) && v >= -18 && v <= 17, `${v}`);
    seen.set(v, (seen.get(v) ?? 0) + 1);
  }
  assert.equal(seen.size, 36);
  for (const n of seen.values()) assert.ok(n > 400 && n < 720, `count ${n}`);
  for (let i = 0; i < 100; i++) assert.ok([0, 1].includes(r.randint(2)));
  assert.equal(r.randint(5, 6), 5);
  assert.throws(() => r.randint(3, 3), /low >= high/);
  const big = r.randint(0, 2 ** 40);
  assert.ok(big >= 0 && big < 2 ** 40);
});

test('permutation is a permutation', () => {
  const p = new Rng(9).permutation(100);
  assert.deepEqual(
    Array.from(p).sort((x, y) => x - y),
    Array.from({ length: 100 }, (_, i) => i),
  );
});

test('deriveSeed is deterministic and sensitive to every part', () => {
  assert.equal(deriveSeed(1, 2, 3), deriveSeed(1, 2, 3));
  const seeds = new Set([
    deriveSeed(1, 2, 3),
    deriveSeed(1, 3, 2),
    deriveSeed(2, 2, 3),
    deriveSeed(1, 2, 4),
    deriveSeed(1, 2),
    deriveSeed(2 ** 40, 2, 3),
  ]);
  assert.equal(seeds.size, 6);
  assert.throws(() => deriveSeed(-1), /non-negative/);
});
