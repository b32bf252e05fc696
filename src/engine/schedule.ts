/**
 * mmengine parameter schedulers by iteration (by_epoch=False), in closed form:
 *
 * - LinearLR(start_factor, end_factor=1, begin, end): with T = end − begin − 1 and s = t − begin,
 *   factor = start_factor + (end_factor − start_factor) · min(s, T) / T.
 * - PolyLR(power, eta_min, begin, end): lr = eta_min + (lr_begin − eta_min) · (1 − min(s, T)/T)^power,
 *   where lr_begin is the lr when the scheduler starts.
 * - ConstantLR(factor, begin, end): lr · factor inside [begin, end), back to the lr after.
 *
 * A scheduler acts only for begin ≤ t < end; after `end` the last value stays (so mmseg's
 * large-config PolyLR with end=160000 inside a 320k-iteration loop leaves lr = 0 for the rest),
 * before `begin` it leaves the lr as it is. Schedulers compose in list order, each applied to
 * the lr the previous ones produced, starting from each group's initial lr — mmengine's chained
 * updates in closed form.
 */
import { ConfigError, checkFields, isDict, type Dict } from '../config/schema.js';
import type { ParamGroup } from './param_groups.js';

export type SchedulerSpec =
  | { type: 'LinearLR'; startFactor: number; endFactor: number; begin: number; end: number }
  | { type: 'PolyLR'; power: number; etaMin: number; begin: number; end: number }
  | { type: 'ConstantLR'; factor: number; begin: number; end: number };

/** lr at iteration t for a group whose initial lr is `initialLr`. */
export function lrAt(t: number, initialLr: number, schedulers: readonly SchedulerSpec[]): number {
  let lr = initialLr;
  for (const s of schedulers) {
    if (t < s.begin) continue;
    const total = s.end - s.begin - 1;
    const step = Math.min(t, s.end - 1) - s.begin;
    switch (s.type) {
      case 'LinearLR': {
        const frac = total <= 0 ? 1 : Math.min(step, total) / total;
        lr *= s.startFactor + (s.endFactor - s.startFactor) * frac;
        break;
      }
      case 'PolyLR': {
        const frac = total <= 0 ? 1 : Math.min(step, total) / total;
        lr = s.etaMin + (lr - s.etaMin) * (1 - frac) ** s.power;
        break;
      }
      case 'ConstantLR':
        if (t < s.end) lr *= s.factor;
        break;
    }
  }
  return lr;
}

export class LrSchedule {
  constructor(readonly schedulers: readonly SchedulerSpec[]) {}

  /** Sets every group's lr for iteration t (0-based, the iteration about to run). */
  apply(groups: ParamGroup[], t: number): void {
    for (const g of groups) g.lr = lrAt(t, g.initialLr, this.schedulers);
  }

  lrAt(t: number, initialLr: number): number {
    return lrAt(t, initialLr, this.schedulers);
  }
}

function intField(d: Dict, key: string, path: string, fallback?: number): number {
  const v = d[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
    throw new ConfigError(`${path}.${key} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

function numField(d: Dict, key: string, path: string, fallback: number): number {
  const v = d[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new ConfigError(`${path}.${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/** mmengine's INF: the default `end` of a scheduler. */
export const SCHEDULER_INF = 1_000_000_000;

/** Parses the config's `param_scheduler` (a dict or a list of dicts), mmengine's defaults. */
export function parseParamScheduler(v: unknown, path = 'param_scheduler'): SchedulerSpec[] {
  if (v == null) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((d, i) => {
    const p = Array.isArray(v) ? `${path}[${i}]` : path;
    if (!isDict(d)) throw new ConfigError(`${p} must be an object`);
    if (d.by_epoch !== undefined && d.by_epoch !== false)
      throw new ConfigError(`${p}.by_epoch must be false (only iteration-based schedules are supported)`);
    const begin = intField(d, 'begin', p, 0);
    const end = intField(d, 'end', p, SCHEDULER_INF);
    if (end <= begin) throw new ConfigError(`${p}: end (${end}) must be greater than begin (${begin})`);
    const common = ['type', 'begin', 'end', 'by_epoch', 'verbose', 'convert_to_iter_based', 'last_step'];
    switch (d.type) {
      case 'LinearLR':
        checkFields(d, [...common, 'start_factor', 'end_factor'], p);
        return {
          type: 'LinearLR',
          startFactor: numField(d, 'start_factor', p, 1 / 3),
          endFactor: numField(d, 'end_factor', p, 1),
          begin,
          end,
        };
      case 'PolyLR':
        checkFields(d, [...common, 'power', 'eta_min'], p);
        return { type: 'PolyLR', power: numField(d, 'power', p, 1), etaMin: numField(d, 'eta_min', p, 0), begin, end };
      case 'ConstantLR':
        checkFields(d, [...common, 'factor'], p);
        return { type: 'ConstantLR', factor: numField(d, 'factor', p, 1 / 3), begin, end };
      default:
        throw new ConfigError(
          `${p}.type: ${JSON.stringify(d.type)} is not supported (supported: LinearLR, PolyLR, ConstantLR)`,
        );
    }
  });
}
