/**
 * BEiT checkpoint key conversion to mmsegmentation names.
 *
 * `beit2mmseg` is a faithful port of mmseg 1.x `tools/model_converters/beit2mmseg.py`
 * (`convert_beit`), quirks included, so its output matches the Python tool key for key and
 * byte for byte: 1.x tests `patch_embed` in a separate `if` before the `blocks`/else chain, so
 * patch-embed tensors come out twice, as `patch_embed.projection.*` and unchanged as
 * `patch_embed.proj.*` (the latter ignored by mmseg's non-strict load). Python's str.replace
 * replaces every occurrence, which we reproduce with split/join.
 *
 * `toMmsegBackbone` / `convertCheckpoint` go further and handle the checkpoint layouts people
 * actually have (see `detectLayout`), reporting every renamed and dropped key.
 */
import type { HostTensor } from '../../common/host_tensor.js';
import { fileList } from '../../common/safe_text.js';

function replaceAll(s: string, from: string, to: string): string {
  return s.split(from).join(to);
}

/** Output keys mmseg 1.x's converter writes for input key `k`, in the order it writes them. */
export function beit2mmsegKeys(k: string): string[] {
  const out: string[] = [];
  if (k.startsWith('patch_embed')) out.push(replaceAll(k, 'patch_embed.proj', 'patch_embed.projection'));
  if (k.startsWith('blocks')) {
    let nk = replaceAll(k, 'blocks', 'layers');
    if (nk.includes('norm')) nk = replaceAll(nk, 'norm', 'ln');
    else if (nk.includes('mlp.fc1')) nk = replaceAll(nk, 'mlp.fc1', 'ffn.layers.0.0');
    else if (nk.includes('mlp.fc2')) nk = replaceAll(nk, 'mlp.fc2', 'ffn.layers.1');
    out.push(nk);
  } else {
    out.push(k);
  }
  return out;
}

/** Exactly mmseg 1.x `convert_beit(ckpt)`: same keys, same order, same tensors (shared, not copied). */
export function beit2mmseg<T>(ckpt: Map<string, T>): Map<string, T> {
  const out = new Map<string, T>();
  for (const [k, v] of ckpt) for (const nk of beit2mmsegKeys(k)) out.set(nk, v);
  return out;
}

/** The same renaming without the 1.x duplicate: one output key per input key. */
export function beitKeyToMmseg(k: string): string {
  const keys = beit2mmsegKeys(k);
  return keys[0]!;
}

/** Checkpoint layouts we can turn into mmseg names. */
export type CheckpointLayout =
  /** unilm/timm image checkpoint (`blocks.{i}.*`, per-block rel-pos tables), e.g. *_pt22k_ft22k.pth. */
  | 'official'
  /** unilm pretraining checkpoint: one shared `rel_pos_bias.relative_position_bias_table`. */
  | 'pretrain-shared'
  /** unilm semantic-segmentation checkpoint (`backbone.blocks...`, FPN inside the backbone). */
  | 'unilm-ade'
  /** Output of mmseg's beit2mmseg (backbone level, `layers.{i}.*`). */
  | 'mmseg-backbone'
  /** mmseg segmentor state dict (`backbone.layers...`, `neck.*`, `decode_head.*`). */
  | 'mmseg-segmentor'
  /** Hugging Face transformers BeitForSemanticSegmentation (`beit.encoder...`, `fpn1`, ...): hf_beit_keys.ts. */
  | 'hf-transformers';

export interface ConversionReport {
  layout: CheckpointLayout;
  renamed: [from: string, to: string][];
  dropped: { key: string; reason: string }[];
  /** Keys created that were not in the input (e.g. per-block copies of a shared table). */
  added: { key: string; reason: string }[];
  /** Keys kept under their name although mmseg's BEiT does not use them (non-strict load ignores them). */
  unused: string[];
}

export interface ConversionResult {
  stateDict: Map<string, HostTensor>;
  report: ConversionReport;
}

const SHARED_TABLE = 'rel_pos_bias.relative_position_bias_table';

