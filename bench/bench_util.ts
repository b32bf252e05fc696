/** Small helpers shared by the benchmarks. */
import { execFileSync } from 'node:child_process';
import type { Dict } from '../src/config/schema.js';

export function argValue(flag: string, fallback: string): string {
  const i = process.argv.indexOf(flag);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The config with the model's window (img_size) and slide crop set to `size`. */
export function configFor(cfg: Dict, size: number): Dict {
  const c = structuredClone(cfg);
  const model = c.model as Dict;
  (model.backbone as Dict).img_size = [size, size];
  const stride = Math.round((size * 426) / 640);
  model.test_cfg = { mode: 'slide', crop_size: [size, size], stride: [stride, stride] };
  return c;
}

/** Runs a benchmark child process (stderr passed through) and parses the last JSON line it printed. */
export function runJsonChild<T>(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): T {
  const out = execFileSync(cmd, args, {
    cwd: opts.cwd,
    env: opts.env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 24,
  });
  const line = out
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (!line) throw new Error(`${cmd} ${args.join(' ')} printed no JSON`);
  return JSON.parse(line) as T;
}
