/**
 * Benchmark of `convert` on a BEiT-Large-sized official checkpoint (not a test).
 *
 *   npm run bench:convert          (= node dist/bench/convert_bench.js)
 *
 * 1. Writes a random checkpoint with the keys and shapes of unilm's
 *    beit_large_patch16_224_pt22k_ft22k.pth (24 blocks, 1024 dims, 16 heads, 732x16 tables,
 *    21841-class head; about 1.3 GB) with torch.save, via /usr/bin/python3 (python3-torch).
 * 2. Times, in fresh child node processes (so the parent's memory does not count), reading it
 *    alone and the whole conversion with --img-size 640; each child reports its wall time and
 *    its peak RSS (process.resourceUsage().maxRSS).
 * 3. Prints time and peak RSS / input size (target <= 2.5), writes
 *    bench/results/convert-<date>.json, and deletes the temporary files.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const PYTHON = process.env.BEITSEG_PYTHON ?? '/usr/bin/python3';

const MAKE_CHECKPOINT = `
import sys, collections, torch
torch.manual_seed(0)
C, L, H, classes = 1024, 24, 16, 21841
sd = collections.OrderedDict()
def p(name, *shape):
    sd[name] = torch.randn(*shape) * 0.02
p('cls_token', 1, 1, C)
p('patch_embed.proj.weight', C, 3, 16, 16)
p('patch_embed.proj.bias', C)
# relative_position_index of a 14x14 window, as unilm builds it (values only need the right shape/dtype here)
index = torch.randint(0, 732, (197, 197), dtype=torch.int64)
for i in range(L):
    b = 'blocks.%d.' % i
    p(b + 'gamma_1', C); p(b + 'gamma_2', C)
    p(b + 'norm1.weight', C); p(b + 'norm1.bias', C)
    p(b + 'attn.q_bias', C); p(b + 'attn.v_bias', C)
    p(b + 'attn.qkv.weight', 3 * C, C)
    p(b + 'attn.relative_position_bias_table', 732, H)
    sd[b + 'attn.relative_position_index'] = index.clone()
    p(b + 'attn.proj.weight', C, C); p(b + 'attn.proj.bias', C)
    p(b + 'norm2.weight', C); p(b + 'norm2.bias', C)
    p(b + 'mlp.fc1.weight', 4 * C, C); p(b + 'mlp.fc1.bias', 4 * C)
    p(b + 'mlp.fc2.weight', C, 4 * C); p(b + 'mlp.fc2.bias', C)
p('fc_norm.weight', C); p('fc_norm.bias', C)
p('head.weight', classes, C); p('head.bias', classes)
torch.save({'model': sd}, sys.argv[1])
`;

interface ChildResult {
  ms: number;
  maxRssBytes: number;
  tensors: number;
  parameters: number;
  outputBytes: number;
  resized: number;
}

/**
 * Child mode: run one phase in a fresh process and report its time and the process's peak RSS
 * as one JSON line. 'read' only reads the checkpoint; 'convert' runs the whole command.
 */
