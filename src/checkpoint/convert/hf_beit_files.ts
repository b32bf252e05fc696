/**
 * Where a Hugging Face BEiT checkpoint's files are: a model folder (config.json beside
 * model.safetensors or pytorch_model.bin, as save_pretrained writes it), or one of those weight
 * files given directly with its config.json beside it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface HfBeitFiles {
  weights: string;
  config: string;
}

/** Weight files save_pretrained writes, in the order transformers prefers them. */
const WEIGHT_FILES = ['model.safetensors', 'pytorch_model.bin'];
const SHARD_INDEXES = ['model.safetensors.index.json', 'pytorch_model.bin.index.json'];

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
  } catch (err) {
    throw new Error(`${file}: cannot read it as JSON (${(err as Error).message})`);
  }
}

/** True when `file` is a config.json of model_type "beit" (unreadable or other JSON: false). */
function isBeitConfig(file: string): boolean {
  if (!fs.existsSync(file)) return false;
  try {
    const json = readJson(file);
    return typeof json === 'object' && json !== null && (json as Record<string, unknown>).model_type === 'beit';
  } catch {
    return false;
  }
}

/**
 * The HF files behind `p`, or null when `p` is a plain checkpoint file without a BEiT
 * config.json beside it. A folder must be an HF model folder; anything else there is an error
 * that says what the folder holds.
 */
export function locateHfBeitFiles(p: string): HfBeitFiles | null {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(p);
  } catch {
    return null; // the reader reports the missing file by name
  }
  if (!stat.isDirectory()) {
    const config = path.join(path.dirname(p), 'config.json');
    return isBeitConfig(config) ? { weights: p, config } : null;
  }
  const config = path.join(p, 'config.json');
  if (!fs.existsSync(config)) {
    throw new Error(
      `${p}: a folder without config.json; a Hugging Face model folder holds config.json and ` +
        `${WEIGHT_FILES.join(' or ')} (found: ${fs.readdirSync(p).slice(0, 10).join(', ') || 'nothing'})`,
    );
  }
  const weights = WEIGHT_FILES.map((f) => path.join(p, f)).find((f) => fs.existsSync(f));
  if (weights === undefined) {
    const sharded = SHARD_INDEXES.find((f) => fs.existsSync(path.join(p, f)));
    if (sharded) throw new Error(`${p}: sharded weights (${sharded}) are not supported; BEiT models fit in one file`);
    throw new Error(`${p}: no ${WEIGHT_FILES.join(' or ')} beside config.json`);
  }
  return { weights, config };
}

/** config.json's parsed content. */
export function readHfConfigJson(file: string): unknown {
  return readJson(file);
}
