/**
 * Module: named parameters, buffers and children whose dotted paths are the state-dict keys
 * (the same keys mmseg's PyTorch modules produce, so checkpoints load without a mapping).
 */
import { keep } from '../tensor/scope.js';
import { noGrad } from '../tensor/runtime.js';
import type { Tensor, Device, TensorDType } from '../tensor/tensor.js';

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** Tensors by state-dict key, as loadStateDict takes them. */
export type StateDictSource = Map<string, Tensor>;

export class Module {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, { tensor: Tensor; persistent: boolean; derived: boolean }>();
  private readonly children = new Map<string, Module>();

  protected registerParameter(name: string, t: Tensor): Tensor {
    keep(t);
    t.requiresGrad_(true);
    this.params.set(name, t);
    return t;
  }

  /**
   * A derived buffer is saved in the state dict (as PyTorch's persistent buffers are) but
   * never loaded: the module computes it itself (e.g. BEiT's relative_position_index).
   */
  protected registerBuffer(name: string, t: Tensor, o: { persistent?: boolean; derived?: boolean } = {}): Tensor {
    keep(t);
    this.buffers.set(name, { tensor: t, persistent: o.persistent ?? true, derived: o.derived ?? false });
    return t;
  }

  /** Replaces a buffer's tensor (e.g. a recomputed index); the old one is disposed. */
  protected replaceBuffer(name: string, t: Tensor): Tensor {
    const old = this.buffers.get(name);
    if (!old) throw new Error(`no buffer named ${name}`);
    keep(t);
    old.tensor.dispose();
    old.tensor = t;
    return t;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  namedChildren(): [string, Module][] {
    return [...this.children];
  }

  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [name, child] of this.children) yield* child.namedModules(prefix ? `${prefix}.${name}` : name);
  }

  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [name, t] of m.params) out.push([path ? `${path}.${name}` : name, t]);
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(prefix = '', persistentOnly = false): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [name, b] of m.buffers) {
        if (!persistentOnly || b.persistent) out.push([path ? `${path}.${name}` : name, b.tensor]);
      }
    }
    return out;
  }

  /** Parameters and persistent buffers by key, in registration order (PyTorch's order). */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [path, m] of this.namedModules()) {
      const key = (n: string) => (path ? `${path}.${n}` : n);
      for (const [n, t] of m.params) out.set(key(n), t);
      for (const [n, b] of m.buffers) if (b.persistent) out.set(key(n), b.tensor);
    }
    return out;
  }

  /**
   * Copies values into the existing parameters and buffers (their identity is kept, so an
   * optimizer holding them stays valid), casting dtypes. Like PyTorch's load_state_dict:
   * a shape mismatch is an error naming the key and both shapes; with strict=false missing
   * and unexpected keys are reported instead of raised.
   */
  loadStateDict(source: StateDictSource, opts: { strict?: boolean; origin?: string } = {}): LoadResult {
    const own = this.stateDict();
    const derived = new Set(this.derivedBufferKeys());
    const missingKeys = [...own.keys()].filter((k) => !source.has(k) && !derived.has(k));
    const unexpectedKeys = [...source.keys()].filter((k) => !own.has(k));
    const where = opts.origin ? ` (from ${opts.origin})` : '';
    for (const [key, dst] of own) {
      const src = source.get(key);
      if (!src || derived.has(key)) continue;
      const a = dst.shape,
        b = src.shape;
      // PyTorch accepts a [1] value for a 0-d tensor (older checkpoints, safetensors files).
      if (a.length === 0 && b.length === 1 && b[0] === 1) continue;
      if (a.length !== b.length || a.some((v, i) => v !== b[i])) {
        throw new Error(
          `size mismatch for ${key}${where}: checkpoint has shape [${b.join(', ')}], model expects [${a.join(', ')}]`,
        );
      }
    }
    if (opts.strict && (missingKeys.length || unexpectedKeys.length)) {
      throw new Error(
        `error loading state dict${where}:` +
          (missingKeys.length ? `\n  missing keys: ${missingKeys.join(', ')}` : '') +
          (unexpectedKeys.length ? `\n  unexpected keys: ${unexpectedKeys.join(', ')}` : ''),
      );
    }
    noGrad(() => {
      for (const [key, dst] of own) {
        const src = source.get(key);
        if (src && !derived.has(key)) dst.copy_(dst.ndim === 0 && src.ndim === 1 ? src.reshape() : src);
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  private derivedBufferKeys(): string[] {
    const out: string[] = [];
    for (const [path, m] of this.namedModules()) {
      for (const [n, b] of m.buffers) if (b.derived) out.push(path ? `${path}.${n}` : n);
    }
    return out;
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /**
   * Moves (or casts) every parameter and buffer, replacing the old tensors. A tensor shared
   * by several modules stays shared. Derived buffers may be shared beyond this model (cached
   * indices), so only their reference is dropped; everything else is freed at once.
   */
  to(target: Device | TensorDType): this {
    const isDtype = !(target === 'cpu' || target.startsWith('cuda'));
    const shared = new Set<Tensor>();
    for (const [, m] of this.namedModules()) for (const b of m.buffers.values()) if (b.derived) shared.add(b.tensor);
    const moved = new Map<Tensor, Tensor>();
    const move = (t: Tensor): Tensor => {
      let m = moved.get(t);
      if (!m) {
        // the detached view is disposed at once: left to the GC it would keep the old
        // storage (the whole fp32 model, when casting) alive until a collection
        const detached = t.detach();
        m = keep(detached.to(target));
        detached.dispose();
        moved.set(t, m);
      }
      return m;
    };
    noGrad(() => {
      for (const [, m] of this.namedModules()) {
        for (const [name, t] of m.params) {
          const next = move(t);
          next.requiresGrad_(t.requiresGrad);
          m.params.set(name, next);
        }
        for (const [, b] of m.buffers) {
          const isFloat = b.tensor.dtype.startsWith('float') || b.tensor.dtype === 'bfloat16';
          if (isDtype && !isFloat) continue; // casting keeps integer buffers (counters, indices)
          b.tensor = move(b.tensor);
        }
      }
    });
    for (const [old, next] of moved) if (old !== next && !shared.has(old)) old.dispose();
    return this;
  }

  get device(): Device {
    const p = this.params.values().next().value ?? this.namedParameters()[0]?.[1];
    return p ? p.device : 'cpu';
  }

  parameter(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`no parameter named ${name}`);
    return t;
  }

  buffer(name: string): Tensor {
    const b = this.buffers.get(name);
    if (!b) throw new Error(`no buffer named ${name}`);
    return b.tensor;
  }

  /** Frees every parameter and buffer (the module is unusable afterwards). */
  dispose(): void {
    for (const [, m] of this.namedModules()) {
      for (const t of m.params.values()) t.dispose();
      for (const b of m.buffers.values()) b.tensor.dispose();
    }
  }
}
