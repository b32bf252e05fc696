/**
 * Class names and palette: ADE20K's built in, or a dataset's own from the config
 * (`metainfo` {classes, palette}, at the top level or in the test/val dataset dict).
 */
import { ADE20K_CLASSES, ADE20K_PALETTE, generatePalette } from '../data/metainfo.js';
import { isDict, type Dict } from '../models/config.js';

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
