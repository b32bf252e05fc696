/**
 * The serving engine on the tiny model (CPU): windows of concurrent requests batched into one
 * forward pass give the same class maps as one request at a time and as inferenceModel; the
 * queue is bounded; aborts and deadlines free their place before compute.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { inferenceModel, type SegModel } from '../../src/inference/api.js';
import { makeImage, type RgbImage } from '../../src/data/types.js';
import { HttpError } from '../../src/serve/errors.js';
import { SegmentScheduler, type SegmentTask } from '../../src/serve/scheduler.js';
import { testPixels, tinyModel } from './serve_helpers.js';

function image(width: number, height: number, seed: number): RgbImage {
  return makeImage(height, width, new Uint8Array(testPixels(width, height, seed)));
}

function task(img: RgbImage, extra: Partial<SegmentTask> = {}): SegmentTask {
  return { image: img, mode: 'slide', tta: false, deadline: Date.now() + 60_000, ...extra };
}

async function rejection(p: Promise<unknown>): Promise<HttpError> {
  const e = await p.then(
    () => assert.fail('expected a rejection'),
    (err: unknown) => err,
  );
  assert.ok(e instanceof HttpError, String(e));
  return e;
}

describe('SegmentScheduler', () => {
  let m: SegModel;
  // sizes with several windows, windows of two shapes (100 rows: 64 + a 64 shifted back), and one of its own shape
  const images = [image(150, 100, 1), image(64, 64, 2), image(130, 90, 3), image(64, 64, 4), image(200, 70, 5)];

  before(async () => {
    m = await tinyModel();
  });

  it('batched windows across requests equal one request at a time and inferenceModel', async () => {
    const single = new SegmentScheduler(m, { capacity: 16, windowBatch: 1, amp: null });
    const one: Uint8Array[] = [];
    for (const img of images) one.push((await single.submit(task(img))).pred);
    const passesAlone = single.forwardPasses;

    const batched = new SegmentScheduler(m, { capacity: 16, windowBatch: 8, amp: null });
    const results = await Promise.all(images.map((img) => batched.submit(task(img))));
    assert.ok(
      batched.forwardPasses < passesAlone / 2,
      `batched ${batched.forwardPasses} passes vs ${passesAlone} alone`,
    );
    for (const [i, img] of images.entries()) {
      assert.equal(results[i].width, img.width);
      assert.equal(results[i].height, img.height);
      assert.deepEqual(results[i].pred, one[i], `image ${i}: batched vs alone`);
      const ref = await inferenceModel(m, img, { mode: 'slide' });
      ref.logits.dispose();
      assert.deepEqual(results[i].pred, Uint8Array.from(ref.pred), `image ${i}: engine vs inferenceModel`);
    }
  });

  it('bf16 (amp) windows use the bf16 head exactly as inferenceModel does', async () => {
    const engine = new SegmentScheduler(m, { capacity: 4, windowBatch: 1, amp: 'bfloat16' });
    const [a, b] = await Promise.all([engine.submit(task(images[0])), engine.submit(task(images[4]))]);
    for (const [img, got] of [
      [images[0], a],
      [images[4], b],
    ] as const) {
      const ref = await inferenceModel(m, img, { mode: 'slide', amp: 'bfloat16' });
      ref.logits.dispose();
      assert.deepEqual(got.pred, Uint8Array.from(ref.pred));
    }
    const fp32 = await new SegmentScheduler(m, { capacity: 1, windowBatch: 1, amp: null }).submit(task(images[0]));
    assert.notDeepEqual(a.pred, fp32.pred, 'bf16 and fp32 differ on some pixels: the comparison above means something');
  });

  it('whole-image and TTA tasks run alone, in order with windowed ones', async () => {
    const engine = new SegmentScheduler(m, { capacity: 16, windowBatch: 4, amp: null });
    const order: number[] = [];
    const tasks = [
      task(images[0]),
      task(images[2], { mode: 'whole' }),
      task(images[4]),
      task(images[1], { tta: true }),
    ];
    const results = await Promise.all(
      tasks.map((t, i) =>
        engine.submit(t).then((r) => {
          order.push(i);
          return r;
        }),
      ),
    );
    assert.deepEqual(order, [0, 1, 2, 3]);
    const whole = await inferenceModel(m, images[2], { mode: 'whole' });
    whole.logits.dispose();
    assert.deepEqual(results[1].pred, Uint8Array.from(whole.pred));
    const tta = await inferenceModel(m, images[1], { mode: 'slide', tta: true });
    tta.logits.dispose();
    assert.deepEqual(results[3].pred, Uint8Array.from(tta.pred));
  });

  it('refuses tasks over capacity with 503 and Retry-After', async () => {
    const engine = new SegmentScheduler(m, { capacity: 2, windowBatch: 1, amp: null });
    const admitted = [engine.submit(task(images[0])), engine.submit(task(images[2]))];
    const refused = await rejection(engine.submit(task(images[1])));
    assert.equal(refused.statusCode, 503);
    assert.equal(refused.headers['retry-after'], '1');
    await Promise.all(admitted);
    assert.equal(engine.depth, 0);
    await engine.submit(task(images[1]));
  });

  it('a client that disconnects frees its place before its compute starts', async () => {
    const engine = new SegmentScheduler(m, { capacity: 2, windowBatch: 1, amp: null });
    const first = engine.submit(task(images[4]));
    const aborter = new AbortController();
    const second = engine.submit(task(images[0], { signal: aborter.signal }));
    assert.equal(engine.depth, 2);
    aborter.abort();
    assert.equal((await rejection(second)).statusCode, 499);
    assert.equal(engine.depth, 1, 'the aborted task left the queue at once');
    const third = engine.submit(task(images[2]));
    await Promise.all([first, third]);
    const passes = engine.forwardPasses;
    const windowsOf = (w: number, h: number): number =>
      (Math.floor(Math.max(h - 64 + 42, 0) / 43) + 1) * (Math.floor(Math.max(w - 64 + 42, 0) / 43) + 1);
    assert.equal(passes, windowsOf(200, 70) + windowsOf(130, 90), 'no window of the aborted task was computed');
  });

  it('a task past its deadline answers 504 without computing', async () => {
    const engine = new SegmentScheduler(m, { capacity: 4, windowBatch: 1, amp: null });
    const late = await rejection(engine.submit(task(images[0], { deadline: Date.now() - 1 })));
    assert.equal(late.statusCode, 504);
    assert.equal(engine.forwardPasses, 0);
  });

  it('drain finishes admitted tasks and refuses new ones', async () => {
    const engine = new SegmentScheduler(m, { capacity: 4, windowBatch: 2, amp: null });
    const admitted = engine.submit(task(images[0]));
    const drained = engine.drain();
    assert.equal((await rejection(engine.submit(task(images[1])))).statusCode, 503);
    await drained;
    assert.equal((await admitted).width, 150);
  });
});
