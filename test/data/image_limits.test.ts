/**
 * Image bombs (issue 15.1): files that claim huge images are refused from their header, before
 * any pixel is decoded, with one line naming the file and the limit. The bomb decodes run in a
 * child process with a memory cap and a timeout, so code without the check fails the assertion
 * (killed, out of memory, or another message) instead of exhausting the machine.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { decodeImage, decodeLabel, encodeImage, readImage, readImageSize, readLabel } from '../../src/data/image_io.js';
import { DEFAULT_MAX_PIXELS, setMaxPixels } from '../../src/data/limits.js';
import { encodePngLabel } from '../../src/data/png.js';
import { makeSyntheticDataset } from '../../src/data/synthetic.js';
import { makeImage } from '../../src/data/types.js';
import { runBounded } from '../bounded.js';
import { fixtureFile, repoRoot, tinyConfigPath } from '../helpers.js';
import { jpegClaiming, pngChunk, zeroPng } from './bombs.js';
import { beitseg } from '../child.js';

const worker = path.join(repoRoot, 'dist', 'test', 'data', 'decode_worker.js');
const BUDGET = { memoryMb: 3072, timeoutMs: 30_000 };

interface WorkerLine {
  ok?: boolean;
  error?: string;
}

async function decodeBounded(kind: 'image' | 'label', file: string, env?: NodeJS.ProcessEnv): Promise<WorkerLine> {
  const r = await runBounded(worker, [kind, file], { ...BUDGET, env: { ...process.env, ...env } });
  assert.equal(r.killed, null, `${kind} ${file}: killed (${r.killed}) after ${r.ms} ms`);
  assert.equal(r.code, 0, `${kind} ${file}: exit ${r.code} ${r.signal ?? ''}\n${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim()) as WorkerLine;
}

function assertLimitError(line: WorkerLine, file: string, limit: number): void {
  assert.ok(line.error, `expected an error, got ${JSON.stringify(line)}`);
  assert.ok(line.error.includes(file), `names the file: ${line.error}`);
  assert.ok(line.error.includes(`over the limit of ${limit} pixels`), `names the limit: ${line.error}`);
  assert.ok(!line.error.includes('\n'), 'one line');
}

describe('pixel limits', () => {
  let dir = '';
  const file = (name: string): string => path.join(dir, name);

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-bombs-'));
    fs.writeFileSync(file('grey-60000.png'), zeroPng(60000, 60000, 0));
    fs.writeFileSync(file('rgb-20000.png'), zeroPng(20000, 20000, 2));
    const small = await encodeImage(makeImage(16, 16), 'jpeg');
    fs.writeFileSync(file('claims-65000.jpg'), jpegClaiming(small, 65000, 65000));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('the default is 40 million pixels (serve: the same)', () => {
    assert.equal(DEFAULT_MAX_PIXELS, 40_000_000);
  });

  for (const [name, kind] of [
    ['grey-60000.png', 'image'],
    ['rgb-20000.png', 'image'],
    ['claims-65000.jpg', 'image'],
    ['grey-60000.png', 'label'],
    ['claims-65000.jpg', 'label'],
  ] as const) {
    it(`refuses ${name} as ${kind === 'image' ? 'an image' : 'a label'} from its header`, async () => {
      const t0 = Date.now();
      assertLimitError(await decodeBounded(kind, file(name)), file(name), DEFAULT_MAX_PIXELS);
      assert.ok(Date.now() - t0 < 15_000, 'refused quickly');
    });
  }

  it('BEITSEG_MAX_PIXELS lowers the limit for a whole process', async () => {
    fs.writeFileSync(file('small.png'), zeroPng(100, 50, 2));
    assertLimitError(
      await decodeBounded('image', file('small.png'), { BEITSEG_MAX_PIXELS: '4999' }),
      file('small.png'),
      4999,
    );
    assert.deepEqual(await decodeBounded('label', file('small.png'), { BEITSEG_MAX_PIXELS: '5000' }), {
      error:
        `cannot decode label ${file('small.png')}: label PNG must be single-channel (grey or palette), got ` +
        `colour type 2 (RGB)`,
    });
    assert.equal((await decodeBounded('image', file('small.png'), { BEITSEG_MAX_PIXELS: '5000' })).ok, true);
  });

  it('the maxPixels option and setMaxPixels set the limit per call and per process', async () => {
    const png = zeroPng(40, 30, 0);
    await assert.rejects(
      decodeImage(png, 'a.png', { maxPixels: 1199 }),
      /^Error: cannot decode image a\.png: 40x30 = 1200 pixels is over the limit of 1199/,
    );
    await assert.rejects(
      decodeLabel(png, 'a.png', { maxPixels: 1199 }),
      /^Error: cannot decode label a\.png: 40x30 = 1200 pixels is over the limit of 1199/,
    );
    assert.equal((await decodeLabel(png, 'a.png', { maxPixels: 1200 })).width, 40);
    const previous = setMaxPixels(1000);
    try {
      fs.writeFileSync(file('a.png'), png);
      await assert.rejects(readImage(file('a.png')), /over the limit of 1000 pixels/);
      await assert.rejects(readLabel(file('a.png')), /over the limit of 1000 pixels/);
    } finally {
      setMaxPixels(previous);
    }
    assert.equal((await readLabel(file('a.png'))).height, 30);
  });

  it('a label whose image data inflates past its header size is refused', async () => {
    const small = encodePngLabel(new Uint8Array(100), 10, 10);
    const ihdrEnd = 8 + 12 + 13;
    const padded = Buffer.concat([
      small.subarray(0, ihdrEnd),
      pngChunk('IDAT', Buffer.from(zeroPng(1000, 8000).subarray(ihdrEnd + 8, -16))),
      pngChunk('IEND', new Uint8Array(0)),
    ]);
    await assert.rejects(
      decodeLabel(padded, 'padded.png'),
      /cannot decode label padded\.png: corrupt PNG image data: inflates past the 110 bytes/,
    );
  });

  it('predict --max-pixels refuses an image over it, naming the file, before any output', async () => {
    const img = file('photo.png');
    fs.writeFileSync(img, zeroPng(64, 48, 2));
    const out = file('out');
    await assert.rejects(
      beitseg([
        'predict',
        '--random-weights',
        '--config',
        tinyConfigPath,
        '--device',
        'cpu',
        '--max-pixels',
        '3000',
        '--out',
        out,
        img,
      ]),
      (e: Error & { stderr: string }) => {
        assert.match(
          e.stderr,
          new RegExp(
            `cannot decode image ${img.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: 64x48 = 3072 pixels is over the ` +
              `limit of 3000`,
          ),
        );
        return true;
      },
    );
    assert.deepEqual(fs.existsSync(out) ? fs.readdirSync(out) : [], []);
  });

  it('eval --max-pixels refuses a label over it, naming the file', async () => {
    const data = file('ade');
    await makeSyntheticDataset(data, { n: 3, splitVal: 2, height: 40, width: 50, classes: 5, seed: 1 });
    const labels = path.join(data, 'annotations', 'validation');
    const first = path.join(labels, fs.readdirSync(labels).sort()[0]);
    await assert.rejects(
      beitseg([
        'eval',
        '--config',
        tinyConfigPath,
        '--weights',
        fixtureFile('segmentor_state_dict.safetensors'),
        '--data',
        data,
        '--device',
        'cpu',
        '--max-pixels',
        '1999',
        '--out',
        file('eval/results.json'),
      ]),
      (e: Error & { stderr: string }) => {
        assert.ok(
          e.stderr.includes(`cannot decode label ${first}: 50x40 = 2000 pixels is over the limit of 1999`),
          e.stderr,
        );
        return true;
      },
    );
  });
});

/**
 * Issue 25.7: what reaches the decoder from a path an attacker chose. Each case runs in the
 * capped child: before the checks the JPEG decoded 10.8 GB, /dev/zero aborted on the heap, the
 * FIFO blocked forever, the strip PNG took minutes and the SVG was rendered.
 */
