/** Shared by the evaluation tests: a synthetic validation split and the tiny fixture model to evaluate on it. */
import path from 'node:path';
import { buildDataset, type SegDataset } from '../../src/data/datasets.js';
import { makeSyntheticDataset, type SyntheticOptions } from '../../src/data/synthetic.js';
import { initModel, type SegModel } from '../../src/inference/api.js';
import { fixtureFile, tinyConfigPath } from '../helpers.js';
import { tempDir } from '../temp.js';

export interface EvalFixture {
  /** The temporary folder (the dataset is in its data/); the caller removes it. */
  root: string;
  model: SegModel;
  /** The validation split of the synthetic dataset. */
  dataset: SegDataset;
}

/** A fresh temp folder (`prefix`) with a synthetic dataset, the tiny model on CPU, and its validation split. */
export async function evalFixture(prefix: string, data: SyntheticOptions): Promise<EvalFixture> {
  const root = tempDir(prefix);
  await makeSyntheticDataset(path.join(root, 'data'), data);
  const model = await initModel(tinyConfigPath, fixtureFile('segmentor_state_dict.safetensors'), { device: 'cpu' });
  const dataset = await buildDataset({
    type: 'ADE20KDataset',
    data_root: path.join(root, 'data'),
    data_prefix: { img_path: 'images/validation', seg_map_path: 'annotations/validation' },
  });
  return { root, model, dataset };
}
