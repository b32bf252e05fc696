/**
 * One HTML page that shows what a segmentation run did: per image, the input, the prediction and
 * the ground truth side by side (label maps in class colours), the overlay with its legend, and
 * the IoU of each class in that image; above them, the dataset's per-class IoU from evaluation.
 * Self-contained apart from the images, which it links by relative path. Every text taken from
 * files (class and file names) is escaped.
 */
import type { Rgb } from '../data/metainfo.js';
import { escapeXml } from './legend.js';

export interface SummaryImage {
  name: string;
  /** Paths relative to the page. */
  input: string;
  prediction: string;
  groundTruth: string;
  overlay?: string;
  /** IoU per class id in this image (null where the class is in neither map). */
  iou: (number | null)[];
}

export interface SummaryPage {
  title: string;
  classes: readonly string[];
  palette: readonly Rgb[];
  /** Dataset-level per-class IoU in percent (eval's per_class), null where undefined. */
  classIoU?: (number | null)[];
  metrics?: { mIoU: number | null; mAcc: number | null; aAcc: number | null; images?: number };
  /** Short paragraphs under the title (plain text, escaped). */
  notes?: string[];
  images: SummaryImage[];
}

const pct = (v: number | null | undefined): string => (v == null ? '–' : `${v.toFixed(1)}`);
const swatch = (c: Rgb): string => `<span class="sw" style="background:rgb(${c[0]},${c[1]},${c[2]})"></span>`;

/** Per-class IoU (0..100) of one predicted label map against its ground truth; null where absent from both. */
export function imageIoU(pred: Uint8Array, gt: Uint8Array, numClasses: number, ignoreIndex = 255): (number | null)[] {
  if (pred.length !== gt.length) throw new Error(`imageIoU: ${pred.length} predicted vs ${gt.length} true pixels`);
  const inter = new Float64Array(numClasses);
  const union = new Float64Array(numClasses);
  for (let i = 0; i < gt.length; i++) {
    const t = gt[i];
    if (t === ignoreIndex) continue;
    const p = pred[i];
    if (p === t) {
      if (t < numClasses) {
        inter[t]++;
        union[t]++;
      }
    } else {
      if (t < numClasses) union[t]++;
      if (p < numClasses) union[p]++;
    }
  }
  return Array.from(union, (u, k) => (u === 0 ? null : (100 * inter[k]) / u));
}

export function summaryHtml(page: SummaryPage): string {
  const e = escapeXml;
  const legend = page.classes
    .map((name, k) => {
      const iou = page.classIoU ? `<td class="num">${pct(page.classIoU[k])}</td>` : '';
      return `<tr><td>${swatch(page.palette[k])}${e(name)}</td><td class="num">${k}</td>${iou}</tr>`;
    })
    .join('\n');
  const m = page.metrics;
  const metrics = m
    ? `<p class="metrics"><b>mIoU ${pct(m.mIoU)}</b> · mAcc ${pct(m.mAcc)} · aAcc ${pct(m.aAcc)}` +
      `${m.images ? ` · ${m.images} validation images` : ''}</p>`
    : '';
  const rows = page.images
    .map((img) => {
      const present = img.iou
        .map((v, k) => ({ v, k }))
        .filter((x) => x.v !== null)
        .map((x) => `<li>${swatch(page.palette[x.k])}${e(page.classes[x.k])} <b>${pct(x.v)}</b></li>`)
        .join('');
      const fig = (src: string, caption: string, cls = 'map'): string =>
        `<figure><img class="${cls}" src="${e(src)}" alt="${e(caption)}">` +
        `<figcaption>${e(caption)}</figcaption></figure>`;
      return (
        `<section class="row"><h3>${e(img.name)}</h3><div class="figs">` +
        fig(img.input, 'input') +
        fig(img.prediction, 'prediction') +
        fig(img.groundTruth, 'ground truth') +
        (img.overlay ? fig(img.overlay, 'overlay + legend', 'legend') : '') +
        `<div class="iou"><div class="cap">IoU in this image (%)</div><ul>${present}</ul></div></div></section>`
      );
    })
    .join('\n');
  const notes = (page.notes ?? []).map((n) => `<p class="note">${e(n)}</p>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${e(page.title)}</title>
<style>
body{font-family:"DejaVu Sans",Arial,sans-serif;margin:20px;color:#111;background:#fafafa}
h1{font-size:22px;margin:0 0 6px} h3{font-size:14px;margin:0 0 6px;color:#333}
.top{display:flex;gap:32px;align-items:flex-start;flex-wrap:wrap}
table{border-collapse:collapse;font-size:13px} td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}
td.num,th.num{text-align:right}
.sw{display:inline-block;width:13px;height:13px;margin-right:7px;vertical-align:-2px;border:1px solid #333}
.metrics{font-size:15px} .note{font-size:13px;color:#444;max-width:560px}
.row{background:#fff;border:1px solid #e3e3e3;padding:10px;margin:12px 0}
.figs{display:flex;gap:12px;align-items:flex-start;flex-wrap:wrap}
figure{margin:0} figure img{display:block;border:1px solid #ccc}
img.map{height:176px;image-rendering:pixelated} img.legend{height:auto}
figcaption{font-size:12px;color:#555;text-align:center;margin-top:3px}
.iou ul{list-style:none;padding:0;margin:4px 0;font-size:13px} .iou li{margin:2px 0} .cap{font-size:12px;color:#555}
</style></head>
<body>
<h1>${e(page.title)}</h1>
<div class="top"><div>${metrics}
${notes}</div>
<table><tr><th>class</th><th class="num">id</th>${page.classIoU ? '<th class="num">IoU %</th>' : ''}</tr>
${legend}
</table></div>
${rows}
</body></html>
`;
}
