/**
 * A bounded load test on 127.0.0.1: autocannon sends a fixed number of segment requests per
 * round to a `beitseg serve` child process; no request may fail, and memory must not grow from
 * round to round.
 *
 * Two checks of memory. The tensor accounting is exact: once a round's answers are in, the
 * server holds the same tensors (handles and bytes, from /metrics) as after the first round,
 * so even one tensor kept per request fails. The RSS check catches the rest (JS and native
 * heaps): a process's RSS swings with garbage not yet collected, so each round's low-water
 * mark (the RSS sampled every 20 ms, its minimum) is compared, after a warm-up that lets V8
 * size its heap and malloc's arenas settle.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import autocannon from 'autocannon';
import { encodeTestImage, spawnServer, type ChildServer } from './serve_helpers.js';

const WARMUP_REQUESTS = 240;
const ROUNDS = 4;
const REQUESTS_PER_ROUND = 60;
const CONNECTIONS = 4;
const RSS_SAMPLE_MS = 20;
const MiB = 2 ** 20;

function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status);
  assert.ok(kb, 'VmRSS in /proc status');
  return Number(kb[1]) * 1024;
}

/** The server's tensor accounting, from its Prometheus text. */
async function tensorMemory(url: string): Promise<{ handles: number; liveBytes: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (re: RegExp): number => {
    const m = re.exec(text);
    assert.ok(m, `${re} in /metrics`);
    return Number(m[1]);
  };
  return {
    handles: value(/^beitseg_tensor_handles (\d+)$/m),
    liveBytes: value(/^beitseg_tensor_cpu_bytes\{state="live"\} (\d+)$/m),
  };
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

  async function round(name: string, amount: number): Promise<number> {
    const samples: number[] = [];
    const sampler = setInterval(() => samples.push(rssBytes(srv.child.pid!)), RSS_SAMPLE_MS);
    let result: autocannon.Result;
    try {
      result = await autocannon({
        url: `${srv.url}/v1/segment?labels=rle`,
        method: 'POST',
        body: image,
        headers: { 'content-type': 'image/png' },
        connections: CONNECTIONS,
        amount,
        timeout: 30,
      });
    } finally {
      clearInterval(sampler);
    }
    samples.push(rssBytes(srv.child.pid!));
    assert.equal(result.errors, 0, `${name}: errors`);
    assert.equal(result.timeouts, 0, `${name}: timeouts`);
    assert.equal(result.non2xx, 0, `${name}: non-2xx answers`);
    assert.equal(result['2xx'], amount, `${name}: answered`);
    const low = Math.min(...samples);
    process.stderr.write(
      `load ${name}: ${result.requests.average} req/s, p50 ${result.latency.p50} ms, ` +
        `p99 ${result.latency.p99} ms, RSS low ${(low / MiB).toFixed(1)} high ` +
        `${(Math.max(...samples) / MiB).toFixed(1)} MiB\n`,
    );
    return low;
  }

  it(`${ROUNDS} rounds of ${REQUESTS_PER_ROUND} requests: none fails, memory does not grow`, async () => {
    await round('warm-up', WARMUP_REQUESTS);
    const lows: number[] = [];
    const tensors: { handles: number; liveBytes: number }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      lows.push(await round(`round ${r}`, REQUESTS_PER_ROUND));
      tensors.push(await tensorMemory(srv.url));
    }
    for (let r = 1; r < ROUNDS; r++) {
      assert.deepEqual(tensors[r], tensors[0], `round ${r}: tensors held while idle, against round 0`);
    }
    const growth = lows[ROUNDS - 1] - lows[0];
    const tolerance = Math.max(24 * MiB, 0.1 * lows[0]);
    assert.ok(
      growth < tolerance,
      `RSS low-water mark grew ${(growth / MiB).toFixed(1)} MiB over ${ROUNDS} rounds ` +
        `(${lows.map((b) => (b / MiB).toFixed(1)).join(', ')} MiB)`,
    );
  });
});
