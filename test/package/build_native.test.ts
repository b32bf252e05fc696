/**
 * The install step's native build (scripts/build-native.mjs) as npm runs it (issue 24.3, 30.9):
 * with BEITSEG_NATIVE=0, or where the addon cannot be built, the install still succeeds and says
 * in one line what needs the addon and how to build it; each stage reaches the terminal even
 * though npm captures the script's output (written to /dev/tty, here a pseudo-terminal from
 * util-linux's `script`), and native/build/build.log. Runs on a copy of the package, so this
 * checkout's addon is never touched.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot } from '../helpers.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

const NEEDS =
  /training, libtorch inference and distributed runs need it; ONNX inference works without it\. .*npm rebuild beitseg/;

describe('build-native.mjs at install', () => {
  let pkg = '';
  before(() => {
    pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-build-native-'));
    for (const e of ['package.json', 'scripts/build-native.mjs', 'native/src', 'native/shim'])
      fs.cpSync(path.join(repoRoot, e), path.join(pkg, e), { recursive: true });
    fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(pkg, 'node_modules'), 'dir');
  });
  after(() => fs.rmSync(pkg, { recursive: true, force: true }));

  it('BEITSEG_NATIVE=0 skips the build with one line and exit 0', async () => {
    const r = await run(process.execPath, ['scripts/build-native.mjs', '--optional'], pkg, { BEITSEG_NATIVE: '0' });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /native addon skipped \(BEITSEG_NATIVE=0\)/);
    assert.match(lines[0]!, NEEDS);
    assert.ok(!fs.existsSync(path.join(pkg, 'native', 'build', 'beitseg.node')));
  });

  it('an impossible build: the install goes on (exit 0) with the reason in one line; build:native fails', async () => {
    const env = { LIBTORCH: path.join(pkg, 'no-libtorch') };
    const optional = await run(process.execPath, ['scripts/build-native.mjs', '--optional'], pkg, env);
    assert.equal(optional.code, 0, optional.stderr);
    const last = optional.stderr.trimEnd().split('\n').at(-1)!;
    assert.match(last, /native addon not built \(LIBTORCH=.*no-libtorch: no include\/ATen\/ATen\.h there\): /);
    assert.match(last, NEEDS);
    const required = await run(process.execPath, ['scripts/build-native.mjs', '--optional'], pkg, {
      ...env,
      BEITSEG_NATIVE: '1',
    });
    assert.equal(required.code, 1);
    const direct = await run(process.execPath, ['scripts/build-native.mjs'], pkg, env);
    assert.equal(direct.code, 1);
    assert.match(direct.stderr, /failed: LIBTORCH=/);
  });

  it('each stage reaches the terminal while stdout and stderr are captured, and the log file', async () => {
    fs.rmSync(path.join(pkg, 'native', 'build'), { recursive: true, force: true });
    // as under npm: the script's stdout and stderr go to files, the terminal only sees /dev/tty
    const inner = `node scripts/build-native.mjs --optional >${pkg}/out.txt 2>${pkg}/err.txt`;
    const r = await run('script', ['-qec', inner, '/dev/null'], pkg, { LIBTORCH: path.join(pkg, 'no-libtorch') });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\[beitseg build-native\] checking for g\+\+ and libtorch/);
    assert.match(r.stdout, /\[beitseg build-native\] native addon not built/);
    const log = fs.readFileSync(path.join(pkg, 'native', 'build', 'build.log'), 'utf8');
    assert.match(log, /checking for g\+\+ and libtorch/);
    assert.match(log, /native addon not built/);
  });
});
