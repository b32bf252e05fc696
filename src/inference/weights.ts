/**
 * Loads any supported checkpoint into a segmentor: mmseg segmentor checkpoints as they are,
 * official unilm/timm BEiT checkpoints converted on the fly (beit2mmseg), unilm ADE20K
 * checkpoints, .pth or .safetensors. Relative-position tables are resized to the model's
 * window with mmseg's geometric interpolation when the checkpoint was trained at another size.
 */
import { fileText, safeLine } from '../common/safe_text.js';
import type { HostTensor } from '../common/host_tensor.js';
import { readCheckpoint, type CheckpointDescription } from '../checkpoint/read_checkpoint.js';
import type { ConversionReport } from '../checkpoint/convert/beit2mmseg.js';
import { convertLoadedCheckpoint } from '../checkpoint/convert/hf_beit.js';
import { resizeRelPosTables } from '../checkpoint/convert/relpos_resize.js';
import { mapToTensors } from '../tensor/host.js';
import { tidy } from '../tensor/scope.js';
import type { EncoderDecoder } from '../models/segmentors/encoder_decoder.js';
import type { LoadResult } from '../nn/module.js';

export interface WeightsReport extends LoadResult {
  file: string;
  description: CheckpointDescription;
  conversion: ConversionReport;
  resizedTables: number;
  /** Hugging Face checkpoints: how config.json was carried over. */
  notes?: string[];
}

export interface PreparedWeights {
  /** mmseg segmentor keys, tables resized to the window, relative_position_index dropped. */
  stateDict: Map<string, HostTensor>;
  description: CheckpointDescription;
  conversion: ConversionReport;
  resizedTables: number;
  notes?: string[];
}

/** Reads any supported checkpoint as an mmseg segmentor state dict for a model window. */
export async function prepareWeights(file: string, window: readonly [number, number]): Promise<PreparedWeights> {
  const loaded = await readCheckpoint(file);
  const converted = convertLoadedCheckpoint(loaded);
  const resized = resizeRelPosTables(converted.stateDict, [window[0], window[1]]);
  return {
    stateDict: resized.stateDict,
    description: loaded.description,
    conversion: converted.report,
    resizedTables: resized.resized.length,
    ...(converted.notes ? { notes: converted.notes } : {}),
  };
}

export async function loadWeights(model: EncoderDecoder, file: string): Promise<WeightsReport> {
  const { stateDict, ...rest } = await prepareWeights(file, model.backbone.window);
  checkClassCount(stateDict, model, file);
  const result = tidy(() => model.loadStateDict(mapToTensors(stateDict), { origin: file }));
  return { ...result, file, ...rest };
}

/** The classifiers' rows against the config's num_classes, named in the config's terms. */
function checkClassCount(stateDict: Map<string, HostTensor>, model: EncoderDecoder, file: string): void {
  const classifiers = [
    ['decode_head.conv_seg.weight', 'model.decode_head'],
    ['auxiliary_head.conv_seg.weight', 'model.auxiliary_head'],
  ];
  for (const [key, path] of classifiers) {
    const w = stateDict.get(key);
    const head = key.startsWith('decode') ? model.decodeHead : model.auxiliaryHead;
    if (!w || !head) continue;
    if (w.shape[0] !== head.cfg.num_classes) {
      throw new Error(
        `${file} predicts ${w.shape[0]} classes (${key} [${w.shape.join(', ')}]) ` +
          `but ${path}.num_classes is ${head.cfg.num_classes}; ` +
          `fix num_classes (e.g. --cfg-options ${path}.num_classes=${w.shape[0]}) or use other weights`,
      );
    }
  }
}

/** The first few keys of a list, for one-line messages. */
/** The first `n` keys for a message; keys come from the checkpoint, so each is escaped and cut (fileText). */
export function previewKeys(keys: string[], n = 5): string {
  return (
    keys
      .slice(0, n)
      .map((k) => fileText(k))
      .join(', ') + (keys.length > n ? ', ...' : '')
  );
}

/** One-line summary plus warnings worth showing a user. */
export function describeLoad(r: WeightsReport): string[] {
  const lines = [
    `loaded ${fileText(r.file, 400)}: ${safeLine(r.description.summary)}, layout ${r.conversion.layout}` +
      (r.resizedTables ? `, ${r.resizedTables} relative-position tables resized to the model window` : ''),
  ];
  for (const note of r.notes ?? []) lines.push(`  hf: ${note}`);
  if (r.missingKeys.length) {
    const heads = r.missingKeys.filter((k) => !k.startsWith('backbone.')).length;
    lines.push(
      `warning: ${r.missingKeys.length} model keys not in the checkpoint (left at their initial values)` +
        (heads ? `, ${heads} of them outside the backbone: the heads are untrained` : '') +
        `: ${previewKeys(r.missingKeys)}`,
    );
  }
  if (r.unexpectedKeys.length) {
    lines.push(`note: ${r.unexpectedKeys.length} checkpoint keys unused: ${previewKeys(r.unexpectedKeys)}`);
  }
  return lines;
}
