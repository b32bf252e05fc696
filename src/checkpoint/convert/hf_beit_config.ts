/**
 * A Hugging Face BeitConfig (config.json) as the mmseg model config that computes the same
 * thing, and the merge of that architecture into a user's mmseg config.
 *
 * What HF's modeling_beit.py does differently from mmseg's BEiT-UperNet, and how it is carried:
 * - layer_norm_eps: HF's default is 1e-12 (mmseg: 1e-6) -> backbone.norm_cfg.eps.
 * - the tapped layers: BeitForSemanticSegmentation keeps `hidden_states[j]` for `j + 1` in
 *   out_indices, and hidden_states[0] is the embedding output, so HF index k taps the output of
 *   0-based layer k - 2 (HF [3, 5, 7, 11] = mmseg [1, 3, 5, 9], not mmseg's [3, 5, 7, 11]).
 *   k = 1 taps the patch embeddings, which mmseg cannot: refused.
 * - the heads' width: HF's UperHead uses hidden_size channels; the FCN head auxiliary_channels,
 *   in_index 2, kernel 3; no dropout before the classifier (mmseg: dropout_ratio 0.1, training only).
 * - the same numerics otherwise: convs without bias + BatchNorm2d (eps 1e-5) + ReLU, FPN
 *   ConvT-BN-GELU-ConvT / ConvT / identity / max-pool 2, bilinear align_corners=False, exact GELU.
 * - refused: hidden_act other than "gelu" (gelu_new is the tanh approximation), absolute position
 *   embeddings, out_indices not of length 4.
 */
/** A config dict in mmseg's structure (the models layer's Dict; checkpoint sits below it). */
export type Dict = Record<string, unknown>;

/** The BeitConfig fields the conversion reads, with HF's defaults where config.json omits them. */
export interface HfBeitConfig {
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  hidden_act: string;
  layer_norm_eps: number;
  image_size: [number, number];
  patch_size: number;
  num_channels: number;
  use_absolute_position_embeddings: boolean;
  use_relative_position_bias: boolean;
  use_shared_relative_position_bias: boolean;
  layer_scale_init_value: number;
  drop_path_rate: number;
  /** null where config.json has none (fine for backbone-only models; segmentation needs it). */
  out_indices: number[] | null;
  pool_scales: number[];
  use_auxiliary_head: boolean;
  auxiliary_loss_weight: number;
  auxiliary_channels: number;
  auxiliary_num_convs: number;
  auxiliary_concat_input: boolean;
  semantic_loss_ignore_index: number;
  num_labels: number;
  architectures: string[];
}

