/**
 * Attention alone, BEiT-B shapes (12 heads, head dim 64, the relative position bias gathered
 * from its table): the math path (whole [heads, N, N] bias and scores) against the blocked
 * kernel, alternating in one process, forward (inference) and optionally forward + backward.
 *
 *   node dist/bench/attention_bench.js [--tokens 1601,3137,6401] [--block-kb 1024,4096,16384]
 *        [--dtype float32|bfloat16] [--backward] [--rounds 3] [--threads 2]
 *
 * Prints one JSON line per (tokens, kernel, block size): the median of the rounds in ms and
 * the growth of peak RSS over the run so far (a rough memory signal: the largest N runs last).
 */
import { gatheredBiasAttention } from '../src/tensor/functional.js';
import { attentionImpl, noGrad, setNumThreads } from '../src/tensor/runtime.js';
import { tidy } from '../src/tensor/scope.js';
import { rand, randn, type Tensor } from '../src/tensor/tensor.js';
import { argValue, median } from './bench_util.js';

const tokens = argValue('--tokens', '1601,3137').split(',').map(Number);
const blockKbs = argValue('--block-kb', '1024,4096,16384').split(',');
const dtype = argValue('--dtype', 'float32') as 'float32' | 'bfloat16';
const backward = process.argv.includes('--backward');
const rounds = Number(argValue('--rounds', '3'));
setNumThreads(Number(argValue('--threads', '2')));

function once(q: Tensor, k: Tensor, v: Tensor, tableT: Tensor, index: Tensor): number {
  const t0 = performance.now();
  tidy(() => {
    if (backward) {
      const leaves = [q, k, v].map((t) => t.detach().requiresGrad_(true));
      gatheredBiasAttention(leaves[0]!, leaves[1]!, leaves[2]!, tableT, index, 0.125).float().sum().backward();
    } else {
      noGrad(() => gatheredBiasAttention(q, k, v, tableT, index, 0.125));
    }
  });
  return performance.now() - t0;
}

for (const n of tokens) {
  tidy(() => {
    const q = randn([1, 12, n, 64]).to(dtype),
      k = randn([1, 12, n, 64]).to(dtype),
      v = randn([1, 12, n, 64]).to(dtype);
    const t = 2 * n;
    const tableT = rand([12, t], -1, 1);
    const index = rand([n, n], 0, t).floor().to('int64');
    const variants = [{ impl: 'math', kb: '-' }, ...blockKbs.map((kb) => ({ impl: 'blocked', kb }))];
    const times = new Map<string, number[]>(variants.map((x) => [`${x.impl}:${x.kb}`, []]));
    for (let r = 0; r <= rounds; r++) {
      for (const x of variants) {
        attentionImpl(x.impl as 'math' | 'blocked');
        if (x.kb !== '-') process.env.BEITSEG_ATTENTION_BLOCK_KB = x.kb;
        const ms = once(q, k, v, tableT, index);
        if (r > 0) times.get(`${x.impl}:${x.kb}`)!.push(ms); // round 0 warms up
      }
    }
    for (const [key, ts] of times) {
      const [impl, kb] = key.split(':');
      console.log(
        JSON.stringify({
          tokens: n,
          dtype,
          backward,
          impl,
          block_kb: kb,
          ms: Math.round(median(ts)),
          ms_all: ts.map(Math.round),
          peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
        }),
      );
    }
  });
}
