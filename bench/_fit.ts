/**
 * Least-squares fit of `y = a + b · log2(N)`: the form Kademlia predicts for hops (and so for latency, when
 * each hop costs about the same), used to carry the simulated 100 / 300 / 1,000-node figures to 10k and 100k.
 * Pure; tested in test/bench/fit.test.ts.
 * @module
 */

export interface LogFit {
  a: number;
  b: number;
  /** Root mean square of the residuals, in y's unit. */
  rms: number;
  /** How many points. */
  points: number;
}

/** Fits `y = a + b·log2(n)`; needs two distinct n. */
export function fitLog2(points: ReadonlyArray<{ n: number; y: number }>): LogFit {
  const xs = points.map((p) => Math.log2(p.n));
  const ys = points.map((p) => p.y);
  const k = points.length;
  const mx = xs.reduce((s, x) => s + x, 0) / k;
  const my = ys.reduce((s, y) => s + y, 0) / k;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < k; i++) {
    const dx = (xs[i] as number) - mx;
    sxx += dx * dx;
    sxy += dx * ((ys[i] as number) - my);
  }
  if (k < 2 || sxx === 0) throw new RangeError('a log fit needs at least two distinct sizes');
  const b = sxy / sxx;
  const a = my - b * mx;
  let sse = 0;
  for (let i = 0; i < k; i++) sse += ((ys[i] as number) - (a + b * (xs[i] as number))) ** 2;
  return { a, b, rms: Math.sqrt(sse / k), points: k };
}

/** The fit's value at `n`. */
export function predict(fit: LogFit, n: number): number {
  return fit.a + fit.b * Math.log2(n);
}
