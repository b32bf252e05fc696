// beitseg's web page: upload an image to /v1/segment, draw the overlay from the label PNG it
// returns, list the classes present. Plain browser JavaScript, no build step.
const $ = (id) => document.getElementById(id);
const state = { image: null, ids: null, width: 0, height: 0, classes: [], colors: new Map(), highlight: null };
/** Every image segmented on this page, in order: the strip of results shows one button each. */
const results = [];

function authHeaders() {
  const token = sessionStorage.getItem('beitseg-token') || $('token-input').value.trim();
  return token ? { authorization: `Bearer ${token}` } : {};
}

function setStatus(text, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
}

async function loadModelInfo() {
  const res = await fetch('/v1/model', { headers: authHeaders() });
  if (res.status === 401) {
    $('token-row').hidden = false;
    $('model-info').textContent = 'this server needs an API token';
    return;
  }
  const info = await res.json();
  const bb = info.config.backbone;
  $('model-info').textContent =
    `${bb.type ?? 'model'} ${bb.embed_dims ?? ''}d · ${info.numClasses} classes · ` +
    `${info.device} · ${info.serving.mode}`;
  // serve --web: the same segmentation computed in this browser instead of on the server
  if (info.browserPage) {
    $('browser-link').href = info.browserPage;
    $('browser-link').hidden = false;
  }
}

async function decodeLabelPng(base64, width, height) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }), {
    colorSpaceConversion: 'none',
    premultiplyAlpha: 'none',
  });
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const ids = new Uint8Array(width * height);
  for (let i = 0; i < ids.length; i++) ids[i] = rgba[4 * i];
  return ids;
}

async function segment(file) {
  setStatus(`Segmenting ${file.name}…`);
  const started = performance.now();
  const res = await fetch('/v1/segment?format=json&labels=png', {
    method: 'POST',
    body: file,
    headers: { 'content-type': file.type || 'application/octet-stream', ...authHeaders() },
  });
  const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (res.status === 401) $('token-row').hidden = false;
  if (!res.ok) {
    setStatus(`${file.name}: ${body.error}`, true);
    return;
  }
  const result = {
    name: file.name,
    width: body.width,
    height: body.height,
    image: await createImageBitmap(file, { imageOrientation: 'from-image' }),
    ids: await decodeLabelPng(body.label.data, body.width, body.height),
    classes: body.classes,
    label: body.label.data,
  };
  results.push(result);
  show(result);
  addToStrip(result);
  const seconds = ((performance.now() - started) / 1000).toFixed(2);
  setStatus(`${file.name}: ${body.width}×${body.height}, ${body.classes.length} classes, ${seconds} s`);
}

/** Makes `result` the one shown: overlay, legend, downloads. */
function show(result) {
  state.width = result.width;
  state.height = result.height;
  state.image = result.image;
  state.ids = result.ids;
  state.classes = result.classes;
  state.colors = new Map(result.classes.map((c) => [c.id, c.color]));
  state.highlight = null;
  const stem = result.name.replace(/\.[^.]+$/, '');
  $('download').href = `data:image/png;base64,${result.label}`;
  $('download').download = `${stem}_pred.png`;
  $('download-overlay').download = `${stem}_overlay.png`;
  renderLegend();
  render();
  $('controls').hidden = false;
  for (const b of $('strip').querySelectorAll('button'))
    b.setAttribute('aria-pressed', String(Number(b.dataset.index) === results.indexOf(result)));
}

function addToStrip(result) {
  const button = document.createElement('button');
  button.type = 'button';
  button.dataset.index = String(results.indexOf(result));
  button.title = result.name;
  const thumb = document.createElement('canvas');
  const k = Math.min(1, 96 / Math.max(result.width, result.height));
  thumb.width = Math.max(1, Math.round(result.width * k));
  thumb.height = Math.max(1, Math.round(result.height * k));
  thumb.getContext('2d').drawImage(result.image, 0, 0, thumb.width, thumb.height);
  const name = document.createElement('span');
  name.textContent = result.name;
  button.append(thumb, name);
  button.addEventListener('click', () => {
    show(result);
    setStatus(`${result.name}: ${result.width}×${result.height}, ${result.classes.length} classes`);
  });
  const item = document.createElement('li');
  item.append(button);
  $('strip').append(item);
  $('strip').hidden = results.length < 2;
  for (const b of $('strip').querySelectorAll('button')) b.setAttribute('aria-pressed', String(b === button));
}

