/**
 * Seeded, serialisable pseudo-random generator for the data pipeline.
 *
 * Algorithm: xoshiro128** (32-bit words, fast with Math.imul), seeded through
 * splitmix32 so that nearby seeds give unrelated streams. The whole state is
 * four uint32 words, so `getState()`/`setState()` give an exact resume.
 *
 * The API follows numpy's legacy RandomState semantics where mmseg relies on
 * them: `random()` in [0, 1) with 53 random bits, `uniform(a, b)` =
 * a + (b - a) * random(), `randint(lo, hi)` with hi EXCLUSIVE and a single
 * argument meaning [0, lo). The streams are not numpy's (that would need
 * MT19937 and its seeding); only the distributions match.
 */

export interface RngState {
  algo: 'xoshiro128**';
  s: [number, number, number, number];
}

/** splitmix32 step: returns [output, nextState]. */
function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  z = (z ^ (z >>> 16)) >>> 0;
  return [z, next];
}

/** 32-bit avalanche mix (murmur3 finalizer). */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * Hash a tuple of non-negative integers (each < 2^53) to a 32-bit seed.
 * Used to derive independent per-sample streams, e.g.
 * deriveSeed(seed, epoch, position) — independent of which worker runs it.
 */
export function deriveSeed(...parts: number[]): number {
  let h = 0x6a09e667;
  for (const p of parts) {
    if (!Number.isSafeInteger(p) || p < 0)
      throw new Error(`deriveSeed: parts must be non-negative safe integers, got ${p}`);
    const lo = p >>> 0;
    const hi = Math.floor(p / 4294967296) >>> 0;
    h = mix32((h ^ lo) + 0x9e3779b9);
    h = mix32((h ^ hi) + 0x7f4a7c15);
  }
  return h;
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /** @param seed a non-negative safe integer (values >= 2^32 use their high bits too). */
  constructor(seed: number = 0) {
    this.seed(seed);
  }

  seed(seed: number): void {
    if (!Number.isSafeInteger(seed) || seed < 0)
      throw new Error(`Rng seed must be a non-negative safe integer, got ${seed}`);
    let st = (seed >>> 0) ^ mix32(Math.floor(seed / 4294967296) >>> 0);
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [z, n] = splitmix32(st);
      words.push(z);
      st = n;
    }
    // xoshiro must not start from the all-zero state.
    if ((words[0] | words[1] | words[2] | words[3]) === 0) words[0] = 1;
    [this.s0, this.s1, this.s2, this.s3] = words;
  }

  /** Next raw uint32. */
  nextU32(): number {
    const s0 = this.s0;
    const s1 = this.s1;
    const s2 = this.s2;
    const s3 = this.s3;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    let n2 = (s2 ^ s0) >>> 0;
    let n3 = (s3 ^ s1) >>> 0;
    const n1 = (s1 ^ n2) >>> 0;
    const n0 = (s0 ^ n3) >>> 0;
    n2 = (n2 ^ t) >>> 0;
    n3 = rotl(n3, 11);
    this.s0 = n0;
    this.s1 = n1;
    this.s2 = n2;
    this.s3 = n3;
    return r;
  }

  /** Uniform double in [0, 1) with 53 random bits (numpy's random_sample construction). */
  random(): number {
    const a = this.nextU32() >>> 5;
    const b = this.nextU32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Uniform double in [a, b) (numpy: a + (b - a) * random_sample()). */
  uniform(a: number, b: number): number {
    return a + (b - a) * this.random();
  }

  /**
   * Integer in [lo, hi) (numpy randint: upper bound exclusive). `randint(n)`
   * is [0, n). Unbiased: masked rejection sampling like numpy's legacy code.
   */
  randint(lo: number, hi?: number): number {
    if (hi === undefined) {
      hi = lo;
      lo = 0;
    }
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi))
      throw new Error(`randint bounds must be integers, got ${lo}, ${hi}`);
    if (hi <= lo) throw new Error(`randint: low >= high (${lo} >= ${hi})`);
    const range = hi - lo - 1; // inclusive span
    if (range === 0) return lo;
    if (range <= 0xffffffff) {
      let mask = range;
      mask |= mask >>> 1;
      mask |= mask >>> 2;
      mask |= mask >>> 4;
      mask |= mask >>> 8;
      mask |= mask >>> 16;
      mask >>>= 0;
      for (;;) {
        const v = (this.nextU32() & mask) >>> 0;
        if (v <= range) return lo + v;
      }
    }
    // Wide ranges: 53-bit rejection.
    for (;;) {
      const v = Math.floor(this.random() * 9007199254740992);
      const limit = 9007199254740992 - (9007199254740992 % (range + 1));
      if (v < limit) return lo + (v % (range + 1));
    }
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T>(arr: T[] | Int32Array | Uint32Array): void {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.randint(0, i + 1);
      const t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
  }

  /** A permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    this.shuffle(p);
    return p;
  }

  getState(): RngState {
    return { algo: 'xoshiro128**', s: [this.s0, this.s1, this.s2, this.s3] };
  }

  setState(state: RngState): void {
    if (state?.algo !== 'xoshiro128**' || !Array.isArray(state.s) || state.s.length !== 4) {
      throw new Error(`Rng.setState: not an xoshiro128** state: ${JSON.stringify(state)}`);
    }
    const s = state.s.map((v) => {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`Rng.setState: bad word ${v}`);
      return v >>> 0;
    });
    if ((s[0] | s[1] | s[2] | s[3]) === 0) throw new Error('Rng.setState: all-zero state is invalid');
    [this.s0, this.s1, this.s2, this.s3] = s;
  }

  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
