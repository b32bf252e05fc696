/**
 * The layer rule of src/ (issue 31.4), stated once: test/style/layering.test.ts enforces it on the
 * sources, and docs/architecture.md's layer table is generated from it (`node
 * dist/test/style/layers.js --write` after `npm run build`), so the page cannot drift from the rule.
 * Kept free of src/ imports so that writing the page does not load the addon.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findRoot } from './root.js';

export interface Layer {
  /** The folder under src/. */
  folder: string;
  /** What the folder holds (one line for the docs table). */
  holds: string;
  /** The folders it may import: a list, or every folder listed before it. */
  imports: readonly string[] | 'all below';
}

/**
 * Lowest first. The four lowest floors import at most common/: tensor/ (libtorch) and checkpoint/
 * (file formats) stay independent of each other, and data/ stays free of both because its
 * loader workers decode images in worker threads that must not load the addon. data/ and
 * visualization/ may use config/ (pure JavaScript, no imports) for their config sections.
 */
export const LAYERS: readonly Layer[] = [
  { folder: 'common', holds: 'dtypes and HostTensor, safe quoting of file text', imports: [] },
  {
    folder: 'config',
    holds: 'config loading (JSON, mmseg .py without Python, _base_ merge), --cfg-options, validation, warnings',
    imports: ['common'],
  },
  {
    folder: 'tensor',
    holds: 'Tensor, tidy scopes, functional ops, runtime, CUDA graphs; the addon',
    imports: ['common'],
  },
  {
    folder: 'checkpoint',
    holds: 'formats/ (safetensors, .pth reader and writer, limits), convert/ (beit2mmseg, Hugging Face map)',
    imports: ['common'],
  },
  {
    folder: 'data',
    holds: 'image IO, cv2-exact transforms, datasets and metainfo, loader',
    imports: ['common', 'config'],
  },
  { folder: 'visualization', holds: 'overlays, training-log plots', imports: ['common', 'config', 'data'] },
  { folder: 'distributed', holds: 'process groups, DDP, SyncBN, launcher', imports: ['common', 'config', 'tensor'] },
  { folder: 'nn', holds: 'Module (state-dict keys), Linear, Conv2d, norms, ConvModule', imports: 'all below' },
  { folder: 'models', holds: 'backbones, necks, decode heads, segmentors, builder', imports: 'all below' },
  {
    folder: 'inference',
    holds: 'initModel / inferenceModel, precision policy, window forward, TTA',
    imports: 'all below',
  },
  { folder: 'export', holds: 'ONNX export: the graph built from the module tree and weights', imports: 'all below' },
  {
    folder: 'web',
    holds: "the browser page's entry (bundled; ONNX Runtime Web, the tensor-free inference code)",
    imports: 'all below',
  },
  { folder: 'evaluation', holds: 'IoUMetric, resumable (and sharded) dataset evaluation', imports: 'all below' },
  {
    folder: 'engine',
    holds: 'runner, hooks, optimizer wrapper, schedules, training checkpoints',
    imports: 'all below',
  },
  {
    folder: 'serve',
    holds: 'the HTTP service: server, model worker threads, scheduler, policy, OpenAPI, metrics, page',
    imports: 'all below',
  },
  { folder: 'cli', holds: 'one file per command', imports: 'all below' },
];

/**
 * The folders whose files may use the addon object (`native`, src/tensor/native.ts) directly. Every
 * op goes through tensor/'s typed wrappers; distributed/ also holds c10d process groups, DDP reducers
 * and the autograd allreduce, native objects named by numeric ids that tensor/ does not wrap. Other
 * folders may import types from native.ts, not the addon.
 */
export const NATIVE_USERS: readonly string[] = ['tensor', 'distributed'];

/** The folders `folder` may import, itself excluded. */
export function allowedImports(folder: string): readonly string[] {
  const at = LAYERS.findIndex((l) => l.folder === folder);
  if (at < 0) return [];
  const { imports } = LAYERS[at];
  return imports === 'all below' ? LAYERS.slice(0, at).map((l) => l.folder) : imports;
}

export const TABLE_BEGIN = '<!-- layers:begin (generated from test/style/layers.ts) -->';
export const TABLE_END = '<!-- layers:end -->';

/** The Markdown table of LAYERS, top floor first (as a reader looks down the stack). */
export function layersTable(): string {
  const rows = [...LAYERS].reverse().map((l) => {
    const may = l.imports === 'all below' ? 'every folder below' : l.imports.map((f) => `${f}/`).join(', ') || '-';
    const native = NATIVE_USERS.includes(l.folder) ? ' (and the addon)' : '';
    return `| src/${l.folder}/ | ${l.holds} | ${may}${native} |`;
  });
  return ['| folder | holds | may import |', '| --- | --- | --- |', ...rows].join('\n');
}

/** docs/architecture.md with its table block replaced by layersTable(). */
export function withTable(page: string): string {
  const begin = page.indexOf(TABLE_BEGIN);
  const end = page.indexOf(TABLE_END);
  if (begin < 0 || end < begin) throw new Error(`docs/architecture.md: no ${TABLE_BEGIN} ... ${TABLE_END} block`);
  return `${page.slice(0, begin + TABLE_BEGIN.length)}\n${layersTable()}\n${page.slice(end)}`;
}

export function architecturePage(root: string): string {
  return path.join(root, 'docs', 'architecture.md');
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--write')) {
  const file = architecturePage(findRoot());
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, withTable(fs.readFileSync(file, 'utf8')));
  fs.renameSync(tmp, file);
  console.log(`wrote the layer table of ${file}`);
}
