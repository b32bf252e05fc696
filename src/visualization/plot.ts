/**
 * Training curves from a JSON-lines log: loss, learning rate and validation
 * mIoU against iteration, drawn as an SVG (three stacked panels) and
 * rasterised to PNG by sharp (librsvg).
 *
 * Accepted lines (one JSON object each; others are counted and skipped):
 *   {"iter": 50, "loss": 1.2, "lr": 3e-5, "decode.acc_seg": 40.1, ...}   training
 *   {"iter": 1000, "mIoU": 12.3, "mAcc": 20.1, "aAcc": 60.2}             validation
 * mmengine's vis_data/scalars.json uses "step" instead of "iter" for
 * validation lines; that is accepted too. mmseg 0.x log.json lines carry
 * "mode": "train" | "val" and report mIoU/mAcc/aAcc as fractions, which are
 * turned into percent.
 */

import fs from 'node:fs/promises';
import sharp from 'sharp';
import { writeFileAtomic } from '../data/image_io.js';

export interface TrainPoint {
  iter: number;
  loss?: number;
  lr?: number;
  accSeg?: number;
}

export interface ValPoint {
  iter: number;
  mIoU: number;
  mAcc?: number;
  aAcc?: number;
}

export interface ParsedLog {
  train: TrainPoint[];
  val: ValPoint[];
  /** Lines that were not JSON objects with an iteration number. */
  skipped: number;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export function parseTrainingLog(text: string): ParsedLog {
  const train: TrainPoint[] = [];
  const val: ValPoint[] = [];
  let skipped = 0;
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim();
    if (!t) continue;
    let o: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(t);
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      o = parsed as Record<string, unknown>;
    } catch {
      skipped++;
      continue;
    }
    const iter = num(o.iter) ?? num(o.step);
    if (iter === undefined) {
      skipped++;
      continue;
    }
    const mIoU = num(o.mIoU);
    const isVal = o.mode === 'val' || (o.mode === undefined && mIoU !== undefined);
    if (isVal) {
      if (mIoU === undefined) {
        skipped++;
        continue;
      }
      // 0.x logs (with "mode") hold fractions.
      const k = o.mode === 'val' ? 100 : 1;
      const scale = (v: number | undefined): number | undefined => (v === undefined ? undefined : v * k);
      val.push({ iter, mIoU: mIoU * k, mAcc: scale(num(o.mAcc)), aAcc: scale(num(o.aAcc)) });
    } else {
      const p: TrainPoint = { iter, loss: num(o.loss), lr: num(o.lr), accSeg: num(o['decode.acc_seg']) };
      if (p.loss === undefined && p.lr === undefined && p.accSeg === undefined) {
        skipped++;
        continue;
      }
      train.push(p);
    }
  }
  train.sort((a, b) => a.iter - b.iter);
  val.sort((a, b) => a.iter - b.iter);
  return { train, val, skipped };
}

/**
 * "Nice" axis: a step of 1, 2 or 5 x 10^k giving about `target` intervals,
 * and the range [lo, hi] widened to multiples of it. Returns the tick values.
 */
export function niceTicks(lo: number, hi: number, target = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi === lo) {
    const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const out: number[] = [];
  // Multiply instead of accumulating so values stay clean (3e-5, not 3.0000000000000004e-5).
  for (let i = first; i <= last; i++) out.push(i === 0 ? 0 : +(i * step).toPrecision(12));
  return out;
}

/** Short tick label: 12000 -> "12k", 3e-5 -> "3e-5", 0.25 -> "0.25". */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a < 1e-3) {
    const [m, e] = v.toExponential(2).split('e');
    return `${+m}e${Number(e)}`;
  }
  return String(+v.toPrecision(3));
}

/** Trailing moving average over `window` points (for the noisy loss). */
export function movingAverage(ys: readonly number[], window: number): number[] {
  const out: number[] = [];
  let sum = 0;
  for (let i = 0; i < ys.length; i++) {
    sum += ys[i];
    if (i >= window) sum -= ys[i - window];
    out.push(sum / Math.min(i + 1, window));
  }
  return out;
}

interface Series {
  label: string;
  colour: string;
  xs: number[];
  ys: number[];
  width: number;
  opacity?: number;
  dots?: boolean;
}

