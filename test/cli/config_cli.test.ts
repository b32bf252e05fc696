/**
 * mmseg .py configs through the command line: print-config writes the merged JSON, and
 * train / eval / predict with the .py tree and --cfg-options run exactly as with that JSON.
 * Bad values fail before any output is written; unused keys are warned about on stderr.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readSafetensors } from '../../src/checkpoint/formats/safetensors.js';
import { loadConfig } from '../../src/config/schema.js';
import { toTensor } from '../../src/tensor/host.js';
import { makeSyntheticDataset } from '../../src/data/synthetic.js';
import { writeSlideImage } from './fixtures.js';
import { beitseg as runBeitseg } from '../child.js';
import { assertClose, fixtureFile, loadFixtureTensors, repoRoot } from '../helpers.js';

const leaf = path.join(repoRoot, 'test', 'fixtures', 'configs', 'tiny', 'leaves', 'tiny_leaf.py');

async function beitseg(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return runBeitseg(args);
}

describe('.py configs on the command line', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-config-cli-'));
  const data = path.join(dir, 'data');
  let dataOptions: string[];
  /** print-config's JSON of the leaf with dataOptions applied. */
  const json = path.join(dir, 'merged', 'tiny_leaf.json');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  before(async () => {
    const golden = loadFixtureTensors('tensors.safetensors');
    await writeSlideImage(path.join(dir, 'scene.png'), golden);
    await makeSyntheticDataset(data, { n: 6, height: 64, width: 64, classes: 5, seed: 3, splitVal: 2 });
    dataOptions = [
      `train_dataloader.dataset.data_root=${data}`,
      `val_dataloader.dataset.data_root=${data}`,
      `test_dataloader.dataset.data_root=${data}`,
      'train_cfg.max_iters=2',
      'train_cfg.val_interval=2',
      'default_hooks.logger.interval=1',
    ];
    await beitseg('print-config', leaf, '--out', json, '--cfg-options', ...dataOptions);
  });

  it(
    'print-config writes the merged config atomically, with --cfg-options applied, and warns about unused ' + 'keys',
    async () => {
      const out = path.join(dir, 'printed', 'merged.json');
      const r = await beitseg(
        'print-config',
        leaf,
        '--out',
        out,
        '--cfg-options',
        'model.decode_head.num_classes=7',
        'model.test_cfg.stride=(32,32)',
        'train_pipeline.3.crop_size=[48,48]',
      );
      // biome-ignore lint/suspicious/noExplicitAny: a config tree walked by path in the assertions below
      const printed = JSON.parse(fs.readFileSync(out, 'utf8')) as Record<string, any>;
      // biome-ignore lint/suspicious/noExplicitAny: as above
      const expected = loadConfig(leaf) as Record<string, any>;
      expected.model.decode_head.num_classes = 7;
      expected.model.test_cfg.stride = [32, 32];
      expected.train_pipeline[3].crop_size = [48, 48];
      assert.deepEqual(printed, expected);
      assert.deepEqual(fs.readdirSync(path.dirname(out)), ['merged.json'], 'no temporary file is left');
      assert.match(r.stderr, /warning: .*tiny_leaf\.py: embed is not used by beitseg \(ignored\)/);
    },
  );

  it("predict with the .py tree matches mmseg's golden logits and the print-config JSON bit for bit", async () => {
    const logits = async (config: string, name: string) => {
      const file = path.join(dir, `${name}.safetensors`);
      await beitseg(
        'predict',
        '--config',
        config,
        '--weights',
        fixtureFile('segmentor_mmseg.pth'),
        '--device',
        'cpu',
        '--out',
        path.join(dir, name),
        '--save-logits',
        file,
        path.join(dir, 'scene.png'),
      );
      return toTensor(readSafetensors(file).tensors.get('logits')!);
    };
    const fromPy = await logits(leaf, 'py'),
      fromJson = await logits(json, 'json');
    assertClose(
      fromPy,
      loadFixtureTensors('tensors.safetensors').get('slide.logits')!,
      1e-4,
      'logits from the .py config',
    );
    const bytes = (t: typeof fromPy) => Buffer.from(t.toFloat32Array().buffer);
    assert.equal(Buffer.compare(bytes(fromPy), bytes(fromJson)), 0);
  });

  it('a bad value from --cfg-options fails with its path before anything is written', async () => {
    const out = path.join(dir, 'bad');
    await assert.rejects(
      beitseg(
        'predict',
        '--random-weights',
        '--config',
        leaf,
        '--out',
        out,
        '--cfg-options',
        'model.test_cfg.stride=[0,0]',
        '--',
        path.join(dir, 'scene.png'),
      ),
      (e: { code: number; stderr: string }) => {
        assert.equal(e.code, 1);
        assert.match(e.stderr, /beitseg: error: model\.test_cfg\.stride\[0\] must be > 0, got 0/);
        return true;
      },
    );
    assert.equal(fs.existsSync(out), false);
  });

  it('train and eval with the .py tree and --cfg-options run exactly as with its print-config JSON', async () => {
    const train = async (config: string, work: string, options: string[]) => {
      await beitseg(
        'train',
        '--config',
        config,
        '--work-dir',
        work,
        '--device',
        'cpu',
        '--threads',
        '2',
        '--workers',
        '0',
        ...(options.length ? ['--cfg-options', ...options] : []),
      );
      const log = fs
        .readFileSync(path.join(work, 'log.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        // wall-clock fields differ between any two runs
        .map((e) => Object.fromEntries(Object.entries(e).filter(([k]) => !/time|eta/.test(k))));
      return { log, weights: readSafetensors(path.join(work, 'iter_2', 'model.safetensors')).tensors };
    };
    const a = await train(leaf, path.join(dir, 'w-py'), dataOptions);
    const b = await train(json, path.join(dir, 'w-json'), []);
    assert.ok(a.log.some((e) => 'loss' in e) && a.log.some((e) => 'mIoU' in e), JSON.stringify(a.log));
    assert.deepEqual(a.log, b.log);
    assert.deepEqual([...a.weights.keys()], [...b.weights.keys()]);
    for (const [k, t] of a.weights)
      assert.deepEqual(Buffer.from(t.data as Uint8Array), Buffer.from(b.weights.get(k)!.data as Uint8Array), k);

    const evaluate = async (config: string, name: string, options: string[]) => {
      const out = path.join(dir, `${name}.json`);
      await beitseg(
        'eval',
        '--config',
        config,
        '--weights',
        path.join(dir, 'w-py', 'iter_2', 'model.safetensors'),
        '--device',
        'cpu',
        '--out',
        out,
        ...(options.length ? ['--cfg-options', ...options] : []),
      );
      const { config: _c, ...rest } = JSON.parse(fs.readFileSync(out, 'utf8')) as Record<string, unknown>;
      return rest;
    };
    assert.deepEqual(await evaluate(leaf, 'eval-py', dataOptions), await evaluate(json, 'eval-json', []));
  });
});
