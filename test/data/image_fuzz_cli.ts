/**
 * `npm run fuzz:images [-- --cases N --seed S --svg]`: the long image fuzz run (default 3000 cases;
 * --svg: the SVG family, every case of which must be refused). Prints a summary; exits 1 when any
 * case failed. Without the FUZZ marker argument (as when the test runner picks it up) it does nothing.
 */
import { runImageFuzz } from './image_fuzz.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

if (process.argv.includes('FUZZ')) {
  const seed = arg('seed', Date.now() % 1_000_000);
  const cases = arg('cases', 3000);
  const svg = process.argv.includes('--svg');
  const report = await runImageFuzz({ seed, cases, family: svg ? 'svg' : 'raster' });
  if (svg && report.results > 0) {
    report.failures.push({ index: -1, why: `${report.results} SVG decode(s) returned an image instead of an error` });
  }
  process.stdout.write(
    `image fuzz seed ${seed}: ${report.cases} cases (${report.results} results, ${report.errors} ` +
      `clean errors) in ${(report.ms / 1000).toFixed(1)} s; ${report.failures.length} failure(s)\n`,
  );
  for (const f of report.failures) {
    process.stdout.write(
      `  case ${f.index}: ${f.why}\n    replay: ${svg ? 'IMAGE_FUZZ_FAMILY=svg ' : ''}` +
        `node dist/test/data/image_fuzz_worker.js ${seed} ${f.index} 1\n`,
    );
  }
  process.exitCode = report.failures.length ? 1 : 0;
}
