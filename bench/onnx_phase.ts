/**
 * One ONNX Runtime timing in its own process (peak RSS its own): ms per window of an exported
 * model on onnxruntime-node's CPU provider, through the backend predict uses
 * (src/inference/backends/onnxruntime.ts), input N(0,1) noise of the model's window size.
 *   node dist/bench/onnx_phase.js --model m.onnx [--threads 2] [--warmup 1] [--repeat 2]
 * Prints one JSON line.
 */
import { loadOnnxModel } from '../src/inference/backends/onnxruntime.js';
import { argValue, median } from './bench_util.js';

async function main(): Promise<void> {
  const file = argValue('--model', '');
  const threads = Number(argValue('--threads', '2'));
  const warmup = Number(argValue('--warmup', '1'));
  const repeat = Number(argValue('--repeat', '2'));
  const t0 = performance.now();
  const m = await loadOnnxModel(file, { threads });
  const loadMs = performance.now() - t0;
  const [h, w] = m.meta.window ?? [640, 640];
  let seed = 1;
  const noise = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648 - 0.5;
  };
  const x = Float32Array.from({ length: 3 * h * w }, () => 4 * noise());
  for (let i = 0; i < warmup; i++) await m.runner.run(x, 1, h, w);
  const ts: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < repeat; i++) {
    const s = performance.now();
    await m.runner.run(x, 1, h, w);
    ts.push(performance.now() - s);
  }
  const cpu = process.cpuUsage(cpu0);
  const line = {
    phase: `ort_${m.meta.precision}`,
    size: h,
    threads,
    ms: Math.round(median(ts)),
    ms_all: ts.map(Math.round),
    load_ms: Math.round(loadMs),
    cpu_ms_per_iter: Math.round((cpu.user + cpu.system) / 1000 / repeat),
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

await main();
