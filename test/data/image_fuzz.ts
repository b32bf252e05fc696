/**
 * Image fuzzing: seeded mutations of the fixture PNG and JPEG files (test/fixtures/images) fed to
 * the image decoder (sharp) and the label reader (./png.ts or sharp). Every case must end in a
 * result or a clean Error ("cannot decode ...") within a time and memory budget: the cases run
 * in child processes (./image_fuzz_worker.ts) under a memory cap, and a child that crashes,
 * aborts, or spends too long on one case fails the run, naming the case to replay.
 *
 * A case is a pure function of (seed, index), so a failure replays with
 * `node dist/test/data/image_fuzz_worker.js <seed> <index> 1`.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { runBounded } from '../bounded.js';
import { prng } from '../tensor/ref.js';

// Not ../helpers.js: that loads the native addon, which the decoding children do not need.
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const FIXTURE_DIR = path.join(repoRoot, 'test', 'fixtures', 'images');

export function fixtureSeeds(): { name: string; bytes: Buffer }[] {
  return fs
    .readdirSync(FIXTURE_DIR)
    .filter((f) => /\.(png|jpg)$/.test(f))
    .sort()
    .map((name) => ({ name, bytes: fs.readFileSync(path.join(FIXTURE_DIR, name)) }));
}

/**
 * The SVG family (issue 25.7): valid SVG documents, varied where a decoder could be fooled (the
 * prefix: an XML declaration, a byte order mark, blanks, a DOCTYPE with entities; gzipped as
 * SVGZ; any file name) and where rendering costs (the size, a blur filter). libvips renders every
 * one of them; each must be refused unrendered. Case `index` of `seed` is a pure function too.
 */
export function mutateSvg(seed: number, index: number): { from: string; bytes: Buffer } {
  const rand = prng((seed * 0x9e3779b1) ^ (index * 0x85ebca6b));
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)];
  const size = pick([1, 16, 640, 4000, 20000]);
  const blur = pick([0, 2, 400]);
  const filter = blur ? `<defs><filter id="f"><feGaussianBlur stdDeviation="${blur}"/></filter></defs>` : '';
  const text = pick(['', '<text x="1" y="12">&b;</text>']);
  const body =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}">${filter}` +
    `<rect width="${size}" height="${size}" fill="#c33"${blur ? ' filter="url(#f)"' : ''}/>${text}</svg>`;
  const doctype = text ? '<!DOCTYPE svg [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>' : '';
  const prefix = pick(['', '<?xml version="1.0" encoding="UTF-8"?>\n', '\ufeff', '\n\t  ']);
  const doc = Buffer.from(`${prefix}${doctype}${body}`);
  const bytes = rand() < 0.25 ? zlib.gzipSync(doc) : doc;
  return { from: `svg-${index}.${pick(['png', 'jpg', 'svg', 'webp'])}`, bytes };
}

const INTERESTING = [0, 1, 2, 0x7f, 0x80, 0xff, 0xfe, 0x10, 0x40];
const DIMENSIONS = [0, 1, 2, 3, 7, 255, 256, 2047, 2048, 4096, 65535, 0x7fffffff, 0x80000000, 0xffffffff];

/** Re-computes the CRC of every complete PNG chunk, so mutations reach past the CRC check. */
function fixPngCrcs(buf: Buffer): void {
  let pos = 8;
  while (pos + 12 <= buf.length) {
    const len = buf.readUInt32BE(pos);
    if (pos + 12 + len > buf.length) return;
    buf.writeUInt32BE(zlib.crc32(buf.subarray(pos + 4, pos + 8 + len)) >>> 0, pos + 8 + len);
    pos += 12 + len;
  }
}

function isPngBytes(b: Buffer): boolean {
  return b.length > 8 && b[0] === 0x89 && b[1] === 0x50;
}

