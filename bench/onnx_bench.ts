/**
 * `npm run bench:onnx`: BEiT-B UperNet (random weights), one 640×640 window on the CPU:
 * ONNX Runtime fp32 and int8 (exported by beitseg) against beitseg on libtorch and PyTorch
 * (bench/peer/model_peer.py), same run, sides alternated per round, each in a fresh process.
 * Also the export times and file sizes. Writes bench/results/onnx-<date>.json (or --out).
 *   node dist/bench/onnx_bench.js [--threads 2] [--rounds 2] [--repeat 2] [--warmup 1] [--out f.json]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exportSegmentorOnnx } from '../src/export/onnx/segmentor.js';
import { initModel } from '../src/inference/api.js';
import { loadConfig } from '../src/config/schema.js';
import { manualSeed } from '../src/tensor/runtime.js';
import { argValue, configFor, median, runJsonChild } from './bench_util.js';

interface Result {
  ms: number;
  ms_all?: number[];
  peak_rss_mb: number;
  [k: string]: unknown;
}

const root = process.cwd();
const threads = argValue('--threads', '2');
const rounds = Number(argValue('--rounds', '2'));
const repeat = argValue('--repeat', '2');
const warmup = argValue('--warmup', '1');
const env = { ...process.env };
delete env.OPENBLAS_CORETYPE;
env.OMP_WAIT_POLICY ??= 'PASSIVE';
const tmp = path.join(root, 'bench', 'results', 'tmp');
fs.mkdirSync(tmp, { recursive: true });

async function exportBoth() {
  manualSeed(0);
  const cfg = configFor(loadConfig('configs/beit-base_upernet_8xb2-160k_ade20k-640x640.json'), 640);
  const seg = await initModel(cfg, null, { device: 'cpu' });
  const out: Record<string, { file: string; bytes: number; export_s: number }> = {};
  for (const [name, o] of [
    ['fp32', {}],
    ['int8', { quantize: 'int8' as const }],
  ] as const) {
    const t0 = performance.now();
    const { bytes } = exportSegmentorOnnx(seg, o);
    const file = path.join(tmp, `beit-b-640-${name}.onnx`);
    fs.writeFileSync(file, bytes);
    out[name] = { file, bytes: bytes.byteLength, export_s: Number(((performance.now() - t0) / 1000).toFixed(1)) };
    process.stderr.write(
      `[bench] export ${name}: ${(bytes.byteLength / 1e6).toFixed(1)} MB in ${out[name].export_s} s\n`,
    );
  }
  return out;
}

const files = await exportBoth();
const phaseArgs = ['--threads', threads, '--repeat', repeat, '--warmup', warmup];
const sides: Record<string, () => Result> = {
  ort_fp32: () =>
    runJsonChild(process.execPath, ['dist/bench/onnx_phase.js', '--model', files.fp32.file, ...phaseArgs], {
      cwd: root,
      env,
    }),
  ort_int8: () =>
    runJsonChild(process.execPath, ['dist/bench/onnx_phase.js', '--model', files.int8.file, ...phaseArgs], {
      cwd: root,
      env,
    }),
  beitseg_libtorch: () =>
    runJsonChild(
      process.execPath,
      ['dist/bench/model_phase.js', '--phase', 'infer_fp32', '--preset', 'base', '--size', '640', ...phaseArgs],
      {
        cwd: root,
        env,
      },
    ),
  pytorch: () =>
    runJsonChild(
      '/usr/bin/python3',
      ['bench/peer/model_peer.py', '--phase', 'infer_fp32', '--preset', 'base', '--size', '640', ...phaseArgs],
      {
        cwd: root,
        env,
      },
    ),
};
const results: Record<string, Result[]> = Object.fromEntries(Object.keys(sides).map((k) => [k, []]));
for (let r = 0; r < rounds; r++) {
  for (const [name, run] of Object.entries(sides)) {
    const res = run();
    results[name].push(res);
    process.stderr.write(`[bench] round ${r + 1}/${rounds} ${name}: ${res.ms} ms, peak ${res.peak_rss_mb} MB\n`);
  }
}
const summary = Object.fromEntries(
  Object.entries(results).map(([name, rs]) => {
    const all = rs.flatMap((x) => x.ms_all ?? [x.ms]);
    return [
      name,
      {
        ms: median(all),
        ms_best: Math.min(...all),
        ms_all: all,
        peak_rss_mb: Math.max(...rs.map((x) => x.peak_rss_mb)),
      },
    ];
  }),
);
const lt = summary.beitseg_libtorch.ms;
const report = {
  date: new Date().toISOString(),
  cpu: os.cpus()[0]?.model,
  cores: os.cpus().length,
  threads: Number(threads),
  note: 'shared 2-core VM: other work ran at the same time; sides alternated per round',
  files: Object.fromEntries(
    Object.entries(files).map(([k, v]) => [k, { mb: Number((v.bytes / 1e6).toFixed(1)), export_s: v.export_s }]),
  ),
  int8_size_ratio: Number((files.int8.bytes / files.fp32.bytes).toFixed(3)),
  sides: summary,
  ratios_vs_libtorch: Object.fromEntries(Object.entries(summary).map(([k, v]) => [k, Number((v.ms / lt).toFixed(2))])),
  int8_speedup_vs_ort_fp32: Number((summary.ort_fp32.ms / summary.ort_int8.ms).toFixed(2)),
};
const out = argValue('--out', path.join(root, 'bench', 'results', `onnx-${report.date.slice(0, 10)}.json`));
fs.writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
for (const [k, v] of Object.entries(summary)) {
  process.stdout.write(
    `${k.padEnd(18)} ${String(v.ms).padStart(7)} ms (best ${v.ms_best})  ` +
      `x${report.ratios_vs_libtorch[k]} of libtorch  peak ${v.peak_rss_mb} MB\n`,
  );
}
process.stdout.write(`wrote ${out}\n`);
for (const f of Object.values(files)) fs.rmSync(f.file, { force: true });
