/** Shared by the engine tests: a synthetic ADE20K-layout dataset and the tiny config pointed at it. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before } from 'node:test';
import type { TrainOptions } from '../../src/engine/trainer.js';
import { makeSyntheticDataset, type SyntheticOptions } from '../../src/data/synthetic.js';
import { loadConfig, type Dict } from '../../src/config/schema.js';
import { repoRoot } from '../helpers.js';
import { tempDir } from '../temp.js';

export const tinySyntheticConfigPath = path.join(repoRoot, 'configs', 'tiny_synthetic.json');

/** Writes a synthetic dataset into `root` (ADE20K layout, reduce_zero_label labels). */
export async function syntheticData(root: string, o: SyntheticOptions): Promise<string> {
  await makeSyntheticDataset(root, o);
  return root;
}

/** A fresh temporary directory (`prefix`) holding a synthetic dataset in its data/ folder. */
export async function tempWithData(prefix: string, o: SyntheticOptions): Promise<{ dir: string; data: string }> {
  const dir = tempDir(prefix);
  return { dir, data: await syntheticData(path.join(dir, 'data'), o) };
}

/** configs/tiny_synthetic.json with both dataloaders reading `dataRoot`. */
export function tinyConfig(dataRoot: string, edit?: (cfg: Dict) => void): Dict {
  const cfg = loadConfig(tinySyntheticConfigPath);
  for (const key of ['train_dataloader', 'val_dataloader']) ((cfg[key] as Dict).dataset as Dict).data_root = dataRoot;
  cfg.data_root = dataRoot;
  edit?.(cfg);
  return cfg;
}

/** Train in this process only: the loader without worker threads, no SIGINT/SIGTERM handlers. */
export const IN_PROCESS = { numWorkers: 0, handleSignals: false } as const;

/**
 * The engine tests' set-up in one call: registers a before() hook in the calling describe that
 * writes a synthetic dataset (`data`) to `tmp`/data, and returns a builder of train() options on
 * it: the tiny synthetic config, CPU, two threads, no log output, then `settings`, then each
 * call's `extra`.
 */
export function trainOptionsOn(
  tmp: string,
  data: SyntheticOptions,
  settings: Partial<TrainOptions>,
): (workDir: string, extra?: Partial<TrainOptions>) => TrainOptions {
  let root = '';
  before(async () => {
    root = await syntheticData(path.join(tmp, 'data'), data);
  });
  return (workDir, extra = {}) => ({
    config: tinyConfig(root),
    configPath: 'tiny_synthetic.json',
    workDir,
    device: 'cpu',
    threads: 2,
    log: () => undefined,
    ...settings,
    ...extra,
  });
}

/** Asserts that two training checkpoint folders hold byte-identical model, optimizer state and state.json. */
export function sameCheckpointFiles(a: string, b: string): void {
  for (const f of ['model.safetensors', 'state.safetensors', 'state.json']) {
    const x = fs.readFileSync(path.join(a, f)),
      y = fs.readFileSync(path.join(b, f));
    assert.ok(x.equals(y), `${f} differs between ${a} and ${b}`);
  }
}