/** The mutated file of case `index` under `seed`: 1 to 4 mutations of one fixture. */
export function mutate(
  seeds: { name: string; bytes: Buffer }[],
  seed: number,
  index: number,
): { from: string; bytes: Buffer } {
  const rand = prng((seed * 0x9e3779b1) ^ (index * 0x85ebca6b));
  const int = (n: number): number => Math.floor(rand() * n);
  const base = seeds[int(seeds.length)];
  let b = Buffer.from(base.bytes);
  const png = isPngBytes(b);
  const steps = 1 + int(4);
  let fixCrc = png && rand() < 0.7;
  for (let s = 0; s < steps && b.length > 0; s++) {
    switch (int(8)) {
      case 0: // flip a few bits
        for (let k = 1 + int(8); k > 0; k--) b[int(b.length)] ^= 1 << int(8);
        break;
      case 1: // interesting byte values
        for (let k = 1 + int(4); k > 0; k--) b[int(b.length)] = INTERESTING[int(INTERESTING.length)];
        break;
      case 2: // truncate
        b = b.subarray(0, int(b.length));
        break;
      case 3: {
        // delete a range
        const at = int(b.length);
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(64)))]);
        break;
      }
      case 4: {
        // duplicate a range in place
        const at = int(b.length);
        const piece = b.subarray(at, Math.min(b.length, at + 1 + int(256)));
        b = Buffer.concat([b.subarray(0, at), piece, piece, b.subarray(at + piece.length)]);
        break;
      }
      case 5: // random bytes
        for (let k = 1 + int(16); k > 0; k--) b[int(b.length)] = int(256);
        break;
      case 6: // claimed size: PNG IHDR (then CRC fixed) or JPEG SOF
        if (png && b.length >= 33) {
          b.writeUInt32BE(DIMENSIONS[int(DIMENSIONS.length)] >>> 0, 16 + 4 * int(2));
          fixCrc = true;
        } else {
          const sof =
            b.indexOf(Buffer.from([0xff, 0xc0])) >= 0
              ? b.indexOf(Buffer.from([0xff, 0xc0]))
              : b.indexOf(Buffer.from([0xff, 0xc2]));
          if (sof >= 0 && sof + 9 <= b.length)
            b.writeUInt16BE(DIMENSIONS[int(DIMENSIONS.length)] & 0xffff, sof + 5 + 2 * int(2));
        }
        break;
      default: // PNG header fields: bit depth, colour type, interlace
        if (png && b.length >= 33) {
          b[24 + int(5)] = [0, 1, 2, 3, 4, 6, 8, 16, 255][int(9)];
          fixCrc = true;
        } else {
          b[int(b.length)] = int(256);
        }
    }
  }
  if (fixCrc) fixPngCrcs(b);
  return { from: base.name, bytes: b };
}

export interface FuzzFailure {
  index: number;
  why: string;
}

export interface FuzzReport {
  cases: number;
  results: number;
  errors: number;
  failures: FuzzFailure[];
  ms: number;
}

/**
 * Runs cases [0, cases) of `seed` in children of up to `batch` cases each, each child capped at
 * `memoryMb` and each case at `caseMs`. After a child dies, the next one resumes after the case
 * that killed it.
 */
export async function runImageFuzz(opts: {
  seed: number;
  cases: number;
  batch?: number;
  memoryMb?: number;
  caseMs?: number;
  maxPixels?: number;
  /** Cases: 'raster' (mutated fixture images, default) or 'svg' (mutateSvg). */
  family?: 'raster' | 'svg';
}): Promise<FuzzReport> {
  const worker = path.join(repoRoot, 'dist', 'test', 'data', 'image_fuzz_worker.js');
  const batch = opts.batch ?? 100;
  const caseMs = opts.caseMs ?? 5000;
  const start = Date.now();
  const report: FuzzReport = { cases: 0, results: 0, errors: 0, failures: [], ms: 0 };
  let next = 0;
  while (next < opts.cases) {
    const count = Math.min(batch, opts.cases - next);
    const r = await runBounded(worker, [String(opts.seed), String(next), String(count)], {
      memoryMb: opts.memoryMb ?? 1536,
      timeoutMs: count * caseMs + 10_000,
      idleMs: caseMs,
      env: {
        ...process.env,
        BEITSEG_MAX_PIXELS: String(opts.maxPixels ?? 4096 * 4096),
        IMAGE_FUZZ_FAMILY: opts.family ?? 'raster',
      },
    });
    let running = -1;
    for (const line of r.stdout.split('\n').filter(Boolean)) {
      const msg = JSON.parse(line) as {
        start?: number;
        done?: number;
        results?: number;
        errors?: number;
        bad?: string;
      };
      if (msg.start !== undefined) running = msg.start;
      if (msg.done !== undefined) {
        report.cases++;
        report.results += msg.results ?? 0;
        report.errors += msg.errors ?? 0;
        if (msg.bad) report.failures.push({ index: msg.done, why: msg.bad });
      }
    }
    if (r.code === 0 && !r.killed) {
      next += count;
      continue;
    }
    if (running < 0) throw new Error(`image fuzz: the child did not start: ${r.stderr.trim().slice(-1000)}`);
    const why =
      r.killed === 'idle'
        ? `over the ${caseMs} ms case budget`
        : r.killed
          ? 'batch timeout'
          : `child exited ${r.code ?? r.signal}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`;
    report.cases++;
    report.failures.push({ index: running, why });
    next = running + 1;
  }
  report.ms = Date.now() - start;
  return report;
}