/** BeitConfig.__init__ defaults (transformers configuration_beit.py). */
const DEFAULTS = {
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  hidden_act: 'gelu',
  layer_norm_eps: 1e-12,
  image_size: 224,
  patch_size: 16,
  num_channels: 3,
  use_absolute_position_embeddings: false,
  use_relative_position_bias: false,
  use_shared_relative_position_bias: false,
  layer_scale_init_value: 0.1,
  drop_path_rate: 0.1,
  pool_scales: [1, 2, 3, 6],
  use_auxiliary_head: true,
  auxiliary_loss_weight: 0.4,
  auxiliary_channels: 256,
  auxiliary_num_convs: 1,
  auxiliary_concat_input: false,
  semantic_loss_ignore_index: 255,
} as const;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses and validates config.json; `file` names it in errors. */
export function parseHfBeitConfig(json: unknown, file: string): HfBeitConfig {
  if (!isRecord(json)) throw new Error(`${file}: not a JSON object`);
  if (json.model_type !== 'beit') {
    throw new Error(
      `${file}: model_type is ${JSON.stringify(json.model_type)}, not "beit" (only HF BEiT checkpoints are mapped)`,
    );
  }
  const field = <T>(key: string, fallback: T | undefined, ok: (v: unknown) => boolean, what: string): T => {
    const v = json[key] ?? fallback;
    if (v === undefined) throw new Error(`${file}: ${key} is missing`);
    if (!ok(v)) throw new Error(`${file}: ${key} must be ${what}, got ${JSON.stringify(v)}`);
    return v as T;
  };
  const int = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;
  const posInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  const numb = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  const bool = (v: unknown) => typeof v === 'boolean';
  const ints = (v: unknown) => Array.isArray(v) && v.every(int);
  const image = field<number | number[]>(
    'image_size',
    DEFAULTS.image_size,
    (v) => posInt(v) || (Array.isArray(v) && v.length === 2 && v.every(posInt)),
    'a positive integer or a pair',
  );
  const id2label = json.id2label;
  const numLabels = isRecord(id2label)
    ? Object.keys(id2label).length
    : field<number>('num_labels', 2, posInt, 'a positive integer');
  return {
    hidden_size: field('hidden_size', DEFAULTS.hidden_size, posInt, 'a positive integer'),
    num_hidden_layers: field('num_hidden_layers', DEFAULTS.num_hidden_layers, posInt, 'a positive integer'),
    num_attention_heads: field('num_attention_heads', DEFAULTS.num_attention_heads, posInt, 'a positive integer'),
    intermediate_size: field('intermediate_size', DEFAULTS.intermediate_size, posInt, 'a positive integer'),
    hidden_act: field('hidden_act', DEFAULTS.hidden_act, (v) => typeof v === 'string', 'a string'),
    layer_norm_eps: field(
      'layer_norm_eps',
      DEFAULTS.layer_norm_eps,
      (v) => numb(v) && (v as number) > 0,
      'a positive number',
    ),
    image_size: typeof image === 'number' ? [image, image] : [image[0]!, image[1]!],
    patch_size: field('patch_size', DEFAULTS.patch_size, posInt, 'a positive integer'),
    num_channels: field('num_channels', DEFAULTS.num_channels, posInt, 'a positive integer'),
    use_absolute_position_embeddings: field(
      'use_absolute_position_embeddings',
      DEFAULTS.use_absolute_position_embeddings,
      bool,
      'true or false',
    ),
    use_relative_position_bias: field(
      'use_relative_position_bias',
      DEFAULTS.use_relative_position_bias,
      bool,
      'true or false',
    ),
    use_shared_relative_position_bias: field(
      'use_shared_relative_position_bias',
      DEFAULTS.use_shared_relative_position_bias,
      bool,
      'true or false',
    ),
    layer_scale_init_value: field(
      'layer_scale_init_value',
      DEFAULTS.layer_scale_init_value,
      (v) => numb(v) && (v as number) >= 0,
      'a number >= 0',
    ),
    drop_path_rate: field('drop_path_rate', DEFAULTS.drop_path_rate, numb, 'a number'),
    out_indices:
      json.out_indices == null ? null : field<number[]>('out_indices', undefined, ints, 'a list of integers'),
    pool_scales: field(
      'pool_scales',
      [...DEFAULTS.pool_scales],
      (v) => Array.isArray(v) && v.length > 0 && v.every(posInt),
      'a list of positive integers',
    ),
    use_auxiliary_head: field('use_auxiliary_head', DEFAULTS.use_auxiliary_head, bool, 'true or false'),
    auxiliary_loss_weight: field('auxiliary_loss_weight', DEFAULTS.auxiliary_loss_weight, numb, 'a number'),
    auxiliary_channels: field('auxiliary_channels', DEFAULTS.auxiliary_channels, posInt, 'a positive integer'),
    auxiliary_num_convs: field('auxiliary_num_convs', DEFAULTS.auxiliary_num_convs, int, 'an integer >= 0'),
    auxiliary_concat_input: field('auxiliary_concat_input', DEFAULTS.auxiliary_concat_input, bool, 'true or false'),
    semantic_loss_ignore_index: field(
      'semantic_loss_ignore_index',
      DEFAULTS.semantic_loss_ignore_index,
      Number.isInteger,
      'an integer',
    ),
    num_labels: numLabels,
    architectures: field(
      'architectures',
      [],
      (v) => Array.isArray(v) && v.every((a) => typeof a === 'string'),
      'a list of strings',
    ),
  };
}

/**
 * HF out_indices -> mmseg out_indices: HF keeps hidden_states[k - 1] (hidden_states[0] being the
 * embeddings), i.e. the output of 0-based layer k - 2.
 */
