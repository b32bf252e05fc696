/**
 * Hugging Face BEiT checkpoints: the key map against HF's names as modeling_beit.py defines them,
 * and a small HF-layout checkpoint built from the tiny_public mmseg model that must load back to
 * the same logits.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { HostTensor } from '../../src/common/host_tensor.js';
import { readSafetensors, writeSafetensors } from '../../src/checkpoint/formats/safetensors.js';
import { hfBeitToMmseg, mmsegToHfBeit } from '../../src/checkpoint/convert/hf_beit_keys.js';
import {
  applyHfArchitecture,
  hfBeitModelConfig,
  hfOutIndicesToMmseg,
  parseHfBeitConfig,
} from '../../src/checkpoint/convert/hf_beit_config.js';
import { convertFile } from '../../src/checkpoint/convert/convert_file.js';
import { convertHfBeit } from '../../src/checkpoint/convert/hf_beit.js';
import { readCheckpoint } from '../../src/checkpoint/read_checkpoint.js';
import { writeTorchSave } from '../../src/checkpoint/formats/pth_writer.js';
import { initModel } from '../../src/inference/api.js';
import { buildSegmentor } from '../../src/models/builder.js';
import { loadConfig, type Dict } from '../../src/config/schema.js';
import { mapToTensors, toHost } from '../../src/tensor/host.js';
import { noGrad } from '../../src/tensor/runtime.js';
import { fixtureFile, loadFixtureTensors, loadTinyModel, maxAbsDiff, repoRoot, tinyConfigPath } from '../helpers.js';
import { makeTempDir } from '../temp.js';
import { assertStateDictsEqual } from './helpers.js';

/**
 * BeitForSemanticSegmentation's state-dict keys for a 4-layer model, written from a reading of
 * transformers' modeling_beit.py (BeitEmbeddings, BeitLayer with use_relative_position_bias and
 * layer scale, fpn1/fpn2, BeitUperHead with pool_scales (1, 2, 3, 6), BeitFCNHead with one conv,
 * no concat), not from the map under test.
 */
function expectedHfKeys(): string[] {
  const bn = (p: string) =>
    ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'].map((s) => `${p}.${s}`);
  const convModule = (p: string) => [`${p}.conv.weight`, ...bn(`${p}.bn`)];
  const keys = [
    'beit.embeddings.cls_token',
    'beit.embeddings.patch_embeddings.projection.weight',
    'beit.embeddings.patch_embeddings.projection.bias',
  ];
  for (let i = 0; i < 4; i++) {
    const l = `beit.encoder.layer.${i}`;
    keys.push(
      `${l}.lambda_1`,
      `${l}.lambda_2`,
      `${l}.attention.attention.query.weight`,
      `${l}.attention.attention.query.bias`,
      `${l}.attention.attention.key.weight`,
      `${l}.attention.attention.value.weight`,
      `${l}.attention.attention.value.bias`,
      `${l}.attention.attention.relative_position_bias.relative_position_bias_table`,
      `${l}.attention.output.dense.weight`,
      `${l}.attention.output.dense.bias`,
      `${l}.intermediate.dense.weight`,
      `${l}.intermediate.dense.bias`,
      `${l}.output.dense.weight`,
      `${l}.output.dense.bias`,
      `${l}.layernorm_before.weight`,
      `${l}.layernorm_before.bias`,
      `${l}.layernorm_after.weight`,
      `${l}.layernorm_after.bias`,
    );
  }
  keys.push(
    'fpn1.0.weight',
    'fpn1.0.bias',
    ...bn('fpn1.1'),
    'fpn1.3.weight',
    'fpn1.3.bias',
    'fpn2.0.weight',
    'fpn2.0.bias',
  );
  keys.push('decode_head.classifier.weight', 'decode_head.classifier.bias');
  for (let j = 0; j < 4; j++) keys.push(...convModule(`decode_head.psp_modules.${j}.1`));
  keys.push(...convModule('decode_head.bottleneck'));
  for (let j = 0; j < 3; j++)
    keys.push(...convModule(`decode_head.lateral_convs.${j}`), ...convModule(`decode_head.fpn_convs.${j}`));
  keys.push(...convModule('decode_head.fpn_bottleneck'));
  keys.push(
    ...convModule('auxiliary_head.convs.0'),
    'auxiliary_head.classifier.weight',
    'auxiliary_head.classifier.bias',
  );
  return keys;
}

