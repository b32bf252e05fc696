/**
 * `make-synthetic-dataset OUT`: write a deterministic ADE20K-layout dataset
 * (see src/data/synthetic.ts). Parsing and printing only.
 */
import { type Command, Option } from 'commander';
import { defineCommand } from './commands.js';
import { parseNonNegativeInt, parsePositiveInt, parseSize } from './options.js';

interface MakeOptions {
  n: number;
  size: [number, number];
  classes: number;
  seed: number;
  splitVal?: number;
  scene: 'ade' | 'full';
}

export function register(program: Command): void {
  defineCommand(program, 'make-synthetic-dataset')
    .argument(
      '<out>',
      'output folder (becomes data_root: images/{training,validation}, annotations/..., metainfo.json)',
    )
    .option('--n <count>', 'total number of images (training + validation)', parsePositiveInt, 200)
    .option('--size <HxW>', 'image size, height x width', parseSize, [256, 320])
    .option('--classes <count>', 'number of classes (label values 1..count; 0 = other)', parsePositiveInt, 8)
    .option('--seed <seed>', 'random seed (same seed -> identical files)', parseNonNegativeInt, 0)
    .option('--split-val <count>', 'how many of the images go to validation (default: n/5)', parseNonNegativeInt)
    .addOption(
      new Option(
        '--scene <kind>',
        'ade: label 0 = other, ignored with reduce_zero_label; full: every pixel a class, labels 0..count-1',
      )
        .choices(['ade', 'full'])
        .default('ade'),
    )
    .action(async (out: string, o: MakeOptions) => {
      const [{ makeSyntheticDataset }, { progressBar }] = await Promise.all([
        import('../data/synthetic.js'),
        import('./progress.js'),
      ]);
      const [height, width] = o.size;
      const bar = progressBar(o.n, 'make-synthetic-dataset');
      const s = await makeSyntheticDataset(out, {
        n: o.n,
        height,
        width,
        classes: o.classes,
        seed: o.seed,
        splitVal: o.splitVal,
        scene: o.scene,
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
    });
}
