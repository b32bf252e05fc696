/**
 * Training checkpoints in a work directory:
 *
 *   <work_dir>/iter_<N>/model.safetensors   weights, mmseg keys (the full state dict with BN
 *                                           statistics), metadata: iteration, config name
 *   <work_dir>/iter_<N>/state.safetensors   optimizer moments (`<param>.exp_avg[_sq]`) and,
 *                                           when saved in the middle of gradient accumulation,
 *                                           the pending gradients (`grad.<param>`)
 *   <work_dir>/iter_<N>/state.json          iteration, optimizer steps/groups, loss scaler,
 *                                           RNG states (libtorch CPU generator, data loader,
 *                                           JS RNG), best metric, ...
 *   <work_dir>/best_mIoU_iter_<N>/          the same for the best validation result so far
 *
 * A checkpoint is written into a hidden temporary directory which is renamed to its final
 * name as the very last step: a directory named `iter_<N>` is always complete, and a crash
 * mid-save leaves only a `.tmp` directory that `--resume` ignores (and the next save sweeps).
 * After each save only the newest `keep` iteration checkpoints are kept (plus the best).
 * state.json alone may be replaced later (atomically, by rename) to record what happened after
 * the save at the same iteration: the validation due there and the best metric it produced.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDir, writeFileAtomic } from '../checkpoint/file_io.js';
import { readSafetensors, writeSafetensors } from '../checkpoint/formats/safetensors.js';
import type { HostTensor } from '../common/host_tensor.js';
import { toHost, toTensor } from '../tensor/host.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';

export const MODEL_FILE = 'model.safetensors';
export const STATE_FILE = 'state.safetensors';
export const STATE_JSON = 'state.json';

export interface CheckpointInfo {
  dir: string;
  iteration: number;
  kind: 'iter' | 'best';
}

export interface SaveOptions {
  workDir: string;
  iteration: number;
  kind?: 'iter' | 'best';
  /** Metric name for best checkpoints (directory best_<metric>_iter_N). */
  metric?: string;
  weights: Map<string, Tensor>;
  /** Extra tensors of the training state (optimizer moments, pending gradients). */
  stateTensors: Map<string, Tensor>;
  /** JSON-able training state. */
  state: Record<string, unknown>;
  weightsMetadata?: Record<string, string>;
}

function hostOf(t: Tensor): HostTensor {
  return tidy(() => toHost(t.device === 'cpu' ? t.detach() : t.detach().to('cpu')));
}

function toHostMap(m: Map<string, Tensor>): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [k, t] of m) out.set(k, hostOf(t));
  return out;
}

function dirName(kind: 'iter' | 'best', iteration: number, metric = 'mIoU'): string {
  return kind === 'iter' ? `iter_${iteration}` : `best_${metric}_iter_${iteration}`;
}

function writeFileSynced(file: string, text: string): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function stateText(state: Record<string, unknown>): string {
  return JSON.stringify(state, null, 1);
}

