/**
 * The interop commands end to end in child processes: `predict --weights <HF folder>` gives
 * mmseg's slide logits; `convert <HF folder> out.pth` and `convert x.safetensors y.pth` write
 * torch.save checkpoints; wrong combinations fail with a message.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mmsegToHfBeit } from '../../src/checkpoint/convert/hf_beit_keys.js';
import { readCheckpoint } from '../../src/checkpoint/read_checkpoint.js';
import { readPthContent } from '../../src/checkpoint/formats/pth.js';
import { readSafetensors, writeSafetensors } from '../../src/checkpoint/formats/safetensors.js';
import { writeImage } from '../../src/data/image_io.js';
import { toTensor } from '../../src/tensor/host.js';
import { assertClose, loadFixtureTensors, tinyConfigPath } from '../helpers.js';
import { makeTempDir } from '../temp.js';
import { tiny } from './helpers.js';
import { beitseg } from '../child.js';

/** The tiny_public model as a Hugging Face folder (config.json + model.safetensors). */
function writeTinyHfFolder(dir: string): string {
  fs.mkdirSync(dir);
  writeSafetensors(
    path.join(dir, 'model.safetensors'),
    mmsegToHfBeit(readSafetensors(tiny('segmentor_state_dict.safetensors')).tensors),
    {},
  );
  fs.writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({
      model_type: 'beit',
      architectures: ['BeitForSemanticSegmentation'],
      hidden_size: 32,
      num_hidden_layers: 4,
      num_attention_heads: 4,
      intermediate_size: 128,
      layer_norm_eps: 1e-6,
      image_size: 64,
      patch_size: 16,
      use_relative_position_bias: true,
      out_indices: [2, 3, 4, 5],
      auxiliary_channels: 16,
      id2label: { 0: 'a', 1: 'b', 2: 'c', 3: 'd', 4: 'e' },
    }),
  );
  return dir;
}

test("predict --weights <HF folder>: mmseg's slide logits, and how config.json was applied", async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const golden = loadFixtureTensors('tensors.safetensors');
  const rgb = golden.get('slide.image_rgb_u8')!;
  await writeImage(path.join(dir, 'scene.png'), {
    data: rgb.toTypedArray() as Uint8Array,
    height: rgb.shape[0]!,
    width: rgb.shape[1]!,
    channels: 3,
  });
  const hf = writeTinyHfFolder(path.join(dir, 'hf'));
  const logits = path.join(dir, 'logits.safetensors');
  const { stderr } = await beitseg([
    'predict',
    '--config',
    tinyConfigPath,
    '--weights',
    hf,
    '--device',
    'cpu',
    '--out',
    path.join(dir, 'out'),
    '--save-logits',
    logits,
    path.join(dir, 'scene.png'),
  ]);
  assert.match(stderr, /layout hf-transformers/);
  assert.match(stderr, /hf: out_indices \[2,3,4,5\] -> model\.backbone\.out_indices \[0,1,2,3\]/);
  assertClose(
    toTensor(readSafetensors(logits).tensors.get('logits')!),
    golden.get('slide.logits')!,
    1e-4,
    'slide logits',
  );
});

test("convert HF folder -> .pth with --config's classes in meta.dataset_meta; --config needs .pth", async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const hf = writeTinyHfFolder(path.join(dir, 'hf'));
  const fromHf = await beitseg(['convert', hf, path.join(dir, 'hf.pth'), '--config', tinyConfigPath]);
  assert.match(fromHf.stdout, /Hugging Face config\.json carried over:/);
  assert.match(fromHf.stdout, /torch\.save zip/);
  const back = await readCheckpoint(path.join(dir, 'hf.pth'));
  assert.equal(back.description.container, 'state_dict');
  assert.ok(back.stateDict.has('backbone.layers.3.attn.qkv.weight'));
  const meta = ((await readPthContent(path.join(dir, 'hf.pth'))).value as Map<string, unknown>).get('meta') as Map<
    string,
    unknown
  >;
  assert.equal(((meta.get('dataset_meta') as Map<string, unknown>).get('classes') as unknown[]).length, 5);
  await assert.rejects(
    beitseg([
      'convert',
      tiny('segmentor_state_dict.safetensors'),
      path.join(dir, 'm.safetensors'),
      '--config',
      tinyConfigPath,
    ]),
    (err: { stderr: string }) => /--config only fills a \.pth's meta\.dataset_meta/.test(err.stderr),
  );
  assert.ok(!fs.existsSync(path.join(dir, 'm.safetensors')));
});
