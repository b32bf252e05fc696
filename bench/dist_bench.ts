/**
 * Communication overhead of data-parallel training on CPU: iteration time of 1 process x 1
 * thread vs 2 ranks x 1 thread each (Gloo on 127.0.0.1) through the CLI (`train --threads 1
 * [--nproc-per-node 2]`), with SyncBN (the config's) and with plain BN (no synchronised
 * statistics): weak scaling (same per-rank batch b) and the fixed global batch (2 ranks x b vs
 * 1 process x 2b), the bytes all-reduced per step, and how many "Grad strides do not match"
 * warnings the ranks printed. Times are the mean `time` of the second logging window (the first
 * includes warm-up); the six runs are repeated `--rounds` times in turn and each figure is the
 * median over rounds (a shared machine's load comes and goes).
 *
 *   node dist/bench/dist_bench.js [--iters 20] [--batch 1] [--rounds 3] [--out bench/results/dist-DATE.json]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeSyntheticDataset } from '../src/data/synthetic.js';
import { loadConfig, type Dict } from '../src/config/schema.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const iters = Number(arg('iters', '20')),
  batch = Number(arg('batch', '1')),
  rounds = Number(arg('rounds', '3'));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
const out = arg('out', path.join(root, 'bench', 'results', `dist-${new Date().toISOString().slice(0, 10)}.json`));

interface RunResult {
  secPerIter: number;
  header: string;
  strideWarnings: number;
}

function run(work: string, cfgFile: string, extra: string[]): RunResult {
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
    strideWarnings: r.stderr.split('Grad strides do not match').length - 1,
  };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-dist-bench-'));
  const data = path.join(dir, 'data');
  await makeSyntheticDataset(data, { n: 40, height: 96, width: 128, classes: 6, seed: 0 });
  const result: Record<string, unknown> = {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model,
    cores: os.availableParallelism(),
    model: 'tiny_synthetic (BEiT 4x64 + UperNet)',
    perRankBatch: batch,
    iterations: iters,
    note: 'shared machine: other jobs ran at the same time; 1 thread per process',
  };
  const cfgFiles = new Map<string, (b: number) => string>();
  for (const norm of ['SyncBN', 'BN']) {
    const cfg = loadConfig(path.join(root, 'configs', 'tiny_synthetic.json')) as Dict;
    for (const k of ['train_dataloader', 'val_dataloader']) ((cfg[k] as Dict).dataset as Dict).data_root = data;
    cfg.train_cfg = { type: 'IterBasedTrainLoop', max_iters: iters, val_interval: 100000 };
    ((cfg.default_hooks as Dict).logger as Dict).interval = iters / 2;
    const setNorm = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(setNorm);
      else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v as Dict)) {
          // BN-family layers only (the backbone's LN stays)
          if (k === 'norm_cfg' && x && typeof x === 'object' && /BN$/.test(String((x as Dict).type)))
            (x as Dict).type = norm;
          else setNorm(x);
        }
      }
    };
    setNorm(cfg);
    cfgFiles.set(norm, (b: number) => {
      const file = path.join(dir, `cfg-${norm}-${b}.json`);
      const train = { ...(cfg.train_dataloader as Dict), batch_size: b };
      fs.writeFileSync(file, JSON.stringify({ ...cfg, train_dataloader: train }));
      return file;
    });
  }
  const times = new Map<string, number[]>();
  const note = (key: string, r: RunResult) => times.set(key, [...(times.get(key) ?? []), r.secPerIter]);
  const headers = new Map<string, RunResult>();
  for (let round = 0; round < rounds; round++) {
    for (const norm of ['SyncBN', 'BN']) {
      const cfgWith = cfgFiles.get(norm)!;
      const w = (name: string) => path.join(dir, `${name}-${norm}-${round}`);
      note(`${norm}/single`, run(w('single'), cfgWith(batch), []));
      note(`${norm}/singleGlobal`, run(w('single2'), cfgWith(2 * batch), []));
      const d = run(w('dist'), cfgWith(batch), ['--nproc-per-node', '2']);
      note(`${norm}/dist`, d);
      headers.set(norm, d);
    }
  }
  for (const norm of ['SyncBN', 'BN']) {
    const single = median(times.get(`${norm}/single`)!),
      single2 = median(times.get(`${norm}/singleGlobal`)!),
      dist = median(times.get(`${norm}/dist`)!);
    const d = headers.get(norm)!;
    result[norm] = {
      single: { processes: 1, batch, secPerIter: single, rounds: times.get(`${norm}/single`) },
      singleGlobal: { processes: 1, batch: 2 * batch, secPerIter: single2, rounds: times.get(`${norm}/singleGlobal`) },
      distributed: {
        processes: 2,
        batchEach: batch,
        secPerIter: dist,
        rounds: times.get(`${norm}/dist`),
        allReducedMBPerStep: Number((/([\d.]+) MB of gradients all-reduced per step/.exec(d.header) ?? [])[1]),
        header: d.header,
        gradStrideWarnings: d.strideWarnings,
      },
      weakScalingEfficiency: single / dist,
      // > 1: 2 ranks x b are slower per sample than 1 process x 2b on the same 2 cores
      globalBatchSlowdown: dist / single2,
    };
  }
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  console.error((e as Error).message);
  process.exit(1);
});
