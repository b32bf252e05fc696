/**
 * Inference without compiling (issue 24, tests): the packed tarball installed offline into an
 * empty project with BEITSEG_NATIVE=0 (the addon is not built: scripts/build-native.mjs skips it)
 * and ONNXRUNTIME_NODE_INSTALL=skip (onnxruntime-node's CPU binaries are in its npm tarball;
 * its install script would only fetch the CUDA provider from NuGet), then an exported .onnx
 * predicts through `beitseg predict` and through the library entry 'beitseg/onnx', with no
 * .node file of beitseg anywhere in the project.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { fixtureFile, loadFixtureTensors, repoRoot, tinyConfigPath } from '../helpers.js';

const exec = promisify(execFile);
const scene = path.join(repoRoot, 'test', 'fixtures', 'images', 'scene.png');

/** What `npm pack` reads and prepack builds from, copied to `dir`; node_modules is linked. */
function copyPackageSources(dir: string): string {
  const entries = ['package.json', 'package-lock.json', 'README.md', 'LICENSE', 'tsconfig.json', 'tsconfig.build.json'];
  for (const e of [...entries, 'bin', 'configs', 'native/src', 'native/shim', 'scripts', 'src']) {
    fs.cpSync(path.join(repoRoot, e), path.join(dir, e), { recursive: true });
  }
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return dir;
}

function nodeFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name === 'beitseg.node')
    .map((e) => path.join(e.parentPath, e.name));
}

describe('package consumer without the native addon (ONNX)', { timeout: 600_000 }, () => {
  let tmp = '';
  let project = '';
  let model = '';
  let goldenPred: number[] = [];

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-onnx-consumer-'));
    model = path.join(tmp, 'tiny.onnx');
    await exec(process.execPath, [
      path.join(repoRoot, 'bin', 'beitseg.js'),
      'export',
      '--format',
      'onnx',
      '--config',
      tinyConfigPath,
      '--weights',
      fixtureFile('segmentor_mmseg.pth'),
      '--out',
      model,
    ]);
    goldenPred = [...(loadFixtureTensors('tensors.safetensors').get('slide.pred')!.toTypedArray() as Uint8Array)];
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('installs offline with BEITSEG_NATIVE=0 and builds no addon', async () => {
    const source = copyPackageSources(path.join(tmp, 'source'));
    const { stdout } = await exec('npm', ['pack', '--json', '--pack-destination', tmp], {
      cwd: source,
      maxBuffer: 1 << 24,
    });
    const tarball = path.join(
      tmp,
      (JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string }[])[0].filename,
    );
    project = path.join(tmp, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'c', private: true, type: 'module' }));
    await exec('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], {
      cwd: project,
      maxBuffer: 1 << 24,
      env: { ...process.env, BEITSEG_NATIVE: '0', ONNXRUNTIME_NODE_INSTALL: 'skip' },
    });
    assert.deepEqual(nodeFiles(path.join(project, 'node_modules', 'beitseg')), []);
  });

  it('beitseg predict --weights model.onnx writes the label map of mmseg', async () => {
    const bin = path.join(project, 'node_modules', '.bin', 'beitseg');
    await exec(bin, ['predict', '--weights', model, '--out', 'out', scene], { cwd: project });
    const { stdout } = await exec(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "import { readLabel } from 'beitseg/onnx';" +
          "console.log(JSON.stringify([...(await readLabel('out/scene_pred.png')).data]));",
      ],
      { cwd: project, maxBuffer: 1 << 24 },
    );
    assert.deepEqual(JSON.parse(stdout), goldenPred);
  });

  it("a script segments through 'beitseg/onnx' (initModel, inferenceModel)", async () => {
    const script =
      "import { initModel, inferenceModel } from 'beitseg/onnx';" +
      `const m = await initModel(${JSON.stringify(model)});` +
      `const r = await inferenceModel(m, ${JSON.stringify(scene)});` +
      'console.log(JSON.stringify({ h: r.height, w: r.width, classes: m.meta.classes.length, pred: [...r.pred] }));';
    const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', script], {
      cwd: project,
      maxBuffer: 1 << 24,
      env: { ...process.env, BEITSEG_ADDON: path.join(tmp, 'no-such-addon.node') },
    });
    const r = JSON.parse(stdout) as { h: number; w: number; classes: number; pred: number[] };
    assert.deepEqual([r.h, r.w, r.classes], [80, 112, 5]);
    assert.deepEqual(r.pred, goldenPred);
  });
});
