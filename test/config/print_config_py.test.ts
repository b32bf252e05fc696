/**
 * Issue 28 item 5: `print-config --format py` writes mmengine's Config.dump('x.py') form: keys
 * sorted at every level, floats as floats, tuples as tuples, `_delete_` kept where mmengine keeps
 * it (a key the base does not have) and gone where mmengine pops it. The file reads back to the
 * same values in beitseg and in Python itself, and to the config the JSON form prints.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadCliConfig } from '../../src/cli/config_arg.js';
import { readConfigFile } from '../../src/config/load.js';
import { beitseg } from '../child.js';
import { repoRoot } from '../helpers.js';
import { havePython, pythonValues, taggedJson } from './py_json.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-print-py-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(rel: string, text: string): string {
  const f = path.join(dir, rel);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, text);
  return f;
}

write(
  'base/model.py',
  `norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    backbone=dict(type='BEiT', img_size=(640, 640), drop_path_rate=0.1, init_values=1.0),
    decode_head=dict(
        type='UPerHead',
        in_channels=[768] * 4,
        pool_scales=(1, 2, 3, 6),
        norm_cfg=norm_cfg,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    test_cfg=dict(mode='whole'))
optimizer = dict(type='SGD', lr=0.01, momentum=0.9)
`,
);
const leaf = write(
  'leaf.py',
  `_base_ = ['./base/model.py']
crop_size = (512, 512)
model = dict(
    decode_head=dict(num_classes=150, loss_decode=dict(_delete_=True, type='FocalLoss', gamma=2.0)),
    auxiliary_head=dict(_delete_=True, type='FCNHead', in_index=2))
optimizer = dict(_delete_=True, type='AdamW', lr=6e-05, betas=(0.9, 0.999), weight_decay=0.05)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, eta_min=0.0, begin=1500, end=160000, by_epoch=False),
]
meta = {'odd key': 1, 'class': 2.5}
note = "it's"
`,
);
const options = ['model.backbone.drop_path_rate=0.2', 'train_cfg.max_iters=1000', 'model.test_cfg.crop=(64,64)'];

// mmengine's merge: auxiliary_head is not in the base, so its _delete_ stays; loss_decode and
// optimizer are, so theirs are popped and the base values replaced
const EXPECTED = `crop_size = (512, 512)
meta = {'class': 2.5, 'odd key': 1}
model = dict(
    auxiliary_head=dict(_delete_=True, in_index=2, type='FCNHead'),
    backbone=dict(
        drop_path_rate=0.2,
        img_size=(640, 640),
        init_values=1.0,
        type='BEiT',
    ),
    decode_head=dict(
        in_channels=[768, 768, 768, 768],
        loss_decode=dict(gamma=2.0, type='FocalLoss'),
        norm_cfg=dict(requires_grad=True, type='SyncBN'),
        num_classes=150,
        pool_scales=(1, 2, 3, 6),
        type='UPerHead',
    ),
    test_cfg=dict(crop=(64, 64), mode='whole'),
    type='EncoderDecoder',
)
norm_cfg = dict(requires_grad=True, type='SyncBN')
note = "it's"
optimizer = dict(betas=(0.9, 0.999), lr=6e-05, type='AdamW', weight_decay=0.05)
param_scheduler = [
    dict(
        begin=0,
        by_epoch=False,
        end=1500,
        start_factor=1e-06,
        type='LinearLR',
    ),
    dict(
        begin=1500,
        by_epoch=False,
        end=160000,
        eta_min=0.0,
        power=1.0,
        type='PolyLR',
    ),
]
train_cfg = dict(max_iters=1000)
`;

describe('print-config --format py', () => {
  it("writes mmengine's dump form: sorted keys, floats, tuples, _delete_ where mmengine keeps it", async () => {
    const { stdout } = await beitseg(['print-config', leaf, '--format', 'py', '--cfg-options', ...options]);
    assert.equal(stdout, EXPECTED);
  });

  it('--out x.py picks the form, and the file reads back to the same values in beitseg and in Python', async (t) => {
    const out = path.join(dir, 'out', 'dumped.py');
    const { stderr } = await beitseg(['print-config', leaf, '--out', out, '--cfg-options', ...options]);
    assert.match(stderr, /wrote .*dumped\.py/);
    assert.equal(fs.readFileSync(out, 'utf8'), EXPECTED);
    const rich = taggedJson(loadCliConfig(leaf, options, { pyTypes: true, warn: () => {} }));
    assert.equal(taggedJson(readConfigFile(out, { pyTypes: true })), rich);
    assert.match(rich, /"lr": 6e-05/);
    assert.match(rich, /"init_values": 1\.0/);
    assert.match(rich, /"crop": \{"__tuple__": \[64, 64\]\}/);
    if (!havePython) {
      t.skip('python3 is not installed (scripts/setup.sh installs it): not executed by Python');
      return;
    }
    assert.equal(await pythonValues(out), rich);
  });

  it('the JSON form is the same config without the _delete_ keys mmengine leaves', async () => {
    const { stdout } = await beitseg(['print-config', leaf, '--cfg-options', ...options]);
    const json = JSON.parse(stdout);
    const out = path.join(dir, 'roundtrip.py');
    fs.writeFileSync(out, EXPECTED);
    assert.deepEqual(readConfigFile(out), json);
    assert.deepEqual(json.model.auxiliary_head, { type: 'FCNHead', in_index: 2 });
    assert.equal(json.model.init_values, undefined);
    assert.deepEqual(json.crop_size, [512, 512]);
  });

  it("mmseg's BEiT config: floats stay floats, lines fit in 79 columns, Python reads the same values", async (t) => {
    const config = path.join(
      repoRoot,
      'test',
      'fixtures',
      'configs',
      'mmseg_beit',
      'beit-base_upernet_8xb2-160k_ade20k-640x640.py',
    );
    const { stdout } = await beitseg(['print-config', config, '--format', 'py']);
    for (const text of ['power=1.0', 'eta_min=0.0', 'lr=3e-05', 'start_factor=1e-06', 'ratio_range=(0.5, 2.0)']) {
      assert.ok(stdout.includes(text), `${text} in the dump`);
    }
    for (const line of stdout.split('\n')) assert.ok(line.length <= 79 || !/[,([]\s*\S/.test(line.trim()), line);
    if (!havePython) {
      t.skip('python3 is not installed (scripts/setup.sh installs it): not executed by Python');
      return;
    }
    const out = path.join(dir, 'beit_dump.py');
    fs.writeFileSync(out, stdout);
    assert.equal(await pythonValues(out), taggedJson(readConfigFile(config, { pyTypes: true })));
  });

  it('floats of a YAML base stay floats (as PyYAML reads them); a JSON base has only JSON numbers', async () => {
    write('bases/sched.yaml', 'sched:\n  power: 1.0\n  eta_min: 0.0\n  begin: 0\n  ratios: [0.5, 2]\n');
    write('bases/opt.json', '{"opt": {"lr": 1.0, "momentum": 0.9}}');
    const cfg = write('yaml_leaf.py', "_base_ = ['./bases/sched.yaml', './bases/opt.json']\n");
    const { stdout } = await beitseg(['print-config', cfg, '--format', 'py']);
    assert.equal(
      stdout,
      'opt = dict(lr=1, momentum=0.9)\nsched = dict(begin=0, eta_min=0.0, power=1.0, ratios=[0.5, 2])\n',
    );
  });

  it('refuses a top-level key that is not a Python name, naming it', async () => {
    const json = write('odd.json', JSON.stringify({ 'odd key': 1 }));
    await assert.rejects(beitseg(['print-config', json, '--format', 'py']), (err: Error & { stderr: string }) => {
      assert.match(err.stderr, /top-level key 'odd key' cannot be written as a Python variable; use --format json/);
      return true;
    });
  });
});
