/**
 * Resource limits for reading checkpoints. A small hostile file can otherwise ask for gigabytes
 * (a deflated storage that inflates to 1 GB, a stride-0 view expanded to 9 GB), nest objects
 * until a consumer overflows its stack, or make integer decoding slow. Each limit is checked
 * before the work it guards, has a default that real checkpoints stay far below, and can be
 * raised per call (the `limits` option of the readers) or per process (an environment variable).
 * An exceeded limit is one Error line naming the file, what was found, the limit and how to raise it.
 */

export interface CheckpointLimits {
  /**
   * Storage bytes a torch.save file may hold (decompressed) per byte its tensors use, plus
   * `slackBytes`. Guards zip bombs and storages far larger than anything that views them.
   */
  storageRatio: number;
  /**
   * Bytes that non-contiguous tensor views (transposed, sliced, stride-0 expanded) may
   * materialise, per byte of storage read, plus `slackBytes`.
   */
  viewRatio: number;
  /** Absolute allowance added to both ratio limits, in bytes. */
  slackBytes: number;
  /** Largest pickle (data.pkl, after decompression) a zip checkpoint may hold, in bytes. */
  maxPickleBytes: number;
  /** Deepest nesting of containers in an unpickled object. */
  maxDepth: number;
  /** Longest integer in a pickle, in bytes (LONG1/LONG4; text INT/LONG by their equivalent size). */
  maxIntBytes: number;
  /**
   * Values a pickle may make (containers, strings, numbers, records), and entries its stack, mark
   * stack and memo may hold. Each opcode adds at most one, so a small (deflated) pickle repeating
   * one opcode would otherwise fill the heap.
   */
  maxObjects: number;
}

interface LimitSpec {
  env: string;
  fallback: number;
  /** Words for the limit in messages. */
  what: string;
}

/** Each limit's default and the environment variable that raises it for a process. */
export const LIMIT_SPECS: Readonly<Record<keyof CheckpointLimits, LimitSpec>> = {
  storageRatio: { env: 'BEITSEG_CKPT_STORAGE_RATIO', fallback: 4, what: 'storage bytes per tensor byte' },
  viewRatio: { env: 'BEITSEG_CKPT_VIEW_RATIO', fallback: 4, what: 'materialised view bytes per storage byte' },
  slackBytes: { env: 'BEITSEG_CKPT_SLACK_BYTES', fallback: 64 * 2 ** 20, what: 'slack bytes' },
  maxPickleBytes: { env: 'BEITSEG_CKPT_MAX_PICKLE_BYTES', fallback: 256 * 2 ** 20, what: 'pickle bytes' },
  maxDepth: { env: 'BEITSEG_PICKLE_MAX_DEPTH', fallback: 200, what: 'nesting depth' },
  maxIntBytes: { env: 'BEITSEG_PICKLE_MAX_INT_BYTES', fallback: 1024, what: 'integer bytes' },
  maxObjects: { env: 'BEITSEG_PICKLE_MAX_OBJECTS', fallback: 1_000_000, what: 'pickle values' },
};

export const DEFAULT_LIMITS: Readonly<CheckpointLimits> = Object.fromEntries(
  Object.entries(LIMIT_SPECS).map(([k, spec]) => [k, spec.fallback]),
) as unknown as CheckpointLimits;

/** Defaults, overridden by the environment, overridden by `overrides` (the reader's `limits` option). */
export function resolveLimits(
  overrides: Partial<CheckpointLimits> = {},
  env: Readonly<Record<string, string | undefined>> = process.env,
): CheckpointLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(LIMIT_SPECS) as (keyof CheckpointLimits)[]) {
    const spec = LIMIT_SPECS[key];
    const raw = env[spec.env];
    if (raw !== undefined && raw !== '') {
      const v = Number(raw);
      if (!(v > 0)) throw new Error(`${spec.env}=${JSON.stringify(raw.slice(0, 40))}: expected a positive number`);
      out[key] = v;
    }
    const o = overrides[key];
    if (o !== undefined) {
      if (!(o > 0)) throw new Error(`checkpoint limit ${key} must be a positive number, got ${String(o)}`);
      out[key] = o;
    }
  }
  return out;
}

/** The tail of a limit error: which limit, its value, and how to raise it. */
export function limitHint(key: keyof CheckpointLimits, limits: CheckpointLimits): string {
  return (
    `limit ${key}=${limits[key]} (${LIMIT_SPECS[key].what}); raise it with ${LIMIT_SPECS[key].env} or the ` +
    `readers' limits.${key} option`
  );
}

export class CheckpointLimitError extends Error {}
