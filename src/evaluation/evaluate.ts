/**
 * Dataset evaluation as mmseg's test loop: every image through the test pipeline and the
 * model (whole / slide / TTA), logits back at the original size, argmax, and IoUMetric
 * against the label at its original resolution (reduce_zero_label applied).
 *
 * Resumable: each finished image's areas are appended to a progress file (JSONL). A killed
 * run continues after the last complete line; the totals are always summed in dataset order,
 * so the final numbers are identical to an uninterrupted run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readLabel } from '../data/image_io.js';
import { reduceZeroLabel } from '../data/transforms/loading.js';
import type { SegDataset } from '../data/datasets.js';
import { inferenceModel, type InferenceOptions, type SegModel } from '../inference/api.js';
import { readImage } from '../data/image_io.js';
import { segmentHost, type HostModel } from '../inference/host_segment.js';
import { IoUMetric, intersectAndUnion, type AreaStats, type IoUResults } from './iou_metric.js';

export interface EvaluateOptions extends InferenceOptions {
  /** Evaluate only the first N images. */
  limit?: number;
  /** JSONL file holding finished images; reused when it exists. */
  progressFile?: string;
  /** What the results depend on (weights, config, options): a progress file of another run is refused. */
  runKey?: string;
  /** Warn and skip unreadable or mismatched pairs instead of failing. */
  skipBad?: boolean;
  /** Called after each image with the running metric. */
  onImage?: (done: number, total: number, running: IoUMetric) => void;
  warn?: (msg: string) => void;
  /**
   * Distributed evaluation: this process evaluates images rank, rank + W, ... and
   * `reduceTotals` sums the per-class areas (and image counts) over all ranks, so every rank
   * returns the metrics of the whole set, identical to one process (integer areas sum exactly).
   */
  shard?: {
    rank: number;
    worldSize: number;
    reduceTotals: (a: AreaStats, images: number) => Promise<{ areas: AreaStats; images: number }>;
  };
}

interface ProgressLine {
  index: number;
  image: string;
  intersect: number[];
  union: number[];
  pred: number[];
  label: number[];
}

/**
 * The progress file's complete lines. A killed run can leave its last line cut short: that
 * fragment is cut off the file here, before anything is appended, so the next record starts on
 * its own line and the image is redone once. A file without one complete line starts over.
 */
function completeLines(file: string, runKey: string): string[] | null {
  const bytes = fs.existsSync(file) ? fs.readFileSync(file) : Buffer.alloc(0);
  const end = bytes.lastIndexOf(0x0a) + 1;
  if (end === 0) {
    fs.writeFileSync(file, `${JSON.stringify({ run: runKey })}\n`);
    return null;
  }
  if (end < bytes.length) fs.truncateSync(file, end);
  return bytes
    .subarray(0, end - 1)
    .toString('utf8')
    .split('\n');
}

function readProgress(file: string, dataset: SegDataset, runKey: string): Map<number, AreaStats> {
  const done = new Map<number, AreaStats>();
  const lines = completeLines(file, runKey);
  if (!lines) return done;
  const header = (() => {
    try {
      return (JSON.parse(lines[0]) as { run?: string }).run;
    } catch {
      return undefined;
    }
  })();
  if (header !== runKey) {
    throw new Error(
      `${file}: progress of another run (different weights, config or options); delete it or pass --fresh`,
    );
  }
  for (const line of lines.slice(1)) {
    if (!line.trim()) continue;
    let p: ProgressLine;
    try {
      p = JSON.parse(line) as ProgressLine;
    } catch {
      continue; // a damaged complete line: that image is redone
    }
    if (dataset.items[p.index]?.imgPath !== p.image) {
      throw new Error(
        `${file}: progress from another dataset (line for ${p.image} does not match index ${p.index}); delete it to ` +
          `start over`,
      );
    }
    done.set(p.index, {
      intersect: Float64Array.from(p.intersect),
      union: Float64Array.from(p.union),
      pred: Float64Array.from(p.pred),
      label: Float64Array.from(p.label),
    });
  }
  return done;
}

/** Labels of one image from a libtorch model or an exported .onnx (ONNX Runtime). */
async function predictLabels(m: SegModel | HostModel, file: string, opts: InferenceOptions) {
  if ('runner' in m) return segmentHost(m, await readImage(file), opts);
  const r = await inferenceModel(m, file, opts);
  r.logits.dispose();
  return r;
}

export async function evaluateDataset(
  m: SegModel | HostModel,
  dataset: SegDataset,
  opts: EvaluateOptions = {},
): Promise<IoUResults> {
  const total = Math.min(dataset.length, opts.limit ?? dataset.length);
  const numClasses = 'runner' in m ? m.meta.numClasses : m.model.numClasses;
  if (opts.progressFile) fs.mkdirSync(path.dirname(path.resolve(opts.progressFile)), { recursive: true });
  const done = opts.progressFile
    ? readProgress(opts.progressFile, dataset, opts.runKey ?? '')
    : new Map<number, AreaStats>();
  const running = new IoUMetric(numClasses, { classNames: m.meta.classes });
  const skipped = new Set<number>();
  const step = opts.shard?.worldSize ?? 1;
  for (let i = opts.shard?.rank ?? 0; i < total; i += step) {
    let areas = done.get(i);
    if (!areas) {
      const item = dataset.items[i];
      try {
        if (!item.segMapPath) throw new Error(`${item.imgPath}: no label file`);
        const label = await readLabel(item.segMapPath);
        if (item.reduceZeroLabel) reduceZeroLabel(label);
        const r = await predictLabels(m, item.imgPath, opts);
        if (r.height !== label.height || r.width !== label.width) {
          throw new Error(
            `${item.segMapPath}: label is ${label.width}x${label.height} but image ${item.imgPath} is ` +
              `${r.width}x${r.height}`,
          );
        }
        areas = intersectAndUnion(r.pred, label.data, numClasses, 255);
      } catch (err) {
        if (!opts.skipBad) throw err;
        (opts.warn ?? console.warn)(`skipping ${item.imgPath}: ${(err as Error).message}`);
        skipped.add(i);
        opts.onImage?.(i + 1, total, running);
        continue;
      }
      if (opts.progressFile) {
        const line: ProgressLine = {
          index: i,
          image: item.imgPath,
          intersect: [...areas.intersect],
          union: [...areas.union],
          pred: [...areas.pred],
          label: [...areas.label],
        };
        fs.appendFileSync(opts.progressFile, `${JSON.stringify(line)}\n`);
      }
    }
    running.addAreas(areas);
    opts.onImage?.(i + 1, total, running);
  }
  if (!opts.shard) return running.compute();
  const all = await opts.shard.reduceTotals(running.totals(), running.numImages);
  const merged = new IoUMetric(numClasses, { classNames: m.meta.classes });
  merged.addTotals(all.areas, all.images);
  return merged.compute();
}
