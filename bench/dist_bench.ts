/**
 * Communication overhead of data-parallel training on CPU (weak scaling): iteration time of
 * 1 process x 1 thread vs 2 ranks x 1 thread each (Gloo on 127.0.0.1), same per-rank batch,
 * through the CLI (`train --threads 1 [--nproc-per-node 2]`), and the bytes all-reduced per
 * step. Times are the mean `time` of the second logging window (the first includes warm-up).
 *
 *   node dist/bench/dist_bench.js [--iters 20] [--batch 2] [--out bench/results/dist-DATE.json]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeSyntheticDataset } from '../src/data/synthetic.js';
import { loadConfig, type Dict } from '../src/models/config.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const iters = Number(arg('iters', '20')),
  batch = Number(arg('batch', '2'));
const out = arg('out', path.join(root, 'bench', 'results', `dist-${new Date().toISOString().slice(0, 10)}.json`));

function run(work: string, cfgFile: string, extra: string[]): { secPerIter: number; header: string } {
  const r = spawnSync(
    process.execPath,
    [
      path.join(root, 'bin', 'beitseg.js'),
      'train',
      '--config',
      cfgFile,
      '--work-dir',
      work,
      '--device',
      'cpu',
      '--workers',
      '0',
      '--threads',
      '1',
      ...extra,
    ],
    { encoding: 'utf8', env: { ...process.env, BEITSEG_NUM_THREADS: '1' } },
  );
  if (r.status !== 0) throw new Error(`train ${extra.join(' ')} failed: ${r.stderr}`);
  const lines = fs
    .readFileSync(path.join(work, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);
  const train = lines.filter((l) => l.loss !== undefined);
  return {
    secPerIter: train[train.length - 1]!.time!,
    header: r.stdout.split('\n').find((l) => l.startsWith('distributed:')) ?? '',
  };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-dist-bench-'));
  const data = path.join(dir, 'data');
  await makeSyntheticDataset(data, { n: 40, height: 96, width: 128, classes: 6, seed: 0 });
  const cfg = loadConfig(path.join(root, 'configs', 'tiny_synthetic.json')) as Dict;
  for (const k of ['train_dataloader', 'val_dataloader']) ((cfg[k] as Dict).dataset as Dict).data_root = data;
  (cfg.train_dataloader as Dict).batch_size = batch;
  cfg.train_cfg = { type: 'IterBasedTrainLoop', max_iters: iters, val_interval: 100000 };
  ((cfg.default_hooks as Dict).logger as Dict).interval = iters / 2;
  const cfgFile = path.join(dir, 'cfg.json');
  fs.writeFileSync(cfgFile, JSON.stringify(cfg));
  const single = run(path.join(dir, 'single'), cfgFile, []);
  const dist = run(path.join(dir, 'dist'), cfgFile, ['--nproc-per-node', '2']);
  const mb = Number((/([\d.]+) MB of gradients all-reduced per step/.exec(dist.header) ?? [])[1]);
  const result = {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model,
    cores: os.availableParallelism(),
    model: 'tiny_synthetic (BEiT 4x64 + UperNet)',
    perRankBatch: batch,
    iterations: iters,
    note: 'shared machine: other jobs ran at the same time',
    single: { processes: 1, threads: 1, secPerIter: single.secPerIter },
    distributed: {
      processes: 2,
      threadsEach: 1,
      secPerIter: dist.secPerIter,
      allReducedMBPerStep: mb,
      header: dist.header,
    },
    weakScalingEfficiency: single.secPerIter / dist.secPerIter,
  };
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  console.error((e as Error).message);
  process.exit(1);
});