async function child(mode: string, src: string, dst: string): Promise<void> {
  const t0 = performance.now();
  let result: ChildResult;
  if (mode === 'read') {
    const { readCheckpoint } = await import('../src/checkpoint/read_checkpoint.js');
    const { stateDictStats } = await import('../src/checkpoint/param_stats.js');
    const read = await readCheckpoint(src);
    const ms = performance.now() - t0;
    const stats = stateDictStats(read.stateDict);
    result = {
      ms,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      tensors: stats.tensors,
      parameters: stats.parameters,
      outputBytes: 0,
      resized: 0,
    };
  } else {
    const { convertFile } = await import('../src/checkpoint/convert/convert_file.js');
    const summary = await convertFile(src, dst, { imgSize: 640, force: true });
    const ms = performance.now() - t0;
    result = {
      ms,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      tensors: summary.stats.tensors,
      parameters: summary.stats.parameters,
      outputBytes: fs.statSync(dst).size,
      resized: summary.resized.length,
    };
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function runChild(mode: string, src: string, dst: string): { r: ChildResult; wallMs: number } {
  const t0 = performance.now();
  const run = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', mode, src, dst], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  const wallMs = performance.now() - t0;
  if (run.status !== 0) throw new Error(`${mode} child failed (exit ${run.status})`);
  return { r: JSON.parse(run.stdout.trim().split('\n').pop()!) as ChildResult, wallMs };
}

/** Peak RSS of a node process that does nothing, to show the fixed part of the footprint. */
function idleNodeRss(): number {
  const run = spawnSync(
    process.execPath,
    ['-e', 'process.stdout.write(String(process.resourceUsage().maxRSS * 1024))'],
    { encoding: 'utf8' },
  );
  return Number(run.stdout);
}

function gib(n: number): string {
  return `${(n / 2 ** 30).toFixed(2)} GiB`;
}

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-convert-bench-'));
  const src = path.join(tmp, 'beit_large_patch16_224_pt22k_ft22k.pth');
  const dst = path.join(tmp, 'beit_large_640.safetensors');
  try {
    console.log(`generating a BEiT-L official checkpoint with ${PYTHON} + torch ...`);
    const t0 = performance.now();
    const gen = spawnSync(PYTHON, ['-c', MAKE_CHECKPOINT, src], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (gen.status !== 0)
      throw new Error(
        `checkpoint generation failed (exit ${gen.status}); needs ${PYTHON} with torch (set BEITSEG_PYTHON)`,
      );
    const genMs = performance.now() - t0;
    const inputBytes = fs.statSync(src).size;
    console.log(`  ${src}: ${gib(inputBytes)} in ${(genMs / 1000).toFixed(1)} s`);

    // The file was just written, so it sits in the page cache (as right after a download).
    const idle = idleNodeRss();
    const read = runChild('read', src, dst);
    const conv = runChild('convert', src, dst);
    const r = conv.r;
    const ratio = r.maxRssBytes / inputBytes;

    console.log(`convert --img-size 640 (fresh child processes, ${os.cpus().length} CPUs, node ${process.version}):`);
    console.log(`  read only            ${(read.r.ms / 1000).toFixed(2)} s, peak RSS ${gib(read.r.maxRssBytes)}`);
    console.log(
      `  full convert         ${(r.ms / 1000).toFixed(2)} s  (read + rename + resize ${r.resized} tables + atomic ` +
        `write)`,
    );
    console.log(`  child wall incl. node startup ${(conv.wallMs / 1000).toFixed(2)} s`);
    console.log(
      `  peak RSS             ${gib(r.maxRssBytes)}  = ${ratio.toFixed(2)} x input (${gib(inputBytes)}); target <= ` +
        `2.5 x (idle node: ${gib(idle)})`,
    );
    console.log(
      `  output               ${gib(r.outputBytes)}, ${r.tensors} tensors, ${r.parameters.toLocaleString('en-US')} ` +
        `parameters`,
    );

    const date = new Date().toISOString().slice(0, 10);
    const outDir = path.join(repoRoot, 'bench', 'results');
    fs.mkdirSync(outDir, { recursive: true });
    const outFile = path.join(outDir, `convert-${date}.json`);
    const record = {
      benchmark: 'convert BEiT-L official checkpoint -> mmseg safetensors, --img-size 640',
      date: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        totalMemBytes: os.totalmem(),
        node: process.version,
        platform: `${os.platform()} ${os.release()}`,
      },
      input: {
        bytes: inputBytes,
        generator: 'torch.save of random tensors with unilm BEiT-L ft22k keys/shapes',
        generateSeconds: genMs / 1000,
      },
      readSeconds: read.r.ms / 1000,
      readPeakRssBytes: read.r.maxRssBytes,
      convertSeconds: r.ms / 1000,
      convertChildWallSeconds: conv.wallMs / 1000,
      peakRssBytes: r.maxRssBytes,
      idleNodeRssBytes: idle,
      peakRssOverInput: ratio,
      targetPeakRssOverInput: 2.5,
      output: { bytes: r.outputBytes, tensors: r.tensors, parameters: r.parameters, resizedTables: r.resized },
    };
    fs.writeFileSync(outFile, `${JSON.stringify(record, null, 2)}\n`);
    console.log(`wrote ${path.relative(repoRoot, outFile)}`);
    if (ratio > 2.5) process.exitCode = 1;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') {
  await child(process.argv[3]!, process.argv[4]!, process.argv[5]!);
} else {
  await main();
}