/** An HF config.json for the tiny_public model (4 layers, 32 dims, 5 classes). */
function tinyHfConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_type: 'beit',
    architectures: ['BeitForSemanticSegmentation'],
    hidden_size: 32,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    intermediate_size: 128,
    hidden_act: 'gelu',
    layer_norm_eps: 1e-6,
    image_size: 64,
    patch_size: 16,
    num_channels: 3,
    use_absolute_position_embeddings: false,
    use_relative_position_bias: true,
    use_shared_relative_position_bias: false,
    layer_scale_init_value: 0.1,
    drop_path_rate: 0.1,
    use_mean_pooling: true,
    out_indices: [2, 3, 4, 5],
    pool_scales: [1, 2, 3, 6],
    use_auxiliary_head: true,
    auxiliary_loss_weight: 0.4,
    auxiliary_channels: 16,
    auxiliary_num_convs: 1,
    auxiliary_concat_input: false,
    semantic_loss_ignore_index: 255,
    id2label: { 0: 'a', 1: 'b', 2: 'c', 3: 'd', 4: 'e' },
    label2id: { a: 0, b: 1, c: 2, d: 3, e: 4 },
    ...overrides,
  };
}

function tinyMmsegStateDict(): Map<string, HostTensor> {
  return readSafetensors(fixtureFile('segmentor_state_dict.safetensors')).tensors;
}

/** Writes an HF model folder (config.json + model.safetensors or pytorch_model.bin) for the tiny model. */
function writeHfFolder(
  dir: string,
  config: Record<string, unknown>,
  weights: 'model.safetensors' | 'pytorch_model.bin' = 'model.safetensors',
  edit: (sd: Map<string, HostTensor>) => void = () => {},
): string {
  fs.mkdirSync(dir, { recursive: true });
  const sd = mmsegToHfBeit(tinyMmsegStateDict());
  edit(sd);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  if (weights === 'model.safetensors') writeSafetensors(path.join(dir, weights), sd, { format: 'pt' });
  else writeTorchSave(path.join(dir, weights), sd); // a bare OrderedDict, as save_pretrained writes it
  return dir;
}

function withoutIndexBuffers(sd: Map<string, HostTensor>): Map<string, HostTensor> {
  return new Map([...sd].filter(([k]) => !k.endsWith('relative_position_index')));
}

test('the map meets the HF key names modeling_beit.py defines (the 4-layer tiny model), both ways', () => {
  const cfg = structuredClone(loadConfig(tinyConfigPath).model) as Dict;
  const model = buildSegmentor(cfg);
  const mmseg = new Map([...model.stateDict()].map(([k, t]) => [k, toHost(t)] as const));
  const hf = mmsegToHfBeit(mmseg);
  assert.deepEqual([...hf.keys()].sort(), expectedHfKeys().sort());
  const back = hfBeitToMmseg(hf, { numLayers: 4, auxiliaryHead: true });
  assertStateDictsEqual(back.stateDict, withoutIndexBuffers(mmseg));
  assert.equal(back.report.layout, 'hf-transformers');
});