export function hfOutIndicesToMmseg(outIndices: readonly number[] | null, numLayers: number, file: string): number[] {
  if (outIndices === null) {
    throw new Error(
      `${file}: out_indices is missing; HF's default changed between transformers versions ` +
        '([3, 5, 7, 11] before the BeitBackbone release, the last stage after), so it must be given',
    );
  }
  if (outIndices.length !== 4) {
    throw new Error(`${file}: out_indices ${JSON.stringify(outIndices)}: BeitForSemanticSegmentation needs exactly 4`);
  }
  if (new Set(outIndices).size !== 4) {
    throw new Error(
      `${file}: out_indices ${JSON.stringify(outIndices)} repeats an index: HF keeps each hidden state once, ` +
        "so its heads would get fewer than 4 feature maps (no fpn4), which mmseg's Feature2Pyramid cannot reproduce",
    );
  }
  return outIndices.map((k) => {
    if (k === 1) {
      throw new Error(
        `${file}: out_indices contains 1, which HF reads as the patch-embedding output ` +
          "(hidden_states[0]); mmseg's BEiT can only tap transformer layers",
      );
    }
    if (k < 1 || k > numLayers + 1) {
      throw new Error(
        `${file}: out_indices ${JSON.stringify(outIndices)}: ${k} is outside 2..${numLayers + 1} ` +
          `for ${numLayers} layers (HF taps hidden_states[k - 1])`,
      );
    }
    return k - 2;
  });
}

/** Checks what no mmseg BEiT-UperNet can compute; throws naming the field. */
export function checkHfBeitSupported(c: HfBeitConfig, file: string): void {
  if (c.hidden_act !== 'gelu') {
    throw new Error(
      `${file}: hidden_act ${JSON.stringify(c.hidden_act)}: mmseg's BEiT uses the exact (erf) GELU, HF's "gelu"; ` +
        'other activations would change the outputs',
    );
  }
  if (c.use_absolute_position_embeddings) {
    throw new Error(`${file}: use_absolute_position_embeddings=true: mmseg's BEiT has no absolute position embeddings`);
  }
  if (c.hidden_size % c.num_attention_heads !== 0) {
    throw new Error(
      `${file}: hidden_size ${c.hidden_size} is not divisible by num_attention_heads ${c.num_attention_heads}`,
    );
  }
  if (c.intermediate_size % c.hidden_size !== 0) {
    throw new Error(
      `${file}: intermediate_size ${c.intermediate_size} is not a multiple of hidden_size ${c.hidden_size} ` +
        "(mmseg's BEiT sizes its MLP as embed_dims * mlp_ratio)",
    );
  }
  if (c.image_size[0] % c.patch_size !== 0 || c.image_size[1] % c.patch_size !== 0) {
    throw new Error(`${file}: image_size ${c.image_size.join('x')} is not a multiple of patch_size ${c.patch_size}`);
  }
}

/** The mmseg `model` section (EncoderDecoder) that computes what the HF model computes. */
export function hfBeitModelConfig(c: HfBeitConfig, file: string): Dict {
  checkHfBeitSupported(c, file);
  const h = c.hidden_size;
  const bn = { type: 'SyncBN', requires_grad: true };
  const loss = (weight: number) => ({ type: 'CrossEntropyLoss', use_sigmoid: false, loss_weight: weight });
  const model: Dict = {
    type: 'EncoderDecoder',
    backbone: {
      type: 'BEiT',
      img_size: [...c.image_size],
      patch_size: c.patch_size,
      in_channels: c.num_channels,
      embed_dims: h,
      num_layers: c.num_hidden_layers,
      num_heads: c.num_attention_heads,
      mlp_ratio: c.intermediate_size / h,
      out_indices: hfOutIndicesToMmseg(c.out_indices, c.num_hidden_layers, file),
      qv_bias: true,
      drop_path_rate: c.drop_path_rate,
      norm_cfg: { type: 'LN', eps: c.layer_norm_eps },
      init_values: c.layer_scale_init_value > 0 ? c.layer_scale_init_value : 1,
    },
    neck: { type: 'Feature2Pyramid', embed_dim: h, rescales: [4, 2, 1, 0.5], norm_cfg: bn },
    decode_head: {
      type: 'UPerHead',
      in_channels: [h, h, h, h],
      in_index: [0, 1, 2, 3],
      pool_scales: [...c.pool_scales],
      channels: h,
      dropout_ratio: 0,
      num_classes: c.num_labels,
      norm_cfg: bn,
      align_corners: false,
      ignore_index: c.semantic_loss_ignore_index,
      loss_decode: loss(1.0),
    },
  };
  if (c.use_auxiliary_head) {
    model.auxiliary_head = {
      type: 'FCNHead',
      in_channels: h,
      in_index: 2,
      channels: c.auxiliary_channels,
      num_convs: c.auxiliary_num_convs,
      kernel_size: 3,
      concat_input: c.auxiliary_concat_input,
      dropout_ratio: 0,
      num_classes: c.num_labels,
      norm_cfg: bn,
      align_corners: false,
      ignore_index: c.semantic_loss_ignore_index,
      loss_decode: loss(c.auxiliary_loss_weight),
    };
  }
  return model;
}