/** Decides which layout a flat state dict has; throws with the first keys when unrecognised. */
export function detectLayout(sd: Map<string, unknown>): CheckpointLayout {
  const keys = [...sd.keys()];
  const any = (re: RegExp) => keys.some((k) => re.test(k));
  if (any(/^backbone\.blocks\.\d+\./)) return 'unilm-ade';
  if (any(/^backbone\./) || any(/^(decode_head|auxiliary_head|neck)\./)) return 'mmseg-segmentor';
  if (sd.has(SHARED_TABLE)) return 'pretrain-shared';
  if (any(/^blocks\.\d+\./)) return 'official';
  if (any(/^layers\.\d+\./)) return 'mmseg-backbone';
  if (any(/^beit\.(encoder|embeddings)\./)) {
    throw new Error(
      'this is a HuggingFace transformers BEiT checkpoint (beit.encoder...): its config.json is needed ' +
        'to map it; give the folder that holds both (or put config.json beside the weights file)',
    );
  }
  throw new Error(
    `unrecognised checkpoint layout: no BEiT keys (blocks.N / layers.N / backbone.*); first keys: ${fileList(keys, 6)}`,
  );
}

function emptyReport(layout: CheckpointLayout): ConversionReport {
  return { layout, renamed: [], dropped: [], added: [], unused: [] };
}

/**
 * unilm's loader behaviour for pretraining checkpoints: copy the one shared relative-position
 * table into every block (`<prefix>blocks.{i}.attn.relative_position_bias_table`) and drop the
 * shared keys. Block count comes from the block indices present. Copies share the bytes.
 */
export function expandSharedRelPosBias(
  sd: Map<string, HostTensor>,
  report: ConversionReport,
  prefix = '',
): Map<string, HostTensor> {
  const shared = sd.get(prefix + SHARED_TABLE);
  if (shared === undefined) return sd;
  const blockRe = new RegExp(`^${prefix.replace(/\./g, '\\.')}blocks\\.(\\d+)\\.`);
  let layers = 0;
  for (const k of sd.keys()) {
    const m = blockRe.exec(k);
    if (m) layers = Math.max(layers, Number(m[1]) + 1);
  }
  const out = new Map<string, HostTensor>();
  for (const [k, v] of sd) {
    if (k.startsWith(`${prefix}rel_pos_bias.`)) {
      report.dropped.push({ key: k, reason: 'shared relative position bias, copied into every block' });
      continue;
    }
    out.set(k, v);
  }
  for (let i = 0; i < layers; i++) {
    const key = `${prefix}blocks.${i}.attn.relative_position_bias_table`;
    if (out.has(key)) continue;
    out.set(key, { dtype: shared.dtype, shape: shared.shape.slice(), data: shared.data });
    report.added.push({ key, reason: `copy of ${prefix}${SHARED_TABLE}` });
  }
  return out;
}

/** Backbone-level keys mmseg's BEiT has no parameter for, with the reason (for segmentor loading). */
function unusedBackboneKeyReason(k: string): string | null {
  if (/^patch_embed\.proj\./.test(k)) return 'duplicate of patch_embed.projection (mmseg 1.x converter quirk)';
  if (/^(fc_norm|head)\./.test(k)) return 'classification head, not part of the segmentation backbone';
  if (/^(lm_head\.|mask_token$)/.test(k)) return 'masked-image-modeling pretraining head';
  if (/^norm\./.test(k)) return 'final LayerNorm (mmseg BEiT uses final_norm=False)';
  if (k === 'pos_embed') return 'absolute position embedding (mmseg BEiT has none)';
  if (/^rel_pos_bias\./.test(k)) return 'shared relative position bias (expanded per block)';
  return null;
}

/**
 * Backbone-level conversion of an image checkpoint (official, pretraining with a shared table,
 * or an already converted mmseg backbone) to the names mmseg's converter produces, without
 * the patch_embed duplicate. Keys mmseg ignores (head, fc_norm, ...) are kept, as the Python
 * converter keeps them, and listed in `report.unused`.
 */
