/**
 * beitseg's config evaluator against Python itself: each config below (pure Python, no bases) is
 * evaluated by beitseg and executed by /usr/bin/python3, and every variable must come out the
 * same, floats as floats (in Python's repr) and tuples as tuples. This is what lets print-config
 * --format py write floats and tuples back (issue 28 item 5), and it checks the comparisons,
 * conditions, slices and comprehension conditions of item 4 against the language they copy.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { readConfigFile } from '../../src/config/load.js';
import { floatRepr } from '../../src/config/py_values.js';
import { havePython, pythonValues, taggedJson } from './py_json.js';

const CASES: Record<string, string> = {
  float_literals: `
a = 1.0
b = 0.
c = .5
d = 1e-4
e = 1E3
f = 2.5e-05
g = 1_000.5
h = -0.0
i = 3
j = 0x1f
`,
  arithmetic: `
a = 4 / 2
b = 7 // 2
c = 7.0 // 2
d = -7 % 3
e = 7.5 % 2
f = 2 ** 10
g = 2 ** -1
h = 2.0 ** 3
i = 1 + 2.0
j = 3 * 0.1
k = 0.1 + 0.2
l = 1 - 1.0
m = -(2 * 3)
n = 10 / 4 * 2
o = 1e16 + 0
p = 123456789.123 * 1000
`,
  builtins: `
a = float(3)
b = float('2.5')
c = int(3.9)
d = int(-3.9)
e = round(2.5)
f = round(3.5)
g = round(2.675, 2)
g2 = round(0.125, 2)
g3 = round(0.375, 2)
g4 = round(1234.5678, -2)
g5 = round(-2.5)
g6 = round(-0.125, 2)
g7 = round(1e-20, 25)
h = round(15, -1)
h2 = round(25, -1)
i = round(1.5)
j = abs(-2.0)
k = abs(-2)
l = sum([1, 2.5])
m = sum([1, 2])
n = max(1, 2.0)
o = min([3, 1.0, 1])
p = str(1.0) + str(2) + str(None) + str(True)
q = len('abc') / 2
r = list(range(0, 10, 3))
s = tuple(range(3))
t = list(zip([1, 2], 'ab'))
u = list(enumerate(['x', 'y'], start=1))
v = sum([[1], [2.0]], [])
`,
  tuples: `
a = (1, 2)
b = (1,)
c = ()
d = a + (3,)
e = a * 2
f = [a, [a]]
g = dict(scale=(2048, 512), ratios=[0.5, 1.0, 1.5])
h = tuple([1, 2])
i = list((1, 2))
j = a[0:1]
k = 1, 2.0
`,
  comparisons_and_logic: `
a = 1 < 2 < 3
b = 1 < 2 > 3
c = 1 == 1.0
d = (1, 2) == [1, 2]
e = [1, 2] < [1, 3]
f = 'b' > 'a'
g = 2 in [1, 2]
h = 'x' not in 'abc'
i = 'k' in dict(k=1)
j = None is None
k = 1 is not None
l = 0 or 'default'
m = 1 and 2
n = [] or [3]
o = not 0
p = 'a' if 1 > 2 else 'b'
q = 1.5 if True else 2
r = True == 1
s = 2.0 >= 2
t = not []
u = (1, 2) < (1, 2, 0)
`,
  comprehensions_with_conditions: `
widths = [18, 36, 72, 144]
a = [w for w in widths if w > 20]
b = [w / 2 for w in widths if w > 20 if w < 100]
c = {f'stage{i}': w for i, w in enumerate(widths) if i % 2 == 0}
d = [(i, j) for i in range(3) for j in range(3) if i < j]
e = [x if x > 1 else 0.0 for x in [0, 1, 2, 3]]
f = {k: v for k, v in zip('abc', [1, None, 3.0]) if v is not None}
g = sum(w for w in widths if w != 36)
h = [c for c in 'a-b-c' if c != '-']
`,
  slices: `
l = [0, 1, 2, 3, 4, 5]
a = l[1:3]
b = l[::-1]
c = l[-2:]
d = l[:-2]
e = l[::2]
f = l[5:0:-2]
g = l[10:]
h = 'abcdef'[1:4]
i = 'abcdef'[::-1]
j = (1, 2, 3)[1:]
k = l[:]
m = l[-100:100]
n = 'abc'[-1]
o = l[None:2]
`,
  fstrings_and_reprs: `
a = f'{1 / 2}'
b = f'{2.0}'
c = f'{1e-05}'
d = f'{0.1 + 0.2}'
e = f'{[1.0, (2, 3)]}'
f = f'{dict(a=1.5)}'
g = f'lr{1e-4:.0e}_w{0.05:.2f}'
h = f'{1e16}'
i = f'{-0.0}'
j = f"{'a' if 2 > 1 else 'b'}{0.5:.1%}"
`,
  update_and_keys: `
d = dict(a=1)
d.update(b=2.0, c=(1,))
e = {1: 'int', 2.5: 'float', 'x': 3}
f = dict([('k', 1.0)])
custom = {'backbone': dict(lr_mult=0.1)}
n = len(custom)
custom.update({f'stage{i}.norm': dict(decay_mult=0.0) for i in range(2)})
wrapper = dict(paramwise_cfg=dict(custom_keys=custom))
`,
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-pysem-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("the config evaluator agrees with Python's own evaluation", () => {
  for (const [name, text] of Object.entries(CASES)) {
    it(name, async (t) => {
      const file = path.join(dir, `${name}.py`);
      fs.writeFileSync(file, text);
      const ours = taggedJson(readConfigFile(file, { pyTypes: true, env: {} }));
      if (!havePython) {
        t.skip('python3 is not installed (scripts/setup.sh installs it): compared with nothing');
        return;
      }
      assert.equal(ours, await pythonValues(file));
    });
  }
});

describe('what beitseg refuses rather than evaluate differently', () => {
  it('NAME.update(...) after the dict was stored in another value (Python would change that value too)', () => {
    for (const [text, line] of [
      ['x = dict(a=1)\ny = dict(inner=x)\nx.update(b=2)', 2],
      ['x = dict(a=1)\ny = [0, x]\nx.update(b=2)', 2],
      ['x = dict(a=1)\ny = x\nx.update(b=2)', 2],
      ['x = dict(a=1)\ny = {k: x for k in "ab"}\nx.update(b=2)', 2],
      ['x = dict(a=1)\ny = None or x\nx.update(b=2)', 2],
    ] as const) {
      const file = path.join(dir, 'shared.py');
      fs.writeFileSync(file, text);
      assert.throws(
        () => readConfigFile(file, { env: {} }),
        new RegExp(`shared\\.py:3: x\\.update\\(\\.\\.\\.\\) after x was put into another value on line ${line}`),
        text,
      );
    }
    const file = path.join(dir, 'rebound.py');
    fs.writeFileSync(file, 'x = dict(a=1)\ny = dict(inner=x)\nx = dict(c=3)\nx.update(b=2)\nz = x["b"]');
    assert.deepEqual(readConfigFile(file, { env: {} }), { x: { c: 3, b: 2 }, y: { inner: { a: 1 } }, z: 2 });
  });
});

describe("floats written as Python's repr writes them", () => {
  it('fixed notation for exponents -4..15, else d.ddde+XX; integral values keep .0', () => {
    const cases: [number, string][] = [
      [1, '1.0'],
      [0, '0.0'],
      [-0, '-0.0'],
      [0.1, '0.1'],
      [1e-4, '0.0001'],
      [1e-5, '1e-05'],
      [1.5e-7, '1.5e-07'],
      [1e15, '1000000000000000.0'],
      [1e16, '1e+16'],
      [1.2345678901234568e17, '1.2345678901234568e+17'],
      [123.456, '123.456'],
      [0.1 + 0.2, '0.30000000000000004'],
      [5e-324, '5e-324'],
      [1.7976931348623157e308, '1.7976931348623157e+308'],
      [-2.5, '-2.5'],
    ];
    for (const [x, repr] of cases) assert.equal(floatRepr(x), repr, String(x));
  });
});
