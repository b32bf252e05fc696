/**
 * The image fuzz suite in CI: a couple hundred seeded mutations of the fixture images through
 * the image decoder and the label reader, each a result or a clean error within its budget.
 * `npm run fuzz:images` runs thousands (test/data/image_fuzz_cli.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixtureSeeds, mutate, runImageFuzz } from './image_fuzz.js';

test('mutations are a pure function of (seed, index)', () => {
  const seeds = fixtureSeeds();
  assert.ok(seeds.length >= 7);
  assert.deepEqual(mutate(seeds, 7, 42), mutate(seeds, 7, 42));
  assert.notDeepEqual(mutate(seeds, 7, 42).bytes, mutate(seeds, 7, 43).bytes);
});

test('200 mutated PNG/JPEG files: every case a result or a clean error, within 5 s and 1.5 GB', async () => {
  const report = await runImageFuzz({ seed: 20261201, cases: 200 });
  assert.deepEqual(report.failures, []);
  assert.equal(report.cases, 200);
  assert.ok(
    report.errors > 50 && report.results > 20,
    `a mix of outcomes: ${report.results} results, ${report.errors} errors`,
  );
});

test('100 valid SVG documents (any name, prefix, gzipped, blurred): each refused unrendered within 5 s', async () => {
  const report = await runImageFuzz({ seed: 20261207, cases: 100, family: 'svg' });
  assert.deepEqual(report.failures, []);
  assert.equal(report.cases, 100);
  assert.equal(report.results, 0, 'no SVG decoded');
  assert.equal(report.errors, 200, 'each case refused as an image and as a label');
});
