/**
 * Issue 29 items 2-4 and issue 25 item 8 on `beitseg serve` as a child process: the serving
 * policy (400 with the reason), request ids and the one-line request log, CORS, /openapi.json
 * (its examples run), /v1/model's weights and version, memory given back after a large request,
 * the drain timeout with 503 during the drain, and SIGHUP ignored.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { rescaleSize } from '../../src/data/transforms/resize.js';
import { slideWindows } from '../../src/models/segmentors/slide_job.js';
import {
  encodeTestImage,
  pngDeclaring,
  post,
  rssOf,
  spawnServer,
  tinyWeights,
  waitFor,
  type ChildServer,
} from './serve_helpers.js';

const errorOf = async (r: Response): Promise<string> => ((await r.json()) as { error: string }).error;

describe('serve policy, request ids, CORS, OpenAPI', () => {
  let srv: ChildServer;
  let small: Buffer;
  before(async () => {
    small = await encodeTestImage(64, 64);
    srv = await spawnServer([
      '--log',
      '--allow-modes',
      'slide',
      '--no-allow-tta',
      '--max-windows',
      '20',
      '--cors',
      'https://app.example',
    ]);
  });
  after(() => {
    srv.child.kill('SIGKILL');
  });

  it('refuses what the policy forbids with 400 and the reason', async () => {
    const whole = await post(`${srv.url}/v1/segment?mode=whole`, small);
    assert.equal(whole.status, 400);
    assert.match(await errorOf(whole), /mode=whole is not allowed .*--allow-modes slide/);
    const tta = await post(`${srv.url}/v1/segment?tta=true`, small);
    assert.equal(tta.status, 400);
    assert.match(await errorOf(tta), /tta is not allowed/);
    // the header alone decides (a bomb header: no pixel data behind it)
    const info = (await (await fetch(`${srv.url}/v1/model`)).json()) as {
      config: { testCfg: { crop_size: [number, number]; stride: [number, number] }; testResize: [number, number] };
    };
    const { crop_size: crop, stride } = info.config.testCfg;
    const [w, h] = info.config.testResize ? rescaleSize(600, 600, info.config.testResize) : [600, 600];
    const windows = slideWindows(h, w, crop, stride).length;
    const many = await post(`${srv.url}/v1/segment`, pngDeclaring(600, 600));
    assert.equal(many.status, 400);
    assert.equal(
      await errorOf(many),
      `image 600x600 needs ${windows} slide windows, over the budget of 20 (--max-windows)`,
    );
    assert.equal((await post(`${srv.url}/v1/segment?labels=none`, small)).status, 200);
  });

  it('takes or makes X-Request-Id, returns it and logs one JSON line per request', async () => {
    const given = await post(`${srv.url}/v1/segment?labels=none`, small, { 'x-request-id': 'abc-123' });
    assert.equal(given.headers.get('x-request-id'), 'abc-123');
    const made = await fetch(`${srv.url}/livez`, { headers: { 'x-request-id': 'bad id\twith spaces' } });
    assert.match(made.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/);
    const refused = await post(`${srv.url}/v1/segment?tta=1`, small, { 'x-request-id': 'refused-1' });
    assert.equal(refused.status, 400);
    await waitFor(async () => srv.stdout().includes('"refused-1"'), 'the log line of the refused request');
    const lines = srv
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const ok = lines.filter((l) => l.reqId === 'abc-123');
    assert.equal(ok.length, 1, 'one line per request');
    assert.equal(ok[0].status, 200);
    assert.equal(ok[0].route, '/v1/segment');
    assert.equal(typeof ok[0].queueMs, 'number');
    assert.ok((ok[0].computeMs as number) >= 0);
    const bad = lines.find((l) => l.reqId === 'refused-1')!;
    assert.equal(bad.status, 400);
    assert.match(String(bad.reason), /tta is not allowed/);
  });

  it('CORS: only the --cors origin, with a preflight answer', async () => {
    const r = await fetch(`${srv.url}/v1/model`);
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.example');
    const pre = await fetch(`${srv.url}/v1/segment`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(pre.status, 204);
    assert.match(pre.headers.get('access-control-allow-methods')!, /POST/);
  });

  it('/openapi.json describes the routes as validated, and its examples run', async () => {
    const doc = (await (await fetch(`${srv.url}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { parameters: { name: string; schema: { enum?: string[] } }[] }>>;
    };
    assert.equal(doc.openapi, '3.0.3');
    for (const p of ['/v1/segment', '/v1/model', '/livez', '/readyz', '/health', '/metrics'])
      assert.ok(doc.paths[p], `${p} documented`);
    const seg = doc.paths['/v1/segment'].post as unknown as {
      parameters: { name: string; schema: { enum?: string[] } }[];
      requestBody: { content: Record<string, unknown> };
      'x-examples': string[];
    };
    assert.deepEqual(seg.parameters.map((p) => p.name).sort(), ['format', 'labels', 'mode', 'opacity', 'tta']);
    assert.deepEqual(seg.parameters.find((p) => p.name === 'format')!.schema.enum, ['json', 'label', 'overlay']);
    assert.ok(seg.requestBody.content['multipart/form-data']);
    for (const example of seg['x-examples']) {
      const r = await post(`${srv.url}${example}`, small);
      assert.equal(r.status, 200, `${example}: ${r.status}`);
    }
    // a parameter the document does not list is refused, as the schema says
    assert.equal((await post(`${srv.url}/v1/segment?colour=red`, small)).status, 400);
  });

  it('/v1/model names the weights file with its size and sha256, and the version', async () => {
    const info = (await (await fetch(`${srv.url}/v1/model`)).json()) as {
      weights: { file: string; bytes: number; sha256: string };
      version: string;
    };
    const bytes = fs.readFileSync(tinyWeights);
    assert.equal(info.weights.file, 'segmentor_state_dict.safetensors');
    assert.equal(info.weights.bytes, bytes.length);
    assert.equal(info.weights.sha256, crypto.createHash('sha256').update(bytes).digest('hex'));
    const pkg = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    assert.equal(info.version, pkg.version);
  });

  it('/readyz is ready; /livez is alive', async () => {
    assert.deepEqual(await (await fetch(`${srv.url}/livez`)).json(), { status: 'ok' });
    const ready = await fetch(`${srv.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { status: string }).status, 'ok');
  });
});

describe('serve memory after a large request', () => {
  it('RSS returns near its level before the request within 3 s', async () => {
    const srv = await spawnServer([]);
    try {
      const pid = srv.child.pid!;
      await post(`${srv.url}/v1/segment?labels=none`, await encodeTestImage(64, 64));
      await new Promise((r) => setTimeout(r, 1500));
      const base = rssOf(pid);
      let peak = base;
      const sampler = setInterval(() => {
        peak = Math.max(peak, rssOf(pid));
      }, 50);
      const r = await post(`${srv.url}/v1/segment?labels=none&mode=whole`, await encodeTestImage(700, 700));
      clearInterval(sampler);
      assert.equal(r.status, 200);
      assert.ok(peak - base > 100e6, `the request should grow RSS (base ${base}, peak ${peak})`);
      await new Promise((res) => setTimeout(res, 3000));
      const rest = rssOf(pid);
      const mb = (n: number): string => `${(n / 1e6).toFixed(0)} MB`;
      assert.ok(
        rest - base < Math.max(80e6, 0.3 * (peak - base)),
        `RSS before ${mb(base)}, peak ${mb(peak)}, 3 s after ${mb(rest)}`,
      );
    } finally {
      srv.child.kill('SIGKILL');
    }
  });
});

describe('serve drain timeout and signals', () => {
  it('SIGHUP is ignored; SIGTERM answers 503 during the drain and gives up after --drain-timeout-s', async () => {
    const srv = await spawnServer(['--drain-timeout-s', '1', '--timeout-s', '60']);
    try {
      srv.child.kill('SIGHUP');
      await waitFor(async () => srv.stderr().includes('SIGHUP ignored'), 'the SIGHUP note');
      assert.equal(srv.child.signalCode, null, 'alive after SIGHUP');
      assert.equal((await fetch(`${srv.url}/livez`)).status, 200, 'alive after SIGHUP');
      const straggler = post(`${srv.url}/v1/segment?labels=none&mode=whole`, await encodeTestImage(800, 800)).then(
        (r) => r.status,
        () => 'reset',
      );
      await waitFor(
        async () => ((await (await fetch(`${srv.url}/health`)).json()) as { queue: number }).queue === 1,
        'the straggler to be admitted',
      );
      const t0 = Date.now();
      srv.child.kill('SIGTERM');
      await waitFor(async () => (await fetch(`${srv.url}/readyz`)).status === 503, 'the drain');
      const during = await post(`${srv.url}/v1/segment`, await encodeTestImage(64, 64));
      assert.equal(during.status, 503);
      assert.match(await errorOf(during), /shutting down/);
      await srv.exited;
      assert.equal(srv.child.signalCode, 'SIGKILL', 'ended by the drain timeout');
      assert.ok(Date.now() - t0 < 4000, `exited ${Date.now() - t0} ms after SIGTERM`);
      assert.match(srv.stderr(), /drain timeout \(1 s\): 1 requests unfinished/);
      assert.equal(await straggler, 'reset');
    } finally {
      if (srv.child.exitCode === null) srv.child.kill('SIGKILL');
    }
  });
});
