import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { convertFile, targetWindow } from '../../src/checkpoint/convert/convert_file.js';
import { inspectFile } from '../../src/checkpoint/inspect_file.js';
import { readSafetensors } from '../../src/checkpoint/formats/safetensors.js';
import { register as registerConvert } from '../../src/cli/convert.js';
import { register as registerInspect } from '../../src/cli/inspect.js';
import { makeTempDir } from '../temp.js';
import { assertStateDictsEqual, tiny } from './helpers.js';
import { UsageError } from '../../src/cli/options.js';

/** Runs the CLI commands in-process and captures what they print. */
async function runCli(args: string[]): Promise<{ out: string; err: string; exitCode: number }> {
  const program = new Command('beitseg').exitOverride();
  registerConvert(program);
  registerInspect(program);
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  const previousExit = process.exitCode;
  process.exitCode = 0;
  console.log = (...a: unknown[]) => {
    out.push(a.join(' '));
  };
  console.error = (...a: unknown[]) => {
    err.push(a.join(' '));
  };
  try {
    await program.parseAsync(['node', 'beitseg', ...args]);
  } catch (e) {
    // what src/cli/main.ts does with a command's error: one line, exit 2 for usage errors, else 1
    err.push(`beitseg: error: ${(e as Error).message}`);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  } finally {
    console.log = log;
    console.error = error;
  }
  const exitCode = Number(process.exitCode ?? 0);
  process.exitCode = previousExit;
  return { out: out.join('\n'), err: err.join('\n'), exitCode };
}

test('convertFile: official checkpoint -> converter names without the duplicate, bit-exact', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const dst = path.join(dir, 'beit.safetensors');
  const s = await convertFile(tiny('beit_official.pth'), dst);
  assert.equal(s.level, 'backbone');
  assert.equal(s.window, null);
  const written = readSafetensors(dst);
  const expected = readSafetensors(tiny('converted_beit2mmseg.safetensors')).tensors;
  expected.delete('patch_embed.proj.weight');
  expected.delete('patch_embed.proj.bias');
  assertStateDictsEqual(written.tensors, expected);
  assert.equal(written.metadata.layout, 'official');
  assert.equal(written.metadata.format, 'pt');
  assert.equal(s.stats.tensors, expected.size);
});

test('convertFile with --img-size / --window resizes tables and drops index buffers', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const a = await convertFile(tiny('beit_official.pth'), path.join(dir, 'a.safetensors'), { imgSize: 128 });
  assert.deepEqual(a.window, [8, 8]);
  assert.equal(a.resized.length, 4);
  assert.equal(a.droppedIndex.length, 4);
  const w = readSafetensors(path.join(dir, 'a.safetensors'));
  assert.deepEqual(w.tensors.get('layers.3.attn.relative_position_bias_table')!.shape, [228, 4]);
  assert.ok(![...w.tensors.keys()].some((k) => k.includes('relative_position_index')));
  assert.equal(w.metadata.window, '8x8');
  const b = await convertFile(tiny('beit_official.pth'), path.join(dir, 'b.safetensors'), { window: [8, 8] });
  assertStateDictsEqual(readSafetensors(path.join(dir, 'b.safetensors')).tensors, w.tensors, true);
  assert.equal(b.resized.length, 4);
  assert.throws(() => targetWindow({ imgSize: 100 }), /multiple of the patch size 16/);
  assert.throws(() => targetWindow({ imgSize: 64, window: [4, 4] }), /either/);
});

test('convertFile refuses to overwrite without force; segmentor checkpoints pass through', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const dst = path.join(dir, 'seg.safetensors');
  fs.writeFileSync(dst, 'keep me');
  await assert.rejects(convertFile(tiny('segmentor_mmseg.pth'), dst), /already exists \(use --force to overwrite\)/);
  assert.equal(fs.readFileSync(dst, 'utf8'), 'keep me');
  const s = await convertFile(tiny('segmentor_mmseg.pth'), dst, { force: true });
  assert.equal(s.level, 'segmentor');
  assert.equal(s.report.layout, 'mmseg-segmentor');
  const sd = (await import('../../src/checkpoint/formats/pth.js')).readPth;
  const original = ((await sd(tiny('segmentor_mmseg.pth'))) as Map<string, unknown>).get('state_dict') as Map<
    string,
    never
  >;
  assertStateDictsEqual(readSafetensors(dst).tensors, original);
  assert.deepEqual(fs.readdirSync(dir), ['seg.safetensors']);
});

