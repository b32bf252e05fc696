/**
 * Issue 25 item 1: with --token, no spelling of a protected route is answered without the token.
 * The router decodes percent-escapes and (with the server's settings) may fold other spellings
 * onto a route, so each variant must answer 401 or 404, never 200. Fails on the build whose
 * auth check read the raw URL (`/%761/segment`, `/%6detrics` were answered).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { encodeTestImage, rawRequest, spawnServer, type ChildServer } from './serve_helpers.js';

const TOKEN = 'bypass-test-token';

/** Spellings of a path: percent-encoded letters, doubled and trailing slashes, case, dot segments. */
function variants(route: string): string[] {
  const parts = route.split('/').filter(Boolean);
  const enc = (s: string, i: number): string => `${s.slice(0, i)}%${s.charCodeAt(i).toString(16)}${s.slice(i + 1)}`;
  const out = new Set<string>([route]);
  for (let p = 0; p < parts.length; p++) {
    for (let i = 0; i < parts[p].length; i++) {
      const copy = [...parts];
      copy[p] = enc(parts[p], i);
      out.add(`/${copy.join('/')}`);
      out.add(`/${copy.join('/')}`.replace(/%([0-9a-f]{2})/, (_m, h: string) => `%${h.toUpperCase()}`));
    }
  }
  out.add(`/${route}`);
  out.add(route.replace(/\//g, '//'));
  out.add(`${route}/`);
  out.add(`${route}//`);
  out.add(route.toUpperCase());
  out.add(route.replace(/^\/(.)/, (_m, c: string) => `/${c.toUpperCase()}`));
  out.add(`/x/..${route}`);
  out.add(`/x/%2e%2e${route}`);
  out.add(`${route.replace(/\/([^/]+)$/, '/./$1')}`);
  out.add(`${route.replace(/\/([^/]+)$/, '/x/../$1')}`);
  out.add(`${route.replace(/\/([^/]+)$/, '/%2e/$1')}`);
  out.add(`${route}%2f`);
  out.add(`${route};x`);
  out.add(`${route}?x=1`);
  out.add(`${route}#x`);
  return [...out];
}

describe('serve auth on the matched route', () => {
  let srv: ChildServer;
  let png: Buffer;
  before(async () => {
    png = await encodeTestImage(64, 64);
    srv = await spawnServer(['--token', TOKEN]);
  });
  after(() => {
    srv.child.kill('SIGKILL');
  });

  for (const [method, route] of [
    ['POST', '/v1/segment'],
    ['GET', '/v1/model'],
    ['GET', '/metrics'],
  ] as const) {
    it(`${method} ${route}: every spelling needs the token`, async () => {
      const answered: string[] = [];
      for (const p of variants(route)) {
        const r = await rawRequest(srv.url, method, p, method === 'POST' ? png : undefined);
        assert.ok(r.status === 401 || r.status === 404 || r.status === 400, `${method} ${p}: status ${r.status}`);
        if (r.status < 400) answered.push(p);
      }
      assert.deepEqual(answered, [], 'answered without the token');
      // the token still opens the canonical route
      const ok = await rawRequest(srv.url, method, route, method === 'POST' ? png : undefined, {
        authorization: `Bearer ${TOKEN}`,
      });
      assert.equal(ok.status, 200, ok.body);
    });
  }

  it('the page and the probes stay public', async () => {
    for (const p of ['/', '/app.js', '/style.css', '/health']) {
      assert.equal((await rawRequest(srv.url, 'GET', p)).status, 200, p);
    }
  });
});
