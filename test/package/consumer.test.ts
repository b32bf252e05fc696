/**
 * The package as a user gets it (issue 14.4): `npm pack` (prepack builds), the tarball's file
 * list checked against the sources, then an install into an empty project from the tarball,
 * preferring npm's cache (--prefer-offline: `npm ci` on a fresh machine caches the dependencies'
 * tarballs but not the registry metadata an install from a tarball resolves ranges with, so a
 * strictly --offline install failed there with ENOTCACHED), and the installed package run three ways: `beitseg --help`,
 * `beitseg predict` with the tiny fixture model, and an ESM script importing 'beitseg' (plus a
 * type check of that import with typescript alone, no @types/node). The installed tree's engines
 * fit ours. A second install with BEITSEG_NATIVE=0 builds no addon and still runs --help and the
 * import (issue 24.3). The consumer's install compiles the addon like any user's would, but
 * reuses this checkout's objects (BEITSEG_NATIVE_OBJECTS) so only the link runs.
 * The pack runs in a copy of the package's sources (node_modules linked), so its prepack build
 * never rewrites the dist/ the rest of the suite runs from.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exec } from '../child.js';
import { fixtureFile, loadFixtureTensors, repoRoot, tinyConfigPath } from '../helpers.js';
import { engineMisfits, installedPackages } from './engines_check.js';

const scene = path.join(repoRoot, 'test', 'fixtures', 'images', 'scene.png');

function sourceFiles(dir: string, ext: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(ext))
    .map((e) => path.relative(repoRoot, path.join(e.parentPath ?? e.path, e.name)));
}

/** What `npm pack` reads and prepack builds from, copied to `dir`; node_modules is linked, not copied. */
function copyPackageSources(dir: string): string {
  const entries = [
    'package.json',
    'package-lock.json',
    'README.md',
    'LICENSE',
    'tsconfig.json',
    'tsconfig.build.json',
    'bin',
    'configs',
    'native/src',
    'native/shim',
    'scripts',
    'src',
  ];
  for (const e of entries) fs.cpSync(path.join(repoRoot, e), path.join(dir, e), { recursive: true });
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return dir;
}