describe('untrusted image files', () => {
  let dir = '';
  const file = (name: string): string => path.join(dir, name);
  const QUICK = 15_000;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-untrusted-'));
    const small = await encodeImage(makeImage(16, 16), 'jpeg');
    fs.writeFileSync(file('claims-16000.jpg'), jpegClaiming(small, 16000, 16000));
    fs.writeFileSync(file('strip.png'), zeroPng(1, 100_000_000, 0));
    fs.writeFileSync(file('thin.png'), zeroPng(2000, 1, 2));
    const svg =
      '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">' +
      '<rect width="64" height="64" fill="red"/></svg>';
    fs.writeFileSync(file('drawing.png'), svg);
    fs.writeFileSync(file('spaced.png'), `\ufeff  \n${svg.slice(svg.indexOf('<svg'))}`);
    fs.writeFileSync(file('drawing.svgz'), zlib.gzipSync(svg));
    execFileSync('mkfifo', [file('pipe.png')]);
    fs.mkdirSync(file('folder.png'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function refused(kind: 'image' | 'label', name: string, pattern: RegExp, env?: NodeJS.ProcessEnv) {
    const t0 = Date.now();
    const line = await decodeBounded(kind, name.startsWith('/') ? name : file(name), env);
    assert.ok(line.error, `expected an error for ${name}, got ${JSON.stringify(line)}`);
    assert.match(line.error, pattern);
    assert.ok(line.error.includes(name), `names the file: ${line.error}`);
    assert.ok(!line.error.includes('\n'), 'one line');
    assert.ok(Date.now() - t0 < QUICK, `refused within ${QUICK} ms, took ${Date.now() - t0}`);
  }

  it('a 16000x16000 JPEG header (under 1 KB) is refused by the default pixel limit without decoding', async () => {
    assert.ok(fs.statSync(file('claims-16000.jpg')).size < 1024);
    await refused('image', 'claims-16000.jpg', /16000x16000 = 256000000 pixels is over the limit of 40000000/);
  });

  it('SVG is refused by its content, whatever the name (also gzipped)', async () => {
    await refused('image', 'drawing.png', /SVG .* is refused/);
    await refused('label', 'drawing.png', /SVG .* is refused/);
    await refused('image', 'drawing.svgz', /SVG .* is refused/);
    await refused('image', 'spaced.png', /SVG .* is refused/);
  });

  it('SVG decodes when allowed explicitly', async () => {
    const img = await readImage(file('drawing.png'), { allowSvg: true });
    assert.deepEqual([img.width, img.height, img.data[0], img.data[1]], [64, 64, 255, 0]);
  });

  it('/dev/zero, a FIFO and a directory are refused as not regular files', async () => {
    await refused('image', '/dev/zero', /cannot read image file \/dev\/zero: a device, not a regular file/);
    await refused('label', 'pipe.png', /: a FIFO \(named pipe\), not a regular file/);
    await refused('image', 'pipe.png', /: a FIFO \(named pipe\), not a regular file/);
    await refused('image', 'folder.png', /: a directory, not a regular file/);
  });

  it('degenerate shapes are refused from the header: 1x100000000 and 2000x1', async () => {
    await refused('image', 'strip.png', /1x100000000 is a degenerate image/);
    await refused('label', 'strip.png', /1x100000000 is a degenerate image/);
    await refused('image', 'thin.png', /2000x1 is a degenerate image \(one side over 1000 times the other\)/);
  });

  it('files over BEITSEG_MAX_IMAGE_BYTES are refused before reading', async () => {
    const size = fs.statSync(file('thin.png')).size;
    await refused('image', 'thin.png', new RegExp(`${size} bytes is over the limit of 50 bytes per file`), {
      BEITSEG_MAX_IMAGE_BYTES: '50',
    });
  });

  it('the header-only size matches the decoded size (EXIF orientation applied)', async () => {
    const raw = { raw: { width: 40, height: 20, channels: 3 as const } };
    const rotated = await sharp(Buffer.alloc(40 * 20 * 3), raw)
      .jpeg()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    fs.writeFileSync(file('rotated.jpg'), rotated);
    const img = await readImage(file('rotated.jpg'));
    assert.deepEqual([img.width, img.height], [20, 40]);
    assert.deepEqual(await readImageSize(file('rotated.jpg')), { width: 20, height: 40 });
    await assert.rejects(readImageSize(file('claims-16000.jpg')), /over the limit of 40000000/);
  });
});
