/**
 * Model sizes from the config (issue 25.5): every size field has a sane upper bound, and the
 * parameter bytes the config describes are checked against memory before the first module is
 * built. The resource cases build in a capped child: before the checks, num_layers=1000000000
 * ran the allocator for 80 s until std::bad_alloc, and a 65536-wide model aborted the same way.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { applyCfgOptions, parseCfgOptions } from '../../src/config/cfg_options.js';
import { buildSegmentor, estimateModelSize } from '../../src/models/builder.js';
import { loadConfig, type Dict } from '../../src/config/schema.js';
import { runBounded } from '../bounded.js';
import { repoRoot, tinyConfigPath } from '../helpers.js';

const worker = path.join(repoRoot, 'dist', 'test', 'models', 'build_worker.js');

async function buildBounded(options: string[], env?: NodeJS.ProcessEnv): Promise<{ params?: number; error?: string }> {
  const t0 = Date.now();
  const r = await runBounded(worker, [tinyConfigPath, ...options], {
    memoryMb: 3072,
    timeoutMs: 30_000,
    env: { ...process.env, ...env },
  });
  assert.equal(r.killed, null, `killed (${r.killed}) after ${r.ms} ms`);
  assert.equal(r.code, 0, `exit ${r.code} ${r.signal ?? ''}\n${r.stderr.slice(-2000)}`);
  assert.ok(Date.now() - t0 < 20_000, `answered within 20 s, took ${Date.now() - t0} ms`);
  return JSON.parse(r.stdout.trim());
}

function oneLine(error: string | undefined): string {
  assert.ok(error, 'an error');
  assert.ok(!error.includes('\n'), `one line: ${error}`);
  return error;
}

describe('model size limits', () => {
  it('num_layers=1000000000 is refused by its bound, naming the field', async () => {
    const r = await buildBounded(['model.backbone.num_layers=1000000000']);
    assert.equal(oneLine(r.error), 'model.backbone.num_layers must be <= 1000, got 1000000000');
  });

  it('a model within every bound but over memory is refused before any allocation, naming the part', async () => {
    const wide = 65536;
    const r = await buildBounded([
      `model.backbone.embed_dims=${wide}`,
      'model.backbone.num_layers=1000',
      `model.neck.embed_dim=${wide}`,
      `model.decode_head.in_channels=[${wide},${wide},${wide},${wide}]`,
      `model.auxiliary_head.in_channels=${wide}`,
    ]);
    const error = oneLine(r.error);
    assert.match(error, /^model: about 5\.\d+e\+13 parameters and \d+\.\d GiB before any activation, more than this /);
    assert.match(error, /the largest part is model\.backbone \(num_layers 1000, embed_dims 65536/);
  });

  it("each attention layer's position index counts: a large img_size is refused", async () => {
    const r = await buildBounded(['model.backbone.img_size=[4096,4096]']);
    assert.match(oneLine(r.error), /the largest part is model\.backbone \(.*img_size \[4096,4096\], patch_size 16/);
  });

  it('BEITSEG_MAX_MODEL_BYTES sets the limit; the tiny model fits under the default', async () => {
    const r = await buildBounded([], { BEITSEG_MAX_MODEL_BYTES: '100000' });
    assert.match(oneLine(r.error), /more than BEITSEG_MAX_MODEL_BYTES \(0\.000 GiB\)/);
    assert.ok((await buildBounded([])).params! > 100_000);
  });

  for (const [name, options] of [
    ['the tiny config', []],
    [
      'variants (no qv bias, final norm, FCN with concat, rescales 2..0.25, mlp 3)',
      [
        'model.backbone.qv_bias=False',
        'model.backbone.final_norm=True',
        'model.backbone.mlp_ratio=3',
        'model.backbone.img_size=[96,64]',
        'model.neck.rescales=[2,1,0.5,0.25]',
        'model.auxiliary_head.concat_input=True',
        'model.auxiliary_head.num_convs=2',
        'model.auxiliary_head.kernel_size=5',
      ],
    ],
  ] as const) {
    it(`the estimate is the built model's parameter count: ${name}`, () => {
      const cfg = applyCfgOptions(loadConfig(tinyConfigPath), parseCfgOptions(options)).model as Dict;
      const estimated = estimateModelSize(cfg).reduce((s, p) => s + p.params, 0);
      const model = buildSegmentor(cfg);
      assert.equal(
        estimated,
        model.parameters().reduce((s, t) => s + t.numel, 0),
      );
    });
  }
});
