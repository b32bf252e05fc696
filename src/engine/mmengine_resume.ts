/**
 * Resuming an mmengine work dir (`last_checkpoint` naming `iter_N.pth`, what mmseg's
 * `tools/train.py --resume` continues): the runner checkpoint's weights, AdamW moments and step
 * counts, learning rates, AMP loss scale, iteration and best score (save_best) become a beitseg
 * training state that restoreTrainState loads like its own.
 *
 * The optimizer's state is keyed by parameter index. mmseg's layer-decay constructor stores each
 * group's `group_name` and `param_names`, which name every index; without them (a plain
 * optimizer) the indices follow the order of the checkpoint's own state dict, which is the
 * model's parameter order. Each group must hold exactly the parameters beitseg's group of the
 * same name holds, or the resume is refused naming the group. What mmengine does not save
 * cannot carry over: the data order continues after the N * batch samples already drawn, but
 * from beitseg's sampler (mmengine's random state is Python's), and the random generators start
 * from the seed.
 */
import { isHostTensor, numel, type HostTensor } from '../common/host_tensor.js';
import { fileText } from '../common/safe_text.js';
import { readPthContent } from '../checkpoint/formats/pth.js';
import { scalarValue } from '../checkpoint/numpy_scalar.js';
import { extractStateDict } from '../checkpoint/read_checkpoint.js';
import { getRngState } from '../tensor/runtime.js';
import { toTensor } from '../tensor/host.js';
import type { Tensor } from '../tensor/tensor.js';
import type { AdamWStateDict } from './adamw.js';
import type { GradScalerState } from './grad_scaler.js';
import type { ParamGroup } from './param_groups.js';
import type { BestMetric } from './runner_context.js';
import type { SchedulerSpec } from './schedule.js';
import type { TrainSettings } from './train_config.js';
import { bytesToBase64, type LoadedTrainingCheckpoint } from './training_checkpoint.js';
import type { TrainStateJson } from './training_state.js';

export interface MmengineResumeTarget {
  groups: readonly ParamGroup[];
  settings: TrainSettings;
  schedulers: readonly SchedulerSpec[];
  betas: [number, number];
  eps: number;
  /** The model's weights after loading the checkpoint's state dict (copies, owned by the result). */
  weights: Map<string, Tensor>;
  worldSize: number;
}

export interface MmengineResume {
  checkpoint: LoadedTrainingCheckpoint;
  /** Samples of the shared stream already drawn (the loader continues after them). */
  samplesDrawn: number;
  /** What was carried over and what was not, one line each. */
  lines: string[];
}

type PyDict = Map<unknown, unknown>;

function dict(v: unknown, what: string, file: string): PyDict {
  if (!(v instanceof Map)) throw new Error(`${file}: ${what} is not a dict (not an mmengine runner checkpoint)`);
  return v;
}

/** A Python number, or a 0-d tensor's value (torch stores AdamW's step as a tensor). */
function scalar(v: unknown, what: string, file: string): number {
  const plain = scalarValue(v);
  if (plain !== null) return plain;
  if (isHostTensor(v) && numel(v.shape) === 1) {
    const t = toTensor(v);
    const x = t.item();
    t.dispose();
    return x;
  }
  throw new Error(`${file}: ${what} is not a number`);
}

function tensorOf(v: unknown, what: string, file: string): HostTensor {
  if (!isHostTensor(v)) throw new Error(`${file}: ${what} is not a tensor`);
  return v;
}

/** A saved optimizer group matched to beitseg's group of the same parameters, its indices named. */
interface MatchedGroup {
  saved: PyDict;
  group: ParamGroup;
  /** Parameter name of each entry of the saved group's `params`. */
  names: string[];
}

