import { Module } from './module.js';

/**
 * A module that only groups children under numeric or named keys, so state-dict paths come
 * out as PyTorch's nn.Sequential / nn.ModuleList produce them ("layers.0.0.weight").
 */
export class Container<M extends Module = Module> extends Module {
  private readonly items: M[] = [];

  constructor(items: M[] = [], names?: string[]) {
    super();
    items.forEach((m, i) => this.add(m, names?.[i]));
  }

  add<T extends M>(m: T, name = String(this.items.length)): T {
    this.items.push(m);
    return this.registerModule(name, m);
  }

  get length(): number {
    return this.items.length;
  }

  at(i: number): M {
    return this.items[i];
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}

/** A placeholder child without parameters (e.g. GELU or pooling inside an nn.Sequential). */
export class Stateless extends Module {}
