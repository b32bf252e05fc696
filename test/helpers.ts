/** Shared test helpers: paths to the repository and the golden fixtures, tensor comparison. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../src/checkpoint/formats/safetensors.js';
import { buildSegmentor } from '../src/models/builder.js';
import { loadConfig, type Dict } from '../src/config/schema.js';
import type { EncoderDecoder } from '../src/models/segmentors/encoder_decoder.js';
import { toTensor } from '../src/tensor/host.js';
import type { Tensor } from '../src/tensor/tensor.js';

function findRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

export const repoRoot = findRoot();
export const fixtureDir = path.join(repoRoot, 'test', 'fixtures', 'tiny_public');
export const tinyConfigPath = path.join(repoRoot, 'test', 'fixtures', 'tiny_public_config.json');

export function fixtureFile(name: string): string {
  return path.join(fixtureDir, name);
}

/** Every tensor of a fixture safetensors file as libtorch tensors. */
export function loadFixtureTensors(name: string): Map<string, Tensor> {
  const { tensors } = readSafetensors(fixtureFile(name));
  const out = new Map<string, Tensor>();
  for (const [k, v] of tensors) out.set(k, toTensor(v));
  return out;
}

export function maxAbsDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape, `shape ${a.shape} vs ${b.shape}`);
  const x = a.toFloat32Array(),
    y = b.toFloat32Array();
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

export function assertClose(actual: Tensor, expected: Tensor, tol: number, what: string): void {
  const d = maxAbsDiff(actual, expected);
  assert.ok(d <= tol, `${what}: max |diff| ${d} > ${tol}`);
}

/** The tiny_public segmentor with mmseg's fixture weights (strict load), in eval mode. */
export function loadTinyModel(): EncoderDecoder {
  const model = buildSegmentor(loadConfig(tinyConfigPath).model as Dict);
  const result = model.loadStateDict(loadFixtureTensors('segmentor_state_dict.safetensors'), { strict: true });
  assert.deepEqual(result, { missingKeys: [], unexpectedKeys: [] });
  return model.eval();
}

/** A getter over golden tensors that fails clearly on a missing key. */
export function goldenGetter(golden: Map<string, Tensor>): (key: string) => Tensor {
  return (key) => {
    const t = golden.get(key);
    assert.ok(t, `fixture tensor ${key} missing`);
    return t;
  };
}
