/**
 * Tensor lifetimes: a training loop inside tidy keeps RSS flat, tidy disposes exactly what
 * it should, and tensors that are simply dropped are reclaimed by the GC (child process
 * with --expose-gc).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  F,
  Scope,
  keep,
  manualSeed,
  noGrad,
  ones,
  randn,
  setNumThreads,
  tensor,
  tidy,
  zeros,
  type Tensor,
} from '../../src/tensor/index.js';
import { scopeDepth } from '../../src/tensor/scope.js';

const MB = 1024 * 1024;
const rss = (): number => process.memoryUsage().rss;

describe('memory', () => {
  // The loop awaits a macrotask every 10 steps, as a training loop awaiting its data loader
  // does. A loop that never yields to the event loop grows RSS here (~70-100 KB per step with
  // backward, glibc heap fragmentation; flat with GLIBC_TUNABLES=glibc.malloc.tcache_count=0
  // or jemalloc) because Node only runs its deferred housekeeping between macrotasks.
  it('1000 forward+backward+SGD steps of conv→relu→linear→CE inside tidy keep RSS bounded', async (t) => {
    const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
    setNumThreads(1); // tiny ops; keeps the timing stable on a busy 2-core machine
    manualSeed(0);
    const [N, C, S, K, classes] = [8, 3, 16, 8, 10];
    const params = {
      convW: randn([K, C, 3, 3]).mul(0.2),
      convB: zeros([K]),
      fcW: randn([classes, K * S * S]).mul(0.01),
      fcB: zeros([classes]),
    };
    const list = Object.values(params);
    for (const p of list) p.requiresGrad_(true);
    const x = randn([N, C, S, S]);
    const target = tensor([0, 1, 2, 3, 4, 5, 6, 7], [N], 'int64');

    const step = (): number =>
      tidy(() => {
        const h = F.relu(F.conv2d(x, params.convW, params.convB, { padding: 1 }));
        const logits = F.linear(h.flatten(1), params.fcW, params.fcB);
        const loss = F.crossEntropy(logits, target);
        loss.backward();
        noGrad(() => {
          for (const p of list) {
            const g = p.grad!;
            p.add_(g, -0.05);
          }
        });
        for (const p of list) p.zeroGrad();
        return loss.item();
      });

    const first = step();
    for (let i = 0; i < 300; i++) {
      // warm-up: allocator, JIT, oneDNN primitives
      step();
      if (i % 10 === 9) await tick();
    }
    const before = rss();
    let last = first;
    for (let i = 0; i < 1000; i++) {
      last = step();
      if (i % 10 === 9) await tick();
    }
    const growth = (rss() - before) / MB;
    t.diagnostic(`RSS ${(before / MB).toFixed(0)} MB after warm-up, growth over 1000 steps ${growth.toFixed(1)} MB`);
    assert.ok(growth < 50, `RSS grew by ${growth.toFixed(1)} MB over 1000 steps`);
    assert.ok(last < first, `training made progress: loss ${first} -> ${last}`);
    assert.equal(scopeDepth(), 0);
    for (const p of list) assert.equal(p.isDisposed, false, 'parameters outlive the steps');
    x.dispose();
    target.dispose();
    for (const p of list) p.dispose();
    setNumThreads(2);
  });

  it(
    'tidy disposes everything not returned, keeps returned tensors in nested containers, and disposes on ' + 'throw',
    () => {
      const made: Tensor[] = [];
      const mk = (v: number): Tensor => {
        const t = ones([2]).mul(v);
        made.push(t);
        return t;
      };
      const outer = ones([1]); // created outside any scope: never touched
      const result = tidy(() => {
        mk(1);
        const a = mk(2),
          b = mk(3),
          c = mk(4),
          d = mk(5);
        mk(6);
        const inner = tidy(() => {
          mk(7);
          return { deep: [[mk(8)]] };
        });
        mk(9);
        return { list: [a, { b }], map: new Map([['c', c]]), d, inner, n: 42, s: 'x' };
      });
      const kept = new Set([
        result.list[0] as Tensor,
        (result.list[1] as { b: Tensor }).b,
        result.map.get('c')!,
        result.d,
        result.inner.deep[0][0],
      ]);
      assert.equal(kept.size, 5);
      for (const t of made) assert.equal(t.isDisposed, !kept.has(t), `${t.toString()} disposed=${t.isDisposed}`);
      // intermediates of mk (ones before mul) are also gone: made only holds the products
      assert.deepEqual(Array.from(result.d.toFloat32Array()), [5, 5]);
      assert.equal(outer.isDisposed, false);
      assert.equal(scopeDepth(), 0);
      for (const t of kept) t.dispose();

      // returned tensors move to the enclosing scope and die with it
      let movedUp: Tensor | undefined;
      tidy(() => {
        movedUp = tidy(() => mk(10));
        assert.equal(movedUp.isDisposed, false);
      });
      assert.equal(movedUp!.isDisposed, true);

      // keep() lets a tensor escape without being returned
      let escaped: Tensor | undefined;
      tidy(() => {
        escaped = keep(mk(11));
        mk(12);
      });
      assert.equal(escaped!.isDisposed, false);
      assert.equal(made[made.length - 1].isDisposed, true);
      escaped!.dispose();

      // a throw disposes the scope's tensors and propagates
      const before = made.length;
      assert.throws(
        () =>
          tidy(() => {
            mk(13);
            tidy(() => {
              mk(14);
              throw new Error('boom');
            });
          }),
        /boom/,
      );
      assert.equal(made.length, before + 2);
      assert.ok(made.slice(before).every((t) => t.isDisposed));
      assert.equal(scopeDepth(), 0);

      // a libtorch error inside tidy behaves the same
      assert.throws(
        () =>
          tidy(() => {
            mk(15);
            return zeros([2, 3]).matmul(zeros([2, 3]));
          }),
        /cannot be multiplied/,
      );
      assert.ok(made[made.length - 1].isDisposed);

      // Scope for async code: owns what is added, frees on dispose
      const scope = new Scope();
      const s1 = scope.add(ones([3]));
      assert.equal(s1.isDisposed, false);
      scope.dispose();
      assert.equal(s1.isDisposed, true);
    },
  );

  it('tensors dropped without dispose are reclaimed by the GC (child process, --expose-gc)', (t) => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const indexUrl = pathToFileURL(path.resolve(here, '../../src/tensor/index.js')).href;
    // 150 × 16 MiB = 2.4 GiB if nothing were reclaimed. Native memory is reported to V8,
    // so allocation pressure alone triggers collections; the addon's finalizers run on the
    // next turn of the event loop, which the loop yields to every 10 tensors (as any async
    // data/training loop does).
    const script = `
      import * as T from ${JSON.stringify(indexUrl)};
      const mb = () => process.memoryUsage().rss / 1048576;
      const tick = () => new Promise((r) => setImmediate(r));
      let collected = 0;
      const reg = new FinalizationRegistry(() => { collected++; });
      const out = {};
      await tick();
      out.rss0 = mb();
      let peak = out.rss0;
      for (let i = 0; i < 150; i++) {
        const t = T.zeros([4 * 1024 * 1024]);
        t.add_(1);
        reg.register(t, i);
        if (i % 10 === 9) await tick();
        peak = Math.max(peak, mb());
      }
      out.peakNoExplicitGc = peak;
      out.collectedNoExplicitGc = collected;
      // explicit collections: every dropped tensor goes
      for (let i = 0; i < 50; i++) reg.register(T.ones([1024, 1024]), 1000 + i);
      for (let k = 0; k < 5 && collected < 198; k++) {
        globalThis.gc();
        await tick();
        await new Promise((r) => setTimeout(r, 20));
      }
      out.collected = collected;
      out.external = process.memoryUsage().external / 1048576;
      out.rssEnd = mb();
      process.stdout.write(JSON.stringify(out));
    `;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-gc-'));
    const file = path.join(dir, 'gc.mjs');
    fs.writeFileSync(file, script);
    const r = spawnSync(process.execPath, ['--expose-gc', file], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, BEITSEG_NUM_THREADS: '1' },
    });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.signal, null, `child killed by ${r.signal}: ${r.stderr}`);
    assert.equal(r.status, 0, `child exit ${r.status}: ${r.stderr}`);
    const o = JSON.parse(r.stdout) as Record<string, number>;
    t.diagnostic(`child: ${r.stdout}`);
    const grew = o.peakNoExplicitGc - o.rss0;
    assert.ok(grew < 900, `peak RSS grew ${grew.toFixed(0)} MB (2400 MB if nothing were reclaimed): ${r.stdout}`);
    assert.ok(
      o.collectedNoExplicitGc >= 100,
      `only ${o.collectedNoExplicitGc}/150 collected without explicit gc: ${r.stdout}`,
    );
    // (the last tensor of a loop may still sit in a stack slot of the optimised frame)
    assert.ok(o.collected >= 198, `dropped tensors collected after gc(): ${o.collected}/200: ${r.stdout}`);
    assert.ok(o.external < 64, `external memory reported to V8 returns to near zero: ${o.external.toFixed(1)} MB`);
  });
});
