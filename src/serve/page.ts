/**
 * The web page at / : three fixed files (HTML, JS, CSS) read once from src/serve/public and
 * served from memory; and, with `serve --web DIR`, the "run in this browser" page (the folder
 * `npm run build:web` writes: the ONNX Runtime Web page, its runtime and usually the exported
 * model) under /local/, every file of the folder read once at start. Written here rather than with
 * @fastify/static because fixed lists of files need no file-system lookups per request (and so no
 * path handling to get wrong), and @fastify/static's current release needs Node >= 22.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

const PAGE_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

/** src/serve/public beside this file (when run from src) or at the package root (compiled into dist/src/serve). */
export function publicDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'public'), path.resolve(here, '..', '..', '..', 'src', 'serve', 'public')];
  const found = candidates.find((d) => fs.existsSync(path.join(d, 'index.html')));
  if (!found) throw new Error(`web page files not found (looked in ${candidates.join(', ')})`);
  return found;
}

export function registerPage(app: FastifyInstance): void {
  const dir = publicDir();
  for (const [route, { file, type }] of Object.entries(PAGE_FILES)) {
    const body = fs.readFileSync(path.join(dir, file));
    app.get(route, { config: { public: true } }, async (_req, reply) =>
      reply.type(type).header('cache-control', 'no-cache').send(body),
    );
  }
}

const LOCAL_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
  '.png': 'image/png',
};

/** The most the /local/ folder may hold in all (it is kept in memory). */
const MAX_LOCAL_BYTES = 2 * 1024 ** 3;

/**
 * Serves the built browser page of `dir` under /local/ (public, like /) and returns the URL the
 * serve page links to: /local/, with ?model= naming the folder's .onnx when it holds exactly one.
 */
export function registerLocalPage(app: FastifyInstance, dir: string): string {
  if (!fs.existsSync(path.join(dir, 'index.html')) || !fs.existsSync(path.join(dir, 'app.js'))) {
    throw new Error(`--web ${dir}: not a built browser page (no index.html and app.js; run npm run build:web)`);
  }
  const files = fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
  let total = 0;
  for (const rel of files) {
    const body = fs.readFileSync(path.join(dir, rel));
    total += body.length;
    if (total > MAX_LOCAL_BYTES) throw new Error(`--web ${dir}: more than ${MAX_LOCAL_BYTES} bytes of files`);
    const type = LOCAL_TYPES[path.extname(rel)] ?? 'application/octet-stream';
    const route = rel === 'index.html' ? '/local/' : `/local/${rel}`;
    app.get(route, { config: { public: true } }, async (_req, reply) =>
      reply.type(type).header('cache-control', 'no-cache').send(body),
    );
  }
  const models = files.filter((f) => f.endsWith('.onnx') && !f.includes('/'));
  return models.length === 1 ? `/local/?model=${encodeURIComponent(models[0])}` : '/local/';
}
