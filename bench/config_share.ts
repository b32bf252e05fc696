/**
 * How much of an mmseg config tree beitseg reads (not a test; issue 28's measurement):
 *
 *   node dist/bench/config_share.js CONFIGS_DIR [--python]
 *
 * Resolves every `.py` file under CONFIGS_DIR (mmseg's `configs/`, `_base_` files included) with
 * the loader print-config uses, prints the count and the refusals grouped by reason. With
 * --python, also writes each resolving config outside `_base_` with `print-config --format py`'s
 * writer and has /usr/bin/python3 execute the dump: its values (floats and tuples told apart)
 * must equal beitseg's. Prints one JSON summary line last.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readConfigFile } from '../src/config/load.js';
import { dumpPython } from '../src/config/py_dump.js';
import { pythonValues, taggedJson } from '../test/config/py_json.js';

function pyFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.py'))
    .map((f) => path.join(dir, f))
    .sort();
}

async function main(): Promise<void> {
  const [root, flag] = process.argv.slice(2);
  if (!root) throw new Error('usage: node dist/bench/config_share.js CONFIGS_DIR [--python]');
  const files = pyFiles(root);
  const refusals = new Map<string, number>();
  const resolved: string[] = [];
  for (const f of files) {
    try {
      readConfigFile(f, { env: {} });
      resolved.push(f);
    } catch (err) {
      const reason = (err as Error).message.replace(/^.*?\.py(?::\d+)?: /, '').slice(0, 100);
      refusals.set(reason, (refusals.get(reason) ?? 0) + 1);
      console.log(`refused ${path.relative(root, f)}: ${(err as Error).message}`);
    }
  }
  let dumped = 0;
  let pythonEqual = 0;
  if (flag === '--python') {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-share-'));
    for (const f of resolved.filter((x) => !x.includes(`${path.sep}_base_${path.sep}`))) {
      const rich = readConfigFile(f, { env: {}, pyTypes: true });
      const out = path.join(tmp, `dump${dumped++}.py`);
      fs.writeFileSync(out, dumpPython(rich));
      if ((await pythonValues(out)) === taggedJson(rich)) pythonEqual++;
      else console.log(`python differs: ${path.relative(root, f)}`);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  for (const [reason, n] of [...refusals].sort((a, b) => b[1] - a[1])) console.log(`${n}\t${reason}`);
  console.log(
    JSON.stringify({
      root,
      files: files.length,
      resolved: resolved.length,
      dumped,
      pythonEqual,
      cpu: os.cpus()[0]?.model,
    }),
  );
}

await main();
