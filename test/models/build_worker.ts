/**
 * Child side of the model size tests (run through ../bounded.ts): builds the segmentor of a config
 * file with `key=value` overrides and prints one JSON line, {params} or {error}. An allocation
 * abort or a hang shows in the parent as a non-zero exit or a kill. Without arguments (as when
 * the test runner picks it up) it does nothing.
 */
import { applyCfgOptions, parseCfgOptions } from '../../src/config/cfg_options.js';
import { buildSegmentor } from '../../src/models/builder.js';
import { loadConfig, type Dict } from '../../src/config/schema.js';

function main(): void {
  const [file, ...options] = process.argv.slice(2);
  if (!file) return;
  try {
    const cfg = applyCfgOptions(loadConfig(file), parseCfgOptions(options));
    const model = buildSegmentor(cfg.model as Dict);
    const params = model.parameters().reduce((s, t) => s + t.numel, 0);
    process.stdout.write(`${JSON.stringify({ params })}\n`);
  } catch (e) {
    process.stdout.write(`${JSON.stringify({ error: (e as Error).message })}\n`);
  }
}

main();