interface Panel {
  title: string;
  yLabel: string;
  series: Series[];
  /** Include 0 in the y range. */
  zeroBased?: boolean;
}

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function panelSvg(
  p: Panel,
  x0: number,
  y0: number,
  w: number,
  h: number,
  xlo: number,
  xhi: number,
  showX: boolean,
): string {
  const left = 80;
  const right = 20;
  const top = 34;
  const bottom = showX ? 46 : 24;
  const pw = w - left - right;
  const ph = h - top - bottom;
  const px = x0 + left;
  const py = y0 + top;
  const parts: string[] = [];
  parts.push(`<text x="${px}" y="${y0 + 22}" font-size="17" font-weight="bold" fill="#222">${esc(p.title)}</text>`);
  parts.push(`<rect x="${px}" y="${py}" width="${pw}" height="${ph}" fill="#fbfbfb" stroke="#999" stroke-width="1"/>`);
  const all = p.series.flatMap((s) => s.ys).filter(Number.isFinite);
  if (all.length === 0) {
    parts.push(
      `<text x="${px + pw / 2}" y="${py + ph / 2}" font-size="15" fill="#888" text-anchor="middle">no data</text>`,
    );
    return parts.join('\n');
  }
  let ylo = Math.min(...all);
  let yhi = Math.max(...all);
  if (p.zeroBased) ylo = Math.min(0, ylo);
  const yt = niceTicks(ylo, yhi, 5);
  ylo = yt[0];
  yhi = yt[yt.length - 1];
  const sx = (x: number): number => px + ((x - xlo) / (xhi - xlo || 1)) * pw;
  const sy = (y: number): number => py + ph - ((y - ylo) / (yhi - ylo || 1)) * ph;
  for (const t of yt) {
    const y = sy(t).toFixed(1);
    parts.push(`<line x1="${px}" y1="${y}" x2="${px + pw}" y2="${y}" stroke="#e3e3e3" stroke-width="1"/>`);
    parts.push(
      `<text x="${px - 8}" y="${y}" font-size="13" fill="#333" text-anchor="end" ` +
        `dominant-baseline="middle">${esc(formatTick(t))}</text>`,
    );
  }
  for (const t of niceTicks(xlo, xhi, 8)) {
    if (t < xlo || t > xhi) continue;
    const x = sx(t).toFixed(1);
    parts.push(`<line x1="${x}" y1="${py}" x2="${x}" y2="${py + ph}" stroke="#eeeeee" stroke-width="1"/>`);
    if (showX)
      parts.push(
        `<text x="${x}" y="${py + ph + 18}" font-size="13" fill="#333" ` +
          `text-anchor="middle">${esc(formatTick(t))}</text>`,
      );
  }
  parts.push(
    `<text transform="translate(${x0 + 18} ${py + ph / 2}) rotate(-90)" font-size="14" fill="#333" ` +
      `text-anchor="middle">${esc(p.yLabel)}</text>`,
  );
  if (showX)
    parts.push(
      `<text x="${px + pw / 2}" y="${py + ph + 38}" font-size="14" fill="#333" text-anchor="middle">iteration</text>`,
    );
  for (const s of p.series) {
    const pts = s.xs.map((x, i) => [x, s.ys[i]]).filter(([, y]) => Number.isFinite(y));
    if (pts.length === 0) continue;
    const d = pts.map(([x, y], i) => `${i ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    parts.push(
      `<path d="${d}" fill="none" stroke="${s.colour}" stroke-width="${s.width}" stroke-opacity="${s.opacity ?? 1}" ` +
        `stroke-linejoin="round"/>`,
    );
    if (s.dots)
      for (const [x, y] of pts)
        parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3.5" fill="${s.colour}"/>`);
  }
  // Legend in the title row, right-aligned (never over the curves).
  const shown = p.series.filter((s) => s.ys.some(Number.isFinite));
  let lx = px + pw;
  for (const s of [...shown].reverse()) {
    lx -= 44 + 8 * s.label.length;
    const ly = y0 + 17;
    parts.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${s.colour}" stroke-width="3" ` +
        `stroke-opacity="${s.opacity ?? 1}"/>`,
    );
    parts.push(
      `<text x="${lx + 28}" y="${ly}" font-size="13" fill="#222" dominant-baseline="middle">${esc(s.label)}</text>`,
    );
  }
  return parts.join('\n');
}