test('HF out_indices tap hidden_states[k - 1]: mmseg layer k - 2; embeddings and bad lengths refused', () => {
  assert.deepEqual(hfOutIndicesToMmseg([3, 5, 7, 11], 12, 'c'), [1, 3, 5, 9]);
  assert.deepEqual(hfOutIndicesToMmseg([7, 11, 15, 23], 24, 'c'), [5, 9, 13, 21]);
  assert.deepEqual(hfOutIndicesToMmseg([2, 3, 4, 5], 4, 'c'), [0, 1, 2, 3]);
  assert.throws(
    () => hfOutIndicesToMmseg([1, 2, 3, 4], 4, 'c.json'),
    /c\.json: out_indices contains 1, .*patch-embedding/,
  );
  assert.throws(() => hfOutIndicesToMmseg([2, 3, 4, 6], 4, 'c.json'), /6 is outside 2\.\.5/);
  assert.throws(() => hfOutIndicesToMmseg([3, 5, 7], 12, 'c.json'), /needs exactly 4/);
  assert.throws(() => hfOutIndicesToMmseg([3, 3, 4, 5], 4, 'c.json'), /repeats an index/);
  assert.throws(() => hfOutIndicesToMmseg(null, 12, 'c.json'), /c\.json: out_indices is missing/);
});

test("config.json of BEiT-base ADE20K -> mmseg model; merged into mmseg's own config with each change named", () => {
  const hfBase = parseHfBeitConfig(
    {
      model_type: 'beit',
      architectures: ['BeitForSemanticSegmentation'],
      image_size: 640,
      use_relative_position_bias: true,
      out_indices: [3, 5, 7, 11],
      id2label: Object.fromEntries(Array.from({ length: 150 }, (_, i) => [i, `c${i}`])),
    },
    'config.json',
  );
  const model = hfBeitModelConfig(hfBase, 'config.json');
  const mmsegBase = loadConfig(path.join(repoRoot, 'configs', 'beit-base_upernet_8xb2-160k_ade20k-640x640.json'));
  const { model: merged, changes } = applyHfArchitecture(mmsegBase.model as Dict, model);
  assert.deepEqual(changes, [
    'model.backbone.out_indices: [3,5,7,11] -> [1,3,5,9]',
    'model.backbone.norm_cfg.eps: 0.000001 -> 1e-12',
  ]);
  const backbone = merged.backbone as Dict;
  assert.deepEqual(backbone.out_indices, [1, 3, 5, 9]);
  assert.equal((backbone.norm_cfg as Dict).eps, 1e-12);
  // Everything that is not architecture stays the user's.
  assert.deepEqual(merged.test_cfg, (mmsegBase.model as Dict).test_cfg);
  assert.equal((merged.decode_head as Dict).dropout_ratio, 0.1);
});

test("an HF checkpoint made from tiny_public gives the mmseg model's logits (both weight files)", async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const reference = loadTinyModel();
  const input = loadFixtureTensors('tensors.safetensors').get('input.image')!;
  const expected = noGrad(() => reference.inference(input, { mode: 'whole' }));
  for (const weights of ['model.safetensors', 'pytorch_model.bin'] as const) {
    const folder = writeHfFolder(path.join(dir, weights), tinyHfConfig(), weights);
    const m = await initModel(tinyConfigPath, folder);
    assert.equal(m.weights!.conversion.layout, 'hf-transformers');
    assert.deepEqual(
      m.weights!.missingKeys.filter((k) => !k.endsWith('relative_position_index')),
      [],
    );
    assert.deepEqual(m.weights!.unexpectedKeys, []);
    const logits = noGrad(() => m.model.inference(input, { mode: 'whole' }));
    const d = maxAbsDiff(logits, expected);
    assert.ok(d <= 1e-5, `${weights}: max |diff| ${d} > 1e-5`);
    // The weight file given directly, config.json beside it, reads the same way.
    const direct = await readCheckpoint(path.join(folder, weights));
    assert.equal(direct.description.hfConfig, path.join(folder, 'config.json'));
  }
});