describe('package consumer', { timeout: 600_000 }, () => {
  let tmp = '';
  let tarball = '';
  let packed: string[] = [];
  let project = '';
  let goldenPred: number[] = [];

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-consumer-'));
    const source = copyPackageSources(path.join(tmp, 'source'));
    const { stdout } = await exec('npm', ['pack', '--json', '--pack-destination', tmp], {
      cwd: source,
      maxBuffer: 1 << 24,
    });
    const info = JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    tarball = path.join(tmp, info[0].filename);
    packed = info[0].files.map((f) => f.path).sort();
    goldenPred = [...(loadFixtureTensors('tensors.safetensors').get('slide.pred')!.toTypedArray() as Uint8Array)];
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('the tarball holds exactly what users need', () => {
    const expected = [
      'LICENSE',
      'README.md',
      'package.json',
      'bin/beitseg.js',
      'scripts/build-native.mjs',
      ...sourceFiles(path.join(repoRoot, 'configs'), '.json'),
      ...fs.readdirSync(path.join(repoRoot, 'native', 'src')).map((f) => `native/src/${f}`),
      ...sourceFiles(path.join(repoRoot, 'native', 'shim'), '.h'),
      ...fs.readdirSync(path.join(repoRoot, 'src', 'serve', 'public')).map((f) => `src/serve/public/${f}`),
      // src/web is the browser page's source: bundled by scripts/build-web.mjs, not compiled into dist/
      ...sourceFiles(path.join(repoRoot, 'src'), '.ts')
        .filter((f) => !f.startsWith('src/web/'))
        .flatMap((f) => {
          const stem = `dist/${f.slice(0, -3)}`;
          return [`${stem}.js`, `${stem}.d.ts`];
        }),
    ].sort();
    const missing = expected.filter((f) => !packed.includes(f));
    const extra = packed.filter((f) => !expected.includes(f));
    assert.deepEqual({ missing, extra }, { missing: [], extra: [] });
  });

  it('installs from the tarball into an empty project', async () => {
    project = path.join(tmp, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(
      path.join(project, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
    await exec('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], {
      cwd: project,
      maxBuffer: 1 << 24,
      env: { ...process.env, BEITSEG_NATIVE_OBJECTS: path.join(repoRoot, 'native', 'build') },
    });
    assert.ok(
      fs.existsSync(path.join(project, 'node_modules', 'beitseg', 'native', 'build', 'beitseg.node')),
      'addon built',
    );
    // what a user's install resolves (overrides of ours would not apply there): no EBADENGINE
    const ours = (
      JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } }
    ).engines.node;
    assert.deepEqual(engineMisfits(installedPackages(project), ours), []);
  });

  it('beitseg --help and beitseg predict run from the installed package', async () => {
    const bin = path.join(project, 'node_modules', '.bin', 'beitseg');
    const help = await exec(bin, ['--help'], { cwd: project });
    assert.match(help.stdout, /predict/);
    await exec(
      bin,
      [
        'predict',
        '--config',
        tinyConfigPath,
        '--weights',
        fixtureFile('segmentor_mmseg.pth'),
        '--device',
        'cpu',
        '--out',
        'out',
        scene,
      ],
      { cwd: project },
    );
    const pred = await exec(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "import { readLabel } from 'beitseg'; const l = await readLabel('out/scene_pred.png'); " +
          'console.log(JSON.stringify([...l.data]));',
      ],
      { cwd: project, maxBuffer: 1 << 24 },
    );
    assert.deepEqual(JSON.parse(pred.stdout), goldenPred);
  });

  it("an ESM script imports initModel/inferenceModel from 'beitseg' (types included, no @types/node)", async () => {
    const script = `import { initModel, inferenceModel, type InferenceResult } from 'beitseg';
const model = await initModel(${JSON.stringify(tinyConfigPath)},
  ${JSON.stringify(fixtureFile('segmentor_mmseg.pth'))}, { device: 'cpu' });
const result: InferenceResult = await inferenceModel(model, ${JSON.stringify(scene)});
result.logits.dispose();
console.log(JSON.stringify({ height: result.height, width: result.width, pred: [...result.pred] }));
`;
    fs.writeFileSync(path.join(project, 'check.mts'), script);
    const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    await exec(
      process.execPath,
      [
        tsc,
        '--strict',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        // typescript alone (the project has no @types/node), the package's own .d.ts checked too
        'check.mts',
      ],
      { cwd: project },
    );
    const { stdout } = await exec(process.execPath, ['check.mjs'], { cwd: project, maxBuffer: 1 << 24 });
    const r = JSON.parse(stdout) as { height: number; width: number; pred: number[] };
    assert.deepEqual([r.height, r.width], [80, 112]);
    assert.deepEqual(r.pred, goldenPred);
  });

  it('installs with BEITSEG_NATIVE=0: no addon, one line at install, --help and the import work', async () => {
    const bare = path.join(tmp, 'bare');
    fs.mkdirSync(bare);
    fs.writeFileSync(path.join(bare, 'package.json'), JSON.stringify({ name: 'bare', private: true, type: 'module' }));
    await exec('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', tarball], {
      cwd: bare,
      maxBuffer: 1 << 24,
      env: { ...process.env, BEITSEG_NATIVE: '0' },
    }).then(({ stderr }) => {
      assert.match(stderr, /native addon skipped \(BEITSEG_NATIVE=0\): training, libtorch inference and distributed/);
    });
    assert.ok(!fs.existsSync(path.join(bare, 'node_modules', 'beitseg', 'native', 'build', 'beitseg.node')));
    const bin = path.join(bare, 'node_modules', '.bin', 'beitseg');
    assert.match((await exec(bin, ['--help'], { cwd: bare })).stdout, /predict/);
    const imported = await exec(
      process.execPath,
      ['--input-type=module', '-e', "const m = await import('beitseg'); console.log(typeof m.initModel);"],
      { cwd: bare },
    );
    assert.equal(imported.stdout.trim(), 'function');
    await assert.rejects(
      exec(bin, ['predict', '--config', tinyConfigPath, '--weights', fixtureFile('segmentor_mmseg.pth'), scene], {
        cwd: bare,
      }),
      (e: { code: number; stderr: string }) => {
        assert.equal(e.code, 1);
        assert.match(e.stderr, /^beitseg: error: this needs the native libtorch addon .*npm rebuild beitseg/);
        assert.equal(e.stderr.trimEnd().split('\n').length, 1, e.stderr);
        return true;
      },
    );
  });
});