export interface PlotOptions {
  width?: number;
  height?: number;
  title?: string;
  /** Moving-average window for the loss (default: ~2% of the points, at least 1). */
  smooth?: number;
}

/** The three-panel SVG (loss, learning rate, mIoU) for a parsed log. */
export function renderCurvesSvg(log: ParsedLog, opts: PlotOptions = {}): string {
  const W = opts.width ?? 1100;
  const H = opts.height ?? 1000;
  const titleH = opts.title ? 40 : 10;
  const xs = [...log.train.map((p) => p.iter), ...log.val.map((p) => p.iter)];
  const xlo = xs.length ? Math.min(0, ...xs) : 0;
  const xhi = xs.length ? Math.max(...xs) : 1;
  const withLoss = log.train.filter((p) => p.loss !== undefined);
  const withLr = log.train.filter((p) => p.lr !== undefined);
  const lossY = withLoss.map((p) => p.loss!);
  const win = opts.smooth ?? Math.max(1, Math.round(lossY.length / 50));
  const panels: Panel[] = [
    {
      title: 'Training loss',
      yLabel: 'loss',
      series: [
        {
          label: 'loss',
          colour: '#1f77b4',
          xs: withLoss.map((p) => p.iter),
          ys: lossY,
          width: 1.2,
          opacity: win > 1 ? 0.35 : 1,
        },
        ...(win > 1
          ? [
              {
                label: `loss (avg ${win})`,
                colour: '#1f77b4',
                xs: withLoss.map((p) => p.iter),
                ys: movingAverage(lossY, win),
                width: 2.5,
              },
            ]
          : []),
      ],
    },
    {
      title: 'Learning rate',
      yLabel: 'lr',
      zeroBased: true,
      series: [
        { label: 'lr', colour: '#ff7f0e', xs: withLr.map((p) => p.iter), ys: withLr.map((p) => p.lr!), width: 2 },
      ],
    },
    {
      title: 'Validation',
      yLabel: 'percent',
      series: [
        {
          label: 'mIoU',
          colour: '#2ca02c',
          xs: log.val.map((p) => p.iter),
          ys: log.val.map((p) => p.mIoU),
          width: 2.5,
          dots: true,
        },
        {
          label: 'mAcc',
          colour: '#9467bd',
          xs: log.val.map((p) => p.iter),
          ys: log.val.map((p) => p.mAcc ?? NaN),
          width: 1.5,
          dots: true,
        },
        {
          label: 'aAcc',
          colour: '#8c564b',
          xs: log.val.map((p) => p.iter),
          ys: log.val.map((p) => p.aAcc ?? NaN),
          width: 1.5,
          dots: true,
        },
      ],
    },
  ];
  const ph = (H - titleH) / panels.length;
  const body = panels
    .map((p, i) => panelSvg(p, 0, titleH + i * ph, W, ph, xlo, xhi, i === panels.length - 1))
    .join('\n');
  const title = opts.title
    ? `<text x="${W / 2}" y="28" font-size="20" font-weight="bold" fill="#111" ` +
      `text-anchor="middle">${esc(opts.title)}</text>`
    : '';
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
    `font-family="DejaVu Sans, Arial, sans-serif">
<rect width="${W}" height="${H}" fill="white"/>
${title}
${body}
</svg>
`
  );
}

/** Rasterise an SVG string to PNG bytes. */
export async function svgToPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg)).png().toBuffer();
}

export interface PlotLogResult {
  trainPoints: number;
  valPoints: number;
  skipped: number;
}

/** Read a JSONL log and write the curves PNG (atomically). */
export async function plotLog(logPath: string, outPath: string, opts: PlotOptions = {}): Promise<PlotLogResult> {
  let text: string;
  try {
    text = await fs.readFile(logPath, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(
      err.code === 'ENOENT' ? `log file not found: ${logPath}` : `cannot read ${logPath}: ${err.message}`,
    );
  }
  const log = parseTrainingLog(text);
  if (log.train.length === 0 && log.val.length === 0) {
    throw new Error(`${logPath}: no training or validation lines found (${log.skipped} lines skipped)`);
  }
  await writeFileAtomic(outPath, await svgToPng(renderCurvesSvg(log, { title: opts.title ?? logPath, ...opts })));
  return { trainPoints: log.train.length, valPoints: log.val.length, skipped: log.skipped };
}
