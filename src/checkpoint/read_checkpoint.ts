/**
 * One entry point for "give me the state dict in this file", whatever the file is: a torch.save
 * file (zip or legacy) or safetensors, chosen by content. torch.save checkpoints wrap the state
 * dict in containers that differ between projects ({'state_dict': ...} for mmseg/mmcv,
 * {'model': ...} for unilm/timm/DeiT, {'module': ...} or 'module.'-prefixed keys from
 * DataParallel); these are unwrapped here and reported, so callers see a flat key -> tensor map.
 * Runner checkpoints (mmengine 1.x: `meta`, `message_hub`, `optimizer`, `param_schedulers`
 * next to `state_dict`) are read with foreign objects as inert data (numpy values, log buffers:
 * never executed); the summary names the entries skipped and the inert records read.
 */
import { checkpointClasses, type CheckpointClasses } from './checkpoint_meta.js';
import { isHostTensor, type HostTensor } from '../common/host_tensor.js';
import { detectFormat, type CheckpointFormat } from './formats/format.js';
import { readPthContent, type PthReadOptions } from './formats/pth.js';
import { readSafetensors } from './formats/safetensors.js';
import { locateHfBeitFiles } from './convert/hf_beit_files.js';
import { isHfBeitStateDict } from './convert/hf_beit_keys.js';
import { fileList, fileText } from '../common/safe_text.js';

export interface CheckpointDescription {
  file: string;
  format: CheckpointFormat;
  /** Path of containers unwrapped to reach the state dict, e.g. 'state_dict' or 'model'; null if none. */
  container: string | null;
  /** Prefix removed from every key (DataParallel's 'module.'), or null. */
  strippedPrefix: string | null;
  /** Keys of the top-level dict of a torch.save file (e.g. ['state_dict', 'meta']); [] for safetensors. */
  topLevelKeys: string[];
  /** Entries next to the tensors that are not tensors (skipped). */
  ignored: string[];
  /** Top-level entries outside the state dict's container (e.g. meta, optimizer), skipped. */
  skipped?: string[];
  /** Foreign objects read as inert data (never executed), counted by Python global name. */
  inertRecords?: Record<string, number>;
  /** safetensors `__metadata__` (empty for torch files). */
  metadata: Record<string, string>;
  tensors: number;
  /** One line for humans, e.g. "pth-zip, state dict under 'model', 175 tensors". */
  summary: string;
  /** config.json of a Hugging Face BEiT checkpoint (HF key names), needed to map it; absent otherwise. */
  hfConfig?: string;
  /** Class names (and palette) the checkpoint's meta carries (mmengine dataset_meta, mmseg 0.x CLASSES). */
  classes?: CheckpointClasses | null;
}

export interface LoadedCheckpoint {
  stateDict: Map<string, HostTensor>;
  description: CheckpointDescription;
}

/** Container keys tried in this order, as mmcv/mmseg/unilm loaders do. */
const CONTAINER_KEYS = ['state_dict', 'model', 'module'] as const;

function hasTensorValues(m: Map<unknown, unknown>): boolean {
  for (const v of m.values()) if (isHostTensor(v)) return true;
  return false;
}

export interface ExtractedStateDict {
  stateDict: Map<string, HostTensor>;
  container: string | null;
  strippedPrefix: string | null;
  topLevelKeys: string[];
  ignored: string[];
}

