/**
 * Every package a user installs with beitseg (the lockfile's non-dev entries, read from the
 * installed tree) accepts every Node.js version beitseg's own `engines.node` claims, so an
 * install never prints EBADENGINE (issue 30.7: cookie@2 wanted Node >= 22 through fastify).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../helpers.js';
import { engineMisfits } from './engines_check.js';

interface LockEntry {
  dev?: boolean;
  link?: boolean;
}

test("the installed runtime dependencies' engines fit beitseg's engines.node", () => {
  const ours = (
    JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } }
  ).engines.node;
  const lock = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const runtime = Object.entries(lock.packages)
    .filter(([p, e]) => p.startsWith('node_modules/') && !e.dev && !e.link)
    .map(([p]) => path.join(repoRoot, p))
    // an optional package for another platform is in the lockfile but not installed
    .filter((dir) => fs.existsSync(path.join(dir, 'package.json')));
  assert.ok(runtime.length > 20, `only ${runtime.length} installed runtime packages`);
  assert.deepEqual(engineMisfits(runtime, ours), [], `beitseg claims node ${ours}`);
});
