/**
 * Explicit tensor lifetimes. libtorch memory is invisible to V8's heap accounting in size
 * (the addon reports it, but collection is still lazy), so hot loops free tensors eagerly:
 * `tidy(fn)` disposes every tensor created while `fn` runs, except those it returns
 * (anywhere inside arrays, plain objects or Maps), which move to the enclosing scope.
 */
export interface Disposable {
  dispose(): void;
  readonly isDisposed: boolean;
}

const scopes: Set<Disposable>[] = [];

/** Called by every new tensor: the innermost open scope owns it. */
export function track(t: Disposable): void {
  const top = scopes[scopes.length - 1];
  if (top) top.add(t);
}

/** Removes a tensor from the current scope so it survives it (the caller then owns it). */
export function keep<T extends Disposable>(t: T): T {
  for (let i = scopes.length - 1; i >= 0; i--) if (scopes[i].delete(t)) break;
  return t;
}

function collect(value: unknown, out: Set<Disposable>, seen: Set<unknown>): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (isDisposable(value)) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collect(v, out, seen);
  else if (value instanceof Map) for (const v of value.values()) collect(v, out, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype)
    for (const v of Object.values(value)) collect(v, out, seen);
}

function isDisposable(v: object): v is Disposable {
  return typeof (v as Disposable).dispose === 'function' && 'isDisposed' in v;
}

export function tidy<T>(fn: () => T): T {
  const scope = new Set<Disposable>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw err;
  }
  scopes.pop();
  if (result instanceof Promise) {
    throw new Error('tidy() takes a synchronous function; use Scope for async code');
  }
  const survivors = new Set<Disposable>();
  collect(result, survivors, new Set());
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (survivors.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/**
 * `fn(inputs)` in a tidy scope, then the inputs are freed (unless fn returns them): for
 * forward passes that replace a large map by the next (mmseg's `x = f(x)`), so that each map
 * lives only as long as it is needed while the math reads as one expression. Pass only
 * tensors the caller owns and does not use afterwards.
 */
export function consume<I extends Disposable | Disposable[], T>(inputs: I, fn: (inputs: I) => T): T {
  const result = tidy(() => fn(inputs));
  const survivors = new Set<Disposable>();
  collect(result, survivors, new Set());
  for (const t of Array.isArray(inputs) ? inputs : [inputs]) if (!survivors.has(t)) t.dispose();
  return result;
}

/** A manually closed scope for code that awaits between tensor operations. */
export class Scope {
  private readonly owned = new Set<Disposable>();
  add<T extends Disposable>(t: T): T {
    keep(t);
    this.owned.add(t);
    return t;
  }
  dispose(): void {
    for (const t of this.owned) t.dispose();
    this.owned.clear();
  }
}

/** Number of open tidy scopes (for tests). */
export function scopeDepth(): number {
  return scopes.length;
}
