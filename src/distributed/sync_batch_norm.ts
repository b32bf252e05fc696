/**
 * torch.nn.SyncBatchNorm's training forward over a process group, composed from autograd-aware
 * tensor ops and the addon's differentiable all-reduce (whose backward all-reduces the
 * gradient): each rank sums x and counts its N·H·W elements, the sums are all-reduced into the
 * global mean, then the squared deviations are summed and all-reduced into the global biased
 * variance. Autograd then all-reduces the gradients of exactly those two sums, which is
 * SyncBatchNorm's backward (sum_dy and sum_dy_xmu all-reduced). Statistics are float32, the
 * output has x's dtype. Running statistics follow BatchNorm on the concatenated batch:
 * momentum-weighted mean and unbiased variance (global count − 1).
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
  const localSum = xf.sum([0, 2, 3]);
  const packed = allReduceSumDifferentiable(pg, cat([localSum, full([1], n * h * w, 'float32', x.device)]));
  const count = packed.slice(0, c, c + 1).item();
  if (count <= 1)
    throw new Error(`SyncBN: ${count} value(s) per channel over all ranks; batch statistics need more than one`);
  const mean = packed.slice(0, 0, c).div(count);
  const centered = xf.sub(mean.view(1, c, 1, 1));
  const sqSum = allReduceSumDifferentiable(pg, centered.mul(centered).sum([0, 2, 3]));
  const variance = sqSum.div(count);
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
