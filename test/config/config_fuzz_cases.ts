/**
 * Seeded generator of hostile .py configs for the config-evaluator fuzz family: random
 * statements mixing the constructs that can make a small file expensive (repetition, nested
 * comprehensions, name copies, string growth, range, sum, f-strings, dict updates, spreads)
 * with ordinary ones. The same seed always gives the same files.
 */
import { prng } from '../tensor/ref.js';

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;

const BIG = ['10', '1000', '100000', '1000000', '10 ** 6', '10 ** 9', '10 ** 15', '-1', '0', '2 ** 40'];

function expr(r: Rand, names: string[], depth: number): string {
  const name = () => (names.length ? pick(r, names) : '[1]');
  const sub = () => (depth > 3 ? name() : expr(r, names, depth + 1));
  switch (int(r, 16)) {
    case 0:
      return `[${sub()}] * ${pick(r, BIG)}`;
    case 1:
      return `${sub()} * ${pick(r, BIG)}`;
    case 2:
      return `[${sub()} for _i in ${name()}]`;
    case 3:
      return `[[${sub()} for _a in ${name()}] for _b in ${name()}]`;
    case 4:
      return `[${Array.from({ length: 1 + int(r, 12) }, name).join(', ')}]`;
    case 5:
      return `'${'x'.repeat(int(r, 50))}' * ${pick(r, BIG)}`;
    case 6:
      return `${name()} + ${name()}`;
    case 7:
      return `list(range(${pick(r, BIG)}))`;
    case 8:
      return `sum(${name()}, [])`;
    case 9:
      return `f'{${name()}}{${name()}}'`;
    case 10:
      return `dict(a=${sub()}, **dict(b=${sub()}))`;
    case 11:
      return `{k: ${sub()} for k in range(${pick(r, BIG)})}`;
    case 12:
      return `len(${name()}) * ${pick(r, BIG)}`;
    case 13:
      return `zip(${name()}, ${name()}, ${name()})`;
    case 14:
      return `${name()}[${int(r, 3)}]`;
    default:
      return pick(r, ['1', "'s'", 'None', '[0, 1, 2]', '(1, 2)', 'dict(x=1)', '2.5', 'True']);
  }
}

/** `count` config texts from `seed`, each a handful of statements. */
export function generateConfigCases(seed: number, count: number): string[] {
  const r = prng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const names: string[] = [];
    const lines: string[] = [];
    const n = 2 + int(r, 8);
    for (let s = 0; s < n; s++) {
      const target = `v${s}`;
      if (names.length && int(r, 8) === 0) lines.push(`${pick(r, names)}.update(k${s}=${expr(r, names, 0)})`);
      else lines.push(`${target} = ${expr(r, names, 0)}`);
      names.push(target);
    }
    out.push(`${lines.join('\n')}\n`);
  }
  return out;
}
