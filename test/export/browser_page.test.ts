/**
 * The static page in a real browser (issue 24.4): the page is built into a temp folder with
 * scripts/build-web.mjs, served as plain files from 127.0.0.1, and Debian's headless Chromium
 * (puppeteer-core, WASM backend) loads the exported tiny fixture model and segments a fixture
 * image. Its label map must equal the one `beitseg predict` writes from the .pth.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import puppeteer, { type Browser } from 'puppeteer-core';
import { readLabel } from '../../src/data/image_io.js';
import { fixtureFile, repoRoot, tinyConfigPath } from '../helpers.js';
import { serveStatic } from './static_server.js';

const CHROMIUM = process.env.BEITSEG_CHROMIUM ?? '/usr/bin/chromium';
const scene = path.join(repoRoot, 'test', 'fixtures', 'images', 'scene.png');
const cli = path.join(repoRoot, 'bin', 'beitseg.js');
function run(args: string[]): void {
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 180_000, cwd: repoRoot });
  assert.equal(r.status, 0, r.stderr);
}

describe('the static ONNX page in headless Chromium', () => {
  let dir = '';
  let site: { url: string; close: () => Promise<void> };
  let browser: Browser;

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} missing: apt-get install -y chromium`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-web-'));
    const web = path.join(dir, 'web');
    const model = path.join(dir, 'model.onnx');
    run([
      cli,
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
    run([path.join(repoRoot, 'scripts', 'build-web.mjs'), '--out', web, '--model', model, '--no-check']);
    fs.copyFileSync(scene, path.join(web, 'scene.png'));
    site = await serveStatic(web);
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir: path.join(dir, 'profile'),
      timeout: 60_000,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await site?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("segments the fixture image into predict's label map, with overlay and legend", async () => {
    const page = await browser.newPage();
    await page.setViewport({ width: 1000, height: 600 });
    await page.goto(`${site.url}/index.html?model=model.onnx&image=scene.png&ep=wasm`);
    await page.waitForFunction('window.beitsegResult || window.beitsegError', { timeout: 120_000 });
    const error = await page.evaluate('window.beitsegError');
    assert.equal(error, undefined, String(error));
    const r = (await page.evaluate('window.beitsegResult')) as { pred: number[]; height: number; width: number };
    const out = path.join(dir, 'predict');
    run([
      cli,
      'predict',
      scene,
      '--config',
      tinyConfigPath,
      '--weights',
      fixtureFile('segmentor_mmseg.pth'),
      '--out',
      out,
    ]);
    const expected = await readLabel(path.join(out, 'scene_pred.png'));
    assert.deepEqual([r.height, r.width], [expected.height, expected.width]);
    assert.deepEqual(r.pred, [...expected.data]);
    const legend = (await page.evaluate(
      "[...document.querySelectorAll('#legend .name')].map((e) => e.textContent)",
    )) as string[];
    assert.ok(legend.length >= 2, `legend: ${legend}`);
    const size = await page.evaluate(
      "[document.getElementById('overlay').width, document.getElementById('overlay').height]",
    );
    assert.deepEqual(size, [112, 80]);
    await page.screenshot({ path: path.join(dir, 'page.png') });
  });
});
