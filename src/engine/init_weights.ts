/**
 * Weight initialisation before training, as mmseg/mmengine do it:
 * - `model.pretrained` / backbone `init_cfg={type:'Pretrained'}`: a backbone checkpoint (official
 *   unilm/timm BEiT, beit2mmseg output, or a segmentor checkpoint whose `backbone.*` part is
 *   used), converted to mmseg keys, relative-position tables resized to the model's window
 *   (geometric interpolation), loaded non-strictly into the backbone only;
 * - `load_from` / `--load-from W`: a full segmentor checkpoint loaded non-strictly (.pth or
 *   .safetensors, any layout src/checkpoint converts).
 */
import type { HostTensor } from '../common/host_tensor.js';
import { describeLoad, loadWeights, prepareWeights, previewKeys } from '../inference/weights.js';
import type { EncoderDecoder } from '../models/segmentors/encoder_decoder.js';
import { mapToTensors } from '../tensor/host.js';
import { tidy } from '../tensor/scope.js';

export interface InitReport {
  file: string;
  loaded: number;
  missingKeys: string[];
  unexpectedKeys: string[];
  resizedTables: number;
  lines: string[];
}

/** Loads a pretrained backbone (mmseg init_cfg=Pretrained semantics: non-strict, backbone only). */
export async function loadPretrainedBackbone(model: EncoderDecoder, file: string): Promise<InitReport> {
  const window = model.backbone.window;
  const { stateDict, description, resizedTables } = await prepareWeights(file, window);
  const backboneOnly = new Map<string, HostTensor>();
  for (const [k, v] of stateDict) if (k.startsWith('backbone.')) backboneOnly.set(k.slice('backbone.'.length), v);
  if (backboneOnly.size === 0) throw new Error(`${file}: no backbone weights found (${description.summary})`);
  const result = tidy(() => model.backbone.loadStateDict(mapToTensors(backboneOnly), { origin: file }));
  const lines = [
    `pretrained backbone ${file}: ${description.summary}; ${backboneOnly.size - result.unexpectedKeys.length} ` +
      `tensors loaded` +
      (resizedTables ? `, ${resizedTables} relative-position tables resized to ${window[0]}x${window[1]}` : ''),
  ];
  if (result.missingKeys.length)
    lines.push(`warning: backbone keys not in the checkpoint: ${previewKeys(result.missingKeys)}`);
  if (result.unexpectedKeys.length)
    lines.push(`note: ${result.unexpectedKeys.length} checkpoint keys unused: ${previewKeys(result.unexpectedKeys)}`);
  return { file, loaded: backboneOnly.size - result.unexpectedKeys.length, ...result, resizedTables, lines };
}

/** Loads a whole segmentor checkpoint (mmengine load_from: non-strict). */
export async function loadFromCheckpoint(model: EncoderDecoder, file: string): Promise<InitReport> {
  const r = await loadWeights(model, file);
  return {
    file,
    loaded: r.description.tensors - r.unexpectedKeys.length,
    missingKeys: r.missingKeys,
    unexpectedKeys: r.unexpectedKeys,
    resizedTables: r.resizedTables,
    lines: describeLoad(r),
  };
}