test("HF layer_norm_eps and out_indices replace the mmseg config's when the HF folder is the --weights", async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  // Both HF and mmseg keep the tapped layers in layer order, so [5, 4, 3, 2] taps what [2, 3, 4, 5] does.
  const folder = writeHfFolder(dir, tinyHfConfig({ layer_norm_eps: 1e-12, out_indices: [5, 4, 3, 2] }));
  const m = await initModel(tinyConfigPath, folder);
  assert.equal(m.model.backbone.layers.at(2).ln2.eps, 1e-12);
  assert.deepEqual(m.model.backbone.cfg.out_indices, [3, 2, 1, 0]);
  assert.deepEqual(((m.config.model as Dict).backbone as Dict).out_indices, [3, 2, 1, 0]);
  const input = loadFixtureTensors('tensors.safetensors').get('input.image')!;
  const d = maxAbsDiff(
    noGrad(() => m.model.inference(input, { mode: 'whole' })),
    noGrad(() => loadTinyModel().inference(input, { mode: 'whole' })),
  );
  assert.ok(d > 0 && d < 1e-4, `eps 1e-12 instead of 1e-6 moves the logits a little: ${d}`);
});

test('convert: HF folder -> mmseg-keyed safetensors, bit for bit, with the mmseg model section', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const folder = writeHfFolder(path.join(dir, 'hf'), tinyHfConfig());
  const dst = path.join(dir, 'out.safetensors');
  const s = await convertFile(folder, dst);
  assert.equal(s.level, 'segmentor');
  assert.equal(s.report.layout, 'hf-transformers');
  assert.ok(
    s.hf!.notes.some((n) => n.includes('out_indices [2,3,4,5] -> model.backbone.out_indices [0,1,2,3]')),
    s.hf!.notes.join('\n'),
  );
  const written = readSafetensors(dst);
  assertStateDictsEqual(written.tensors, withoutIndexBuffers(tinyMmsegStateDict()));
  const model = JSON.parse(written.metadata.mmseg_model!) as Dict;
  assert.deepEqual((model.backbone as Dict).out_indices, [0, 1, 2, 3]);
  const loaded = buildSegmentor(model).loadStateDict(mapToTensors(written.tensors), { strict: false });
  assert.deepEqual(loaded.unexpectedKeys, []);
  assert.deepEqual(
    loaded.missingKeys.filter((k) => !k.endsWith('relative_position_index')),
    [],
  );
});

test('HF checkpoints that would compute something else are refused by name', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const convert = async (name: string, config: Record<string, unknown>, edit?: (sd: Map<string, HostTensor>) => void) =>
    convertFile(
      writeHfFolder(path.join(dir, name), config, 'model.safetensors', edit),
      path.join(dir, `${name}.safetensors`),
    );
  await assert.rejects(convert('act', tinyHfConfig({ hidden_act: 'gelu_new' })), /config\.json: hidden_act "gelu_new"/);
  await assert.rejects(
    convert('abs', tinyHfConfig({ use_absolute_position_embeddings: true })),
    /use_absolute_position_embeddings=true/,
  );
  await assert.rejects(convert('emb', tinyHfConfig({ out_indices: [1, 3, 4, 5] })), /out_indices contains 1/);
  await assert.rejects(
    convert('labels', tinyHfConfig({ id2label: { 0: 'a', 1: 'b' } })),
    /decode_head\.conv_seg\.weight has 5 rows\/channels but config\.json's number of labels \(id2label\) is 2/,
  );
  await assert.rejects(
    convert('kbias', tinyHfConfig(), (sd) => {
      sd.set(
        'beit.encoder.layer.1.attention.attention.key.bias',
        sd.get('beit.encoder.layer.1.attention.attention.query.bias')!,
      );
    }),
    /beit\.encoder\.layer\.1\.attention\.attention\.key\.bias: HF BEiT's key projection has no bias/,
  );
  await assert.rejects(
    convert('extra', tinyHfConfig(), (sd) => {
      sd.set('decode_head.extra.weight', sd.get('fpn2.0.bias')!);
    }),
    /key\(s\) the HF BeitForSemanticSegmentation layout does not have .*decode_head\.extra\.weight/,
  );
  await assert.rejects(convert('noidx', tinyHfConfig({ out_indices: undefined })), /out_indices is missing/);
  fs.mkdirSync(path.join(dir, 'empty'));
  await assert.rejects(
    convertFile(path.join(dir, 'empty'), path.join(dir, 'e.safetensors')),
    /a folder without config\.json/,
  );
  assert.ok(!fs.existsSync(path.join(dir, 'act.safetensors')), 'no output after a refusal');
});