export function toMmsegBackbone(sd: Map<string, HostTensor>): ConversionResult {
  const layout = detectLayout(sd);
  if (layout === 'unilm-ade' || layout === 'mmseg-segmentor') {
    throw new Error(`toMmsegBackbone: a ${layout} checkpoint is a whole segmentor; use convertCheckpoint`);
  }
  const report = emptyReport(layout);
  const src = layout === 'pretrain-shared' ? expandSharedRelPosBias(sd, report) : sd;
  const out = new Map<string, HostTensor>();
  for (const [k, v] of src) {
    if (layout === 'mmseg-backbone' && /^patch_embed\.proj\./.test(k)) {
      report.dropped.push({ key: k, reason: 'duplicate of patch_embed.projection (mmseg 1.x converter quirk)' });
      continue;
    }
    const nk = layout === 'mmseg-backbone' ? k : beitKeyToMmseg(k);
    if (nk !== k) report.renamed.push([k, nk]);
    out.set(nk, v);
    if (unusedBackboneKeyReason(nk) !== null) report.unused.push(nk);
  }
  return { stateDict: out, report };
}

/** unilm segmentation FPN (inside the backbone) -> mmseg Feature2Pyramid neck. */
function unilmFpnKey(k: string): string | null {
  let m = /^backbone\.fpn1\.([013])\.(.+)$/.exec(k);
  if (m) return `neck.upsample_4x.${m[1]}.${m[2]}`;
  m = /^backbone\.fpn2\.0\.(.+)$/.exec(k);
  if (m) return `neck.upsample_2x.0.${m[1]}`;
  return null;
}

/**
 * Converts any supported layout to a full mmseg segmentor state dict (`backbone.` prefix,
 * plus `neck.*`/`decode_head.*`/`auxiliary_head.*` where the input has them), ready for
 * segmentor loading. Keys the mmseg model has no parameter for are dropped and reported.
 * mmseg segmentor checkpoints pass through unchanged.
 */
export function convertCheckpoint(sd: Map<string, HostTensor>): ConversionResult {
  const layout = detectLayout(sd);
  const report = emptyReport(layout);
  const out = new Map<string, HostTensor>();

  if (layout === 'mmseg-segmentor') {
    for (const [k, v] of sd) out.set(k, v);
    return { stateDict: out, report };
  }

  if (layout === 'unilm-ade') {
    const src = expandSharedRelPosBias(sd, report, 'backbone.');
    for (const [k, v] of src) {
      let nk: string | null = null;
      if (k.startsWith('backbone.')) {
        nk = unilmFpnKey(k);
        if (nk === null) {
          const inner = k.slice('backbone.'.length);
          if (/^fpn[1-4]\./.test(inner)) {
            report.dropped.push({ key: k, reason: 'unilm FPN branch without parameters in mmseg Feature2Pyramid' });
            continue;
          }
          const renamed = beitKeyToMmseg(inner);
          const reason = unusedBackboneKeyReason(renamed);
          if (reason !== null) {
            report.dropped.push({ key: k, reason });
            continue;
          }
          nk = `backbone.${renamed}`;
        }
      } else {
        nk = k; // decode_head.* / auxiliary_head.* already carry mmseg names
      }
      if (nk !== k) report.renamed.push([k, nk]);
      out.set(nk, v);
    }
    return { stateDict: out, report };
  }

  // Backbone-only layouts: convert at backbone level, then prefix and drop what mmseg lacks.
  const backbone = toMmsegBackbone(sd);
  report.dropped.push(...backbone.report.dropped);
  report.added.push(...backbone.report.added);
  const originalOf = new Map(backbone.report.renamed.map(([from, to]) => [to, from]));
  for (const [k, v] of backbone.stateDict) {
    const original = originalOf.get(k) ?? k;
    const reason = unusedBackboneKeyReason(k);
    if (reason !== null) {
      report.dropped.push({ key: original, reason });
      continue;
    }
    const nk = `backbone.${k}`;
    report.renamed.push([original, nk]);
    out.set(nk, v);
  }
  return { stateDict: out, report };
}

/**
 * Replaces the first numeric key segment (the layer/block index) by `*`, to group per-layer
 * keys in summaries: `blocks.3.mlp.fc1.weight` -> `blocks.*.mlp.fc1.weight`, while inner
 * indices such as `ffn.layers.0.0` stay readable.
 */
export function keyPattern(k: string): string {
  return k.replace(/(^|\.)\d+(?=\.|$)/, '$1*');
}

/** Groups keys (or rename pairs) by pattern: [pattern, count] in first-seen order. */
export function groupKeys(keys: string[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const k of keys) {
    const p = keyPattern(k);
    counts.set(p, (counts.get(p) ?? 0) + 1);
  }
  return [...counts.entries()];
}
