/** Error text taken from a file is printable, length-capped and quoted (issue 15, point 5). */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileText, quoteFileText } from '../../src/common/safe_text.js';
import { readCheckpoint } from '../../src/checkpoint/read_checkpoint.js';
import { unpickle } from '../../src/checkpoint/formats/pickle.js';
import { makeTempDir } from '../temp.js';
import { buildTorchZip, buildZip, PickleWriter } from './helpers.js';

const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

test('quoteFileText escapes control, bidi and separator characters and caps the length', () => {
  assert.equal(quoteFileText('os.system'), "'os.system'");
  assert.equal(quoteFileText('a\u001b[2Jb'), "'a\\x1b[2Jb'");
  assert.equal(quoteFileText('x\u202ey\u2028z\\'), "'x\\u202ey\\u2028z\\\\'");
  assert.equal(quoteFileText("it's", "'"), "'it\\'s'");
  assert.equal(quoteFileText('say "hi"', '"'), '"say \\"hi\\""');
  const long = fileText('A'.repeat(7000));
  assert.ok(long.length < 200 && long.endsWith('...(6880 more characters)'), long);
  assert.equal(fileText('\ud83d\ude00 ok'), '\ud83d\ude00 ok', 'printable astral characters stay');
  assert.equal(fileText('lone \ud800'), 'lone \\ud800');
});

test('a 7 KB GLOBAL name with terminal escapes reaches the message quoted, escaped and cut', async (t) => {
  const { dir, cleanup } = makeTempDir();
  t.after(cleanup);
  const hostileName = `\u001b]0;pwned\u0007\u001b[2J${'x'.repeat(7000)}`;
  const pkl = new PickleWriter()
    .proto(2)
    .emptyDict()
    .str('x')
    .global('os', hostileName)
    .mark()
    .str('id')
    .tuple()
    .reduce()
    .setitem()
    .stop()
    .bytes();
  assert.throws(
    () => unpickle(pkl, { label: 'p' }),
    (err: Error) => {
      assert.ok(err.message.length < 600, `message of ${err.message.length} characters`);
      assert.ok(!RAW_CONTROL.test(err.message), err.message);
      assert.match(
        err.message,
        /refusing to load global 'os\.\\x1b\]0;pwned\\x07\\x1b\[2Jxxx.*\.\.\.\(\d+ more characters\)'/,
      );
      return true;
    },
  );
  const file = path.join(dir, 'escape.pth');
  fs.writeFileSync(file, buildTorchZip('e', pkl, {}));
  await assert.rejects(readCheckpoint(file), (err: Error) => {
    assert.ok(err.message.startsWith(`${file}: e/data.pkl: refusing to load global 'os.\\x1b]0;`), err.message);
    assert.ok(err.message.length < 700 && !RAW_CONTROL.test(err.message));
    return true;
  });
});

test(
  'archive entry names, storage keys, safetensors keys and dtypes from the file are escaped in ' + 'errors',
  async (t) => {
    const { dir, cleanup } = makeTempDir();
    t.after(cleanup);
    const evil = '\u001b[31mred\u202e';
    const check = async (name: string, data: Uint8Array, re: RegExp) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, data);
      await assert.rejects(readCheckpoint(file), (err: Error) => {
        assert.ok(!RAW_CONTROL.test(err.message), err.message);
        assert.ok(err.message.includes(file));
        assert.match(err.message, re);
        return true;
      });
    };
    // A storage key with escapes, missing from the archive.
    const pkl = new PickleWriter()
      .proto(2)
      .emptyDict()
      .str('w')
      .tensor('FloatStorage', evil, 1, 0, [1], [1])
      .setitem()
      .stop()
      .bytes();
    await check('key.pth', buildTorchZip('k', pkl, {}), /storage \\x1b\[31mred\\u202e is referenced by data\.pkl/);
    // An archive folder name with escapes.
    await check(
      'entry.pth',
      buildZip([{ name: `${evil}/data.pkl`, data: Uint8Array.of(0x80, 0x02, 0xff), utf8: true }]),
      /: \\x1b\[31mred\\u202e\/data\.pkl: unknown pickle opcode 0xff/,
    );
    // safetensors: a tensor key and a dtype with escapes.
    const header = JSON.stringify({ [evil]: { dtype: `F${evil}`, shape: [1], data_offsets: [0, 4] } });
    const st = Buffer.concat([Buffer.alloc(8), Buffer.from(header), Buffer.alloc(4)]);
    st.writeBigUInt64LE(BigInt(Buffer.byteLength(header)));
    await check('evil.safetensors', st, /tensor "\\x1b\[31mred\\u202e": unknown dtype "F\\x1b\[31mred\\u202e"/);
  },
);
