import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { readPth } from '../../src/checkpoint/formats/pth.js';
import { readSafetensors } from '../../src/checkpoint/formats/safetensors.js';
import {
  beit2mmseg,
  beit2mmsegKeys,
  convertCheckpoint,
  detectLayout,
  expandSharedRelPosBias,
  toMmsegBackbone,
  keyPattern,
} from '../../src/checkpoint/convert/beit2mmseg.js';
import type { HostTensor } from '../../src/common/host_tensor.js';
import { assertStateDictsEqual, f32Tensor, tiny } from './helpers.js';

async function officialStateDict(): Promise<Map<string, HostTensor>> {
  const obj = (await readPth(tiny('beit_official.pth'))) as Map<string, unknown>;
  return obj.get('model') as Map<string, HostTensor>;
}

test(
  'beit2mmseg(official) equals converted_beit2mmseg.safetensors: same keys in the same order, dtypes, shapes, ' +
    'bytes',
  async () => {
    const converted = beit2mmseg(await officialStateDict());
    const expected = readSafetensors(tiny('converted_beit2mmseg.safetensors')).tensors;
    assertStateDictsEqual(converted, expected, true);
    // The mmseg 1.x duplicate is there, sharing the tensor.
    assert.equal(converted.get('patch_embed.proj.weight'), converted.get('patch_embed.projection.weight'));
  },
);

test('beit2mmseg key rules, as the Python converter applies them', () => {
  assert.deepEqual(beit2mmsegKeys('patch_embed.proj.weight'), [
    'patch_embed.projection.weight',
    'patch_embed.proj.weight',
  ]);
  assert.deepEqual(beit2mmsegKeys('blocks.11.norm1.weight'), ['layers.11.ln1.weight']);
  assert.deepEqual(beit2mmsegKeys('blocks.0.mlp.fc1.bias'), ['layers.0.ffn.layers.0.0.bias']);
  assert.deepEqual(beit2mmsegKeys('blocks.0.mlp.fc2.weight'), ['layers.0.ffn.layers.1.weight']);
  assert.deepEqual(beit2mmsegKeys('blocks.3.attn.relative_position_bias_table'), [
    'layers.3.attn.relative_position_bias_table',
  ]);
  assert.deepEqual(beit2mmsegKeys('blocks.3.gamma_1'), ['layers.3.gamma_1']);
  assert.deepEqual(beit2mmsegKeys('fc_norm.weight'), ['fc_norm.weight']);
  assert.deepEqual(beit2mmsegKeys('rel_pos_bias.relative_position_bias_table'), [
    'rel_pos_bias.relative_position_bias_table',
  ]);
  // str.replace replaces every occurrence, and 'norm' wins over 'mlp.fc1' (if/elif order).
  assert.deepEqual(beit2mmsegKeys('blocks.0.mlp.fc1.norm'), ['layers.0.mlp.fc1.ln']);
});

test('toMmsegBackbone: converter names without the patch_embed duplicate', async () => {
  const { stateDict, report } = toMmsegBackbone(await officialStateDict());
  const expected = readSafetensors(tiny('converted_beit2mmseg.safetensors')).tensors;
  for (const k of ['patch_embed.proj.weight', 'patch_embed.proj.bias']) expected.delete(k);
  assertStateDictsEqual(stateDict, expected, true);
  assert.equal(report.layout, 'official');
  assert.equal(report.renamed.length, 2 + 4 * 17);
  assert.deepEqual(report.unused, ['fc_norm.weight', 'fc_norm.bias', 'head.weight', 'head.bias']);
});

test('convertCheckpoint(official) gives the backbone part of the mmseg segmentor state dict bit for bit', async () => {
  const { stateDict, report } = convertCheckpoint(await officialStateDict());
  const segmentor = readSafetensors(tiny('segmentor_state_dict.safetensors')).tensors;
  const backbone = new Map([...segmentor].filter(([k]) => k.startsWith('backbone.')));
  assertStateDictsEqual(stateDict, backbone);
  assert.deepEqual(report.dropped.map((d) => d.key).sort(), [
    'fc_norm.bias',
    'fc_norm.weight',
    'head.bias',
    'head.weight',
  ]);
  assert.ok(
    report.renamed.some(([from, to]) => from === 'blocks.0.norm1.weight' && to === 'backbone.layers.0.ln1.weight'),
  );
});

test('mmseg segmentor checkpoints pass through unchanged', async () => {
  const segmentor = readSafetensors(tiny('segmentor_state_dict.safetensors')).tensors;
  const { stateDict, report } = convertCheckpoint(segmentor);
  assert.equal(report.layout, 'mmseg-segmentor');
  assertStateDictsEqual(stateDict, segmentor, true);
  assert.equal(report.renamed.length + report.dropped.length, 0);
});

