/**
 * Every package a user installs with beitseg (the lockfile's non-dev entries, read from the
 * installed tree) accepts every Node.js version beitseg's own `engines.node` claims, so an
 * install never prints EBADENGINE (issue 30.7: cookie@2 wanted Node >= 22 through fastify).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import semver from 'semver';
import { repoRoot } from '../helpers.js';

interface LockEntry {
  dev?: boolean;
  optional?: boolean;
  link?: boolean;
}

test("the installed runtime dependencies' engines fit beitseg's engines.node", () => {
  const ours = (
    JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } }
  ).engines.node;
  const lock = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const runtime = Object.entries(lock.packages).filter(([p, e]) => p.startsWith('node_modules/') && !e.dev && !e.link);
  assert.ok(runtime.length > 20, `only ${runtime.length} runtime packages in the lockfile`);
  const misfits: string[] = [];
  let checked = 0;
  for (const [p] of runtime) {
    const file = path.join(repoRoot, p, 'package.json');
    if (!fs.existsSync(file)) continue; // an optional package for another platform
    const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name: string; version: string; engines?: unknown };
    checked++;
    const node = (pkg.engines as { node?: unknown } | undefined)?.node;
    if (typeof node !== 'string') continue;
    if (!semver.validRange(node) || !semver.subset(ours, node, { includePrerelease: false }))
      misfits.push(`${pkg.name}@${pkg.version} (${p}) wants node ${node}`);
  }
  assert.ok(checked > 20, `only ${checked} installed runtime packages found`);
  assert.deepEqual(misfits, [], `beitseg claims node ${ours}`);
});
