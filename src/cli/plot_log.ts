/**
 * `plot-log LOG --out curves.png`: loss, learning-rate and mIoU curves from a
 * JSON-lines training log (see src/visualization/plot.ts). Parsing and
 * printing only.
 */
import type { Command } from 'commander';
import { plotLog } from '../visualization/plot.js';

function positiveInt(value: string, name: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new Error(`${name} must be a positive integer, got "${value}"`);
  return Number(value);
}

export function register(program: Command): void {
  program
    .command('plot-log')
    .description('draw loss, learning rate and validation mIoU curves from a JSONL training log into a PNG')
    .argument('<log>', 'JSON-lines log ({"iter":..,"loss":..,"lr":..} and {"iter":..,"mIoU":..} lines)')
    .option('--out <png>', 'output PNG file', 'curves.png')
    .option('--title <text>', 'title (default: the log path)')
    .option('--width <px>', 'image width', '1100')
    .option('--height <px>', 'image height', '1000')
    .option('--smooth <n>', 'moving-average window for the loss (default: about 2% of the points)')
    .action(async (log: string, o: { out: string; title?: string; width: string; height: string; smooth?: string }) => {
      try {
        const r = await plotLog(log, o.out, {
          title: o.title,
          width: positiveInt(o.width, '--width'),
          height: positiveInt(o.height, '--height'),
          smooth: o.smooth === undefined ? undefined : positiveInt(o.smooth, '--smooth'),
        });
        console.log(
          `wrote ${o.out}: ${r.trainPoints} training points, ${r.valPoints} validation points` +
            (r.skipped ? ` (${r.skipped} lines skipped)` : ''),
        );
      } catch (err) {
        console.error(`plot-log: ${(err as Error).message}`);
        process.exitCode = 1;
      }
    });
}
