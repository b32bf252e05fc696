/**
 * The caching CPU allocator (native/src/cpu_allocator.cc), observed through cpuCache():
 * freed large blocks are kept and reused, and the cache never lifts live + cached bytes above
 * the most that was ever live at once. Runs in a child process so that the peak it starts
 * from is this scenario's own.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const MB = 1 << 20;

function runScenario(script: string, env: Record<string, string>): Record<string, number> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const indexUrl = pathToFileURL(path.resolve(here, '../../src/tensor/index.js')).href;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-alloc-'));
  const file = path.join(dir, 'scenario.mjs');
  fs.writeFileSync(file, `import * as T from ${JSON.stringify(indexUrl)};\n${script}`);
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(r.status, 0, `child exit ${r.status} (${r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, number>;
}

// float32 tensors of `mb` MiB, allocated and freed one by one; cpuCache() reads cached bytes.
const scenario = `
  const mb = (n) => T.empty([n * 262144]);
  const out = {};
  const a = mb(64), b = mb(64);
  a.fill_(1); b.fill_(1);
  out.beforeFree = T.cpuCache();
  a.dispose(); b.dispose();
  out.afterFree = T.cpuCache();
  const again = mb(64);             // same size: served from the cache
  out.afterReuse = T.cpuCache();
  again.dispose();
  const big = mb(160);              // a miss: 128 MiB cached + 160 would pass the 128 MiB peak
  out.whileBig = T.cpuCache();
  big.dispose();
  out.afterBig = T.cpuCache();
  const small = mb(64);             // 64 MiB no longer fits a 160 MiB block within 2x
  out.whileSmall = T.cpuCache();
  small.dispose();
  out.released = T.cpuCache(true);
  process.stdout.write(JSON.stringify(out));
`;

describe('caching CPU allocator', () => {
  it('reuses freed blocks and never holds more than the live peak', () => {
    const r = runScenario(scenario, { BEITSEG_CPU_CACHE_MB: '4096' });
    assert.equal(r.beforeFree, 0);
    // two 64 MiB blocks, each rounded up to whole 2 MiB huge pages
    assert.ok(r.afterFree >= 128 * MB && r.afterFree <= 132 * MB, `cached after free: ${r.afterFree}`);
    assert.equal(r.afterReuse, r.afterFree / 2, 'one block handed out again');
    // keeping both 64 MiB blocks beside the new 160 MiB one would raise the footprint from
    // the 128 MiB peak to 288: both are given back first
    assert.equal(r.whileBig, 0);
    assert.ok(r.afterBig >= 160 * MB && r.afterBig <= 162 * MB, `cached after the 160 MiB block: ${r.afterBig}`);
    // footprint 160 + 64 > the 160 MiB peak: the idle block goes
    assert.equal(r.whileSmall, 0);
    assert.equal(r.released, 0);
  });

  it('BEITSEG_CPU_CACHE_SLACK_MB lets the footprint pass the live peak by that much', () => {
    const r = runScenario(scenario, { BEITSEG_CPU_CACHE_MB: '4096', BEITSEG_CPU_CACHE_SLACK_MB: '1024' });
    assert.equal(r.whileBig, r.afterFree, 'both 64 MiB blocks stay cached beside the 160 MiB one');
    assert.ok(
      r.afterBig >= r.afterFree + 160 * MB && r.afterBig <= r.afterFree + 162 * MB,
      `all three blocks cached: ${r.afterBig}`,
    );
    assert.equal(r.whileSmall, r.afterBig - r.afterFree / 2, 'a cached 64 MiB block serves the next 64 MiB request');
    assert.equal(r.released, 0);
  });

  it('caches nothing with BEITSEG_CPU_CACHE_MB=0', () => {
    const r = runScenario(scenario, { BEITSEG_CPU_CACHE_MB: '0' });
    for (const [k, v] of Object.entries(r)) assert.equal(v, 0, k);
  });

  it('cpuMemory() counts live tensor bytes and handles, small and large, until disposed', () => {
    const r = runScenario(
      `
      const before = T.cpuMemory();
      const small = T.empty([1000]), large = T.empty([3 * 262144]); // 4000 B, 3 MiB
      const during = T.cpuMemory();
      small.dispose(); large.dispose();
      const after = T.cpuMemory();
      process.stdout.write(JSON.stringify({
        liveDuring: during.liveBytes - before.liveBytes, liveAfter: after.liveBytes - before.liveBytes,
        handlesDuring: during.tensorHandles - before.tensorHandles,
        handlesAfter: after.tensorHandles - before.tensorHandles,
        cachedAfter: after.cachedBytes - before.cachedBytes, trimmed: T.trimHeap() ? 1 : 0,
      }));`,
      { BEITSEG_CPU_CACHE_MB: '4096' },
    );
    // the large block is rounded up to whole 2 MiB huge pages, less the allocator's header
    assert.ok(r.liveDuring >= 4000 + 3 * MB && r.liveDuring <= 4000 + 4 * MB, `live bytes: ${r.liveDuring}`);
    assert.equal(r.handlesDuring, 2);
    assert.equal(r.liveAfter, 0);
    assert.equal(r.handlesAfter, 0);
    assert.ok(r.cachedAfter >= 3 * MB, `the large block is cached: ${r.cachedAfter}`);
    assert.equal(r.trimmed, 1, 'glibc heap trimmed');
  });
});
