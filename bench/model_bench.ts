/**
 * `npm run bench`: BEiT-UperNet (random weights) in beitseg and in PyTorch side by side, in
 * the same run, same machine, same thread count. Every phase runs in a fresh process (peak
 * RSS per phase). PyTorch is bench/peer/model_peer.py on Debian's python3-torch (it picks
 * OpenBLAS and jemalloc for itself: the strongest stock configuration we found).
 *
 *   node dist/bench/model_bench.js [--preset base] [--threads 2] [--phases a,b] [--scaling] [--whole] [--repeat 2]
 *        [--warmup 1] [--rounds 1] [--size 640] [--isa native|avx2] [--out file.json]
 *
 * Phases: infer_fp32, infer_bf16, infer_int8 (beitseg `--quantize int8` vs PyTorch's
 * quantize_dynamic of every Linear, per-channel qint8), infer_int8_bf16 (the same with the rest
 * in bf16: `--quantize int8 --amp bf16` vs the quantized model under bf16 autocast), slide_fp32,
 * train_fp32 (default: all but the int8 ones). --whole adds whole-image inference of a 1280×1280 image
 * (N = 6401 tokens: the blocked attention on beitseg's side, mmseg's math on PyTorch's) in fp32 and bf16.
 * Each side reports its CPU model, ATen's CPU capability (the kernels' ISA), OpenBLAS's kernel set
 * and quantized engine.
 *
 * beitseg names OpenBLAS's kernel set on AVX-512 CPUs (src/tensor/native.ts); stock PyTorch
 * takes OpenBLAS's own pick, which on CPU models OpenBLAS does not know is its SSE3 fallback.
 * Where the two differ, each phase also runs a third side, PyTorch with OPENBLAS_CORETYPE set to
 * beitseg's kernel set ("PyTorch, same BLAS kernels"), so the gain of the choice and the rest are
 * told apart. --peer stock|matched|both (default both) chooses the PyTorch sides.
 *
 * Prints a table with ratios (beitseg / PyTorch; < 1 means beitseg is faster or smaller) of
 * the medians and of the best runs, and writes bench/results/model-<date>.json (or --out).
 * --rounds N alternates beitseg and PyTorch N times per phase (fresh processes each): on a
 * shared VM the speed drifts by 10-30% over minutes, and alternating spreads that drift over
 * both sides.
 * --isa avx2 runs every side with the kernels an AVX2-only CPU (no AVX-512, VNNI, BF16) runs:
 * ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2 and OpenBLAS's Haswell kernels (docs/performance.md).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { argValue, median, runJsonChild } from './bench_util.js';

interface PhaseResult {
  phase: string;
  size: number;
  threads: number;
  ms: number;
  peak_rss_mb: number;
  [k: string]: unknown;
}

const root = process.cwd();
const preset = argValue('--preset', 'base');
const threads = Number(argValue('--threads', '2'));
const repeat = argValue('--repeat', '2');
const warmup = argValue('--warmup', '1');
const phases = argValue('--phases', 'infer_fp32,infer_bf16,slide_fp32,train_fp32').split(',');
// OPENBLAS_CORETYPE pins an older kernel on this machine; both sides run without it.
const env = { ...process.env };
delete env.OPENBLAS_CORETYPE;
delete env.OPENBLAS_L2_SIZE;
const isa = argValue('--isa', 'native');
if (isa === 'avx2') {
  Object.assign(env, {
    ATEN_CPU_CAPABILITY: 'avx2',
    ONEDNN_MAX_CPU_ISA: 'AVX2',
    DNNL_MAX_CPU_ISA: 'AVX2',
    OPENBLAS_CORETYPE: 'Haswell',
    PEER_KEEP_OPENBLAS_CORETYPE: '1',
  });
} else if (isa !== 'native') throw new Error(`--isa must be native or avx2, got '${isa}'`);
process.stderr.write(
  `[bench] kernels: ${isa === 'avx2' ? 'forced AVX2 (ATEN, oneDNN capped, OpenBLAS Haswell)' : 'this CPU'}\n`,
);
// beitseg waits passively by default; PyTorch gets the same policy (it is faster with it here too).
env.OMP_WAIT_POLICY ??= 'PASSIVE';

function runJson(cmd: string, args: string[], runEnv: NodeJS.ProcessEnv = env): PhaseResult {
  return runJsonChild<PhaseResult>(cmd, args, { cwd: root, env: runEnv });
}

/** The arguments both sides' phase scripts take. */
function phaseArgs(phase: string, size: number, t: number): string[] {
  const args = { phase, preset, size: String(size), threads: String(t), repeat, warmup };
  return Object.entries(args).flatMap(([name, value]) => [`--${name}`, value]);
}

