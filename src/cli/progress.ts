/** A progress bar on stderr (cli-progress) that stays quiet when stderr is not a terminal. */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, payload?: Record<string, string | number>): void;
  stop(): void;
}

export function progressBar(total: number, label: string, extra = ''): Progress {
  if (!process.stderr.isTTY) {
    let last = -1;
    const start = Date.now();
    return {
      update(done, payload) {
        // one line per ~10% (or per item for short runs) so logs stay readable
        const step = Math.max(1, Math.floor(total / 10));
        if (done !== total && done - last < step) return;
        last = done;
        const secs = (Date.now() - start) / 1000;
        const eta = done > 0 ? ((secs / done) * (total - done)).toFixed(0) : '?';
        const info = payload
          ? ' ' +
            Object.entries(payload)
              .map(([k, v]) => `${k} ${v}`)
              .join(' ')
          : '';
        process.stderr.write(`${label} ${done}/${total} (${secs.toFixed(1)} s, ETA ${eta} s)${info}\n`);
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {value}/{total} | {duration_formatted} elapsed | ETA {eta_formatted}${extra}`,
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, {});
  return { update: (done, payload) => bar.update(done, payload ?? {}), stop: () => bar.stop() };
}
