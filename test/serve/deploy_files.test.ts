/**
 * Static checks of the Dockerfile and the systemd unit (no container engine on the test machines):
 * a Debian base, `npm ci`, a non-root user, a HEALTHCHECK on /livez, SIGTERM to stop, the files
 * copied exist, and every `serve` option they pass is one `beitseg serve --help` lists.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../helpers.js';
import { cliPath } from './serve_helpers.js';

const read = (f: string): string => fs.readFileSync(path.join(repoRoot, f), 'utf8');
/** Continuation lines joined, comments dropped. */
const logical = (text: string): string[] =>
  text
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#'));

function serveOptions(): Set<string> {
  const help = execFileSync(process.execPath, [cliPath, 'serve', '--help'], { encoding: 'utf8' });
  return new Set([...help.matchAll(/(--[a-z][a-z-]*)/g)].map((m) => m[1]));
}

describe('deployment files', () => {
  const options = serveOptions();

  it('Dockerfile: Debian base, npm ci, non-root user, HEALTHCHECK on /livez', () => {
    const lines = logical(read('Dockerfile'));
    const froms = lines.filter((l) => /^FROM /.test(l));
    assert.ok(froms.length >= 1);
    for (const f of froms) assert.match(f, /bookworm|debian/, `${f}: a Debian base`);
    assert.ok(
      lines.some((l) => /^RUN .*\bnpm ci\b/.test(l)),
      'npm ci',
    );
    const users = lines.filter((l) => /^USER /.test(l));
    assert.equal(users.length, 1);
    assert.doesNotMatch(users[0], /^USER\s+(root|0)(\s|:|$)/);
    const user = users[0].split(/\s+/)[1];
    assert.ok(
      lines.some((l) => l.includes(`useradd`) && l.includes(user)),
      `user ${user} created`,
    );
    const hc = lines.find((l) => /^HEALTHCHECK /.test(l));
    assert.ok(hc?.includes('/livez'), 'HEALTHCHECK probes /livez');
    assert.ok(lines.some((l) => /^STOPSIGNAL SIGTERM/.test(l)));
    // every COPY source of the build stage exists in the repository
    for (const l of lines.filter((x) => /^COPY (?!--from)/.test(x))) {
      for (const src of l.split(/\s+/).slice(1, -1)) {
        if (src === '.') continue;
        assert.ok(fs.existsSync(path.join(repoRoot, src)), `COPY source ${src} exists`);
      }
    }
    for (const l of lines.filter((x) => /^COPY --from=build/.test(x))) {
      const src = l
        .split(/\s+/)
        .filter((w) => w.startsWith('/app/'))[0]
        .slice('/app/'.length);
      const built = ['node_modules', 'dist/src', 'native/build/beitseg.node'].some((b) => src.startsWith(b));
      assert.ok(built || fs.existsSync(path.join(repoRoot, src)), `COPY --from=build ${src}`);
    }
  });

  it('the systemd unit runs serve with options that exist, stops with SIGTERM and waits past the drain', () => {
    const lines = logical(read('deploy/beitseg-serve.service'));
    const exec = lines.find((l) => l.startsWith('ExecStart='));
    assert.ok(exec?.includes(' serve '), 'ExecStart runs serve');
    for (const opt of exec!.match(/--[a-z][a-z-]*/g) ?? []) assert.ok(options.has(opt), `${opt} is a serve option`);
    assert.ok(lines.includes('KillSignal=SIGTERM'));
    const drain = Number(/--drain-timeout-s (\d+)/.exec(exec!)?.[1]);
    const stop = Number(/^TimeoutStopSec=(\d+)/m.exec(lines.join('\n'))?.[1]);
    assert.ok(stop > drain, `TimeoutStopSec ${stop} > --drain-timeout-s ${drain}`);
    assert.ok(
      lines.some((l) => /^User=(?!root)/.test(l)),
      'a non-root user',
    );
  });
});
