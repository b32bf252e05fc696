/**
 * The published typings compile in a fresh TypeScript project with nothing but `typescript`
 * (issue 30.8): no @types/node, no "types": ["node"], no skipLibCheck. The package's .d.ts
 * files are copied into an empty project outside this checkout, so nothing here (our
 * node_modules/@types) can fill a gap; a consumer file using the main API is type-checked.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, test } from 'node:test';
import { repoRoot } from '../helpers.js';

const exec = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-types-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const consumer = `import { initModel, inferenceModel, readLabel, setMaxPixels, tensor, checkpoint } from 'beitseg';
import type { InferenceResult } from 'beitseg';
setMaxPixels(1 << 24);
const model = await initModel('config.json', 'weights.pth', { device: 'cpu' });
const result: InferenceResult = await inferenceModel(model, 'image.png', { mode: 'slide' });
const label = await readLabel('label.png');
const n: number = result.height * result.width + label.data.length;
const t = tensor.zeros([1, 2]);
const keys: string[] = [...checkpoint.readSafetensors('w.safetensors').tensors.keys()];
console.log(n, t.shape, keys);
`;

test('the published .d.ts compile in a fresh project with typescript alone', async () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as Record<string, unknown>;
  const installed = path.join(tmp, 'node_modules', 'beitseg');
  const dist = path.join(repoRoot, 'dist', 'src');
  for (const e of fs.readdirSync(dist, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || !e.name.endsWith('.d.ts')) continue;
    const from = path.join(e.parentPath, e.name);
    const to = path.join(installed, 'dist', 'src', path.relative(dist, from));
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.copyFileSync(from, to);
  }
  fs.writeFileSync(path.join(installed, 'package.json'), JSON.stringify({ ...pkg, scripts: {} }));
  fs.writeFileSync(path.join(tmp, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  fs.writeFileSync(
    path.join(tmp, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        noEmit: true,
      },
      files: ['check.mts'],
    }),
  );
  fs.writeFileSync(path.join(tmp, 'check.mts'), consumer);
  const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = await exec(process.execPath, [tsc, '-p', tmp], { cwd: tmp }).then(
    () => '',
    (e: { stdout: string }) => e.stdout,
  );
  assert.equal(r, '');
});
