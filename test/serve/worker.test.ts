/**
 * Issue 29 item 1 and issue 25 item 8 on `beitseg serve` as a child process: the model computes
 * in a worker thread, so /livez and /health answer within 100 ms while a long request computes
 * (fails on the build that computed on the event loop: /health waited for the forward passes);
 * a deadline and a client disconnect stop the work between windows (the queue empties long
 * before the request would have finished); a trickled body is cut by the body timeout.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { encodeTestImage, pngDeclaring, post, spawnServer, type ChildServer } from './serve_helpers.js';

async function timedGet(url: string): Promise<{ ms: number; status: number }> {
  const t = performance.now();
  const r = await fetch(url);
  await r.arrayBuffer();
  return { ms: performance.now() - t, status: r.status };
}

async function depth(url: string): Promise<number> {
  return ((await (await fetch(`${url}/health`)).json()) as { queue: number }).queue;
}

describe('serve: inference off the event loop', () => {
  let srv: ChildServer;
  let big: Buffer;
  let wide: Buffer;
  before(async () => {
    wide = await encodeTestImage(800, 800);
    // 600x600 on the tiny model's 64-pixel windows: 169 windows, a few seconds of compute
    big = await encodeTestImage(600, 600);
    srv = await spawnServer(['--timeout-s', '60']);
  });
  after(() => {
    srv.child.kill('SIGKILL');
  });

  it('/livez and /health answer within 100 ms while a long request computes', async () => {
    let finished = false;
    // one long forward pass (whole image): nothing to interleave with unless it runs off the event loop
    const inFlight = post(`${srv.url}/v1/segment?labels=none&mode=whole`, wide).then((r) => {
      finished = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 400));
    const samples: number[] = [];
    for (let i = 0; i < 10 && !finished; i++) {
      for (const probe of ['/livez', '/health']) {
        const { ms, status } = await timedGet(`${srv.url}${probe}`);
        samples.push(ms);
        assert.ok(ms < 100, `${probe} took ${ms.toFixed(0)} ms while the model computed`);
        assert.equal(status, 200, probe);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(samples.length >= 4, `the request finished before the probes ran (${samples.length} samples)`);
    assert.ok(!finished || samples.length >= 10, 'the probes ran while the request computed');
    assert.ok(Math.max(...samples) < 100, `probe latencies ${samples.map((s) => s.toFixed(0)).join(', ')} ms`);
    assert.equal((await inFlight).status, 200);
  });

  it('a mode=whole image over the pixel budget is refused from its header (issue 25: 3000x3000 bomb)', async () => {
    const t0 = Date.now();
    const r = await post(`${srv.url}/v1/segment?mode=whole`, pngDeclaring(3000, 3000));
    assert.equal(r.status, 400);
    assert.match(((await r.json()) as { error: string }).error, /over the mode=whole budget .*--max-pixels-whole/);
    assert.ok(Date.now() - t0 < 2000, `refused after ${Date.now() - t0} ms`);
  });

  it('a client disconnect stops the work between windows', async () => {
    const aborter = new AbortController();
    const gone = fetch(`${srv.url}/v1/segment?labels=none`, { method: 'POST', body: big, signal: aborter.signal });
    const start = Date.now();
    while ((await depth(srv.url)) !== 1) {
      assert.ok(Date.now() - start < 10_000, 'the request was never admitted');
      await new Promise((r) => setTimeout(r, 10));
    }
    aborter.abort();
    await assert.rejects(gone, { name: 'AbortError' });
    const t0 = Date.now();
    while ((await depth(srv.url)) !== 0) {
      assert.ok(Date.now() - t0 < 1500, 'the worker kept computing after the client left');
      await new Promise((r) => setTimeout(r, 10));
    }
  });

  describe('serve: deadlines stop the work', () => {
    it('a request past --timeout-s answers 504 at once and the worker stops between windows', async () => {
      // 1200x1200: about 600 windows, many seconds of compute, far past the 1 s deadline
      const srv = await spawnServer(['--timeout-s', '1', '--max-windows', '5000']);
      try {
        const big = await encodeTestImage(1200, 1200);
        const t0 = Date.now();
        const r = await post(`${srv.url}/v1/segment?labels=none`, big);
        const answeredMs = Date.now() - t0;
        assert.equal(r.status, 504);
        assert.ok(answeredMs < 2500, `504 after ${answeredMs} ms`);
        while ((await depth(srv.url)) !== 0) {
          assert.ok(Date.now() - t0 < 3000, 'the worker kept computing after the deadline');
          await new Promise((res) => setTimeout(res, 10));
        }
      } finally {
        srv.child.kill('SIGKILL');
      }
    });
  });

  describe('serve: body timeout', () => {
    it('a trickled body is cut by the body timeout', async () => {
      const srv = await spawnServer(['--body-timeout-s', '1']);
      const u = new URL(srv.url);
      const sock = net.connect(Number(u.port), u.hostname);
      await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
      sock.write('POST /v1/segment HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n');
      const t0 = Date.now();
      const closed = new Promise<number>((resolve) => sock.once('close', () => resolve(Date.now() - t0)));
      sock.on('error', () => {});
      const trickle = setInterval(() => {
        if (!sock.destroyed) sock.write('x');
      }, 200);
      const ms = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 6000))]);
      clearInterval(trickle);
      sock.destroy();
      srv.child.kill('SIGKILL');
      assert.ok(ms > 0, 'the connection was still open after 6 s (body timeout 1 s)');
    });
  });
});