test('inspectFile counts parameters and buffers for .pth and .safetensors alike', async () => {
  const a = await inspectFile(tiny('segmentor_mmseg.pth'));
  const b = await inspectFile(tiny('segmentor_state_dict.safetensors'));
  assert.equal(a.layout, 'mmseg-segmentor');
  assert.equal(a.stats.tensors, 164);
  assert.equal(a.stats.parameters, b.stats.parameters);
  assert.equal(a.stats.bufferElements, b.stats.bufferElements);
  const groups = Object.fromEntries(a.stats.byGroup);
  assert.deepEqual(Object.keys(groups), ['backbone', 'neck', 'decode_head', 'auxiliary_head']);
  assert.equal(
    a.stats.parameters,
    Object.values(groups).reduce((x, y) => x + y, 0),
  );
  const rpi = a.tensors.find((x) => x.key === 'backbone.layers.0.attn.relative_position_index')!;
  assert.equal(rpi.buffer, true);
  assert.deepEqual(rpi.shape, [17, 17]);
});

test('CLI: convert prints a summary, refuses overwrite, and inspect lists keys', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const dst = path.join(dir, 'out.safetensors');
  const r1 = await runCli(['convert', tiny('beit_official.pth'), dst, '--window', '8', '8']);
  assert.equal(r1.exitCode, 0, r1.err);
  assert.match(r1.out, /layout {2}official -> mmseg backbone keys/);
  assert.match(r1.out, /renamed 70 keys:/);
  assert.match(r1.out, /blocks\.\*\.norm1\.weight -> layers\.\*\.ln1\.weight \(x4\)/);
  assert.match(r1.out, /blocks\.\*\.mlp\.fc1\.weight -> layers\.\*\.ffn\.layers\.0\.0\.weight \(x4\)/);
  assert.match(r1.out, /window {2}8x8: resized 4 relative_position_bias_table\(s\) \(52 -> 228 rows x4\), dropped 4/);
  assert.match(r1.out, /tensors, [\d,]+ parameters/);

  const r2 = await runCli(['convert', tiny('beit_official.pth'), dst]);
  assert.equal(r2.exitCode, 1);
  assert.match(r2.err, /already exists \(use --force to overwrite\)/);
  const r3 = await runCli(['convert', tiny('beit_official.pth'), dst, '--force', '--img-size', '64']);
  assert.equal(r3.exitCode, 0, r3.err);
  assert.match(r3.out, /already that size/);

  const r4 = await runCli(['convert', tiny('beit_official.pth'), path.join(dir, 'x.safetensors'), '--window', '8']);
  assert.equal(r4.exitCode, 2);
  assert.match(r4.err, /--window takes two integers/);

  const r5 = await runCli(['inspect', tiny('beit_official.pth')]);
  assert.equal(r5.exitCode, 0, r5.err);
  assert.match(r5.out, /pth-zip, state dict under 'model', 75 tensors/);
  assert.match(r5.out, /blocks\.0\.attn\.relative_position_bias_table +float32 +\[52, 4\] +208/);
  assert.match(r5.out, /layout: official/);
  assert.match(r5.out, /parameters: 76,843/);

  const r6 = await runCli(['inspect', dst, '--summary']);
  assert.match(r6.out, /safetensors, 71 tensors/);
  assert.doesNotMatch(r6.out, /cls_token +float32/);

  const r7 = await runCli(['inspect', path.join(dir, 'missing.pth')]);
  assert.equal(r7.exitCode, 1);
  assert.match(r7.err, /missing\.pth: no such file/);
});
