/**
 * The HTTP API on the tiny fixture model over 127.0.0.1: every endpoint and format, the label PNG
 * against `beitseg predict`'s file, bad inputs (each a 4xx, the next good request still served)
 * and bearer-token auth.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { decodePngLabel } from '../../src/data/png.js';
import { tinyConfigPath } from '../helpers.js';
import {
  cliPath,
  encodeTestImage,
  pngDeclaring,
  post,
  startServer,
  tinyWeights,
  type Running,
} from './serve_helpers.js';

const run = promisify(execFile);

interface SegmentBody {
  width: number;
  height: number;
  classes: { id: number; name: string; share: number; pixels: number; color: number[] }[];
  present: string[];
  label?: { encoding: string; data?: string; runs?: Record<string, number[]> };
  error?: string;
}

describe('beitseg serve API', () => {
  let srv: Running;
  let dir: string;
  let png: Buffer;
  let jpeg: Buffer;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-serve-api-'));
    png = await encodeTestImage(150, 100);
    jpeg = await encodeTestImage(90, 70, 'jpeg', 2);
    fs.writeFileSync(path.join(dir, 'scene.png'), png);
    fs.writeFileSync(path.join(dir, 'photo.jpg'), jpeg);
    srv = await startServer({ maxPixels: 1_000_000, maxBodyMb: 1 });
  });
  after(async () => {
    await srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('GET /health and /v1/model describe the service and the model', async () => {
    const health = await fetch(`${srv.url}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok', queue: 0, capacity: 16 });
    // biome-ignore lint/suspicious/noExplicitAny: a JSON answer walked by path in the assertions below
    const info = (await (await fetch(`${srv.url}/v1/model`)).json()) as Record<string, any>;
    assert.deepEqual(info.classes, ['class_0', 'class_1', 'class_2', 'class_3', 'class_4']);
    assert.equal(info.palette.length, 5);
    assert.equal(info.device, 'cpu');
    assert.equal(info.config.backbone.type, 'BEiT');
    assert.equal(info.config.backbone.embed_dims, 32);
    assert.equal(info.serving.mode, 'slide');
  });

  it('label and overlay PNGs equal what `beitseg predict` writes for the same images', async () => {
    const out = path.join(dir, 'predict');
    await run(process.execPath, [
      cliPath,
      'predict',
      '--config',
      tinyConfigPath,
      '--weights',
      tinyWeights,
      '--device',
      'cpu',
      '--out',
      out,
      path.join(dir, 'scene.png'),
      path.join(dir, 'photo.jpg'),
    ]);
    for (const [name, bytes] of [
      ['scene', png],
      ['photo', jpeg],
    ] as const) {
      const label = await post(`${srv.url}/v1/segment?format=label`, bytes);
      assert.equal(label.status, 200);
      assert.equal(label.headers.get('content-type'), 'image/png');
      assert.deepEqual(
        Buffer.from(await label.arrayBuffer()),
        fs.readFileSync(path.join(out, `${name}_pred.png`)),
        name,
      );
      const overlay = await post(`${srv.url}/v1/segment?format=overlay&opacity=0.5`, bytes);
      assert.equal(overlay.status, 200);
      const served = await sharp(Buffer.from(await overlay.arrayBuffer()))
        .raw()
        .toBuffer();
      const written = await sharp(path.join(out, `${name}_overlay.png`))
        .raw()
        .toBuffer();
      assert.ok(served.equals(written), `${name} overlay pixels`);
      const json = (await (await post(`${srv.url}/v1/segment`, bytes)).json()) as SegmentBody;
      // one schema for both (docs/json-schema.md): the API's JSON is predict's plus the label map itself
      const summary = JSON.parse(fs.readFileSync(path.join(out, `${name}.json`), 'utf8')) as unknown;
      const described: Partial<SegmentBody> = { ...json };
      delete described.label;
      assert.deepEqual(described, summary);
    }
  });

  it('JSON: size, shares, classes present, label as base64 PNG or per-class RLE (same map)', async () => {
    const label = decodePngLabel(
      Buffer.from(await (await post(`${srv.url}/v1/segment?format=label`, png)).arrayBuffer()),
    );
    const asPng = (await (await post(`${srv.url}/v1/segment?labels=png`, png)).json()) as SegmentBody;
    assert.equal(asPng.width, 150);
    assert.equal(asPng.height, 100);
    assert.equal(asPng.label!.encoding, 'png');
    assert.deepEqual(decodePngLabel(Buffer.from(asPng.label!.data!, 'base64')).data, label.data);
    const total = asPng.classes.reduce((s, c) => s + c.pixels, 0);
    assert.equal(total, 150 * 100);
    for (const c of asPng.classes) assert.ok(Math.abs(c.share - c.pixels / total) < 1e-6);
    assert.deepEqual(
      asPng.present,
      asPng.classes.map((c) => c.name),
    );
    assert.ok(asPng.classes.length >= 2, 'the test image should show more than one class');

    const asRle = (await (await post(`${srv.url}/v1/segment?labels=rle`, png)).json()) as SegmentBody;
    const rebuilt = new Uint8Array(150 * 100).fill(255);
    for (const [id, runs] of Object.entries(asRle.label!.runs!)) {
      for (let k = 0; k < runs.length; k += 2) rebuilt.fill(Number(id), runs[k], runs[k] + runs[k + 1]);
    }
    assert.deepEqual(rebuilt, label.data);
    const none = (await (await post(`${srv.url}/v1/segment?labels=none`, png)).json()) as SegmentBody;
    assert.equal(none.label, undefined);
  });

  it('reads WebP, GIF and TIFF as well as PNG and JPEG', async () => {
    for (const format of ['webp', 'gif', 'tiff'] as const) {
      const bytes = await sharp(png)[format]().toBuffer();
      const r = await post(`${srv.url}/v1/segment?labels=none`, bytes);
      assert.equal(r.status, 200, format);
      assert.equal(((await r.json()) as SegmentBody).width, 150, format);
    }
  });

  it('accepts multipart uploads and the mode and tta options', async () => {
    const form = new FormData();
    form.append('image', new Blob([png], { type: 'image/png' }), 'scene.png');
    const multipart = await post(`${srv.url}/v1/segment?format=label`, form);
    assert.equal(multipart.status, 200);
    const raw = await post(`${srv.url}/v1/segment?format=label`, png);
    assert.deepEqual(Buffer.from(await multipart.arrayBuffer()), Buffer.from(await raw.arrayBuffer()));
    for (const query of ['mode=whole', 'tta=true', 'tta=1&mode=slide']) {
      const r = await post(`${srv.url}/v1/segment?${query}&labels=none`, png);
      assert.equal(r.status, 200, query);
      const body = (await r.json()) as SegmentBody;
      assert.equal(body.width, 150, query);
      assert.ok(body.classes.length > 0, query);
    }
  });

  it('answers every bad input with a one-line 4xx and keeps serving', async () => {
    const cmyk = await sharp(await encodeTestImage(32, 32))
      .toColourspace('cmyk')
      .jpeg()
      .toBuffer();
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    );
    const bad: [string, Uint8Array | FormData, number, RegExp, Record<string, string>?][] = [
      ['zero bytes', Buffer.alloc(0), 400, /empty body/],
      ['not an image', Buffer.from('hello, this is text'), 415, /not a readable image/],
      ['truncated PNG', png.subarray(0, Math.floor(png.length / 2)), 400, /cannot decode image/],
      ['truncated JPEG', jpeg.subarray(0, Math.floor(jpeg.length / 2)), 400, /cannot decode image/],
      ['unsupported format (SVG)', svg, 415, /unsupported image format 'svg'/],
      ['CMYK JPEG', cmyk, 415, /CMYK/],
      ['60000x60000 PNG header', pngDeclaring(60000, 60000), 413, /over the limit of 1000000/],
      ['body over --max-body-mb', Buffer.alloc(1024 * 1024 + 10, 1), 413, /too large/i],
      ['JSON body', Buffer.from('{"a":1}'), 415, /not an image/, { 'content-type': 'application/json' }],
      ['bad query', png, 400, /format/, { 'x-query': 'format=gif' }],
      ['image smaller than the model window', await encodeTestImage(40, 30), 422, /too small for this model/],
    ];
    const largeForm = new FormData();
    largeForm.append('image', new Blob([Buffer.alloc(1024 * 1024 + 10, 1)]), 'big.png');
    bad.push(['multipart file over --max-body-mb', largeForm, 413, /too large|limit/i]);
    const emptyForm = new FormData();
    emptyForm.append('field', 'value');
    bad.push(['multipart without a file', emptyForm, 400, /without a file/]);

    const multipartType = { 'content-type': 'multipart/form-data; boundary=xyz' };
    bad.push(['malformed multipart', Buffer.from('no parts here'), 400, /malformed multipart/, multipartType]);
    const cut = '--xyz\r\nContent-Disposition: form-data; name="f"; filename="a.png"\r\n\r\nabc';
    bad.push(['truncated multipart', Buffer.from(cut), 400, /malformed multipart/, multipartType]);
    for (const [what, body, status, message, headers = {}] of bad) {
      const { 'x-query': query, ...rest } = headers;
      const r = await post(`${srv.url}/v1/segment${query ? `?${query}` : ''}`, body, rest);
      const answer = (await r.json()) as { error: string };
      assert.equal(r.status, status, `${what}: ${answer.error}`);
      assert.match(answer.error, message, what);
      assert.ok(!answer.error.includes('\n'), `${what}: one line`);
      const good = await post(`${srv.url}/v1/segment?labels=none`, png);
      assert.equal(good.status, 200, `good request after ${what}`);
    }
  });

  it('unknown routes answer 404 JSON', async () => {
    const r = await fetch(`${srv.url}/v2/segment`);
    assert.equal(r.status, 404);
    assert.match(((await r.json()) as { error: string }).error, /no route GET \/v2\/segment/);
  });

  it('/metrics reports requests by status, latency, queue depth and images per second', async () => {
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    assert.match(text, /beitseg_http_requests_total\{route="\/v1\/segment",status="200"\} \d+/);
    assert.match(text, /beitseg_http_requests_total\{route="\/v1\/segment",status="415"\} \d+/);
    assert.match(text, /beitseg_http_request_duration_seconds_bucket\{le="0.5",route="\/v1\/segment"\} \d+/);
    assert.match(text, /beitseg_queue_depth 0/);
    assert.match(text, /beitseg_images_per_second \d/);
    const images = Number(/beitseg_images_segmented_total (\d+)/.exec(text)?.[1]);
    assert.ok(images >= 10, `images segmented ${images}`);
    assert.match(text, /beitseg_process_resident_memory_bytes \d+/);
  });
});

describe('beitseg serve auth', () => {
  let srv: Running;
  let png: Buffer;
  before(async () => {
    png = await encodeTestImage(80, 60);
    srv = await startServer({ token: 's3cret-token' });
  });
  after(() => srv.close());

  it('with --token, the API and /metrics need the bearer token; the page and /health do not', async () => {
    for (const [path, init] of [
      ['/v1/model', {}],
      ['/metrics', {}],
      ['/v1/segment', { method: 'POST', body: png }],
    ] as const) {
      const missing = await fetch(`${srv.url}${path}`, init);
      assert.equal(missing.status, 401, `${path} without a token`);
      assert.equal(missing.headers.get('www-authenticate'), 'Bearer');
      assert.match(((await missing.json()) as { error: string }).error, /missing Authorization/);
      const wrong = await fetch(`${srv.url}${path}`, { ...init, headers: { authorization: 'Bearer nope' } });
      assert.equal(wrong.status, 401, `${path} with a wrong token`);
      const right = await fetch(`${srv.url}${path}`, { ...init, headers: { authorization: 'Bearer s3cret-token' } });
      assert.equal(right.status, 200, `${path} with the token`);
    }
    assert.equal((await fetch(`${srv.url}/health`)).status, 200);
    const page = await fetch(`${srv.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /text\/html/);
    assert.match(await page.text(), /<canvas id="overlay"/);
  });

  it('without --token the API is open', async () => {
    const open = await startServer();
    try {
      assert.equal((await fetch(`${open.url}/v1/model`)).status, 200);
      assert.equal((await post(`${open.url}/v1/segment`, png)).status, 200);
    } finally {
      await open.close();
    }
  });
});

describe('beitseg serve client disconnect', () => {
  it('a client that disconnects while queued frees its place at once', async () => {
    const srv = await startServer({ queue: 2 });
    try {
      const big = await encodeTestImage(400, 400);
      const depth = async (): Promise<number> =>
        ((await (await fetch(`${srv.url}/health`)).json()) as { queue: number }).queue;
      const waitDepth = async (n: number): Promise<void> => {
        const end = Date.now() + 20_000;
        while ((await depth()) !== n) {
          assert.ok(Date.now() < end, `queue depth never reached ${n}`);
          await new Promise((r) => setTimeout(r, 10));
        }
      };
      const first = post(`${srv.url}/v1/segment?labels=none`, big);
      await waitDepth(1);
      const aborter = new AbortController();
      const second = fetch(`${srv.url}/v1/segment`, { method: 'POST', body: big, signal: aborter.signal }).then(
        () => 'answered',
        (e: Error) => e.name,
      );
      await waitDepth(2);
      aborter.abort();
      assert.equal(await second, 'AbortError');
      await waitDepth(1);
      assert.equal((await first).status, 200);
      assert.equal(srv.server.engine.depth, 0);
    } finally {
      await srv.close();
    }
  });
});
