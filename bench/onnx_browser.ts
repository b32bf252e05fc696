/**
 * In-browser time per window: the static page (scripts/build-web.mjs) with an exported model in
 * Debian's headless Chromium (WASM backend, one thread: a plain static host is not cross-origin
 * isolated), each image segmented `--repeat` times after one warm-up. Optionally saves a
 * screenshot of the page.
 *   node dist/bench/onnx_browser.js --model m.onnx --image a.jpg [--repeat 3] [--screenshot f.png]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { serveStatic } from '../test/export/static_server.js';
import { argValue, median } from './bench_util.js';

const model = argValue('--model', '');
const image = argValue('--image', '');
const repeat = Number(argValue('--repeat', '3'));
const shot = argValue('--screenshot', '');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-web-bench-'));
const web = path.join(dir, 'web');
const build = spawnSync(process.execPath, ['scripts/build-web.mjs', '--out', web, '--model', model, '--no-check'], {
  stdio: 'inherit',
});
if (build.status !== 0) process.exit(1);
fs.copyFileSync(image, path.join(web, path.basename(image)));
const site = await serveStatic(web);
const browser = await puppeteer.launch({
  executablePath: process.env.BEITSEG_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  userDataDir: path.join(dir, 'profile'),
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const page = await browser.newPage();
await page.setViewport({ width: 1100, height: 640 });
const url = `${site.url}/index.html?model=${path.basename(model)}&image=${path.basename(image)}&ep=wasm`;
const times: number[] = [];
let windows = 1;
for (let i = 0; i <= repeat; i++) {
  await page.goto(url);
  await page.waitForFunction('window.beitsegResult || window.beitsegError', { timeout: 600_000 });
  const err = await page.evaluate('window.beitsegError');
  if (err) throw new Error(String(err));
  const r = (await page.evaluate('window.beitsegResult')) as { ms: number; windows: number };
  windows = r.windows;
  if (i > 0) times.push(r.ms);
}
if (shot) await page.screenshot({ path: shot });
await browser.close();
await site.close();
fs.rmSync(dir, { recursive: true, force: true });
const ms = median(times);
const line = {
  model: path.basename(model),
  image: path.basename(image),
  windows,
  ms_per_image: Math.round(ms),
  ms_per_window: Math.round(ms / windows),
  ms_all: times.map(Math.round),
  backend: 'wasm, 1 thread',
};
process.stdout.write(`${JSON.stringify(line)}\n`);