function syntheticBlocks(prefix: string, layers: number, withTables: boolean): Map<string, HostTensor> {
  const sd = new Map<string, HostTensor>();
  sd.set(`${prefix}cls_token`, f32Tensor([1, 2], [1, 1, 2]));
  sd.set(`${prefix}patch_embed.proj.weight`, f32Tensor([1, 2, 3, 4], [2, 2, 1, 1]));
  sd.set(`${prefix}patch_embed.proj.bias`, f32Tensor([0, 0], [2]));
  for (let i = 0; i < layers; i++) {
    for (const n of [
      'norm1.weight',
      'norm1.bias',
      'attn.q_bias',
      'attn.v_bias',
      'attn.qkv.weight',
      'attn.proj.weight',
      'attn.proj.bias',
      'norm2.weight',
      'norm2.bias',
      'mlp.fc1.weight',
      'mlp.fc1.bias',
      'mlp.fc2.weight',
      'mlp.fc2.bias',
      'gamma_1',
      'gamma_2',
    ]) {
      sd.set(`${prefix}blocks.${i}.${n}`, f32Tensor([i], [1]));
    }
    if (withTables)
      sd.set(
        `${prefix}blocks.${i}.attn.relative_position_bias_table`,
        f32Tensor(
          Array.from({ length: 12 * 2 }, (_, j) => j + 100 * i),
          [12, 2],
        ),
      );
  }
  return sd;
}

test(
  'pretraining checkpoint: the shared table is copied into every block and the shared keys dropped (as ' + 'unilm)',
  () => {
    const sd = syntheticBlocks('', 3, false);
    const shared = f32Tensor(
      Array.from({ length: 24 }, (_, j) => j / 8),
      [12, 2],
    );
    sd.set('rel_pos_bias.relative_position_bias_table', shared);
    sd.set('rel_pos_bias.relative_position_index', { dtype: 'int64', shape: [5, 5], data: new Uint8Array(200) });
    sd.set('mask_token', f32Tensor([0, 0], [1, 1, 2]));
    sd.set('norm.weight', f32Tensor([1, 1], [2]));
    sd.set('lm_head.weight', f32Tensor([1, 1, 1, 1], [2, 2]));
    assert.equal(detectLayout(sd), 'pretrain-shared');

    const backbone = toMmsegBackbone(sd);
    for (let i = 0; i < 3; i++) {
      const t = backbone.stateDict.get(`layers.${i}.attn.relative_position_bias_table`)!;
      assert.deepEqual(t.shape, [12, 2]);
      assert.equal(t.data, shared.data);
    }
    assert.ok(![...backbone.stateDict.keys()].some((k) => k.startsWith('rel_pos_bias.')));
    assert.deepEqual(
      backbone.report.dropped.map((d) => d.key),
      ['rel_pos_bias.relative_position_bias_table', 'rel_pos_bias.relative_position_index'],
    );
    assert.equal(backbone.report.added.length, 3);

    const seg = convertCheckpoint(sd);
    assert.ok(seg.stateDict.has('backbone.layers.2.attn.relative_position_bias_table'));
    assert.ok(
      !seg.stateDict.has('backbone.mask_token') &&
        !seg.stateDict.has('backbone.norm.weight') &&
        !seg.stateDict.has('backbone.lm_head.weight'),
    );
    const droppedKeys = seg.report.dropped.map((d) => d.key);
    for (const k of ['mask_token', 'norm.weight', 'lm_head.weight', 'rel_pos_bias.relative_position_bias_table'])
      assert.ok(droppedKeys.includes(k), k);

    // expandSharedRelPosBias leaves dicts without a shared table alone.
    const plain = syntheticBlocks('', 1, true);
    assert.equal(
      expandSharedRelPosBias(plain, { layout: 'official', renamed: [], dropped: [], added: [], unused: [] }),
      plain,
    );
  },
);

