/**
 * `beitseg train` through commander (src/cli/train.ts register()): option parsing, bf16 AMP and
 * gradient accumulation on CPU, --resume, --load-from, and the fp16 / CUDA-graph refusals on CPU.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import { register } from '../../src/cli/train.js';
import { loadCheckpoint } from '../../src/engine/training_checkpoint.js';
import { tempDir } from '../temp.js';
import { syntheticData, tinyConfig } from './fixtures.js';

const tmp = tempDir('beitseg-cli-train-');
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function cli(...args: string[]): Promise<string[]> {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined });
  register(program);
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => {
    lines.push(a.map(String).join(' '));
  };
  try {
    await program.parseAsync(['node', 'beitseg', 'train', ...args]);
  } finally {
    console.log = log;
  }
  return lines;
}

describe('beitseg train (CLI)', () => {
  let configFile: string;
  const work = path.join(tmp, 'work');

  before(async () => {
    const data = await syntheticData(path.join(tmp, 'data'), {
      n: 8,
      height: 64,
      width: 64,
      classes: 6,
      seed: 2,
      splitVal: 2,
    });
    configFile = path.join(tmp, 'tiny.json');
    fs.writeFileSync(
      configFile,
      JSON.stringify(
        tinyConfig(data, (cfg) => {
          (cfg.default_hooks as Record<string, Record<string, unknown>>).logger!.interval = 1;
        }),
      ),
    );
  });

  it('trains with --amp bf16 --accum 2, then --resume continues', async () => {
    // biome-ignore format: option, value pairs
    const bf16Accum2 = [
      '--config', configFile, '--work-dir', work, '--device', 'cpu', '--amp', 'bf16', '--accum', '2',
      '--batch-size', '2', '--seed', '1', '--threads', '2', '--workers', '0',
    ];
    const out = await cli(...bf16Accum2, '--max-iters', '2');
    assert.ok(
      out.some((l) => l.includes('amp bf16') && l.includes('x 2 accumulated')),
      out.join('\n'),
    );
    assert.ok(out.some((l) => l.startsWith('Iter(val) [2]')));
    const log = fs
      .readFileSync(path.join(work, 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>);
    assert.deepEqual(
      log.filter((e) => 'loss' in e).map((e) => e.iter),
      [1, 2],
    );
    for (const e of log.filter((x) => 'loss' in x)) assert.ok(Number.isFinite(e.loss) && e.loss > 0);
    assert.equal(log.filter((e) => 'mIoU' in e).length, 1);
    const ck = loadCheckpoint(path.join(work, 'iter_2'));
    assert.equal(ck.weightsMetadata.config, 'tiny');
    assert.equal((ck.state.optimizer as { steps: Record<string, number> }).steps['decode_head.conv_seg.weight'], 1);
    for (const t of [...ck.weights.values(), ...ck.stateTensors.values()]) t.dispose();

    const more = await cli(...bf16Accum2, '--max-iters', '4', '--resume');
    assert.ok(
      more.some((l) => l.startsWith(`resumed from ${path.join(work, 'iter_2')} at iteration 2`)),
      more.join('\n'),
    );
    assert.ok(fs.existsSync(path.join(work, 'iter_4')));
  });

  it('--load-from initialises from a segmentor checkpoint', async () => {
    const out = await cli(
      '--config',
      configFile,
      '--work-dir',
      path.join(tmp, 'work2'),
      '--device',
      'cpu',
      '--max-iters',
      '1',
      '--batch-size',
      '1',
      '--threads',
      '2',
      '--workers',
      '0',
      '--load-from',
      path.join(work, 'iter_4', 'model.safetensors'),
    );
    assert.ok(
      out.some((l) => l.startsWith(`loaded ${path.join(work, 'iter_4', 'model.safetensors')}`)),
      out.join('\n'),
    );
  });

  it('refuses --amp fp16 and --cuda-graphs on CPU and bad option values', async () => {
    await assert.rejects(
      cli('--config', configFile, '--work-dir', path.join(tmp, 'w3'), '--device', 'cpu', '--amp', 'fp16'),
      /needs a CUDA device/,
    );
    await assert.rejects(
      cli('--config', configFile, '--work-dir', path.join(tmp, 'w4'), '--device', 'cpu', '--cuda-graphs'),
      /--cuda-graphs needs a CUDA device \(got cpu\)/,
    );
    await assert.rejects(
      cli('--config', configFile, '--amp', 'fp8'),
      /argument 'fp8' is invalid\. Allowed choices are bf16, fp16, fp32/,
    );
    await assert.rejects(cli('--config', configFile, '--accum', '0'), /positive integer/);
  });
});
