/**
 * Image bombs (issue 15.1): files that claim huge images are refused from their header, before
 * any pixel is decoded, with one line naming the file and the limit. The bomb decodes run in a
 * child process with a memory cap and a timeout, so code without the check fails the assertion
 * (killed, out of memory, or another message) instead of exhausting the machine.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeImage, decodeLabel, encodeImage, readImage, readLabel } from '../../src/data/image_io.js';
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

  it("the default is sharp's", () => {
    assert.equal(DEFAULT_MAX_PIXELS, 268402689);
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
      beitseg(['predict', '--config', tinyConfigPath, '--device', 'cpu', '--max-pixels', '3000', '--out', out, img]),
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
