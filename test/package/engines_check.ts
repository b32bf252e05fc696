/** Which installed packages' `engines.node` do not accept every Node.js version beitseg claims. */
import fs from 'node:fs';
import path from 'node:path';
import semver from 'semver';

/** Every package folder under `root`/node_modules, nested ones included. */
export function installedPackages(root: string): string[] {
  const out: string[] = [];
  const walk = (nm: string): void => {
    if (!fs.existsSync(nm)) return;
    for (const name of fs.readdirSync(nm)) {
      if (name.startsWith('.')) continue;
      const dirs = name.startsWith('@')
        ? fs.readdirSync(path.join(nm, name)).map((n) => path.join(nm, name, n))
        : [path.join(nm, name)];
      for (const d of dirs) {
        if (!fs.existsSync(path.join(d, 'package.json'))) continue;
        out.push(d);
        walk(path.join(d, 'node_modules'));
      }
    }
  };
  walk(path.join(root, 'node_modules'));
  return out;
}

/** "name@version (folder) wants node R" for each package in `dirs` whose range does not contain all of `ours`. */
export function engineMisfits(dirs: readonly string[], ours: string): string[] {
  const misfits: string[] = [];
  for (const dir of dirs) {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
      name: string;
      version: string;
      engines?: { node?: unknown };
    };
    const node = pkg.engines?.node;
    if (typeof node !== 'string') continue;
    if (!semver.validRange(node) || !semver.subset(ours, node))
      misfits.push(`${pkg.name}@${pkg.version} (${dir}) wants node ${node}`);
  }
  return misfits;
}
