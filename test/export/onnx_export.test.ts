/**
 * ONNX export of the tiny fixture model (issue 24.1, 24.2): ONNX Runtime's logits against
 * libtorch's on the fixture image (slide windows from a window graph, whole and TTA from a
 * dynamic graph), label maps, the metadata read back, the onnx checker of Debian's
 * python3-onnx where installed, int8 / fp16 exports, and damaged files as one-line errors.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { onnx } from '../../src/export/onnx/graph.js';
import { exportSegmentorOnnx } from '../../src/export/onnx/segmentor.js';
import { initModel, inferenceModel, type InferenceOptions, type SegModel } from '../../src/inference/api.js';
import { loadOnnxModel } from '../../src/inference/backends/onnxruntime.js';
import { readModelMeta } from '../../src/inference/backends/onnx_model.js';
import { segmentHost, type HostInferenceOptions } from '../../src/inference/host_segment.js';
import { readImage } from '../../src/data/image_io.js';
import type { RgbImage } from '../../src/data/types.js';
import { fixtureFile, loadFixtureTensors, repoRoot, tinyConfigPath } from '../helpers.js';

const scene = path.join(repoRoot, 'test', 'fixtures', 'images', 'scene.png');
const cli = path.join(repoRoot, 'bin', 'beitseg.js');

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function agreement(a: Int32Array, b: Int32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

describe('ONNX export of the tiny fixture model', () => {
  let dir = '';
  let seg: SegModel;
  let img: RgbImage;
  const files: Record<string, string> = {};

  /** libtorch's logits [1, C, H, W] and labels for one call. */
  async function libtorch(o: InferenceOptions) {
    const r = await initModel(tinyConfigPath, fixtureFile('segmentor_mmseg.pth'), { device: 'cpu' }).then((m) =>
      inferenceModel(m, img, o),
    );
    const logits = r.logits.toFloat32Array();
    r.logits.dispose();
    return { logits, pred: r.pred };
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-onnx-'));
    seg = await initModel(tinyConfigPath, fixtureFile('segmentor_mmseg.pth'), { device: 'cpu' });
    img = await readImage(scene);
    const variants = {
      window: {},
      winograd: { winograd: true },
      dynamic: { shape: 'dynamic' },
      int8: { quantize: 'int8' },
      fp16: { fp16: true },
    } as const;
    for (const [name, o] of Object.entries(variants)) {
      files[name] = path.join(dir, `${name}.onnx`);
      fs.writeFileSync(files[name], exportSegmentorOnnx(seg, o).bytes);
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function compare(file: string, o: HostInferenceOptions & InferenceOptions) {
    const onnx = await segmentHost(await loadOnnxModel(file), img, o);
    const ref = await libtorch(o);
    return { d: maxDiff(onnx.logits, ref.logits), agree: agreement(onnx.pred, ref.pred), onnx, ref };
  }

  it('slide windows (window graph): logits within 1e-4 of libtorch, labels equal and equal to mmseg', async () => {
    // the option winograd runs the head's 3x3 convolutions as Winograd F(2,3) in the graph
    for (const file of [files.window, files.winograd]) {
      const { d, agree, onnx } = await compare(file, { mode: 'slide' });
      assert.ok(d <= 1e-4, `${file}: max |logit diff| ${d}`);
      assert.ok(agree >= 0.9999, `${file}: label agreement ${agree}`);
      const golden = loadFixtureTensors('tensors.safetensors').get('slide.pred')!.toTypedArray() as Uint8Array;
      assert.deepEqual([...onnx.pred], [...golden]);
    }
  });

  it('whole image and slide with batched windows (dynamic graph): logits within 1e-4', async () => {
    for (const o of [{ mode: 'whole' as const }, { mode: 'slide' as const, windowBatch: 3 }]) {
      const { d, agree } = await compare(files.dynamic, o);
      assert.ok(d <= 1e-4, `${o.mode}: max |logit diff| ${d}`);
      assert.ok(agree >= 0.9999, `${o.mode}: label agreement ${agree}`);
    }
  });

  it('multi-scale + flip TTA (dynamic graph): probabilities within 1e-4', async () => {
    const { d, agree, onnx } = await compare(files.dynamic, { mode: 'whole', tta: { scales: [0.75, 1, 1.5] } });
    assert.equal(onnx.kind, 'probs');
    assert.ok(d <= 1e-4, `max |prob diff| ${d}`);
    assert.ok(agree >= 0.9999, `label agreement ${agree}`);
  });

  it('a window graph refuses other sizes in one line', async () => {
    const m = await loadOnnxModel(files.window);
    await assert.rejects(segmentHost(m, img, { mode: 'whole' }), /runs 64x64 windows only, but the image .* is 80x112/);
  });

  it('carries the metadata: classes, palette, mean/std, test_cfg', () => {
    const meta = readModelMeta(fs.readFileSync(files.window), files.window);
    assert.deepEqual(meta.classes, seg.meta.classes);
    assert.deepEqual(meta.palette, seg.meta.palette);
    assert.deepEqual(meta.mean, [123.675, 116.28, 103.53]);
    assert.deepEqual(meta.std, [58.395, 57.12, 57.375]);
    assert.deepEqual(meta.testCfg, { mode: 'slide', crop_size: [64, 64], stride: [43, 43] });
    assert.deepEqual(meta.window, [64, 64]);
    assert.equal(meta.scale, null);
    assert.equal(readModelMeta(fs.readFileSync(files.dynamic), files.dynamic).window, null);
    assert.equal(readModelMeta(fs.readFileSync(files.int8), files.int8).precision, 'int8');
  });

  it('int8: weights in a third of the bytes or less, 8-bit convolutions; fp16: logits within 2e-2', async () => {
    const size = (f: string) => fs.statSync(f).size;
    const weightBytes = (f: string) =>
      onnx.ModelProto.decode(fs.readFileSync(f)).graph!.initializer!.reduce((n, t) => n + (t.rawData?.length ?? 0), 0);
    const [w8, w32] = [weightBytes(files.int8), weightBytes(files.window)];
    assert.ok(w8 <= w32 / 3, `int8 weights ${w8} bytes vs fp32 ${w32}`);
    // the graph's own bytes (a node chain per convolution tap) weigh more in this 0.9 MB model than in
    // BEiT-B, whose int8 file is 0.256 of the fp32 one (bench/results/onnx-int8-2026-12-07-zen4.txt)
    assert.ok(size(files.int8) <= 0.4 * size(files.window), `int8 ${size(files.int8)} vs fp32 ${size(files.window)}`);
    const ops = new Set(onnx.ModelProto.decode(fs.readFileSync(files.int8)).graph!.node!.map((n) => n.opType));
    assert.ok(ops.has('MatMulInteger') && !ops.has('Conv'), `int8 graph ops: ${[...ops].join(', ')}`);
    const fp32 = await segmentHost(await loadOnnxModel(files.window), img);
    const int8 = await segmentHost(await loadOnnxModel(files.int8), img);
    const fp16 = await segmentHost(await loadOnnxModel(files.fp16), img);
    const spread = Math.max(...fp32.logits) - Math.min(...fp32.logits);
    // an untrained-scale fixture: int8 error is bounded relative to the logits' range
    assert.ok(maxDiff(int8.logits, fp32.logits) <= 0.1 * spread, `int8 diff ${maxDiff(int8.logits, fp32.logits)}`);
    assert.ok(maxDiff(fp16.logits, fp32.logits) <= 2e-2, `fp16 diff ${maxDiff(fp16.logits, fp32.logits)}`);
  });

  it("passes the onnx checker of Debian's python3-onnx (full check)", (t) => {
    const python = '/usr/bin/python3';
    const probe = spawnSync(python, ['-c', 'import onnx'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      t.skip('python3-onnx is not installed (apt-get install python3-onnx): checker not run');
      return;
    }
    const script =
      'import onnx, sys\n' +
      'for f in sys.argv[1:]:\n' +
      '    onnx.checker.check_model(onnx.load(f), full_check=True)\n' +
      "print('ok', onnx.__version__)\n";
    const r = spawnSync(python, ['-c', script, ...Object.values(files)], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ok /);
  });

  it('a truncated, corrupt, empty or foreign file is a one-line error naming it', async () => {
    const bytes = fs.readFileSync(files.window);
    const cases: [string, Uint8Array, RegExp][] = [
      ['truncated.onnx', bytes.subarray(0, Math.floor(bytes.length / 2)), /not a readable ONNX model \(truncated/],
      ['empty.onnx', new Uint8Array(0), /empty file/],
      ['junk.onnx', new Uint8Array(4096).map((_, i) => (i * 7919) % 251), /not (a readable|an) ONNX model/],
    ];
    for (const [name, data, re] of cases) {
      const f = path.join(dir, name);
      fs.writeFileSync(f, data);
      await assert.rejects(loadOnnxModel(f), (e: Error) => {
        assert.match(e.message, re);
        assert.ok(e.message.startsWith(f), e.message);
        assert.ok(!e.message.includes('\n'), e.message);
        return true;
      });
    }
    const out = path.join(dir, 'out');
    const r = spawnSync(
      process.execPath,
      [cli, 'predict', scene, '--weights', path.join(dir, 'truncated.onnx'), '--out', out],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr.trim(), /^beitseg: error: .*truncated\.onnx: not a readable ONNX model \(truncated[^\n]*$/);
    assert.ok(!fs.existsSync(path.join(out, 'scene_pred.png')));
  });

  it('predict --weights model.onnx writes the label map predict writes from the .pth', () => {
    const run = (out: string, args: string[]) => {
      const r = spawnSync(process.execPath, [cli, 'predict', scene, '--out', out, ...args], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(r.status, 0, r.stderr);
      return fs.readFileSync(path.join(out, 'scene_pred.png'));
    };
    const fromOnnx = run(path.join(dir, 'p_onnx'), ['--weights', files.window]);
    const fromPth = run(path.join(dir, 'p_pth'), [
      '--config',
      tinyConfigPath,
      '--weights',
      fixtureFile('segmentor_mmseg.pth'),
    ]);
    assert.ok(fromOnnx.equals(fromPth));
  });

  it('beitseg export writes the file atomically and refuses bad options in one line', () => {
    const out = path.join(dir, 'cli.onnx');
    const exp = (args: string[]) =>
      spawnSync(process.execPath, [cli, 'export', '--config', tinyConfigPath, '--out', out, ...args], {
        encoding: 'utf8',
        timeout: 120_000,
      });
    const ok = exp(['--format', 'onnx', '--weights', fixtureFile('segmentor_mmseg.pth')]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stderr, /wrote .*cli\.onnx: .* MB, opset 17, fp32, window 64x64, 5 classes/);
    assert.deepEqual(
      fs.readdirSync(dir).filter((f) => f.includes('cli.onnx')),
      ['cli.onnx'],
    );
    // usage errors (a value outside an option's choices) exit 2, the exporter's own refusals 1 (docs/cli.md)
    for (const [args, status, re] of [
      [['--format', 'tflite'], 2, /argument 'tflite' is invalid\. Allowed choices are onnx/],
      [['--format', 'onnx', '--random-weights', '--opset', '13'], 1, /--opset must be 17\.\.21/],
      [['--format', 'onnx', '--quantize', 'int4'], 2, /argument 'int4' is invalid\. Allowed choices are int8/],
    ] as const) {
      const r = exp([...args]);
      assert.equal(r.status, status, r.stderr);
      assert.match(r.stderr.trim(), re);
      assert.equal(
        r.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('beitseg: error')).length,
        1,
      );
    }
  });
});