function ours(phase: string, size: number, t: number): PhaseResult {
  return runJson(process.execPath, ['dist/bench/model_phase.js', ...phaseArgs(phase, size, t)]);
}

function peer(phase: string, size: number, t: number, blasCore?: string): PhaseResult {
  const peerEnv = blasCore ? { ...env, OPENBLAS_CORETYPE: blasCore, PEER_KEEP_OPENBLAS_CORETYPE: '1' } : env;
  return runJson('/usr/bin/python3', ['bench/peer/model_peer.py', ...phaseArgs(phase, size, t)], peerEnv);
}

// --size: the window side for the phases (640: the ADE20K configs' crop; smaller on a busy machine)
const size = Number(argValue('--size', '640'));
const runs: { phase: string; size: number; threads: number }[] = phases.map((phase) => ({ phase, size, threads }));
if (process.argv.includes('--scaling')) {
  for (const size of [512, 896]) runs.push({ phase: 'infer_fp32', size, threads });
  runs.push({ phase: 'infer_fp32', size: 640, threads: 1 });
}
if (process.argv.includes('--whole')) {
  for (const phase of ['infer_fp32', 'infer_bf16']) runs.push({ phase, size: 1280, threads });
}

const rounds = Number(argValue('--rounds', '1'));
const peerSides = argValue('--peer', 'both');
if (!['stock', 'matched', 'both'].includes(peerSides)) throw new Error(`--peer must be stock, matched or both`);

/** Rounds of one side merged: every timed run, the median and best of them, the largest peak. */
function merge(results: PhaseResult[]): PhaseResult & { ms_best: number; ms_all: number[] } {
  const all = results.flatMap((r) => (r.ms_all as number[] | undefined) ?? [r.ms]);
  return {
    ...results[0]!,
    ms: median(all),
    ms_best: Math.min(...all),
    ms_all: all,
    peak_rss_mb: Math.max(...results.map((r) => r.peak_rss_mb)),
  };
}

type Side = ReturnType<typeof merge>;
const rows: {
  phase: string;
  size: number;
  threads: number;
  beitseg: Side;
  pytorch: Side;
  time_ratio: number;
  best_ratio: number;
  rss_ratio: number;
  /** PyTorch with OPENBLAS_CORETYPE = beitseg's kernel set, where that differs from its own pick. */
  pytorch_same_blas?: Side;
  same_blas_time_ratio?: number;
  same_blas_best_ratio?: number;
}[] = [];
for (const r of runs) {
  const mine: PhaseResult[] = [],
    theirs: PhaseResult[] = [],
    matched: PhaseResult[] = [];
  for (let k = 0; k < rounds; k++) {
    process.stderr.write(
      `[bench] ${r.phase} ${r.size}x${r.size} threads ${r.threads} (round ${k + 1}/${rounds}): beitseg...\n`,
    );
    const m = ours(r.phase, r.size, r.threads);
    mine.push(m);
    process.stderr.write(`[bench]   beitseg ${m.ms} ms, peak ${m.peak_rss_mb} MB (BLAS ${m.blas_core})\n`);
    if (peerSides !== 'matched') {
      const p = peer(r.phase, r.size, r.threads);
      theirs.push(p);
      process.stderr.write(`[bench]   PyTorch ${p.ms} ms, peak ${p.peak_rss_mb} MB (BLAS ${p.blas_core})\n`);
    }
    const core = m.blas_core as string | null;
    if (peerSides !== 'stock' && core && (peerSides === 'matched' || theirs[k]?.blas_core !== core)) {
      const p = peer(r.phase, r.size, r.threads, core);
      matched.push(p);
      process.stderr.write(`[bench]   PyTorch, BLAS ${p.blas_core}: ${p.ms} ms, peak ${p.peak_rss_mb} MB\n`);
    }
  }
  const a = merge(mine);
  const b = merge(theirs.length ? theirs : matched);
  const c = matched.length ? merge(matched) : undefined;
  rows.push({
    ...r,
    beitseg: a,
    pytorch: b,
    time_ratio: a.ms / b.ms,
    best_ratio: a.ms_best / b.ms_best,
    rss_ratio: a.peak_rss_mb / b.peak_rss_mb,
    ...(c && theirs.length
      ? { pytorch_same_blas: c, same_blas_time_ratio: a.ms / c.ms, same_blas_best_ratio: a.ms_best / c.ms_best }
      : {}),
  });
}

