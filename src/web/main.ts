/**
 * The static page's script (bundled by scripts/build-web.mjs): loads an exported .onnx with
 * onnxruntime-web (WebGPU where the browser has it, WASM otherwise) and segments images with
 * the same TypeScript as `predict --weights model.onnx` (inference/host_segment.ts: resize,
 * normalisation, slide windows, argmax; visualization/overlay.ts: colours and class shares).
 * URL parameters: ?model=<url>&image=<url> load both at start; ?ep=wasm forces WASM.
 * window.beitsegResult holds the last label map (the browser test compares it with predict's).
 */
import * as ort from 'onnxruntime-web/webgpu';
import { makeImage, makeLabel, type RgbImage } from '../data/types.js';
import { hostModel, readModelMeta, sessionRunner } from '../inference/backends/onnx_model.js';
import { segmentHost, type HostModel } from '../inference/host_segment.js';
import { classShares, overlay } from '../visualization/overlay.js';

interface PageResult {
  pred: number[];
  height: number;
  width: number;
  ms: number;
  windows: number;
  ep: string;
}

declare global {
  interface Window {
    beitsegResult?: PageResult;
    beitsegError?: string;
  }
}

const $ = (id: string) => document.getElementById(id) as HTMLElement;
const params = new URLSearchParams(location.search);
let model: HostModel | null = null;
let ep = 'wasm';
let shown: { img: RgbImage; pred: Int32Array } | null = null;

function status(text: string, error = false): void {
  $('status').textContent = text;
  $('status').classList.toggle('error', error);
  if (error) window.beitsegError = text;
}

async function loadModel(bytes: Uint8Array, name: string): Promise<void> {
  status(`loading ${name} (${(bytes.byteLength / 1e6).toFixed(1)} MB)…`);
  const meta = readModelMeta(bytes, name);
  ort.env.wasm.wasmPaths = new URL('ort/', location.href).href;
  // threads need cross-origin isolation (SharedArrayBuffer); a plain static host has one
  ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  const gpu = params.get('ep') !== 'wasm' && 'gpu' in navigator;
  const providers = gpu ? ['webgpu', 'wasm'] : ['wasm'];
  const session = await ort.InferenceSession.create(bytes, { executionProviders: providers });
  ep = gpu ? 'webgpu (else wasm)' : 'wasm';
  model = hostModel(meta, sessionRunner(session, ort.Tensor, name), name);
  $('model-info').textContent =
    `${name}: ${meta.numClasses} classes, ${meta.precision}, ${meta.testCfg.mode}, ONNX Runtime Web (${ep})`;
  status('Model ready: pick an image.');
}

async function decode(blob: Blob): Promise<RgbImage> {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0);
  const rgba = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
  const img = makeImage(bitmap.height, bitmap.width);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    img.data[j] = rgba[i];
    img.data[j + 1] = rgba[i + 1];
    img.data[j + 2] = rgba[i + 2];
  }
  return img;
}

function render(): void {
  if (!shown || !model) return;
  const { img, pred } = shown;
  const alpha = Number(($('opacity') as HTMLInputElement).value) / 100;
  const seg = makeLabel(img.height, img.width, Uint8Array.from(pred));
  const blended = overlay(img, seg, model.meta.palette, { alpha });
  const canvas = $('overlay') as HTMLCanvasElement;
  canvas.width = img.width;
  canvas.height = img.height;
  const frame = new ImageData(img.width, img.height);
  for (let i = 0, j = 0; j < blended.data.length; i += 4, j += 3) {
    frame.data[i] = blended.data[j];
    frame.data[i + 1] = blended.data[j + 1];
    frame.data[i + 2] = blended.data[j + 2];
    frame.data[i + 3] = 255;
  }
  canvas.getContext('2d')!.putImageData(frame, 0, 0);
  // small images are shown enlarged (whole multiples, pixels kept sharp)
  canvas.style.width = `${img.width * Math.max(1, Math.floor(640 / img.width))}px`;
  canvas.style.imageRendering = 'pixelated';
  $('opacity-value').textContent = `${Math.round(alpha * 100)}%`;
}

function legend(pred: Int32Array): void {
  const list = $('legend');
  list.replaceChildren();
  const shares = classShares(Uint8Array.from(pred), model!.meta.classes);
  for (const c of shares.classes) {
    const item = document.createElement('li');
    // a button, as on serve's page (its style.css lays the legend out on buttons)
    const button = document.createElement('button');
    button.type = 'button';
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = `rgb(${model!.meta.palette[c.id].join(',')})`;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = c.name;
    const share = document.createElement('span');
    share.className = 'share';
    share.textContent = `${(c.share * 100).toFixed(1)}%`;
    button.append(swatch, name, share);
    item.append(button);
    list.append(item);
  }
  $('legend-title').hidden = false;
}

async function segment(blob: Blob, name: string): Promise<void> {
  if (!model) throw new Error('load a model first');
  const img = await decode(blob);
  status(`segmenting ${name} (${img.width}x${img.height})…`);
  let windows = 0;
  const t0 = performance.now();
  const r = await segmentHost(model, img, { onWindow: (done) => (windows = done) });
  const ms = performance.now() - t0;
  shown = { img, pred: r.pred };
  render();
  legend(r.pred);
  $('controls').hidden = false;
  status(`${name}: ${img.width}x${img.height} in ${(ms / 1000).toFixed(2)} s (${windows || 1} window(s), ${ep})`);
  window.beitsegResult = { pred: Array.from(r.pred), height: r.height, width: r.width, ms, windows: windows || 1, ep };
}

function guard(p: Promise<void>): void {
  p.catch((e: Error) => status(e.message, true));
}

$('model-input').addEventListener('change', (e) => {
  const f = (e.target as HTMLInputElement).files?.[0];
  if (f) guard(f.arrayBuffer().then((b) => loadModel(new Uint8Array(b), f.name)));
});
$('file-input').addEventListener('change', (e) => {
  const f = (e.target as HTMLInputElement).files?.[0];
  if (f) guard(segment(f, f.name));
});
$('opacity').addEventListener('input', render);

async function fetchBytes(url: string): Promise<Blob> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.blob();
}

async function start(): Promise<void> {
  const modelUrl = params.get('model');
  if (modelUrl) await loadModel(new Uint8Array(await (await fetchBytes(modelUrl)).arrayBuffer()), modelUrl);
  const imageUrl = params.get('image');
  if (modelUrl && imageUrl) await segment(await fetchBytes(imageUrl), imageUrl);
}
guard(start());
