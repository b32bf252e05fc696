/**
 * predict output names never collide (issue 15.3): inputs' folders are mirrored under --out
 * relative to their common folder, and inputs that would still share a name are refused before
 * any work, listing the clash.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { outputStems, uniqueInputs } from '../../src/cli/output_names.js';
import { writeImage } from '../../src/data/image_io.js';
import { makeImage } from '../../src/data/types.js';
import { tinyConfigPath } from '../helpers.js';
import { beitseg } from '../child.js';

/** `beitseg predict` of the tiny model on CPU, writing into `out`. */
function predict(out: string, ...images: string[]): Promise<{ stdout: string; stderr: string }> {
  return beitseg([
    'predict',
    '--random-weights',
    '--config',
    tinyConfigPath,
    '--device',
    'cpu',
    '--out',
    out,
    ...images,
  ]);
}

describe('predict output names', () => {
  let dir = '';
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-names-'));
    const img = makeImage(80, 112);
    img.data.fill(90);
    for (const f of ['a/img.jpg', 'b/img.jpg', 'a/img.png']) await writeImage(path.join(dir, f), img);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("mirrors folders below the inputs' common folder; one folder maps straight into --out", () => {
    assert.deepEqual(outputStems(['/d/a/img.jpg', '/d/b/img.jpg'], 'out'), ['out/a/img', 'out/b/img']);
    assert.deepEqual(outputStems(['/d/a/x.jpg', '/d/a/y.png'], 'out'), ['out/x', 'out/y']);
    assert.deepEqual(outputStems(['/d/a/x.jpg', '/d/a/deep/x.jpg'], 'o'), ['o/x', 'o/deep/x']);
    assert.deepEqual(uniqueInputs(['/d/a/x.jpg', '/d/a/../a/x.jpg', '/d/b.png']), ['/d/a/x.jpg', '/d/b.png']);
  });

  it('refuses a/img.jpg a/img.png, listing the clash', () => {
    assert.throws(
      () => outputStems(['/d/a/img.jpg', '/d/a/img.png', '/d/a/z.png'], 'out'),
      new RegExp(
        String.raw`^Error: predict: inputs would overwrite each other's outputs \(same folder and name\): ` +
          String.raw`\/d\/a\/img\.jpg, \/d\/a\/img\.png -> out\/img_pred\.png; rename`,
      ),
    );
  });

  it('a/img.jpg b/img.jpg: two sets of outputs, one per folder', async () => {
    const out = path.join(dir, 'out1');
    const { stderr } = await predict(out, path.join(dir, 'a', 'img.jpg'), path.join(dir, 'b', 'img.jpg'));
    assert.match(stderr, /wrote 2 prediction\(s\)/);
    for (const sub of ['a', 'b']) {
      assert.deepEqual(fs.readdirSync(path.join(out, sub)).sort(), ['img.json', 'img_overlay.png', 'img_pred.png']);
    }
  });

  it('a/img.jpg a/img.png: refused before any work, nothing written', async () => {
    const out = path.join(dir, 'out2');
    await assert.rejects(
      predict(out, path.join(dir, 'a', 'img.jpg'), path.join(dir, 'a', 'img.png')),
      (e: Error & { stderr: string }) => {
        assert.match(e.stderr, /inputs would overwrite each other's outputs .*a\/img\.jpg, .*a\/img\.png -> /);
        return true;
      },
    );
    assert.equal(fs.existsSync(out), false);
  });
});