function groupMismatch(file: string, name: string, saved: number | null, ours: ParamGroup | undefined): Error {
  const theirs = saved === null ? 'absent' : `${saved} parameters`;
  const mine = ours ? `${ours.paramNames.length} parameters` : 'no such group';
  return new Error(
    `${file}: the optimizer's parameter group ${fileText(name, 80)} (${theirs}) does not match the config's ` +
      `(${mine}); resume needs the same model and paramwise_cfg. Start from its weights with ` +
      `--load-from ${fileText(file, 300)} instead`,
  );
}

/** Every group of the saved optimizer, matched to beitseg's groups, with its indices named. */
function matchGroups(pyGroups: PyDict[], groups: readonly ParamGroup[], order: string[], file: string): MatchedGroup[] {
  const ours = new Map(groups.map((g) => [g.name, g]));
  const trainable = new Set(groups.flatMap((g) => g.paramNames));
  const named = pyGroups.every((g) => Array.isArray(g.get('param_names')));
  if (!named && pyGroups.length !== groups.length) {
    throw new Error(
      `${file}: the optimizer has ${pyGroups.length} parameter groups without names; the config builds ` +
        `${groups.length} (${groups.map((g) => g.name).join(', ')})`,
    );
  }
  // without names: the indices run over the model's parameters in the checkpoint's state-dict order
  const byIndex = order.filter((n) => trainable.has(n));
  const matched = pyGroups.map((saved, gi) => {
    const ids = (saved.get('params') as unknown[] | undefined) ?? [];
    const names = named ? (saved.get('param_names') as unknown[]).map(String) : ids.map((i) => byIndex[Number(i)]!);
    const groupName = named ? String(saved.get('group_name') ?? '') : groups[gi]!.name;
    const group = ours.get(groupName);
    const want = new Set(group?.paramNames ?? []);
    if (!group || names.length !== ids.length || names.length !== want.size || names.some((n) => !want.has(n))) {
      throw groupMismatch(file, groupName, ids.length, group);
    }
    return { saved, group, names };
  });
  const missing = groups.find((g) => !matched.some((m) => m.group === g));
  if (missing) throw groupMismatch(file, missing.name, null, missing);
  return matched;
}

/** The loss scaler of mmengine's AmpOptimWrapper (torch GradScaler.state_dict), if any. */
function scalerOf(opt: PyDict, file: string): GradScalerState | null {
  const s = opt.get('loss_scaler');
  if (!(s instanceof Map)) return null;
  return {
    scale: scalar(s.get('scale'), 'loss_scaler.scale', file),
    growthTracker: scalar(s.get('_growth_tracker') ?? 0, 'loss_scaler._growth_tracker', file),
  };
}

/**
 * The best record of mmengine's CheckpointHook (message hub `best_score` and the `best_ckpt` path
 * that names its iteration), for the config's save_best metric; null when there is none.
 */
function bestOf(root: PyDict, metric: string | null): BestMetric | null {
  const info = root.get('message_hub') instanceof Map ? (root.get('message_hub') as PyDict).get('runtime_info') : null;
  if (!metric || !(info instanceof Map)) return null;
  const value = scalarValue(info.get('best_score') ?? info.get(`best_score_${metric}`));
  const iteration = /iter_(\d+)/.exec(String(info.get('best_ckpt') ?? info.get(`best_ckpt_${metric}`) ?? ''));
  if (value === null || !Number.isFinite(value) || !iteration) return null;
  return { metric, value, iteration: Number(iteration[1]) };
}