/** Fields of the HF-derived model that decide the numbers; everything else stays the user's. */
const ARCHITECTURE_FIELDS: Record<string, string[]> = {
  backbone: [
    'img_size',
    'patch_size',
    'in_channels',
    'embed_dims',
    'num_layers',
    'num_heads',
    'mlp_ratio',
    'out_indices',
    'qv_bias',
    'norm_cfg.eps',
  ],
  neck: ['type', 'embed_dim', 'rescales', 'norm_cfg.eps'],
  decode_head: [
    'type',
    'in_channels',
    'in_index',
    'pool_scales',
    'channels',
    'num_classes',
    'align_corners',
    'norm_cfg.eps',
  ],
  auxiliary_head: [
    'type',
    'in_channels',
    'in_index',
    'channels',
    'num_convs',
    'kernel_size',
    'concat_input',
    'num_classes',
    'norm_cfg.eps',
  ],
};

/** mmseg's defaults for fields a config may leave out (to say what a change changes from). */
const MMSEG_DEFAULTS: Record<string, unknown> = {
  'backbone.norm_cfg.eps': 1e-6,
  'neck.norm_cfg.eps': 1e-5,
  'decode_head.norm_cfg.eps': 1e-5,
  'auxiliary_head.norm_cfg.eps': 1e-5,
  'backbone.qv_bias': true,
  'decode_head.align_corners': false,
  'auxiliary_head.kernel_size': 3,
  'auxiliary_head.num_convs': 2,
  'auxiliary_head.concat_input': true,
};

function getPath(d: Dict, p: string): unknown {
  let cur: unknown = d;
  for (const part of p.split('.')) cur = isRecord(cur) ? cur[part] : undefined;
  return cur;
}

function setPath(d: Dict, p: string, value: unknown): void {
  const parts = p.split('.');
  let cur = d;
  for (const part of parts.slice(0, -1)) {
    if (!isRecord(cur[part])) cur[part] = {};
    cur = cur[part] as Dict;
  }
  cur[parts[parts.length - 1]!] = value;
}

function same(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  return a === b;
}

/**
 * The user's model config with the HF architecture put in (the fields that decide the outputs:
 * sizes, tapped layers, norm eps, heads' layout); test_cfg, losses, dropout and the rest stay
 * the user's. Returns the merged copy and one line per changed field.
 */
export function applyHfArchitecture(userModel: Dict, hfModel: Dict): { model: Dict; changes: string[] } {
  const model = structuredClone(userModel) as Dict;
  const changes: string[] = [];
  for (const [part, fields] of Object.entries(ARCHITECTURE_FIELDS)) {
    const hfPart = hfModel[part];
    if (!isRecord(hfPart)) {
      if (model[part] != null) {
        changes.push(`model.${part}: removed (the HF model has none)`);
        delete model[part];
      }
      continue;
    }
    if (!isRecord(model[part])) {
      model[part] = structuredClone(hfPart);
      changes.push(`model.${part}: added from the HF config (${String(hfPart.type)})`);
      continue;
    }
    for (const f of fields) {
      const path = `${part}.${f}`;
      const want = getPath(hfModel, path);
      if (want === undefined) continue;
      const had = getPath(model, path);
      const effective = had === undefined ? MMSEG_DEFAULTS[path] : had;
      if (same(effective, want)) continue;
      if (f === 'norm_cfg.eps' && !isRecord(getPath(model, `${part}.norm_cfg`)))
        setPath(model, `${part}.norm_cfg`, structuredClone(hfPart.norm_cfg));
      setPath(model, path, structuredClone(want));
      changes.push(`model.${path}: ${JSON.stringify(effective ?? null)} -> ${JSON.stringify(want)}`);
    }
  }
  return { model, changes };
}
