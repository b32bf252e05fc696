/**
 * Issue 28 item 3 (the refusal branch): `train --resume` on an mmengine work dir (last_checkpoint,
 * iter_N.pth) or on an mmengine .pth used to start silently from iteration 0; it is refused with
 * the --load-from command that starts from its weights.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mmengineCheckpointOf, refuseMmengineResume } from '../../src/engine/mmengine_work_dir.js';
import { repoRoot } from '../helpers.js';

const fixture = path.join(repoRoot, 'test', 'fixtures', 'checkpoint', 'mmengine_runner.pth');

test('an mmengine work dir is recognised by last_checkpoint or iter_N.pth, and resuming it is refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-mmwd-'));
  try {
    assert.equal(mmengineCheckpointOf(dir), null);
    fs.copyFileSync(fixture, path.join(dir, 'iter_4.pth'));
    fs.copyFileSync(fixture, path.join(dir, 'iter_12.pth'));
    assert.equal(mmengineCheckpointOf(dir), path.join(dir, 'iter_12.pth'));
    // mmengine's last_checkpoint names the file by the path it had when written
    fs.writeFileSync(path.join(dir, 'last_checkpoint'), '/gone/work_dirs/run/iter_4.pth');
    assert.equal(mmengineCheckpointOf(dir), path.join(dir, 'iter_4.pth'));
    assert.throws(
      () => refuseMmengineResume(dir),
      /--resume: .* is an mmengine work dir or checkpoint \(iter_4\.pth\); .* --load-from .*iter_4\.pth/,
    );
    assert.throws(() => refuseMmengineResume(path.join(dir, 'iter_12.pth')), /--load-from .*iter_12\.pth/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('train --resume on an mmengine work dir ends in that one-line error, before any training', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-mmwd-'));
  try {
    fs.copyFileSync(fixture, path.join(dir, 'iter_8.pth'));
    fs.writeFileSync(path.join(dir, 'last_checkpoint'), path.join(dir, 'iter_8.pth'));
    const bin = path.join(repoRoot, 'bin', 'beitseg.js');
    const config = path.join(repoRoot, 'configs', 'tiny_synthetic.json');
    for (const resume of [[], [dir]]) {
      const args = [bin, 'train', '--config', config, '--work-dir', dir, '--device', 'cpu', '--resume', ...resume];
      const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /is an mmengine work dir or checkpoint \(iter_8\.pth\).*--load-from .*iter_8\.pth/);
      assert.ok(!fs.readdirSync(dir).some((f) => f.startsWith('iter_') && !f.endsWith('.pth')), 'nothing was trained');
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