test('unilm ADE20K segmentation checkpoint: backbone renames and FPN -> Feature2Pyramid neck', () => {
  const sd = syntheticBlocks('backbone.', 2, true);
  sd.set('backbone.blocks.0.attn.relative_position_index', { dtype: 'int64', shape: [1], data: new Uint8Array(8) });
  for (const i of [0, 3]) {
    sd.set(`backbone.fpn1.${i}.weight`, f32Tensor([i], [1, 1, 1, 1]));
    sd.set(`backbone.fpn1.${i}.bias`, f32Tensor([i], [1]));
  }
  for (const n of ['weight', 'bias', 'running_mean', 'running_var'])
    sd.set(`backbone.fpn1.1.${n}`, f32Tensor([1], [1]));
  sd.set('backbone.fpn1.1.num_batches_tracked', { dtype: 'int64', shape: [], data: new Uint8Array(8) });
  sd.set('backbone.fpn2.0.weight', f32Tensor([2], [1, 1, 1, 1]));
  sd.set('backbone.fpn2.0.bias', f32Tensor([2], [1]));
  sd.set('decode_head.conv_seg.weight', f32Tensor([5], [1, 1, 1, 1]));
  sd.set('auxiliary_head.convs.0.conv.weight', f32Tensor([6], [1, 1, 1, 1]));
  assert.equal(detectLayout(sd), 'unilm-ade');

  const { stateDict, report } = convertCheckpoint(sd);
  const keys = [...stateDict.keys()];
  const expectMapped: [string, string][] = [
    ['backbone.patch_embed.proj.weight', 'backbone.patch_embed.projection.weight'],
    ['backbone.blocks.1.norm2.bias', 'backbone.layers.1.ln2.bias'],
    ['backbone.blocks.0.mlp.fc1.weight', 'backbone.layers.0.ffn.layers.0.0.weight'],
    ['backbone.blocks.0.mlp.fc2.bias', 'backbone.layers.0.ffn.layers.1.bias'],
    ['backbone.blocks.1.attn.relative_position_bias_table', 'backbone.layers.1.attn.relative_position_bias_table'],
    ['backbone.blocks.0.attn.relative_position_index', 'backbone.layers.0.attn.relative_position_index'],
    ['backbone.fpn1.0.weight', 'neck.upsample_4x.0.weight'],
    ['backbone.fpn1.1.running_var', 'neck.upsample_4x.1.running_var'],
    ['backbone.fpn1.1.num_batches_tracked', 'neck.upsample_4x.1.num_batches_tracked'],
    ['backbone.fpn1.3.bias', 'neck.upsample_4x.3.bias'],
    ['backbone.fpn2.0.weight', 'neck.upsample_2x.0.weight'],
  ];
  for (const [from, to] of expectMapped) {
    assert.ok(stateDict.has(to), `${to} present`);
    assert.equal(stateDict.get(to), sd.get(from), `${from} -> ${to}`);
    assert.ok(
      report.renamed.some(([f, t]) => f === from && t === to),
      `${from} reported`,
    );
  }
  assert.equal(stateDict.get('backbone.cls_token'), sd.get('backbone.cls_token'));
  assert.equal(stateDict.get('decode_head.conv_seg.weight'), sd.get('decode_head.conv_seg.weight'));
  assert.equal(stateDict.get('auxiliary_head.convs.0.conv.weight'), sd.get('auxiliary_head.convs.0.conv.weight'));
  assert.ok(!keys.some((k) => k.includes('blocks') || k.includes('fpn') || k.includes('patch_embed.proj.')));
  assert.equal(stateDict.size, sd.size);
});

test('detectLayout recognises each layout and rejects others clearly', () => {
  assert.equal(detectLayout(new Map([['blocks.0.norm1.weight', 1]])), 'official');
  assert.equal(detectLayout(new Map([['layers.0.ln1.weight', 1]])), 'mmseg-backbone');
  assert.equal(detectLayout(new Map([['backbone.layers.0.ln1.weight', 1]])), 'mmseg-segmentor');
  assert.equal(detectLayout(new Map([['backbone.blocks.0.norm1.weight', 1]])), 'unilm-ade');
  assert.throws(
    () => detectLayout(new Map([['beit.encoder.layer.0.attention.output.dense.weight', 1]])),
    /HuggingFace transformers/,
  );
  assert.throws(() => detectLayout(new Map([['conv1.weight', 1]])), /unrecognised checkpoint layout.*conv1\.weight/);
});

test('mmseg-backbone input (already converted) drops the duplicate and prefixes for the segmentor', () => {
  const conv = readSafetensors(tiny('converted_beit2mmseg.safetensors')).tensors;
  const r = toMmsegBackbone(conv);
  assert.equal(r.report.layout, 'mmseg-backbone');
  assert.ok(!r.stateDict.has('patch_embed.proj.weight'));
  const seg = convertCheckpoint(conv);
  const segmentor = readSafetensors(tiny('segmentor_state_dict.safetensors')).tensors;
  assertStateDictsEqual(seg.stateDict, new Map([...segmentor].filter(([k]) => k.startsWith('backbone.'))));
});

test('keyPattern collapses the layer index only', () => {
  assert.equal(keyPattern('layers.11.ffn.layers.0.0.weight'), 'layers.*.ffn.layers.0.0.weight');
  assert.equal(keyPattern('cls_token'), 'cls_token');
});
