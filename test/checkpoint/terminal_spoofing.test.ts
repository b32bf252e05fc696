/**
 * Issue 25 item 3: text from a checkpoint (tensor keys, top-level keys, skipped entries,
 * safetensors metadata, group names) and file names reach inspect's report, predict's
 * "keys unused" note and error lines escaped: no ESC, no forged newline. Before, all of these
 * were printed raw.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildTorchZip, f32Tensor, PickleWriter, repoRoot } from './helpers.js';
import { makeTempDir } from '../temp.js';
import { inspectFile } from '../../src/checkpoint/inspect_file.js';
import { writeSafetensors } from '../../src/checkpoint/formats/safetensors.js';
import { formatInspectReport } from '../../src/cli/inspect.js';
import { describeLoad, type WeightsReport } from '../../src/inference/weights.js';

const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const EVIL = '\u001b[2J\u001b[1;1Hbeitseg: all good\nforged line';
const bin = path.join(repoRoot, 'bin', 'beitseg.js');

/** Lines of `text`, each without a raw control character and without the forged line at its start. */
function assertSafe(text: string, what: string): void {
  assert.ok(!RAW_CONTROL.test(text), `${what}: raw control character in ${JSON.stringify(text.slice(0, 300))}`);
  assert.ok(!/^forged line/m.test(text), `${what}: a forged line starts a line`);
}

function evilPth(dir: string, name = 'evil.pth', withTensor = true): string {
  const w = new PickleWriter().proto(2).emptyDict();
  w.str(`meta${EVIL}`).str(`value${EVIL}`).setitem();
  w.str('state_dict').emptyDict();
  if (withTensor) w.str(`backbone.${EVIL}.weight`).tensor('FloatStorage', '0', 1, 0, [1], [1]).setitem();
  w.str(`skipped${EVIL}`).int(3).setitem();
  w.setitem();
  const file = path.join(dir, name);
  fs.writeFileSync(file, buildTorchZip('evil', w.stop().bytes(), { 0: new Uint8Array(4) }));
  return file;
}

test('inspect (full and --summary) escapes keys, skipped entries, metadata and group names', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const pth = evilPth(dir);
  for (const summaryOnly of [false, true]) {
    assertSafe(formatInspectReport(await inspectFile(pth), { summaryOnly }), `pth summary=${summaryOnly}`);
  }
  const st = path.join(dir, 'evil.safetensors');
  writeSafetensors(st, { [`${EVIL}.w`]: f32Tensor([1], [1]) }, { [`k${EVIL}`]: `v${EVIL}` });
  for (const summaryOnly of [false, true]) {
    const text = formatInspectReport(await inspectFile(st), { summaryOnly });
    assertSafe(text, `safetensors summary=${summaryOnly}`);
    assert.match(text, /\\x1b\[2J/, 'the escape is shown, escaped');
  }
});

test('the CLI: inspect output and error lines from a hostile file and file name are escaped', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const ok = spawnSync(process.execPath, [bin, 'inspect', '--summary', evilPth(dir)], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assertSafe(ok.stdout + ok.stderr, 'inspect');
  // no tensors: the error lists the top-level keys; the file name itself carries an escape
  const bad = evilPth(dir, 'bad\u001b[31m.pth', false);
  const r = spawnSync(process.execPath, [bin, 'inspect', bad], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assertSafe(r.stdout + r.stderr, 'inspect error');
  const conv = spawnSync(process.execPath, [bin, 'convert', bad, path.join(dir, 'o.pth')], { encoding: 'utf8' });
  assert.notEqual(conv.status, 0);
  assertSafe(conv.stdout + conv.stderr, 'convert error');
});

test("predict's load notes ('keys unused', missing keys) escape checkpoint keys", () => {
  const report = {
    file: `ck${EVIL}.pth`,
    description: { summary: `1 tensor, skipped meta${EVIL}` },
    conversion: { layout: 'mmseg-segmentor' },
    resizedTables: 0,
    missingKeys: [`decode_head.${EVIL}`],
    unexpectedKeys: [`x${EVIL}`, 'y'],
  } as unknown as WeightsReport;
  const lines = describeLoad(report);
  assert.ok(lines.some((l) => l.includes('checkpoint keys unused')));
  assertSafe(lines.join('\n'), 'describeLoad');
});