/** Finds and flattens the state dict inside an unpickled checkpoint object. */
export function extractStateDict(obj: unknown, label: string): ExtractedStateDict {
  if (!(obj instanceof Map)) {
    const what = Array.isArray(obj) ? 'a list/tuple' : isHostTensor(obj) ? 'a single tensor' : typeof obj;
    throw new Error(`${label}: the checkpoint holds ${what}, not a dict of tensors`);
  }
  const topLevelKeys = [...obj.keys()].map(String);
  let cur: Map<unknown, unknown> = obj;
  const path: string[] = [];
  const seen = new Set<Map<unknown, unknown>>();
  while (!hasTensorValues(cur)) {
    seen.add(cur);
    const key = CONTAINER_KEYS.find((k) => cur.get(k) instanceof Map && !seen.has(cur.get(k) as Map<unknown, unknown>));
    if (key === undefined) break;
    path.push(key);
    cur = cur.get(key) as Map<unknown, unknown>;
  }
  const stateDict = new Map<string, HostTensor>();
  const ignored: string[] = [];
  for (const [k, v] of cur) {
    if (typeof k === 'string' && isHostTensor(v)) stateDict.set(k, v);
    else ignored.push(String(k));
  }
  if (stateDict.size === 0) {
    throw new Error(
      `${label}: no tensors found${path.length ? ` under '${path.join('.')}'` : ''} (top-level keys: ` +
        `${fileList(topLevelKeys, 10) || 'none'})`,
    );
  }
  let strippedPrefix: string | null = null;
  if ([...stateDict.keys()].every((k) => k.startsWith('module.'))) {
    strippedPrefix = 'module.';
    const stripped = new Map<string, HostTensor>();
    for (const [k, v] of stateDict) stripped.set(k.slice('module.'.length), v);
    return {
      stateDict: stripped,
      container: path.length ? path.join('.') : null,
      strippedPrefix,
      topLevelKeys,
      ignored,
    };
  }
  return { stateDict, container: path.length ? path.join('.') : null, strippedPrefix, topLevelKeys, ignored };
}

/**
 * Reads any supported checkpoint and returns its flat state dict plus a description of what was
 * found (format, container, stripped prefix, skipped entries). A Hugging Face model folder is
 * read through its weight file; HF BEiT weights bring the path of their config.json along.
 */
export async function readCheckpoint(file: string, opts: PthReadOptions = {}): Promise<LoadedCheckpoint> {
  const hf = locateHfBeitFiles(file);
  const loaded = await readCheckpointFile(hf?.weights ?? file, opts);
  if (hf && isHfBeitStateDict(loaded.stateDict)) {
    loaded.description.hfConfig = hf.config;
    loaded.description.summary += ', Hugging Face BEiT layout with config.json';
  }
  return loaded;
}

/** Reads one checkpoint file (torch.save or safetensors, chosen by content). */
export async function readCheckpointFile(file: string, opts: PthReadOptions = {}): Promise<LoadedCheckpoint> {
  const format = detectFormat(file);
  if (format === 'safetensors') {
    const { tensors, metadata } = readSafetensors(file);
    return {
      stateDict: tensors,
      description: {
        file,
        format,
        container: null,
        strippedPrefix: null,
        topLevelKeys: [],
        ignored: [],
        skipped: [],
        inertRecords: {},
        metadata,
        tensors: tensors.size,
        summary: `safetensors, ${tensors.size} tensors`,
      },
    };
  }
  const content = await readPthContent(file, { ...opts, foreignGlobals: opts.foreignGlobals ?? 'data' });
  const ex = extractStateDict(content.value, file);
  const skipped = ex.container === null ? [] : ex.topLevelKeys.filter((k) => k !== ex.container!.split('.')[0]);
  const inertRecords = Object.fromEntries(content.inertRecords);
  const parts: string[] = [content.format];
  parts.push(ex.container ? `state dict under '${ex.container}'` : 'bare state dict');
  if (ex.strippedPrefix) parts.push(`'${ex.strippedPrefix}' prefix stripped`);
  parts.push(`${ex.stateDict.size} tensors`);
  if (ex.ignored.length) parts.push(`${ex.ignored.length} non-tensor entries skipped`);
  if (skipped.length) parts.push(`skipped ${skipped.map((k) => fileText(k, 40)).join(', ')}`);
  const inert = Object.entries(inertRecords);
  if (inert.length)
    parts.push(`read as inert data: ${inert.map(([name, n]) => `${n} ${fileText(name, 60)}`).join(', ')}`);
  return {
    stateDict: ex.stateDict,
    description: {
      file,
      format: content.format,
      container: ex.container,
      strippedPrefix: ex.strippedPrefix,
      topLevelKeys: ex.topLevelKeys,
      ignored: ex.ignored,
      skipped,
      inertRecords,
      metadata: {},
      tensors: ex.stateDict.size,
      summary: parts.join(', '),
      classes: checkpointClasses(content.value),
    },
  };
}