test('shared relative position bias and missing layer scale map exactly (tables copied, gammas ones)', () => {
  const hf = mmsegToHfBeit(tinyMmsegStateDict());
  const shared = hf.get(
    'beit.encoder.layer.0.attention.attention.relative_position_bias.relative_position_bias_table',
  )!;
  for (let i = 0; i < 4; i++) {
    hf.delete(`beit.encoder.layer.${i}.attention.attention.relative_position_bias.relative_position_bias_table`);
    hf.delete(`beit.encoder.layer.${i}.lambda_1`);
  }
  hf.set('beit.encoder.relative_position_bias.relative_position_bias_table', shared);
  const { stateDict, report } = hfBeitToMmseg(hf, { numLayers: 4, auxiliaryHead: true });
  for (let i = 0; i < 4; i++) {
    assert.equal(stateDict.get(`backbone.layers.${i}.attn.relative_position_bias_table`), shared);
    const gamma = new Float32Array(stateDict.get(`backbone.layers.${i}.gamma_1`)!.data.slice().buffer);
    assert.ok(gamma.every((v) => v === 1));
  }
  assert.equal(report.added.length, 8);
});

test('HF image-classification and masked-image-modeling BEiT weights map to the backbone, heads dropped', (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const hf = new Map([...mmsegToHfBeit(tinyMmsegStateDict())].filter(([k]) => k.startsWith('beit.')));
  const f32 = (n: number): HostTensor => ({ dtype: 'float32', shape: [n], data: new Uint8Array(4 * n) });
  const classification = new Map([...hf, ['beit.pooler.layernorm.weight', f32(32)], ['classifier.weight', f32(10)]]);
  const configFile = path.join(dir, 'config.json');
  fs.writeFileSync(
    configFile,
    JSON.stringify(tinyHfConfig({ architectures: ['BeitForImageClassification'], out_indices: undefined })),
  );
  const c = convertHfBeit(classification, configFile);
  assert.equal(c.mmsegModel, null);
  assert.ok([...c.stateDict.keys()].every((k) => k.startsWith('backbone.')));
  assert.equal(
    c.stateDict.size,
    [...tinyMmsegStateDict().keys()].filter((k) => k.startsWith('backbone.') && !k.endsWith('_index')).length,
  );
  assert.deepEqual(c.report.dropped.map((d) => d.key).sort(), ['beit.pooler.layernorm.weight', 'classifier.weight']);
  // Pretraining: one shared table, mask token, final layernorm and lm_head.
  const shared = hf.get(
    'beit.encoder.layer.0.attention.attention.relative_position_bias.relative_position_bias_table',
  )!;
  const mim = new Map([...hf].filter(([k]) => !k.includes('relative_position_bias_table')));
  mim.set('beit.encoder.relative_position_bias.relative_position_bias_table', shared);
  for (const k of ['beit.embeddings.mask_token', 'layernorm.weight', 'lm_head.weight']) mim.set(k, f32(32));
  fs.writeFileSync(
    configFile,
    JSON.stringify(
      tinyHfConfig({
        architectures: ['BeitForMaskedImageModeling'],
        use_relative_position_bias: false,
        use_shared_relative_position_bias: true,
      }),
    ),
  );
  const p = convertHfBeit(mim, configFile);
  for (let i = 0; i < 4; i++)
    assert.equal(p.stateDict.get(`backbone.layers.${i}.attn.relative_position_bias_table`), shared);
  assert.equal(p.report.dropped.length, 4);
});
