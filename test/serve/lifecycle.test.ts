/**
 * `beitseg serve` as a child process: the queue limit answers 503 with Retry-After over HTTP,
 * and SIGTERM finishes the request in flight, refuses new ones with 503 and exits 0.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { encodeTestImage, post, spawnServer, waitFor, type ChildServer } from './serve_helpers.js';

describe('beitseg serve process', () => {
  let srv: ChildServer;
  let big: Buffer;
  let small: Buffer;

  before(async () => {
    // 600x600 on the tiny model's 64-pixel windows: 13x13 windows, long enough to act while it computes
    big = await encodeTestImage(600, 600);
    small = await encodeTestImage(64, 64);
    srv = await spawnServer(['--queue', '1']);
  });
  after(() => {
    if (srv.child.exitCode === null) srv.child.kill('SIGKILL');
  });

  it('answers 503 with Retry-After when the queue is full, then SIGTERM drains and exits 0', async () => {
    const inFlight = post(`${srv.url}/v1/segment?labels=none`, big);
    await waitFor(
      async () => ((await (await fetch(`${srv.url}/health`)).json()) as { queue: number }).queue === 1,
      'the big request to be queued',
    );
    const full = await post(`${srv.url}/v1/segment`, small);
    assert.equal(full.status, 503);
    assert.equal(full.headers.get('retry-after'), '1');
    assert.match(((await full.json()) as { error: string }).error, /queue full \(1 requests\)/);

    srv.child.kill('SIGTERM');
    await waitFor(async () => (await fetch(`${srv.url}/health`)).status === 503, 'the server to start draining');
    const refused = await post(`${srv.url}/v1/segment`, small);
    assert.equal(refused.status, 503);
    assert.match(((await refused.json()) as { error: string }).error, /shutting down/);

    const finished = await inFlight;
    assert.equal(finished.status, 200, 'the request in flight is finished');
    const body = (await finished.json()) as { width: number; height: number; classes: unknown[] };
    assert.deepEqual([body.width, body.height], [600, 600]);
    assert.ok(body.classes.length > 0);
    assert.equal(await srv.exited, 0, srv.stderr());
    assert.match(srv.stderr(), /SIGTERM: finishing the requests in flight/);
  });
});