/** Reads an mmengine runner checkpoint as a beitseg training state for `target`'s model and optimizer. */
export async function readMmengineResume(file: string, target: MmengineResumeTarget): Promise<MmengineResume> {
  const root = dict((await readPthContent(file, { foreignGlobals: 'data' })).value, 'the checkpoint', file);
  const meta = dict(root.get('meta'), "'meta'", file);
  const opt = dict(root.get('optimizer'), "'optimizer'", file);
  const iteration = scalar(meta.get('iter'), "meta['iter']", file);
  if (!Number.isSafeInteger(iteration) || iteration < 0) throw new Error(`${file}: meta['iter'] is ${iteration}`);
  const s = target.settings;
  if (iteration > s.maxIters) {
    throw new Error(`${file} was saved at iteration ${iteration}, past this config's max_iters ${s.maxIters}`);
  }
  const order = [...extractStateDict(root, file).stateDict.keys()];
  const pyGroups = ((opt.get('param_groups') as unknown[] | undefined) ?? []).map((g, i) =>
    dict(g, `optimizer.param_groups[${i}]`, file),
  );
  const matched = matchGroups(pyGroups, target.groups, order, file);
  const pyState = dict(opt.get('state') ?? new Map(), 'optimizer.state', file);

  const tensors = new Map<string, Tensor>();
  const steps: Record<string, number> = {};
  for (const { saved, names } of matched) {
    (saved.get('params') as unknown[]).forEach((idx, i) => {
      const st = pyState.get(idx) ?? pyState.get(Number(idx));
      if (!(st instanceof Map)) return; // never stepped (no gradient yet), as in PyTorch
      const name = names[i]!;
      steps[name] = scalar(st.get('step'), `optimizer.state[${idx}].step`, file);
      tensors.set(`${name}.exp_avg`, toTensor(tensorOf(st.get('exp_avg'), `state[${idx}].exp_avg`, file)));
      tensors.set(`${name}.exp_avg_sq`, toTensor(tensorOf(st.get('exp_avg_sq'), `state[${idx}].exp_avg_sq`, file)));
    });
  }
  const lines: string[] = [];
  const groupsMeta = target.groups.map((g) => {
    const pg = matched.find((m) => m.group === g)!.saved;
    const initialLr = scalar(pg.get('initial_lr') ?? pg.get('lr'), `${g.name}.initial_lr`, file);
    if (Math.abs(initialLr - g.initialLr) > 1e-9 * Math.max(1, Math.abs(g.initialLr))) {
      lines.push(
        `resume: group ${g.name} starts from lr ${initialLr} in the checkpoint, ${g.initialLr} in the config; ` +
          "the checkpoint's is used (as mmengine does)",
      );
    }
    return { name: g.name, lr: scalar(pg.get('lr'), `${g.name}.lr`, file), initialLr, weightDecay: g.weightDecay };
  });
  const optimizer: AdamWStateDict['meta'] = { betas: target.betas, eps: target.eps, steps, groups: groupsMeta };
  const rng = getRngState();
  const state: TrainStateJson = {
    format: 'beitseg-train-state',
    version: 1,
    config: s.configName,
    iteration,
    maxIters: s.maxIters,
    accum: s.accum,
    seed: s.seed,
    amp: s.amp,
    optimizer,
    scheduler: { schedulers: target.schedulers, nextIteration: iteration },
    scaler: scalerOf(opt, file),
    // replaced by the trainer once the dataset's size is known (samplesDrawn)
    loader: { sampler: { seed: s.seed, size: 0, shuffle: s.train.shuffle, next: 0 } },
    rng: { torchCpu: bytesToBase64(rng.toBytes()) },
    best: bestOf(root, s.saveBest),
    pendingGrads: [],
  };
  rng.dispose();
  lines.push(
    `resumed mmengine checkpoint ${file} at iteration ${iteration}: weights, AdamW moments of ` +
      `${Object.keys(steps).length} parameters, learning rates${state.scaler ? ', loss scale' : ''}` +
      `${state.best ? `, best ${state.best.metric} ${state.best.value} (iteration ${state.best.iteration})` : ''}; ` +
      "the data order and random generators are beitseg's from here (mmengine's are Python's)",
  );
  return {
    checkpoint: {
      info: { dir: file, iteration, kind: 'iter' },
      weights: target.weights,
      weightsMetadata: {},
      stateTensors: tensors,
      state: state as unknown as Record<string, unknown>,
    },
    samplesDrawn: iteration * s.train.batchSize * target.worldSize,
    lines,
  };
}
