/**
 * Child-process side of the bounded decode tests (run through ../bounded.ts): decodes one file
 * as an image or a label and prints one JSON line, {ok, width, height} or {error}. A crash, an
 * out-of-memory abort or a hang shows in the parent as a non-zero exit or a kill. Without
 * arguments (as when the test runner picks it up) it does nothing.
 */
import { readImage, readLabel } from '../../src/data/image_io.js';

async function main(): Promise<void> {
  const [kind, file] = process.argv.slice(2);
  if (!kind || !file) return;
  try {
    const decoded = kind === 'label' ? await readLabel(file) : await readImage(file);
    process.stdout.write(`${JSON.stringify({ ok: true, width: decoded.width, height: decoded.height })}\n`);
  } catch (e) {
    process.stdout.write(`${JSON.stringify({ error: (e as Error).message })}\n`);
  }
}

await main();
