/**
 * `beitseg serve` throughput and latency: a server child process on 127.0.0.1, autocannon
 * sending a fixed number of POST /v1/segment requests at each concurrency level, the server's
 * peak RSS (VmHWM), and the same images through `beitseg predict` (one process, all images) as
 * the baseline.
 *
 *   npm run bench:serve -- [--config C] [--weights W] [--size 150x100] [--requests 48]
 *                          [--concurrency 1,4,16] [--window-batch 1] [--device cpu] [--amp bf16]
 *                          [--warmup N] [--baseline N] [--out F.json] [--large 700x700] [--cli bin.js]
 *
 * While each level runs, /health is polled every 100 ms (its latency: does the server answer
 * while it computes?). After the levels one --large image goes through mode=whole and the
 * server's RSS is read before it and 3 s after (memory given back at rest). --cli runs another
 * build's bin/beitseg.js (the "before" of a change); --baseline 0 skips the predict baseline.
 *
 * --warmup: requests before the timed levels (default: as many as --requests); --baseline: images
 * through `beitseg predict` (default: --requests, at most 24).
 *
 * Defaults: the tiny fixture model (test/fixtures). `--config configs/beit-base_...json` without
 * --weights serves BEiT-B with random weights (a warning is printed).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import sharp from 'sharp';
import { argValue } from './bench_util.js';
import { readImage } from '../src/data/image_io.js';
import { initModel, inferenceModel } from '../src/inference/api.js';
import { writePrediction } from '../src/inference/outputs.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = argValue('--cli', path.join(root, 'bin', 'beitseg.js'));
const config = argValue('--config', path.join(root, 'test', 'fixtures', 'tiny_public_config.json'));
const weightsArg = argValue(
  '--weights',
  process.argv.includes('--config')
    ? ''
    : path.join(root, 'test', 'fixtures', 'tiny_public', 'segmentor_state_dict.safetensors'),
);
const [width, height] = argValue('--size', '150x100').split('x').map(Number);
const requests = Number(argValue('--requests', '48'));
const levels = argValue('--concurrency', '1,4,16').split(',').map(Number);
const windowBatch = argValue('--window-batch', '1');
const device = argValue('--device', 'cpu');
const amp = argValue('--amp', '');
const warmupRequests = Number(argValue('--warmup', String(requests)));
const baselineImages = Number(argValue('--baseline', String(Math.min(requests, 24))));
const out = argValue('--out', '');
const [largeW, largeH] = argValue('--large', '700x700').split('x').map(Number);

function modelArgs(): string[] {
  return [
    '--config',
    config,
    ...(weightsArg ? ['--weights', weightsArg] : ['--random-weights']),
    '--device',
    device,
    ...(amp ? ['--amp', amp] : []),
  ];
}

async function testImage(seed: number): Promise<Buffer> {
  const px = Buffer.alloc(width * height * 3);
  for (let i = 0; i < px.length; i++) px[i] = (i * 31 + seed * 97 + ((i / (3 * width)) | 0) * 7) % 256;
  return sharp(px, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return kb ? Number(kb[1]) / 1024 : NaN;
}

function peakRssMb(pid: number): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return kb ? Number(kb[1]) / 1024 : NaN;
}

async function startServer(): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    [
      cli,
      'serve',
      ...modelArgs(),
      '--port',
      '0',
      '--queue',
      '64',
      '--window-batch',
      windowBatch,
      '--timeout-s',
      '3600',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${err}`)));
  });
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      child.on('exit', () => resolve());
      child.kill('SIGTERM');
    });
  return { url, pid: child.pid!, stop };
}

interface LevelResult {
  concurrency: number;
  requests: number;
  ok: number;
  failed: number;
  seconds: number;
  imagesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  healthP50Ms: number;
  healthMaxMs: number;
}

/** Polls /health every 100 ms until stopped; the latencies of the answers. */
function healthSampler(url: string): { stop: () => Promise<number[]> } {
  const times: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        await (await fetch(`${url}/health`)).arrayBuffer();
        times.push(performance.now() - t0);
      } catch {
        times.push(Number.POSITIVE_INFINITY);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return times;
    },
  };
}

async function runLevel(url: string, image: Buffer, concurrency: number, amount = requests): Promise<LevelResult> {
  const started = performance.now();
  const sampler = healthSampler(url);
  const r = await autocannon({
    url: `${url}/v1/segment?labels=none`,
    method: 'POST',
    body: image,
    headers: { 'content-type': 'image/jpeg' },
    connections: concurrency,
    amount,
    timeout: 3600,
  });
  const seconds = (performance.now() - started) / 1000;
  const health = (await sampler.stop()).sort((a, b) => a - b);
  return {
    concurrency,
    requests: amount,
    ok: r['2xx'],
    failed: r.non2xx + r.errors + r.timeouts,
    seconds: round(seconds),
    imagesPerSecond: round(r['2xx'] / seconds),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    healthP50Ms: round(health[Math.floor(health.length / 2)] ?? NaN),
    healthMaxMs: round(health[health.length - 1] ?? NaN),
  };
}

