/** The package's version, read from its package.json (one place to bump). */
import fs from 'node:fs';

function readVersion(): string {
  // dist/src/cli/version.js and src/cli/version.ts both sit three folders below package.json
  const file = new URL('../../../package.json', import.meta.url);
  const alt = new URL('../../package.json', import.meta.url);
  for (const f of [file, alt]) {
    try {
      const pkg = JSON.parse(fs.readFileSync(f, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'beitseg' && pkg.version) return pkg.version;
    } catch {
      /* try the next place */
    }
  }
  return 'unknown';
}

export const VERSION = readVersion();
