/**
 * Hugging Face BEiT checkpoints into mmseg's structure: config.json read and translated
 * (hf_beit_config.ts), the state dict mapped (hf_beit_keys.ts), the two checked against each
 * other. Also the one dispatcher the loaders use: HF layout with its config.json, or any layout
 * beit2mmseg.ts converts.
 */
import type { HostTensor } from '../../common/host_tensor.js';
import type { LoadedCheckpoint } from '../read_checkpoint.js';
import { convertCheckpoint, type ConversionResult } from './beit2mmseg.js';
import { locateHfBeitFiles, readHfConfigJson } from './hf_beit_files.js';
import {
  hfBeitModelConfig,
  hfOutIndicesToMmseg,
  parseHfBeitConfig,
  checkHfBeitSupported,
  type Dict,
  type HfBeitConfig,
} from './hf_beit_config.js';
import { addZeroRelPosTables, hfBeitToMmseg } from './hf_beit_keys.js';

export interface HfBeitConversion extends ConversionResult {
  config: HfBeitConfig;
  /** The mmseg `model` section that computes what the HF model computes (segmentation models only). */
  mmsegModel: Dict | null;
  /** How HF's configuration was carried over, one line each, for the user. */
  notes: string[];
}

function isSegmentation(c: HfBeitConfig): boolean {
  return c.architectures.length === 0 || c.architectures.includes('BeitForSemanticSegmentation');
}

/** Lines that say how config.json's numerics-relevant values land in the mmseg config. */
function translationNotes(c: HfBeitConfig, model: Dict | null, file: string): string[] {
  const notes = [`layer_norm_eps ${c.layer_norm_eps} -> model.backbone.norm_cfg.eps (mmseg's BEiT default is 1e-06)`];
  if (model) {
    const mm = hfOutIndicesToMmseg(c.out_indices, c.num_hidden_layers, file);
    notes.push(
      `out_indices ${JSON.stringify(c.out_indices)} -> model.backbone.out_indices ${JSON.stringify(mm)} ` +
        '(HF taps hidden_states[k - 1], the output of layer k - 2)',
    );
    notes.push(
      `decode head: UPerHead channels ${c.hidden_size} (= hidden_size), ` +
        `pool_scales ${JSON.stringify(c.pool_scales)}, ` +
        `${c.num_labels} classes; classifier -> conv_seg; fpn1/fpn2 -> neck.upsample_4x/upsample_2x`,
    );
    notes.push(
      c.use_auxiliary_head
        ? `auxiliary head: FCNHead in_index 2, channels ${c.auxiliary_channels}, num_convs ${c.auxiliary_num_convs}, ` +
            `concat_input ${c.auxiliary_concat_input}, loss weight ${c.auxiliary_loss_weight}`
        : 'no auxiliary head',
    );
  }
  if (c.use_shared_relative_position_bias) notes.push("shared relative position bias copied into every layer's table");
  if (!c.use_relative_position_bias && !c.use_shared_relative_position_bias)
    notes.push('no relative position bias: zero tables');
  if (c.layer_scale_init_value === 0)
    notes.push('no layer scale (layer_scale_init_value 0): gamma_1/gamma_2 set to ones');
  return notes;
}

/** Cross-checks the mapped tensors against config.json (sizes, classes, tables). */
function checkAgainstConfig(sd: Map<string, HostTensor>, c: HfBeitConfig, label: string): void {
  const expect = (key: string, dim: number, want: number, field: string) => {
    const t = sd.get(key);
    if (t && t.shape[dim] !== want) {
      throw new Error(`${label}: ${key} has ${t.shape[dim]} rows/channels but config.json's ${field} is ${want}`);
    }
  };
  expect('backbone.cls_token', 2, c.hidden_size, 'hidden_size');
  expect('decode_head.conv_seg.weight', 0, c.num_labels, 'number of labels (id2label)');
  expect('auxiliary_head.conv_seg.weight', 0, c.num_labels, 'number of labels (id2label)');
  expect('backbone.layers.0.attn.relative_position_bias_table', 1, c.num_attention_heads, 'num_attention_heads');
  if (c.use_relative_position_bias) {
    for (let i = 0; i < c.num_hidden_layers; i++) {
      if (!sd.has(`backbone.layers.${i}.attn.relative_position_bias_table`)) {
        throw new Error(`${label}: use_relative_position_bias=true but layer ${i} has no relative_position_bias_table`);
      }
    }
  }
}

/** Maps an HF BEiT state dict, given its config.json, to mmseg segmentor keys. */
export function convertHfBeit(sd: Map<string, HostTensor>, configFile: string, label = configFile): HfBeitConversion {
  const config = parseHfBeitConfig(readHfConfigJson(configFile), configFile);
  checkHfBeitSupported(config, configFile);
  const segmentation = isSegmentation(config);
  const mmsegModel = segmentation ? hfBeitModelConfig(config, configFile) : null;
  const { stateDict, report } = hfBeitToMmseg(
    sd,
    {
      numLayers: config.num_hidden_layers,
      auxiliaryHead: segmentation && config.use_auxiliary_head,
    },
    label,
  );
  const window = [config.image_size[0] / config.patch_size, config.image_size[1] / config.patch_size];
  addZeroRelPosTables(
    stateDict,
    report,
    config.num_hidden_layers,
    (2 * window[0]! - 1) * (2 * window[1]! - 1) + 3,
    config.num_attention_heads,
  );
  checkAgainstConfig(stateDict, config, label);
  return { stateDict, report, config, mmsegModel, notes: translationNotes(config, mmsegModel, configFile) };
}

/**
 * A checkpoint as read by readCheckpoint, in mmseg segmentor keys: HF BEiT through its
 * config.json, every other layout through beit2mmseg's convertCheckpoint.
 */
export function convertLoadedCheckpoint(loaded: LoadedCheckpoint): ConversionResult & Partial<HfBeitConversion> {
  const hfConfig = loaded.description.hfConfig;
  if (hfConfig) return convertHfBeit(loaded.stateDict, hfConfig, loaded.description.file);
  return convertCheckpoint(loaded.stateDict);
}

/**
 * The mmseg model section of the HF BeitForSemanticSegmentation checkpoint at `weights` (a
 * folder, or a weight file with config.json beside it), or null for any other checkpoint.
 */
export function hfArchitectureOf(weights: string): { model: Dict; configFile: string } | null {
  const files = locateHfBeitFiles(weights);
  if (files === null) return null;
  const config = parseHfBeitConfig(readHfConfigJson(files.config), files.config);
  if (!isSegmentation(config)) return null;
  return { model: hfBeitModelConfig(config, files.config), configFile: files.config };
}
