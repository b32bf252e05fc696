/**
 * 1-D cubic spline interpolation with not-a-knot end conditions, in float64.
 *
 * This is what SciPy's `interp2d(kind='cubic')` / FITPACK `RectBivariateSpline(s=0)` computes
 * along each axis of a regular grid: with s=0 FITPACK puts interior knots at every data point
 * except the second and the second-to-last, which is exactly the not-a-knot condition (the
 * third derivative is continuous at x[1] and x[n-2]). Arguments outside [x[0], x[n-1]] are
 * clamped to the end points, as FITPACK's evaluator does.
 *
 * The spline is linear in the data, so for a fixed set of sample and target positions we
 * compute a weight matrix once and apply it to every row/head (see `splineWeights`).
 *
 * Formulation: unknown second derivatives M_i at the knots. Interior rows are the usual C2
 * conditions h[i-1] M[i-1] + 2 (h[i-1]+h[i]) M[i] + h[i] M[i+1] = 6 (slope[i] - slope[i-1]).
 * The two not-a-knot rows express M[0] and M[n-1] through their neighbours; substituting them
 * leaves a tridiagonal system in M[1..n-2], solved by forward elimination and back
 * substitution (the matrix is diagonally dominant, so no pivoting is needed).
 */

/** Second derivatives at the knots of the not-a-knot spline through (x, y). */
export function notAKnotSecondDerivatives(x: ArrayLike<number>, y: ArrayLike<number>): Float64Array {
  const n = x.length;
  if (y.length !== n) throw new Error(`spline: ${n} knots but ${y.length} values`);
  const M = new Float64Array(n);
  if (n < 3) return M; // constant or straight line: zero curvature
  const h = new Float64Array(n - 1);
  for (let i = 0; i < n - 1; i++) {
    h[i] = x[i + 1]! - x[i]!;
    if (!(h[i]! > 0)) throw new Error('spline: knots must be strictly increasing');
  }
  if (n === 3) {
    // Not-a-knot on three points is the single parabola through them: constant curvature.
    const d0 = (y[1]! - y[0]!) / h[0]!;
    const d1 = (y[2]! - y[1]!) / h[1]!;
    M.fill((2 * (d1 - d0)) / (h[0]! + h[1]!));
    return M;
  }
  const m = n - 2; // unknowns M[1..n-2]
  const lower = new Float64Array(m);
  const diag = new Float64Array(m);
  const upper = new Float64Array(m);
  const rhs = new Float64Array(m);
  for (let r = 0; r < m; r++) {
    const i = r + 1;
    lower[r] = h[i - 1]!;
    diag[r] = 2 * (h[i - 1]! + h[i]!);
    upper[r] = h[i]!;
    rhs[r] = 6 * ((y[i + 1]! - y[i]!) / h[i]! - (y[i]! - y[i - 1]!) / h[i - 1]!);
  }
  // Not-a-knot at x[1]: M0 = ((h0 + h1) M1 - h0 M2) / h1, folded into the first row.
  const h0 = h[0]!,
    h1 = h[1]!;
  diag[0]! += (h0 * (h0 + h1)) / h1;
  upper[0] = h1 - (h0 * h0) / h1;
  // Not-a-knot at x[n-2]: M[n-1] = ((a + b) M[n-2] - b M[n-3]) / a with a = h[n-3], b = h[n-2].
  const a = h[n - 3]!,
    b = h[n - 2]!;
  diag[m - 1]! += (b * (a + b)) / a;
  lower[m - 1] = a - (b * b) / a;

  // Thomas algorithm.
  for (let r = 1; r < m; r++) {
    const w = lower[r]! / diag[r - 1]!;
    diag[r]! -= w * upper[r - 1]!;
    rhs[r]! -= w * rhs[r - 1]!;
  }
  M[m] = rhs[m - 1]! / diag[m - 1]!;
  for (let r = m - 2; r >= 0; r--) M[r + 1] = (rhs[r]! - upper[r]! * M[r + 2]!) / diag[r]!;
  M[0] = ((h0 + h1) * M[1]! - h0 * M[2]!) / h1;
  M[n - 1] = ((a + b) * M[n - 2]! - b * M[n - 3]!) / a;
  return M;
}

/** Index i of the interval [x[i], x[i+1]] holding t (t already clamped into [x[0], x[n-1]]). */
function intervalOf(x: ArrayLike<number>, t: number): number {
  let lo = 0;
  let hi = x.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (x[mid]! <= t) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Evaluates the spline given by knots x, values y and second derivatives M at t (clamped). */
export function evaluateSpline(x: ArrayLike<number>, y: ArrayLike<number>, M: ArrayLike<number>, t: number): number {
  const n = x.length;
  if (n === 1) return y[0]!;
  const tc = Math.min(Math.max(t, x[0]!), x[n - 1]!);
  const i = intervalOf(x, tc);
  const h = x[i + 1]! - x[i]!;
  const A = x[i + 1]! - tc;
  const B = tc - x[i]!;
  return (
    (M[i]! * A * A * A + M[i + 1]! * B * B * B) / (6 * h) +
    (y[i]! / h - (M[i]! * h) / 6) * A +
    (y[i + 1]! / h - (M[i + 1]! * h) / 6) * B
  );
}

/** Not-a-knot spline through (x, y) as a function. */
export function notAKnotSpline(x: ArrayLike<number>, y: ArrayLike<number>): (t: number) => number {
  const M = notAKnotSecondDerivatives(x, y);
  return (t) => evaluateSpline(x, y, M, t);
}

/**
 * Weight matrix W (targets.length rows x x.length columns, row-major) with
 * spline(x, y)(targets[j]) = sum_i W[j, i] * y[i] for every y.
 */
export function splineWeights(x: ArrayLike<number>, targets: ArrayLike<number>): Float64Array {
  const n = x.length;
  const W = new Float64Array(targets.length * n);
  const unit = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    unit.fill(0);
    unit[i] = 1;
    const M = notAKnotSecondDerivatives(x, unit);
    for (let j = 0; j < targets.length; j++) W[j * n + i] = evaluateSpline(x, unit, M, targets[j]!);
  }
  return W;
}
