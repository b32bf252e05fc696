/**
 * The web page in a real browser: Debian's headless Chromium (no browser download) driven by
 * puppeteer-core loads /, uploads a fixture image, and the legend and the overlay appear; the
 * overlay's pixels are checked against the image, the label map and the palette, then the
 * opacity slider and a class highlight. A screenshot is saved in the test's temp folder.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { decodePngLabel } from '../../src/data/png.js';
import { repoRoot } from '../helpers.js';
import { encodeTestImage, post, startServer, testPixels, type Running } from './serve_helpers.js';

const CHROMIUM = process.env.BEITSEG_CHROMIUM ?? '/usr/bin/chromium';
const WIDTH = 150;
const HEIGHT = 100;

interface Seg {
  classes: { id: number; name: string; share: number; color: [number, number, number] }[];
  label: { data: string };
}

describe('beitseg serve web page (headless Chromium)', () => {
  let srv: Running;
  let browser: Browser;
  let page: Page;
  let dir: string;
  let imagePath: string;
  let expected: Seg;
  let ids: Uint8Array;

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} missing: apt-get install -y chromium (scripts/setup.sh does)`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-serve-page-'));
    imagePath = path.join(dir, 'scene.png');
    const png = await encodeTestImage(WIDTH, HEIGHT);
    fs.writeFileSync(imagePath, png);
    srv = await startServer();
    expected = (await (await post(`${srv.url}/v1/segment`, png)).json()) as Seg;
    ids = decodePngLabel(Buffer.from(expected.label.data, 'base64')).data;
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir: path.join(dir, 'profile'),
      timeout: 60_000,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage();
    await page.setViewport({ width: 1100, height: 720 });
  });
  after(async () => {
    await browser?.close();
    await srv?.close();
  });

  /** The overlay canvas's RGBA pixels. */
  async function canvasPixels(): Promise<{ width: number; height: number; data: number[] }> {
    return inPage(`(() => {
      const canvas = document.getElementById('overlay');
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      return { width: canvas.width, height: canvas.height, data: Array.from(data) };
    })()`);
  }

  /** Runs a JavaScript expression in the page (a string: the tests compile without the DOM typings). */
  function inPage<T>(expression: string): Promise<T> {
    return page.evaluate(expression) as Promise<T>;
  }

  async function setOpacity(percent: number): Promise<void> {
    await inPage(`(() => {
      const slider = document.getElementById('opacity');
      slider.value = '${percent}';
      slider.dispatchEvent(new Event('input'));
    })()`);
  }

  /** Largest |canvas − expected| over all pixels and channels; expected = image·(1−a) + colour·a, a per class. */
  function maxDiff(px: number[], alphaOf: (id: number) => number): number {
    const rgb = testPixels(WIDTH, HEIGHT);
    const colors = new Map(expected.classes.map((c) => [c.id, c.color]));
    let worst = 0;
    for (let i = 0; i < WIDTH * HEIGHT; i++) {
      const color = colors.get(ids[i])!;
      const a = alphaOf(ids[i]);
      for (let c = 0; c < 3; c++) {
        const want = rgb[3 * i + c] * (1 - a) + color[c] * a;
        worst = Math.max(worst, Math.abs(px[4 * i + c] - want));
      }
    }
    return worst;
  }

  it('uploading an image shows the legend and the overlay; slider, highlight and download work', async () => {
    await page.goto(`${srv.url}/`, { waitUntil: 'load' });
    await page.waitForFunction(`/BEiT/.test(document.getElementById('model-info').textContent)`);
    const input = await page.$('#file-input');
    assert.ok(input, 'file input');
    await input.uploadFile(imagePath);
    await page.waitForSelector('#legend li', { timeout: 30_000 });

    const legend = await page.$$eval('#legend li', (items) =>
      items.map((li) => ({
        name: li.querySelector('.name')!.textContent,
        share: li.querySelector('.share')!.textContent,
      })),
    );
    assert.deepEqual(
      legend,
      expected.classes.map((c) => ({ name: c.name, share: `${(c.share * 100).toFixed(1)}%` })),
    );
    assert.match(await page.$eval('#status', (e) => e.textContent ?? ''), /scene\.png: 150×100/);
    assert.equal(
      await inPage<boolean>(`document.getElementById('token-row').offsetParent === null`),
      true,
      'no token field without --token',
    );
    assert.equal(
      await inPage<boolean>(`document.getElementById('controls').offsetParent !== null`),
      true,
      'controls shown',
    );

    const overlay = await canvasPixels();
    assert.deepEqual([overlay.width, overlay.height], [WIDTH, HEIGHT]);
    assert.ok(maxDiff(overlay.data, () => 0.5) <= 1, `overlay at 50%: max diff ${maxDiff(overlay.data, () => 0.5)}`);

    await setOpacity(100);
    assert.ok(maxDiff((await canvasPixels()).data, () => 1) <= 1, 'overlay at 100% is the palette');

    const top = expected.classes[0];
    await page.click(`#legend button[data-class-id="${top.id}"]`);
    const highlighted = await canvasPixels();
    const diff = maxDiff(highlighted.data, (id) => (id === top.id ? 1 : 0));
    assert.ok(diff <= 1, `highlight of ${top.name}: only its pixels coloured (max diff ${diff})`);
    assert.equal(await page.$eval('#legend button.active', (b) => b.querySelector('.name')!.textContent), top.name);

    const href = await inPage<string>(`document.getElementById('download').href`);
    assert.equal(href, `data:image/png;base64,${expected.label.data}`);
    assert.equal(await inPage<string>(`document.getElementById('download').download`), 'scene_pred.png');

    await page.click(`#legend button[data-class-id="${top.id}"]`);
    await setOpacity(50);
    const shot = path.join(dir, 'serve-page.png');
    await page.screenshot({ path: shot });
    assert.ok(fs.statSync(shot).size > 5000, 'screenshot written');
    process.stderr.write(`page screenshot: ${shot}\n`);
    // BEITSEG_UPDATE_SCREENSHOT=1 refreshes the README's picture of the page
    if (process.env.BEITSEG_UPDATE_SCREENSHOT === '1')
      fs.copyFileSync(shot, path.join(repoRoot, 'docs', 'serve-page.png'));
  });

  it('legend buttons carry aria-pressed; the overlay downloads; no 404; phone and desktop screenshots', async () => {
    const missing: string[] = [];
    const onResponse = (r: { status(): number; url(): string }): void => {
      if (r.status() >= 400) missing.push(`${r.status()} ${r.url()}`);
    };
    page.on('response', onResponse);
    try {
      for (const [name, viewport] of [
        ['desktop', { width: 1100, height: 720 }],
        ['phone', { width: 390, height: 844, isMobile: true, hasTouch: true, deviceScaleFactor: 1 }],
      ] as const) {
        await page.setViewport(viewport);
        await page.goto(`${srv.url}/`, { waitUntil: 'load' });
        await (await page.$('#file-input'))!.uploadFile(imagePath);
        await page.waitForSelector('#legend li', { timeout: 30_000 });
        const pressed = (): Promise<string[]> =>
          inPage(`[...document.querySelectorAll('#legend button')].map((b) => b.getAttribute('aria-pressed'))`);
        assert.ok(
          (await pressed()).every((p) => p === 'false'),
          'no class pressed at first',
        );
        const top = expected.classes[0];
        await page.click(`#legend button[data-class-id="${top.id}"]`);
        assert.deepEqual(
          await pressed(),
          expected.classes.map((c) => String(c.id === top.id)),
        );
        // the overlay link is made from the canvas when followed (the click is dispatched without navigating)
        const overlayHref = await inPage<string>(`(() => {
          const a = document.getElementById('download-overlay');
          a.addEventListener('click', (e) => e.preventDefault(), { once: true });
          a.click();
          return a.href;
        })()`);
        assert.match(overlayHref, /^data:image\/png;base64,/);
        assert.equal(await inPage<string>(`document.getElementById('download-overlay').download`), 'scene_overlay.png');
        assert.match(await page.$eval('#download-hint', (e) => e.textContent ?? ''), /class id per pixel/);
        // the result is in view without scrolling
        const box = await inPage<{ top: number; bottom: number }>(
          `(() => {
            const r = document.getElementById('overlay').getBoundingClientRect();
            return { top: r.top, bottom: r.bottom };
          })()`,
        );
        assert.ok(
          box.bottom > box.top && box.bottom <= viewport.height,
          `${name}: overlay at ${box.top}..${box.bottom}`,
        );
        const shot = path.join(dir, `serve-page-${name}.png`);
        await page.screenshot({ path: shot });
        assert.ok(fs.statSync(shot).size > 5000, 'screenshot written');
        process.stderr.write(`page screenshot (${name}): ${shot}\n`);
        if (process.env.BEITSEG_UPDATE_SCREENSHOT === '1' && name === 'phone')
          fs.copyFileSync(shot, path.join(repoRoot, 'docs', 'serve-page-phone.png'));
      }
    } finally {
      page.off('response', onResponse);
      await page.setViewport({ width: 1100, height: 720 });
    }
    assert.deepEqual(missing, [], 'no failed request (favicon included)');
  });

  it('several images make a strip of results; the before/after split shows the original', async () => {
    const second = path.join(dir, 'second.png');
    fs.writeFileSync(second, await encodeTestImage(90, 70, 'png', 2));
    await page.goto(`${srv.url}/`, { waitUntil: 'load' });
    await (await page.$('#file-input'))!.uploadFile(imagePath, second);
    await page.waitForFunction(`document.querySelectorAll('#strip button').length === 2`, { timeout: 60_000 });
    assert.equal(await inPage<boolean>(`document.getElementById('strip').hidden`), false);
    const pressed = (): Promise<string[]> =>
      inPage(`[...document.querySelectorAll('#strip button')].map((b) => b.getAttribute('aria-pressed'))`);
    assert.deepEqual(await pressed(), ['false', 'true'], 'the last image is shown');
    assert.deepEqual([(await canvasPixels()).width, (await canvasPixels()).height], [90, 70]);
    await page.click('#strip li:first-child button');
    assert.deepEqual(await pressed(), ['true', 'false']);
    assert.deepEqual([(await canvasPixels()).width, (await canvasPixels()).height], [WIDTH, HEIGHT]);
    await setOpacity(50);
    await inPage(`(() => {
      const split = document.getElementById('split');
      split.value = '0';
      split.dispatchEvent(new Event('input'));
    })()`);
    assert.ok(maxDiff((await canvasPixels()).data, () => 0) <= 1, 'split at 0: the original image');
    await inPage(`(() => {
      const split = document.getElementById('split');
      split.value = '100';
      split.dispatchEvent(new Event('input'));
    })()`);
    assert.ok(maxDiff((await canvasPixels()).data, () => 0.5) <= 1, 'split at 100: the overlay everywhere');
  });

  it("shows the server's one-line error for a file that is not an image", async () => {
    const bad = path.join(dir, 'notes.png');
    fs.writeFileSync(bad, 'not really a png');
    await page.goto(`${srv.url}/`, { waitUntil: 'load' });
    const input = await page.$('#file-input');
    await input!.uploadFile(bad);
    await page.waitForFunction(`document.getElementById('status').classList.contains('error')`, { timeout: 30_000 });
    assert.match(await page.$eval('#status', (e) => e.textContent ?? ''), /notes\.png: not a readable image/);
  });
});
