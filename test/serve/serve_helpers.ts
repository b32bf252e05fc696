/** Shared by the serve tests: the tiny model, servers on 127.0.0.1 ephemeral ports, test images, child servers. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import sharp from 'sharp';
import { initModel, type SegModel } from '../../src/inference/api.js';
import { encodePngLabel } from '../../src/data/png.js';
import { buildServer, DEFAULT_SERVE_OPTIONS, type Server, type ServeOptions } from '../../src/serve/server.js';
import { fixtureFile, repoRoot, tinyConfigPath } from '../helpers.js';

export const tinyWeights = fixtureFile('segmentor_state_dict.safetensors');
export const cliPath = path.join(repoRoot, 'bin', 'beitseg.js');
/** The CLI the child-process tests run: BEITSEG_SERVE_CLI points them at another build (to show a test fails there). */
const serveCli = process.env.BEITSEG_SERVE_CLI || cliPath;

let model: Promise<SegModel> | null = null;

/** The tiny fixture model, loaded once per test file. */
export function tinyModel(): Promise<SegModel> {
  model ??= initModel(tinyConfigPath, tinyWeights, { device: 'cpu' });
  return model;
}

export interface Running {
  server: Server;
  url: string;
  close(): Promise<void>;
}

export async function startServer(opts: Partial<ServeOptions> = {}): Promise<Running> {
  const server = await buildServer(await tinyModel(), {
    ...DEFAULT_SERVE_OPTIONS,
    windowBatch: 1,
    amp: null,
    ...opts,
  });
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  return { server, url, close: () => server.app.close() };
}

/** A deterministic RGB test image with some structure (gradients and a square). */
export function testPixels(width: number, height: number, seed = 1): Buffer {
  const buf = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = 3 * (y * width + x);
      const inSquare = x > width / 4 && x < width / 2 && y > height / 3 && y < (2 * height) / 3;
      buf[o] = inSquare ? 230 : (x * 255) / width;
      buf[o + 1] = inSquare ? 40 : ((y * 255) / height + seed * 40) % 256;
      buf[o + 2] = (x * y * seed) % 256;
    }
  }
  return buf;
}

export function encodeTestImage(
  width: number,
  height: number,
  format: 'png' | 'jpeg' = 'png',
  seed = 1,
): Promise<Buffer> {
  const s = sharp(testPixels(width, height, seed), { raw: { width, height, channels: 3 } });
  return format === 'png' ? s.png().toBuffer() : s.jpeg({ quality: 95 }).toBuffer();
}

function crc32(buf: Uint8Array): number {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A valid tiny PNG whose header declares width x height (a decompression-bomb header). */
export function pngDeclaring(width: number, height: number): Buffer {
  const png = Buffer.from(encodePngLabel(new Uint8Array(1), 1, 1));
  // IHDR: 8-byte signature, length, 'IHDR', width, height, ..., CRC over type + data
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

export async function post(
  url: string,
  body: Uint8Array | FormData,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    body,
    headers: body instanceof FormData ? headers : { 'content-type': 'application/octet-stream', ...headers },
  });
}

export interface ChildServer {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  stdout: () => string;
  exited: Promise<number | null>;
}

/** `beitseg serve` in a child process on an ephemeral port; resolves once it listens. */
export async function spawnServer(
  extra: string[] = [],
  timeoutMs = 60_000,
  modelArgs: string[] = ['--config', tinyConfigPath, '--weights', tinyWeights],
): Promise<ChildServer> {
  const child = spawn(process.execPath, [serveCli, 'serve', ...modelArgs, '--device', 'cpu', '--port', '0', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms: ${err}`)), timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening: ${err}`));
    });
  });
  return { child, url, stderr: () => err, stdout: () => out, exited };
}

/** Polls until `check` holds (bounded). */
export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** A raw HTTP/1.1 request (the path sent as is: fetch would normalise `..`, `//` and case). */
export function rawRequest(
  url: string,
  method: string,
  rawPath: string,
  body?: Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        method,
        path: rawPath,
        headers: {
          ...(body ? { 'content-type': 'image/png', 'content-length': String(body.length) } : {}),
          ...headers,
        },
        timeout: 30_000,
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => {
          text += d.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${rawPath}: no answer in 30 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Resident set size of a process in bytes (Linux /proc). */
export function rssOf(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]);
  return kb * 1024;
}
