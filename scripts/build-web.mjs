#!/usr/bin/env node
// Builds the static "run in this browser" page into a folder any static host can serve:
//   node scripts/build-web.mjs [--out dist/web] [--model model.onnx] [--no-check]
// (--no-check skips the type check of src/web against the DOM typings)
// app.js is src/web/main.ts bundled by esbuild (with the same inference/ and visualization/
// TypeScript as Node), plus index.html, serve's style.css and ONNX Runtime Web's WASM files.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const arg = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const out = path.resolve(arg('--out') ?? path.join(root, 'dist', 'web'));
const model = arg('--model');

const check = args.includes('--no-check')
  ? { status: 0 }
  : spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'src/web'], {
      cwd: root,
      stdio: 'inherit',
    });
if (check.status !== 0) process.exit(1);

fs.mkdirSync(path.join(out, 'ort'), { recursive: true });
await esbuild.build({
  entryPoints: [path.join(root, 'src/web/main.ts')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  outfile: path.join(out, 'app.js'),
  logLevel: 'warning',
});
fs.copyFileSync(path.join(root, 'src/web/index.html'), path.join(out, 'index.html'));
fs.copyFileSync(path.join(root, 'src/serve/public/style.css'), path.join(out, 'style.css'));
// the runtime of onnxruntime-web/webgpu (WebGPU and WASM providers), loaded from ort/ at run time
const ortDist = path.join(root, 'node_modules/onnxruntime-web/dist');
for (const f of ['ort-wasm-simd-threaded.asyncify.mjs', 'ort-wasm-simd-threaded.asyncify.wasm']) {
  fs.copyFileSync(path.join(ortDist, f), path.join(out, 'ort', f));
}
if (model) fs.copyFileSync(model, path.join(out, path.basename(model)));
process.stderr.write(`wrote the page to ${out}${model ? ` with ${path.basename(model)}` : ''}\n`);