/**
 * The baseline: `beitseg predict` over `n` copies of the image in one process (wall time with
 * process start and model load, peak RSS), and predict's per-image work (decode, inferenceModel,
 * writePrediction) timed in this process after the model is loaded.
 */
async function predictBaseline(image: Buffer, n: number): Promise<Record<string, number>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-serve-bench-'));
  try {
    const files = Array.from({ length: n }, (_, i) => path.join(dir, `img${i}.jpg`));
    for (const f of files) fs.writeFileSync(f, image);
    const started = performance.now();
    const r = spawnSync(
      '/usr/bin/time',
      [
        '-f',
        '%M',
        process.execPath,
        cli,
        'predict',
        ...modelArgs(),
        '--window-batch',
        windowBatch,
        '--out',
        path.join(dir, 'out'),
        ...files,
      ],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`predict failed: ${r.stderr}`);
    const wall = (performance.now() - started) / 1000;
    const peakKb = Number(r.stderr.trim().split('\n').pop());

    const model = await initModel(config, weightsArg || null, { device });
    const times: number[] = [];
    for (const f of files) {
      const t0 = performance.now();
      const img = await readImage(f);
      const res = await inferenceModel(model, img, {
        windowBatch: Number(windowBatch),
        amp: amp === 'bf16' ? 'bfloat16' : amp === 'fp16' ? 'float16' : null,
      });
      await writePrediction(path.join(dir, 'inproc', path.basename(f, '.jpg')), img, res, model.meta, { opacity: 0.5 });
      res.logits.dispose();
      times.push(performance.now() - t0);
    }
    const sorted = [...times].sort((a, b) => a - b);
    const total = times.reduce((a, b) => a + b, 0) / 1000;
    return {
      images: n,
      cliWallSeconds: round(wall),
      cliImagesPerSecondWithStartup: round(n / wall),
      cliPeakRssMb: round(peakKb / 1024),
      perImageImagesPerSecond: round(n / total),
      perImageP50Ms: round(sorted[Math.floor(n / 2)]),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** RSS at rest before one large mode=whole request and 3 s after it. */
async function largeRequest(url: string, pid: number): Promise<Record<string, number>> {
  await new Promise((r) => setTimeout(r, 2000));
  const before = rssMb(pid);
  const px = Buffer.alloc(largeW * largeH * 3, 0);
  for (let i = 0; i < px.length; i++) px[i] = (i * 13) % 251;
  const png = await sharp(px, { raw: { width: largeW, height: largeH, channels: 3 } })
    .png()
    .toBuffer();
  const t0 = performance.now();
  const r = await fetch(`${url}/v1/segment?labels=none&mode=whole`, { method: 'POST', body: png });
  const seconds = (performance.now() - t0) / 1000;
  await new Promise((res) => setTimeout(res, 3000));
  return {
    status: r.status,
    seconds: round(seconds),
    idleRssBeforeMb: round(before),
    idleRssAfterMb: round(rssMb(pid)),
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

async function main(): Promise<void> {
  const image = await testImage(1);
  const server = await startServer();
  const levelsOut: LevelResult[] = [];
  let serverPeakRssMb = NaN;
  let large: Record<string, number> = {};
  try {
    if (warmupRequests > 0) await runLevel(server.url, image, 1, warmupRequests); // warm-up
    for (const c of levels) {
      const r = await runLevel(server.url, image, c, Math.max(requests, c)); // every client sends at least one
      levelsOut.push(r);
      process.stderr.write(
        `concurrency ${c}: ${r.imagesPerSecond} images/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ` +
          `${r.failed} failed; /health p50 ${r.healthP50Ms} ms, max ${r.healthMaxMs} ms\n`,
      );
    }
    large = await largeRequest(server.url, server.pid);
    process.stderr.write(`large request: ${JSON.stringify(large)}\n`);
  } finally {
    serverPeakRssMb = round(peakRssMb(server.pid));
    await server.stop();
  }
  const baseline = baselineImages > 0 ? await predictBaseline(image, baselineImages) : null;
  process.stderr.write(`server peak RSS ${serverPeakRssMb} MB; predict baseline ${JSON.stringify(baseline)}\n`);
  const result = {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model,
    cpus: os.cpus().length,
    loadAverage: os.loadavg(),
    config: path.relative(root, path.resolve(config)),
    weights: weightsArg ? path.basename(weightsArg) : 'random',
    image: `${width}x${height} JPEG`,
    device,
    amp: amp || null,
    windowBatch: Number(windowBatch),
    levels: levelsOut,
    serverPeakRssMb,
    largeRequest: large,
    cli: path.relative(root, cli) || cli,
    predictBaseline: baseline,
  };
  const text = `${JSON.stringify(result, null, 2)}\n`;
  if (out) fs.writeFileSync(out, text);
  process.stdout.write(text);
}

await main();
