/**
 * Issue 24 item 4: `beitseg serve --web DIR` offers the "run in this browser" page as a second mode:
 * the folder `npm run build:web` wrote (the ONNX Runtime Web page, its runtime and the exported
 * model) is served byte for byte under /local/, public like the page at / even with a token, and
 * /v1/model names the page (with ?model= for the folder's one .onnx) so the serve page links to it.
 * The page's own segmentation is checked in headless Chromium by test/export/browser_page.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fixtureFile, repoRoot, tinyConfigPath } from '../helpers.js';
import { type ChildServer, cliPath, spawnServer } from './serve_helpers.js';

function run(args: string[]): void {
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, r.stderr);
}

describe('serve --web: the page that segments in the browser', { timeout: 300_000 }, () => {
  let dir = '';
  let web = '';
  let srv: ChildServer;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-serve-web-'));
    web = path.join(dir, 'web');
    const model = path.join(dir, 'model.onnx');
    const weights = ['--weights', fixtureFile('segmentor_mmseg.pth')];
    run([cliPath, 'export', '--format', 'onnx', '--config', tinyConfigPath, ...weights, '--out', model]);
    run([path.join(repoRoot, 'scripts', 'build-web.mjs'), '--out', web, '--model', model, '--no-check']);
    srv = await spawnServer(['--web', web, '--token', 'secret'], 90_000);
  });
  after(() => {
    srv?.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves every file of the built page under /local/, byte for byte, without the token', async () => {
    const files = fs
      .readdirSync(web, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => path.relative(web, path.join(e.parentPath, e.name)));
    assert.ok(files.includes('model.onnx') && files.includes('app.js') && files.some((f) => f.endsWith('.wasm')));
    for (const f of files) {
      const route = f === 'index.html' ? '/local/' : `/local/${f.split(path.sep).join('/')}`;
      const res = await fetch(`${srv.url}${route}`);
      assert.equal(res.status, 200, route);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(fs.readFileSync(path.join(web, f))), route);
    }
    const wasm = files.find((f) => f.endsWith('.wasm'))!;
    assert.equal((await fetch(`${srv.url}/local/${wasm}`)).headers.get('content-type'), 'application/wasm');
    assert.equal((await fetch(`${srv.url}/local/nope.js`)).status, 401, 'an unknown path is not public');
  });

  it('/v1/model (with the token) names the page and its model; the serve page links to it', async () => {
    assert.equal((await fetch(`${srv.url}/v1/model`)).status, 401);
    const info = (await (
      await fetch(`${srv.url}/v1/model`, { headers: { authorization: 'Bearer secret' } })
    ).json()) as { browserPage: string | null };
    assert.equal(info.browserPage, '/local/?model=model.onnx');
    const page = await (await fetch(`${srv.url}/`)).text();
    assert.match(page, /id="browser-link"[^>]*hidden/);
    const app = await (await fetch(`${srv.url}/app.js`)).text();
    assert.match(app, /info\.browserPage/);
  });

  it('a folder that is not a built page is refused at start in one line', async () => {
    const r = spawnSync(
      process.execPath,
      [cliPath, 'serve', '--config', tinyConfigPath, '--random-weights', '--port', '0', '--web', dir],
      { encoding: 'utf8', timeout: 120_000 },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr.trim(), /^beitseg: error: --web .*: not a built browser page .*npm run build:web\)$/m);
  });
});
