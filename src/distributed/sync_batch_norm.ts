/**
 * torch.nn.SyncBatchNorm's training forward over a process group, composed from autograd-aware
 * tensor ops and the addon's differentiable all-reduce (whose backward all-reduces the
 * gradient). One collective forward and, through autograd, one backward per layer, as PyTorch's
 * (each is a point where every rank waits for the others, which dominates on a busy CPU): each
 * rank computes, per channel, its mean and sum of squared deviations (M2) and its count, and the
 * ranks' values are gathered (an all-reduce of a [world, 2C+1] tensor where each rank fills its
 * own row, so autograd's backward is an all-reduce too); every rank then merges them exactly
 * (Chan's parallel formula: M2 = sum of M2_r + sum of n_r (mean_r - mean)^2), as PyTorch's
 * batch_norm_gather_stats_with_counts does. Statistics are float32, the output has x's dtype.
 * Running statistics follow BatchNorm on the concatenated batch: momentum-weighted mean and
 * unbiased variance (global count − 1).
 */
import { native } from '../tensor/native.js';
import { noGrad } from '../tensor/runtime.js';
import { tidy } from '../tensor/scope.js';
import { cat, full, wrap, type Tensor } from '../tensor/tensor.js';
import type { ProcessGroup } from './process_group.js';

function allReduceSumDifferentiable(pg: ProcessGroup, t: Tensor): Tensor {
  return wrap(native.allreduceSumAutograd(pg.nativeId, t.handle));
}

export function syncBatchNorm(
  x: Tensor,
  runningMean: Tensor,
  runningVar: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  momentum: number,
  eps: number,
  pg: ProcessGroup,
): Tensor {
  if (x.ndim !== 4) throw new Error(`SyncBN expects N x C x H x W input, got [${x.shape.join(', ')}]`);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const xf = x.dtype === 'float32' ? x : x.float();
  const nLocal = n * h * w,
    W = pg.worldSize,
    row = 2 * c + 1;
  const localMean = xf.sum([0, 2, 3]).div(nLocal);
  const dev = xf.sub(localMean.view(1, c, 1, 1));
  const local = cat([localMean, dev.mul(dev).sum([0, 2, 3]), full([1], nLocal, 'float32', x.device)]);
  const rows = Array.from({ length: W }, (_, r) => (r === pg.rank ? local : full([row], 0, 'float32', x.device)));
  const gathered = allReduceSumDifferentiable(pg, cat(rows)).view(W, row);
  const counts = gathered.slice(1, 2 * c, 2 * c + 1);
  const count = counts.sum().item();
  if (count <= 1)
    throw new Error(`SyncBN: ${count} value(s) per channel over all ranks; batch statistics need more than one`);
  const means = gathered.slice(1, 0, c);
  const mean = means.mul(counts).sum([0]).div(count);
  const spread = means.sub(mean.view(1, c));
  const m2 = gathered
    .slice(1, c, 2 * c)
    .sum([0])
    .add(spread.mul(spread).mul(counts).sum([0]));
  const variance = m2.div(count);
  const centered = xf.sub(mean.view(1, c, 1, 1));
  let y = centered.mul(variance.add(eps).rsqrt().view(1, c, 1, 1));
  if (weight) y = y.mul(weight.view(1, c, 1, 1));
  if (bias) y = y.add(bias.view(1, c, 1, 1));
  noGrad(() =>
    tidy(() => {
      runningMean.copy_(runningMean.mul(1 - momentum).add(mean.detach().mul(momentum)));
      runningVar.copy_(runningVar.mul(1 - momentum).add(variance.detach().mul((momentum * count) / (count - 1))));
    }),
  );
  return y.dtype === x.dtype ? y : y.to(x.dtype);
}
