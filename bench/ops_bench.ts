/**
 * `npm run bench:ops`: single libtorch ops called from JS through the addon, against the same
 * ops in PyTorch (bench/peer/ops_peer.py on Debian's python3-torch), in the same run, with
 * the same thread count, BLAS library and malloc.
 *
 *   node dist/bench/ops_bench.js [--threads 2] [--repeat 20] [--warmup 3] [--rounds 3]
 *                                [--blas auto|openblas|system] [--alloc auto|jemalloc|thp|glibc]
 *                                [--omp-wait passive|active] [--ops gemm_fp32,conv3x3_bf16,...] [--out file.json]
 *
 * Ops (7.55 GFLOP each, forward only, no autograd):
 *   gemm_fp32 / gemm_bf16              (1600x768) @ (768x3072)
 *   conv3x3_fp32 / conv3x3_bf16        conv2d 256->256, 3x3, padding 1, on 1x256x80x80, no bias
 *   conv3x3_fp32_cl / conv3x3_bf16_cl  the same with input and weight in channels_last
 * bf16 = operands cast to bfloat16 (no autocast).
 *
 * Environment. Both libraries are chosen when a process starts, so each side runs in its own
 * child process with the same settings:
 *   --blas: Debian's libtorch calls whatever libblas.so.3 the loader finds for fp32 GEMM; on
 *     a stock Debian that is the netlib reference BLAS (~70x slower than a tuned one). auto
 *     (default) puts an OpenBLAS libblas.so.3 first on LD_LIBRARY_PATH when one is found
 *     ($PEER_OPENBLAS_DIR, the system openblas-pthread folder, or the copy ops_peer.py
 *     extracts under ~/.cache/beitseg-peer), with OPENBLAS_NUM_THREADS = --threads and the
 *     machine's OPENBLAS_CORETYPE pin removed; system leaves the loader alone.
 *   --alloc: auto/jemalloc preloads libjemalloc.so.2 with freed pages kept
 *     (MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1); thp asks glibc for transparent huge
 *     pages; glibc is the stock allocator.
 *   --omp-wait: OMP_WAIT_POLICY for both sides (default: the caller's, else PASSIVE, which is
 *     what beitseg sets for itself when it is unset).
 * The libraries each process actually mapped are read back from /proc/self/maps and a
 * mismatch between the two sides is reported.
 *
 * Every op runs in a fresh process per side, the two sides back to back (order alternating by
 * round, --rounds rounds, default 3). A run reports the median of --repeat timed calls after
 * --warmup untimed ones; each side's result per op is its best run. Prints a table (GFLOP/s
 * both sides, time ratio beitseg / PyTorch of the medians and of the fastest calls), how busy
 * the machine was while each side ran, and writes bench/results/ops-<YYYY-MM-DD>.json.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { argValue, median, runJsonChild } from './bench_util.js';

interface OpResult {
  ms: number;
  gflops: number;
  min_ms: number;
}
type SideResult = Record<string, OpResult> & { _meta: Record<string, unknown> };

const M = 1600,
  K = 768,
  N = 3072;
const GEMM_FLOP = 2 * M * K * N;
const CIN = 256,
  COUT = 256,
  HW = 80;
const CONV_FLOP = 2 * CIN * COUT * 9 * HW * HW;
const ALL_OPS = ['gemm_fp32', 'gemm_bf16', 'conv3x3_fp32', 'conv3x3_bf16', 'conv3x3_fp32_cl', 'conv3x3_bf16_cl'];

const threads = Number(argValue('--threads', '2'));
const repeat = Number(argValue('--repeat', '20'));
const warmup = Number(argValue('--warmup', '3'));
const rounds = Number(argValue('--rounds', '3'));
const blas = argValue('--blas', 'auto');
const alloc = argValue('--alloc', 'auto');
const ops = argValue('--ops', ALL_OPS.join(',')).split(',').filter(Boolean);
// libgomp's idle-thread policy; beitseg defaults to PASSIVE (src/tensor/native.ts), so both
// sides get the same value unless --omp-wait says otherwise.
const ompWait = argValue('--omp-wait', process.env.OMP_WAIT_POLICY ?? 'PASSIVE').toUpperCase();

/** Libraries mapped into this process whose path contains one of the needles. */
function mappedLibs(needles: string[]): string[] {
  try {
    const maps = fs.readFileSync('/proc/self/maps', 'utf8');
    const libs = new Set<string>();
    for (const line of maps.split('\n')) {
      const p = line.trim().split(/\s+/)[5];
      if (p && needles.some((n) => path.basename(p).includes(n))) libs.add(fs.realpathSync(p));
    }
    return [...libs].sort();
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------- worker (beitseg side)

async function worker(): Promise<void> {
  const T = await import('../src/tensor/index.js');
  const { F } = T;
  T.setNumThreads(threads);
  T.manualSeed(0);
  const a32 = T.randn([M, K]),
    b32 = T.randn([K, N]);
  const x32 = T.randn([1, CIN, HW, HW]);
  const w32 = T.randn([COUT, CIN, 3, 3]).mul(1 / Math.sqrt(CIN * 9));
  const a16 = a32.to('bfloat16'),
    b16 = b32.to('bfloat16');
  const x16 = x32.to('bfloat16'),
    w16 = w32.to('bfloat16');
  const xcl = x32.contiguous('channels_last'),
    wcl = w32.contiguous('channels_last');
  const xcl16 = x16.contiguous('channels_last'),
    wcl16 = w16.contiguous('channels_last');
  const conv = (x: typeof x32, w: typeof w32) => (): typeof x32 => F.conv2d(x, w, null, { padding: 1 });
  const cases: Record<string, [() => typeof x32, number]> = {
    gemm_fp32: [() => a32.matmul(b32), GEMM_FLOP],
    gemm_bf16: [() => a16.matmul(b16), GEMM_FLOP],
    conv3x3_fp32: [conv(x32, w32), CONV_FLOP],
    conv3x3_bf16: [conv(x16, w16), CONV_FLOP],
    conv3x3_fp32_cl: [conv(xcl, wcl), CONV_FLOP],
    conv3x3_bf16_cl: [conv(xcl16, wcl16), CONV_FLOP],
  };
  const out: Record<string, unknown> = {};
  // CPU use of this process and of the machine over the timed calls only (not the warm-up,
  // where oneDNN generates its kernels on one thread)
  let cpuMs = 0,
    wallMs = 0,
    jBusy = 0,
    jTotal = 0;
  T.noGrad(() => {
    for (const name of ops) {
      const c = cases[name];
      if (!c) throw new Error(`unknown op ${name} (${ALL_OPS.join(', ')})`);
      const [fn, flop] = c;
      for (let i = 0; i < warmup; i++) fn().dispose();
      const ts: number[] = [];
      const cpu0 = process.cpuUsage(),
        j0 = cpuJiffies(),
        w0 = performance.now();
      for (let i = 0; i < repeat; i++) {
        const t0 = performance.now();
        fn().dispose(); // the result is freed inside the timed region, as in the Python peer
        ts.push(performance.now() - t0);
      }
      const cpu = process.cpuUsage(cpu0),
        j1 = cpuJiffies();
      cpuMs += (cpu.user + cpu.system) / 1000;
      wallMs += performance.now() - w0;
      jBusy += j1.busy - j0.busy;
      jTotal += j1.total - j0.total;
      const ms = median(ts);
      out[name] = { ms: round(ms, 3), gflops: round(flop / (ms * 1e-3) / 1e9, 1), min_ms: round(Math.min(...ts), 3) };
    }
  });

  const info = T.buildInfo();
  out._meta = {
    threads: T.getNumThreads(),
    torch: info.torchVersion,
    mkldnn: info.mkldnn,
    repeat,
    warmup,
    node: process.version,
    blas_lib: mappedLibs(['libblas', 'openblas']).join(','),
    alloc_lib: mappedLibs(['jemalloc']).join(',') || 'glibc',
    cores_busy_ours: round(cpuMs / wallMs, 2),
    cores_busy_machine: jTotal > 0 ? round((os.cpus().length * jBusy) / jTotal, 2) : null,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

function round(x: number, d: number): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

// ---------------------------------------------------------------- orchestrator

function firstExisting(paths: (string | undefined)[]): string | null {
  for (const p of paths) if (p && fs.existsSync(p)) return p;
  return null;
}

/** The environment both sides run under (see the header). */
function benchEnv(): { env: NodeJS.ProcessEnv; blasDir: string | null; jemalloc: string | null; allocMode: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(threads), OMP_WAIT_POLICY: ompWait };
  const cache = path.join(os.homedir(), '.cache', 'beitseg-peer');
  const arch = 'usr/lib/x86_64-linux-gnu';
  let blasDir: string | null = null;
  if (blas !== 'system') {
    const dir = firstExisting(
      [
        process.env.PEER_OPENBLAS_DIR,
        `/${arch}/openblas-pthread`,
        path.join(cache, 'openblas', arch, 'openblas-pthread'),
      ].map((d) => (d ? path.join(d, 'libblas.so.3') : undefined)),
    );
    if (!dir && blas === 'openblas')
      throw new Error('OpenBLAS not found (set PEER_OPENBLAS_DIR to a folder holding libblas.so.3)');
    if (dir) {
      blasDir = path.dirname(dir);
      env.LD_LIBRARY_PATH = blasDir + (env.LD_LIBRARY_PATH ? `:${env.LD_LIBRARY_PATH}` : '');
      env.OPENBLAS_NUM_THREADS = String(threads);
      if (!env.PEER_KEEP_OPENBLAS_CORETYPE) delete env.OPENBLAS_CORETYPE;
    }
  }
  let jemalloc: string | null = null;
  let mode = alloc;
  if (mode === 'auto' || mode === 'jemalloc') {
    jemalloc = firstExisting([
      process.env.PEER_JEMALLOC,
      `/${arch}/libjemalloc.so.2`,
      path.join(cache, 'jemalloc', arch, 'libjemalloc.so.2'),
    ]);
    if (!jemalloc && mode === 'jemalloc') throw new Error('libjemalloc.so.2 not found (set PEER_JEMALLOC)');
    if (jemalloc) {
      env.LD_PRELOAD = jemalloc + (env.LD_PRELOAD ? `:${env.LD_PRELOAD}` : '');
      env.MALLOC_CONF ??= 'dirty_decay_ms:-1,muzzy_decay_ms:-1';
    } else mode = 'thp';
  }
  if (mode === 'thp')
    env.GLIBC_TUNABLES = `glibc.malloc.hugetlb=1${env.GLIBC_TUNABLES ? `:${env.GLIBC_TUNABLES}` : ''}`;
  // The worker must not inherit a half-applied environment from a parent bench.
  env.BEITSEG_NUM_THREADS = String(threads);
  return { env, blasDir, jemalloc, allocMode: jemalloc ? 'jemalloc' : mode === 'thp' ? 'thp' : 'glibc' };
}

function runJson(cmd: string, args: string[], env: NodeJS.ProcessEnv, root: string): SideResult {
  return runJsonChild<SideResult>(cmd, args, { cwd: root, env });
}

/** Busy and total jiffies of the whole machine (/proc/stat), to spot competing work. */
function cpuJiffies(): { busy: number; total: number } {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] ?? 0);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

async function orchestrate(): Promise<void> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  let root = here;
  while (!fs.existsSync(path.join(root, 'package.json'))) root = path.dirname(root);
  const { env, blasDir, jemalloc, allocMode } = benchEnv();
  const common = ['--threads', String(threads), '--repeat', String(repeat), '--warmup', String(warmup)];
  // the peer applies --blas/--alloc itself (the same lookup); it gets the caller's environment
  const peerEnv = { ...process.env, OMP_WAIT_POLICY: ompWait };
  const cores = os.cpus().length;
  const load0 = os.loadavg()[0];
  const oursRuns: Record<string, SideResult[]> = {},
    peerRuns: Record<string, SideResult[]> = {};
  const busy: { beitseg: number[]; pytorch: number[] } = { beitseg: [], pytorch: [] };
  const timed = (side: 'beitseg' | 'pytorch', fn: () => SideResult): SideResult => {
    const j0 = cpuJiffies();
    const r = fn();
    const j1 = cpuJiffies();
    if (j1.total > j0.total) busy[side].push((cores * (j1.busy - j0.busy)) / (j1.total - j0.total));
    return r;
  };
  // Op by op, the two sides back to back (their order alternates by round), so slow drifts in
  // the machine's load hit both alike.
  for (let r = 0; r < rounds; r++) {
    for (const op of ops) {
      process.stderr.write(`[ops-bench] round ${r + 1}/${rounds} ${op}\n`);
      const runOurs = () =>
        (oursRuns[op] ??= []).push(
          timed('beitseg', () =>
            runJson(process.execPath, [fileURLToPath(import.meta.url), '--worker', ...common, '--ops', op], env, root),
          ),
        );
      const runPeer = () =>
        (peerRuns[op] ??= []).push(
          timed('pytorch', () =>
            runJson(
              '/usr/bin/python3',
              ['bench/peer/ops_peer.py', ...common, '--channels-last', '--blas', blas, '--alloc', alloc, '--ops', op],
              peerEnv,
              root,
            ),
          ),
        );
      if (r % 2 === 0) {
        runOurs();
        runPeer();
      } else {
        runPeer();
        runOurs();
      }
    }
  }
  const best = (rs: SideResult[], op: string): SideResult => [...rs].sort((a, b) => a[op].ms - b[op].ms)[0];
  const rows = ops.map((op) => {
    const ra = best(oursRuns[op], op),
      rb = best(peerRuns[op], op);
    const a = ra[op],
      b = rb[op];
    return {
      op,
      beitseg: a,
      pytorch: b,
      ratio: round(a.ms / b.ms, 3),
      ratio_min: round(a.min_ms / b.min_ms, 3),
      beitseg_meta: ra._meta,
      pytorch_meta: rb._meta,
      beitseg_round_ms: oursRuns[op].map((x) => x[op].ms),
      pytorch_round_ms: peerRuns[op].map((x) => x[op].ms),
    };
  });
  const oursRounds = Object.values(oursRuns).flat(),
    peerRounds = Object.values(peerRuns).flat();
  const oursMeta = oursRounds[0]._meta,
    peerMeta = peerRounds[0]._meta;
  const warnings: string[] = [];
  // (python's torch also maps LAPACK; compare the BLAS libraries only)
  const blasOnly = (libs: unknown): string =>
    String(libs ?? '')
      .split(',')
      .filter((p) => /libblas|openblas/.test(path.basename(p)))
      .sort()
      .join(',');
  if (blasOnly(oursMeta.blas_lib) !== blasOnly(peerMeta.blas_lib)) {
    warnings.push(`BLAS differs: beitseg ${blasOnly(oursMeta.blas_lib)} vs PyTorch ${blasOnly(peerMeta.blas_lib)}`);
  }
  const peerAlloc = String(peerMeta.alloc ?? 'glibc');
  const oursAlloc = String(oursMeta.alloc_lib).includes('jemalloc')
    ? 'jemalloc'
    : allocMode === 'jemalloc'
      ? 'glibc (jemalloc not mapped)'
      : allocMode;
  if (oursAlloc !== peerAlloc) warnings.push(`allocator differs: beitseg ${oursAlloc} vs PyTorch ${peerAlloc}`);
  if (oursMeta.threads !== threads || peerMeta.threads !== threads)
    warnings.push(`thread counts: beitseg ${oursMeta.threads}, PyTorch ${peerMeta.threads}`);

  const cpu = os.cpus()[0]?.model ?? 'cpu';
  console.log(
    `\nops: beitseg (node ${process.version}, libtorch ${oursMeta.torch}) vs PyTorch ${peerMeta.torch}; ${cpu}, ` +
      `${os.cpus().length} cores; ` +
      `threads ${threads}; BLAS ${blasDir ? 'OpenBLAS' : 'system'}; malloc ${oursAlloc}; OMP_WAIT_POLICY ${ompWait}; ` +
      `median of ${repeat} after ${warmup} warm-up, best of ${rounds} rounds`,
  );
  console.log(
    'op                 beitseg ms  GFLOP/s | PyTorch ms  GFLOP/s | ratio (median) ratio (min) | cores busy ' +
      'own/machine: beitseg  PyTorch',
  );
  const busyOf = (m: Record<string, unknown> | undefined): string =>
    m ? `${Number(m.cores_busy_ours ?? NaN).toFixed(2)}/${Number(m.cores_busy_machine ?? NaN).toFixed(2)}` : '-';
  for (const r of rows) {
    console.log(
      `${r.op.padEnd(18)} ${r.beitseg.ms.toFixed(2).padStart(10)} ${r.beitseg.gflops.toFixed(1).padStart(8)} | ` +
        `${r.pytorch.ms.toFixed(2).padStart(10)} ${r.pytorch.gflops.toFixed(1).padStart(8)} | ` +
        `${r.ratio.toFixed(3).padStart(14)} ${r.ratio_min.toFixed(3).padStart(11)} | ` +
        `${busyOf(r.beitseg_meta).padStart(32)} ${busyOf(r.pytorch_meta).padStart(9)}`,
    );
  }
  const worst = Math.max(...rows.map((r) => r.ratio));
  console.log(`worst ratio ${worst.toFixed(3)} (target <= 1.05)${worst <= 1.05 ? '' : '  ** above target **'}`);
  for (const w of warnings) console.log(`WARNING: ${w}`);
  const load1 = os.loadavg()[0];
  const avg = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  const machineBusy = { beitseg: round(avg(busy.beitseg), 2), pytorch: round(avg(busy.pytorch), 2) };
  // Competing work = machine-wide busy cores minus the measuring process's own, during the
  // timed calls (both sides record it).
  const competing = (m: Record<string, unknown>): number =>
    Number(m.cores_busy_machine ?? 0) - Number(m.cores_busy_ours ?? 0);
  const worstCompeting = Math.max(...rows.flatMap((r) => [competing(r.beitseg_meta), competing(r.pytorch_meta)]));
  console.log(
    `competing work during the reported runs: up to ${worstCompeting.toFixed(2)} cores; load average ` +
      `${load0.toFixed(1)} -> ${load1.toFixed(1)}`,
  );
  if (worstCompeting > 0.25)
    console.log(
      'note: other processes competed for the cores: timings are inflated and noisy, rerun on an idle machine',
    );

  const date = new Date().toISOString().slice(0, 10);
  const dir = path.join(root, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.resolve(argValue('--out', path.join(dir, `ops-${date}.json`)));
  const result = {
    date,
    machine: { cpu, cores, loadavg_before: load0, loadavg_after: load1, busy_cores_during: machineBusy },
    settings: { threads, repeat, warmup, rounds, blas, alloc, omp_wait_policy: ompWait, blas_dir: blasDir, jemalloc },
    beitseg_meta: oursMeta,
    pytorch_meta: peerMeta,
    rows,
    warnings,
  };
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${path.relative(root, file)}`);
}

if (process.argv.includes('--worker')) await worker();
else await orchestrate();
