/**
 * The web page at / : three fixed files (HTML, JS, CSS) read once from src/serve/public and
 * served from memory. Written here rather than with @fastify/static because a fixed list of
 * three files needs no file-system lookups per request (and so no path handling to get wrong).
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