/** Writes one checkpoint directory atomically; returns its final path. */
export function saveCheckpoint(o: SaveOptions): string {
  const kind = o.kind ?? 'iter';
  fs.mkdirSync(o.workDir, { recursive: true });
  const final = path.join(o.workDir, dirName(kind, o.iteration, o.metric));
  const tmp = path.join(o.workDir, `.${path.basename(final)}.tmp-${process.pid}-${Date.now()}`);
  fs.mkdirSync(tmp);
  try {
    writeSafetensors(path.join(tmp, MODEL_FILE), toHostMap(o.weights), {
      format: 'pt',
      iteration: String(o.iteration),
      ...o.weightsMetadata,
    });
    writeSafetensors(path.join(tmp, STATE_FILE), toHostMap(o.stateTensors), { iteration: String(o.iteration) });
    writeFileSynced(path.join(tmp, STATE_JSON), stateText({ ...o.state, iteration: o.iteration }));
    fsyncDir(tmp);
    if (fs.existsSync(final)) fs.rmSync(final, { recursive: true, force: true });
    fs.renameSync(tmp, final);
    fsyncDir(o.workDir);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return final;
}

const ITER_RE = /^iter_(\d+)$/;
const BEST_RE = /^best_[A-Za-z0-9]+_iter_(\d+)$/;

/** Complete checkpoints in a work dir (temporary directories are not listed), oldest first. */
export function listCheckpoints(workDir: string): CheckpointInfo[] {
  if (!fs.existsSync(workDir)) return [];
  const out: CheckpointInfo[] = [];
  for (const e of fs.readdirSync(workDir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    let m = ITER_RE.exec(e.name);
    let kind: 'iter' | 'best' = 'iter';
    if (!m) {
      m = BEST_RE.exec(e.name);
      kind = 'best';
    }
    if (!m) continue;
    const dir = path.join(workDir, e.name);
    if (![MODEL_FILE, STATE_FILE, STATE_JSON].every((f) => fs.existsSync(path.join(dir, f)))) continue;
    out.push({ dir, iteration: Number(m[1]), kind });
  }
  return out.sort((a, b) => a.iteration - b.iteration || (a.kind === b.kind ? 0 : a.kind === 'best' ? -1 : 1));
}

/** The checkpoint `--resume` continues from: the highest iteration (an iter_ one on a tie). */
export function latestCheckpoint(workDir: string): CheckpointInfo | null {
  const all = listCheckpoints(workDir);
  return all.length ? all[all.length - 1]! : null;
}

/**
 * Retention: keeps the newest `keep` iter_ checkpoints (keep < 0: all) and only the newest
 * best_ one; also removes temporary directories left by interrupted saves of this work dir.
 */
export function pruneCheckpoints(workDir: string, keep: number): string[] {
  const removed: string[] = [];
  const all = listCheckpoints(workDir);
  const iters = all.filter((c) => c.kind === 'iter');
  const bests = all.filter((c) => c.kind === 'best');
  const drop = [...(keep >= 0 ? iters.slice(0, Math.max(iters.length - keep, 0)) : []), ...bests.slice(0, -1)];
  for (const c of drop) {
    fs.rmSync(c.dir, { recursive: true, force: true });
    removed.push(c.dir);
  }
  for (const e of fs.readdirSync(workDir)) {
    // another live process would use another pid; ours are never left behind by a successful save
    if (/^\.(iter|best)_.*\.tmp-\d+-\d+$/.test(e) && !e.includes(`.tmp-${process.pid}-`)) {
      fs.rmSync(path.join(workDir, e), { recursive: true, force: true });
      removed.push(path.join(workDir, e));
    }
  }
  return removed;
}

/** A checkpoint's state.json alone (no tensors read). */
export function readCheckpointState(dir: string): Record<string, unknown> {
  const file = path.join(dir, STATE_JSON);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
}

/**
 * Replaces fields of a complete checkpoint's state.json: the new file is written beside it and
 * renamed over it, so a crash leaves either the old or the new state, never a cut one.
 */
export function updateCheckpointState(dir: string, fields: Record<string, unknown>): void {
  const state = { ...readCheckpointState(dir), ...fields };
  writeFileAtomic(path.join(dir, STATE_JSON), (fd) => fs.writeSync(fd, stateText(state)));
}

export interface LoadedTrainingCheckpoint {
  info: CheckpointInfo;
  weights: Map<string, Tensor>;
  weightsMetadata: Record<string, string>;
  stateTensors: Map<string, Tensor>;
  state: Record<string, unknown>;
}

/** Reads a checkpoint directory (or a path to one of its files). The tensors are CPU tensors owned by the caller. */
export function loadCheckpoint(dirOrFile: string): LoadedTrainingCheckpoint {
  const dir = fs.existsSync(dirOrFile) && fs.statSync(dirOrFile).isFile() ? path.dirname(dirOrFile) : dirOrFile;
  const name = path.basename(dir);
  const m = ITER_RE.exec(name) ?? BEST_RE.exec(name);
  for (const f of [MODEL_FILE, STATE_FILE, STATE_JSON]) {
    if (!fs.existsSync(path.join(dir, f))) throw new Error(`${dir}: not a complete training checkpoint (${f} missing)`);
  }
  const model = readSafetensors(path.join(dir, MODEL_FILE));
  const st = readSafetensors(path.join(dir, STATE_FILE));
  const state = readCheckpointState(dir);
  const iteration = typeof state.iteration === 'number' ? state.iteration : Number(m?.[1]);
  const tensors = (h: Map<string, HostTensor>) => new Map([...h].map(([k, v]) => [k, toTensor(v)] as [string, Tensor]));
  return {
    info: { dir, iteration, kind: name.startsWith('best_') ? 'best' : 'iter' },
    weights: tensors(model.tensors),
    weightsMetadata: model.metadata,
    stateTensors: tensors(st.tensors),
    state,
  };
}

/** libtorch generator state (a uint8 tensor) as base64 and back. */
export function bytesToBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

export function base64ToBytes(s: string): Uint8Array {
  const buf = Buffer.from(s, 'base64');
  const out = new Uint8Array(buf.byteLength);
  out.set(buf);
  return out;
}