const fmt = (n: number, d = 0) => n.toFixed(d).padStart(9);
console.log(`\nBEiT-${preset} UperNet, ${os.cpus()[0]?.model ?? 'cpu'}, ${os.cpus().length} cores`);
const kernels = (side: Side) =>
  `ATen CPU capability ${side.cpu_capability as string}, OpenBLAS ${side.blas_core as string}, ` +
  `quantized engine ${side.quantized_engine as string}`;
if (rows[0]) console.log(`beitseg: ${kernels(rows[0].beitseg)}; PyTorch: ${kernels(rows[0].pytorch)}`);
console.log(
  'phase        size threads  beitseg ms  PyTorch ms  ratio | best: beitseg   PyTorch  ratio | beitseg MB PyTorch MB ' +
    ' ratio',
);
for (const r of rows) {
  console.log(
    `${r.phase.padEnd(12)} ${String(r.size).padStart(4)} ${String(r.threads).padStart(7)} ${fmt(r.beitseg.ms)}   ` +
      `${fmt(r.pytorch.ms)}  ${r.time_ratio.toFixed(2)} | ` +
      `   ${fmt(r.beitseg.ms_best)} ${fmt(r.pytorch.ms_best)}  ${r.best_ratio.toFixed(2)} | ` +
      `${fmt(r.beitseg.peak_rss_mb)}  ${fmt(r.pytorch.peak_rss_mb)}  ${r.rss_ratio.toFixed(2)}`,
  );
}
const sameBlas = rows.filter((r) => r.pytorch_same_blas);
if (sameBlas.length) {
  console.log(`against PyTorch with beitseg's OpenBLAS kernels (OPENBLAS_CORETYPE=${sameBlas[0]!.beitseg.blas_core}):`);
  for (const r of sameBlas) {
    console.log(
      `${r.phase.padEnd(12)} ${String(r.size).padStart(4)} ${String(r.threads).padStart(7)} ${fmt(r.beitseg.ms)}   ` +
        `${fmt(r.pytorch_same_blas!.ms)}  ${r.same_blas_time_ratio!.toFixed(2)} | ` +
        `   ${fmt(r.beitseg.ms_best)} ${fmt(r.pytorch_same_blas!.ms_best)}  ${r.same_blas_best_ratio!.toFixed(2)}`,
    );
  }
}
const bf16 = rows.find((r) => r.phase === 'infer_bf16' && r.size === size);
const fp32Torch = rows.find((r) => r.phase === 'infer_fp32' && r.size === size && r.threads === threads);
if (bf16 && fp32Torch) {
  console.log(
    `bf16 beitseg vs PyTorch fp32: ${(fp32Torch.pytorch.ms / bf16.beitseg.ms).toFixed(2)}x faster; ` +
      `argmax agreement bf16 vs fp32 (random weights): ` +
      `${((bf16.beitseg.argmax_agreement_vs_fp32 as number) * 100).toFixed(2)}%`,
  );
}
for (const r of rows.filter((x) => x.phase.startsWith('infer_int8'))) {
  const fp32 = rows.find((x) => x.phase === 'infer_fp32' && x.size === r.size && x.threads === r.threads);
  console.log(
    `${r.phase} ${r.size}: beitseg argmax agreement with fp32 ` +
      `${((r.beitseg.argmax_agreement_vs_fp32 as number) * 100).toFixed(2)}%, ` +
      `PyTorch ${((r.pytorch.argmax_agreement_vs_fp32 as number) * 100).toFixed(2)}% (random weights)` +
      (fp32 ? `; beitseg int8 vs PyTorch fp32: ${(fp32.pytorch.ms / r.beitseg.ms).toFixed(2)}x faster` : ''),
  );
}
const date = new Date().toISOString().slice(0, 10);
fs.mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
const file = path.resolve(root, argValue('--out', path.join('bench', 'results', `model-${date}.json`)));
fs.writeFileSync(
  `${file}.tmp`,
  `${JSON.stringify(
    {
      date,
      machine: {
        cpu: os.cpus()[0]?.model,
        cores: os.cpus().length,
        cpu_capability: { beitseg: rows[0]?.beitseg.cpu_capability, pytorch: rows[0]?.pytorch.cpu_capability },
        blas_core: { beitseg: rows[0]?.beitseg.blas_core, pytorch: rows[0]?.pytorch.blas_core },
        isa,
      },
      omp_wait_policy: env.OMP_WAIT_POLICY,
      preset,
      rounds,
      rows,
    },
    null,
    2,
  )}\n`,
);
fs.renameSync(`${file}.tmp`, file);
console.log(`wrote ${path.relative(root, file)}`);
