/**
 * A bounded load test on 127.0.0.1: autocannon sends a fixed number of segment requests per
 * round to a `beitseg serve` child process; no request may fail, and the server's resident
 * memory must not keep growing from round to round.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import autocannon from 'autocannon';
import { encodeTestImage, spawnServer, type ChildServer } from './serve_helpers.js';

const ROUNDS = 4;
const REQUESTS_PER_ROUND = 60;
const CONNECTIONS = 4;

function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status);
  assert.ok(kb, 'VmRSS in /proc status');
  return Number(kb[1]) * 1024;
}

describe('beitseg serve under load', () => {
  let srv: ChildServer;
  let image: Buffer;

  before(async () => {
    image = await encodeTestImage(64, 64);
    srv = await spawnServer(['--queue', String(CONNECTIONS * 2), '--window-batch', '4']);
  });
  after(() => {
    if (srv.child.exitCode === null) srv.child.kill('SIGKILL');
  });

  it(`${ROUNDS} rounds of ${REQUESTS_PER_ROUND} requests: none fails, memory does not grow`, async () => {
    const rss: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const result = await autocannon({
        url: `${srv.url}/v1/segment?labels=rle`,
        method: 'POST',
        body: image,
        headers: { 'content-type': 'image/png' },
        connections: CONNECTIONS,
        amount: REQUESTS_PER_ROUND,
        timeout: 30,
      });
      assert.equal(result.errors, 0, `round ${round}: errors`);
      assert.equal(result.timeouts, 0, `round ${round}: timeouts`);
      assert.equal(result.non2xx, 0, `round ${round}: non-2xx answers`);
      assert.equal(result['2xx'], REQUESTS_PER_ROUND, `round ${round}: answered`);
      rss.push(rssBytes(srv.child.pid!));
      process.stderr.write(
        `load round ${round}: ${result.requests.average} req/s, p50 ${result.latency.p50} ms, ` +
          `p99 ${result.latency.p99} ms, RSS ${(rss[round] / 2 ** 20).toFixed(1)} MiB\n`,
      );
    }
    // round 0 warms up (allocator caches, JIT); later rounds must stay within a tolerance of round 1
    const growth = rss[ROUNDS - 1] - rss[1];
    const tolerance = Math.max(24 * 2 ** 20, 0.1 * rss[1]);
    assert.ok(
      growth < tolerance,
      `RSS grew ${(growth / 2 ** 20).toFixed(1)} MiB from round 1 to ${ROUNDS - 1} ` +
        `(${rss.map((b) => (b / 2 ** 20).toFixed(1)).join(', ')} MiB)`,
    );
  });
});