function render() {
  if (!state.ids) return;
  const canvas = $('overlay');
  const { width, height } = state;
  canvas.width = width;
  canvas.height = height;
  // small images are shown enlarged with sharp pixels
  const scale = width < 480 ? Math.floor(480 / width) : 1;
  canvas.style.width = scale > 1 ? `${width * scale}px` : '';
  canvas.style.imageRendering = scale > 1 ? 'pixelated' : '';
  const ctx = canvas.getContext('2d');
  ctx.drawImage(state.image, 0, 0, width, height);
  const frame = ctx.getImageData(0, 0, width, height);
  const px = frame.data;
  const alpha = Number($('opacity').value) / 100;
  // before/after: the overlay covers the columns left of the split, the original shows on the right
  const splitX = Math.round((Number($('split').value) / 100) * width);
  for (let i = 0; i < state.ids.length; i++) {
    if (i % width >= splitX) continue;
    const id = state.ids[i];
    const color = state.colors.get(id);
    if (!color) continue;
    const a = state.highlight === null || state.highlight === id ? alpha : 0;
    const o = 4 * i;
    px[o] = px[o] * (1 - a) + color[0] * a;
    px[o + 1] = px[o + 1] * (1 - a) + color[1] * a;
    px[o + 2] = px[o + 2] * (1 - a) + color[2] * a;
  }
  ctx.putImageData(frame, 0, 0);
}

function renderLegend() {
  const list = $('legend');
  list.replaceChildren();
  for (const c of state.classes) {
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.dataset.classId = String(c.id);
    button.setAttribute('aria-pressed', 'false');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = `rgb(${c.color.join(',')})`;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = c.name;
    const share = document.createElement('span');
    share.className = 'share';
    share.textContent = `${(c.share * 100).toFixed(1)}%`;
    button.append(swatch, name, share);
    button.addEventListener('click', () => {
      state.highlight = state.highlight === c.id ? null : c.id;
      for (const b of list.querySelectorAll('button')) {
        const on = Number(b.dataset.classId) === state.highlight;
        b.classList.toggle('active', on);
        b.setAttribute('aria-pressed', String(on));
      }
      render();
    });
    item.append(button);
    list.append(item);
  }
  $('legend-title').hidden = false;
  $('legend-hint').hidden = false;
}

/** Segments the files one after the other (the server queues them anyway; one at a time keeps the page responsive). */
async function pickAll(files) {
  const images = files.filter((f) => !f.type || f.type.startsWith('image/'));
  for (const file of images) await segment(file).catch((e) => setStatus(`${file.name}: ${e.message}`, true));
}

/** The files of a drop, folders walked (Chromium, Firefox and Safari expose webkitGetAsEntry). */
async function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items].map((i) => i.webkitGetAsEntry?.()).filter(Boolean);
  if (entries.length === 0) return [...dataTransfer.files];
  const out = [];
  const walk = async (entry) => {
    if (entry.isFile) out.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
    else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (batch.length === 0) break;
        for (const e of batch) await walk(e);
      }
    }
  };
  for (const e of entries) await walk(e);
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

$('file-input').addEventListener('change', (e) => pickAll([...e.target.files]));
$('split').addEventListener('input', () => {
  $('split-value').textContent = `${$('split').value}%`;
  render();
});
const zone = $('drop-zone');
zone.addEventListener('dragover', (e) => {
  e.preventDefault();
  zone.classList.add('over');
});
zone.addEventListener('dragleave', () => zone.classList.remove('over'));
zone.addEventListener('drop', (e) => {
  e.preventDefault();
  zone.classList.remove('over');
  droppedFiles(e.dataTransfer).then(pickAll, (err) => setStatus(err.message, true));
});
$('opacity').addEventListener('input', () => {
  $('opacity-value').textContent = `${$('opacity').value}%`;
  render();
});
// the overlay as shown (opacity and highlight included), made when the link is followed
$('download-overlay').addEventListener('click', () => {
  $('download-overlay').href = $('overlay').toDataURL('image/png');
});
$('token-input').addEventListener('change', () => {
  sessionStorage.setItem('beitseg-token', $('token-input').value.trim());
  loadModelInfo().catch(() => undefined);
});
loadModelInfo().catch((e) => {
  $('model-info').textContent = `model information unavailable: ${e.message}`;
});
