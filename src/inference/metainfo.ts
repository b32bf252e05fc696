/**
 * Class names and palette: ADE20K's built in, or a dataset's own from the config
 * (`metainfo` {classes, palette}, at the top level or in the test/val dataset dict).
 */
import { ADE20K_CLASSES, ADE20K_PALETTE, generatePalette } from '../data/metainfo.js';
import { isDict, type Dict } from '../config/schema.js';
import type { CheckpointClasses } from '../checkpoint/checkpoint_meta.js';

export interface DatasetMeta {
  classes: string[];
  palette: [number, number, number][];
}

function findMetainfo(cfg: Dict): Dict | null {
  if (isDict(cfg.metainfo)) return cfg.metainfo;
  for (const key of ['test_dataloader', 'val_dataloader', 'train_dataloader']) {
    const dl = cfg[key];
    if (isDict(dl) && isDict(dl.dataset) && isDict(dl.dataset.metainfo)) return dl.dataset.metainfo;
  }
  return null;
}

/**
 * The classes to name: the config's metainfo when it has one, else the checkpoint's own (mmseg's
 * init_model does the same), else datasetMeta's defaults. A checkpoint whose classes differ from
 * the config's gives a warning naming both.
 */
export function datasetMetaWithCheckpoint(
  cfg: Dict,
  numClasses: number,
  ckpt: CheckpointClasses | null | undefined,
): { meta: DatasetMeta; warnings: string[] } {
  const warnings: string[] = [];
  const mi = findMetainfo(cfg);
  if (ckpt && mi && Array.isArray(mi.classes)) {
    const cfgClasses = mi.classes.map(String);
    if (cfgClasses.join('\u0000') !== ckpt.classes.join('\u0000')) {
      warnings.push(
        `warning: the config's classes (${preview(cfgClasses)}) differ from the checkpoint's ${ckpt.source} ` +
          `(${preview(ckpt.classes)}); using the config's`,
      );
    }
  }
  if (ckpt && !(mi && Array.isArray(mi.classes))) {
    if (ckpt.classes.length === numClasses) {
      return {
        meta: { classes: ckpt.classes, palette: ckpt.palette ?? toMutable(generatePalette(numClasses)) },
        warnings,
      };
    }
    warnings.push(
      `warning: the checkpoint's ${ckpt.source} lists ${ckpt.classes.length} classes but the model predicts ` +
        `${numClasses}; not used`,
    );
  }
  return { meta: datasetMeta(cfg, numClasses), warnings };
}

function preview(names: string[]): string {
  return `${names.length}: ${names.slice(0, 4).join(', ')}${names.length > 4 ? ', ...' : ''}`;
}

export function datasetMeta(cfg: Dict, numClasses: number): DatasetMeta {
  const mi = findMetainfo(cfg);
  let classes: string[];
  let palette: [number, number, number][];
  if (mi && Array.isArray(mi.classes)) {
    classes = mi.classes.map(String);
    palette = Array.isArray(mi.palette)
      ? (mi.palette as [number, number, number][])
      : toMutable(generatePalette(classes.length));
  } else if (numClasses === ADE20K_CLASSES.length) {
    classes = [...ADE20K_CLASSES];
    palette = toMutable(ADE20K_PALETTE);
  } else {
    classes = Array.from({ length: numClasses }, (_, i) => `class_${i}`);
    palette = toMutable(generatePalette(numClasses));
  }
  if (classes.length !== numClasses) {
    throw new Error(`metainfo lists ${classes.length} classes but the model predicts ${numClasses}`);
  }
  if (palette.length !== numClasses)
    throw new Error(`metainfo palette has ${palette.length} colours for ${numClasses} classes`);
  return { classes, palette };
}

function toMutable(p: readonly (readonly [number, number, number])[]): [number, number, number][] {
  return p.map((c) => [c[0], c[1], c[2]]);
}
