/**
 * `plot-log LOG --out curves.png`: loss, learning-rate and mIoU curves from a
 * JSON-lines training log (see src/visualization/plot.ts). Parsing and
 * printing only.
 */
import type { Command } from 'commander';
import { defineCommand } from './commands.js';
import { parsePositiveInt } from './options.js';

export function register(program: Command): void {
  defineCommand(program, 'plot-log')
    .argument('<log>', 'JSON-lines log ({"iter":..,"loss":..,"lr":..} and {"iter":..,"mIoU":..} lines)')
    .option('--out <png>', 'output PNG file', 'curves.png')
    .option('--title <text>', 'title (default: the log path)')
    .option('--width <px>', 'image width', parsePositiveInt, 1100)
    .option('--height <px>', 'image height', parsePositiveInt, 1000)
    .option('--smooth <n>', 'moving-average window for the loss (default: about 2% of the points)', parsePositiveInt)
    .action(async (log: string, o: { out: string; title?: string; width: number; height: number; smooth?: number }) => {
      const { plotLog } = await import('../visualization/plot.js');
      const r = await plotLog(log, o.out, { title: o.title, width: o.width, height: o.height, smooth: o.smooth });
      console.log(
        `wrote ${o.out}: ${r.trainPoints} training points, ${r.valPoints} validation points` +
          (r.skipped ? ` (${r.skipped} lines skipped)` : ''),
      );
    });
}
