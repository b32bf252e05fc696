/**
 * `make-synthetic-dataset OUT`: write a deterministic ADE20K-layout dataset
 * (see src/data/synthetic.ts). Parsing and printing only.
 */
import type { Command } from 'commander';
import { makeSyntheticDataset, type SceneKind } from '../data/synthetic.js';
import { progressBar } from './progress.js';

function parseInt10(value: string, name: string, min: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min)
    throw new Error(`${name} must be an integer >= ${min}, got "${value}"`);
  return Number(value);
}

/** "256x320" -> [256, 320] (height x width). */
export function parseSize(value: string): [number, number] {
  const m = /^(\d+)x(\d+)$/i.exec(value.trim());
  if (!m) throw new Error(`--size must look like HEIGHTxWIDTH (e.g. 256x320), got "${value}"`);
  return [Number(m[1]), Number(m[2])];
}

interface SyntheticArgs {
  n: string;
  size: string;
  classes: string;
  seed: string;
  splitVal?: string;
  scene: string;
}

export function register(program: Command): void {
  program
    .command('make-synthetic-dataset')
    .description(
      'write a small deterministic ADE20K-layout dataset (textured shapes, JPEG images, 8-bit PNG labels with 0 = ' +
        'other) for tests and smoke training',
    )
    .argument(
      '<out>',
      'output folder (becomes data_root: images/{training,validation}, annotations/..., metainfo.json)',
    )
    .option('--n <count>', 'total number of images (training + validation)', '200')
    .option('--size <HxW>', 'image size, height x width', '256x320')
    .option('--classes <count>', 'number of classes (label values 1..count; 0 = other)', '8')
    .option('--seed <seed>', 'random seed (same seed -> identical files)', '0')
    .option('--split-val <count>', 'how many of the images go to validation (default: n/5)')
    .option(
      '--scene <kind>',
      'ade: label 0 = other, ignored with reduce_zero_label; full: every pixel a class, labels 0..count-1',
      'ade',
    )
    .action(async (out: string, o: SyntheticArgs) => {
      try {
        const n = parseInt10(o.n, '--n', 1);
        const [height, width] = parseSize(o.size);
        const bar = progressBar(n, 'make-synthetic-dataset');
        const s = await makeSyntheticDataset(out, {
          n,
          height,
          width,
          classes: parseInt10(o.classes, '--classes', 1),
          seed: parseInt10(o.seed, '--seed', 0),
          splitVal: o.splitVal === undefined ? undefined : parseInt10(o.splitVal, '--split-val', 0),
          scene: o.scene as SceneKind,
          onProgress: (done) => bar.update(done),
        });
        bar.stop();
        console.log(`wrote ${s.train} training + ${s.val} validation images (${height}x${width}) to ${s.root}`);
        if (o.scene === 'full') {
          console.log(`classes (label values = train ids 0..${s.classes.length - 1}): ${s.classes.join(', ')}`);
          console.log(
            `use: {type: 'BaseSegDataset', data_root: '${s.root}', reduce_zero_label: false, data_prefix: ` +
              `{img_path: 'images/training', seg_map_path: 'annotations/training'}}`,
          );
        } else {
          console.log(
            `classes (train ids 0..${s.classes.length - 1}; label 0 = other -> ignored): ${s.classes.join(', ')}`,
          );
          console.log(
            `use: {type: 'ADE20KDataset', data_root: '${s.root}', data_prefix: {img_path: 'images/training', ` +
              `seg_map_path: 'annotations/training'}}`,
          );
        }
      } catch (err) {
        console.error(`make-synthetic-dataset: ${(err as Error).message}`);
        process.exitCode = 1;
      }
    });
}
