/**
 * Child side of the image fuzz (./image_fuzz.ts): `<seed> <first> <count>` runs those cases,
 * printing {"start": i} before and {"done": i, results, errors[, bad]} after each. A case is
 * bad when a decoder throws anything but an Error whose message starts with "cannot decode".
 * Without arguments (as when the test runner picks it up) it does nothing.
 */
import { decodeImage, decodeLabel } from '../../src/data/image_io.js';
import { fixtureSeeds, mutate, mutateSvg } from './image_fuzz.js';

function clean(e: unknown): string | null {
  if (!(e instanceof Error)) return `threw a non-Error: ${String(e).slice(0, 200)}`;
  if (!/^cannot decode (image|label) /.test(e.message)) return `unexpected error: ${e.message.slice(0, 300)}`;
  if (e.message.length > 2000) return `error message of ${e.message.length} characters`;
  return null;
}

async function main(): Promise<void> {
  const [seedArg, firstArg, countArg] = process.argv.slice(2);
  if (seedArg === undefined) return;
  const seeds = fixtureSeeds();
  const svg = process.env.IMAGE_FUZZ_FAMILY === 'svg';
  const seed = Number(seedArg);
  const first = Number(firstArg ?? 0);
  const count = Number(countArg ?? 1);
  for (let i = first; i < first + count; i++) {
    process.stdout.write(`${JSON.stringify({ start: i })}\n`);
    const { from, bytes } = svg ? mutateSvg(seed, i) : mutate(seeds, seed, i);
    let results = 0;
    let errors = 0;
    const bad: string[] = [];
    for (const decode of [() => decodeImage(bytes, from), () => decodeLabel(bytes, from)]) {
      try {
        const out = await decode();
        if (out.data.length !== out.width * out.height * ('channels' in out ? 3 : 1))
          bad.push('result of the wrong size');
        results++;
      } catch (e) {
        errors++;
        const why = clean(e);
        if (why) bad.push(why);
      }
    }
    process.stdout.write(
      `${JSON.stringify({ done: i, results, errors, ...(bad.length ? { bad: `${from}: ${bad.join('; ')}` } : {}) })}\n`,
    );
  }
}

await main();
