/**
 * A forward pass replayed from CUDA graphs, one graph per input shape (slide windows have one
 * shape; the last, smaller batch of windows and serve's batches of 1..N windows have a few).
 *
 * For a shape seen first: the forward runs eagerly `warmup` times on a private copy of the input
 * (cuDNN picks its algorithms and cuBLAS makes its workspaces outside the capture), then once
 * under capture. Every call copies its input into that private input, replays the graph and
 * returns a copy of the graph's output, so a result stays valid after the next call. At most
 * `maxGraphs` graphs are kept (least recently used out first): each holds its activations'
 * memory.
 *
 * The forward must be free of host synchronisation and of data-dependent shapes; BEiT-UperNet's
 * encode_decode is (no .item(), no nonzero, fixed interpolation sizes).
 */
import { captureCudaGraph, type CaptureFn, type GraphCapture } from '../tensor/cuda_graph.js';
import { withoutHostReads } from '../tensor/host_reads.js';
import { keep, tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';

export interface GraphedForwardOptions {
  /** Eager runs before capturing a new shape (default 2). */
  warmup?: number;
  /** Most graphs (shapes) kept at once (default 4). */
  maxGraphs?: number;
  /** How a capture is made: CUDA graphs by default; the tests pass a stand-in. */
  capture?: CaptureFn;
}

interface Graph {
  input: Tensor;
  capture: GraphCapture;
}

export class GraphedForward {
  private readonly graphs = new Map<string, Graph>();
  private readonly warmup: number;
  private readonly maxGraphs: number;
  private readonly captureFn: CaptureFn;
  /** Graphs captured and replays run so far (for tests and benchmarks). */
  captures = 0;
  replays = 0;

  constructor(
    private readonly forward: (x: Tensor) => Tensor,
    opts: GraphedForwardOptions = {},
  ) {
    this.warmup = opts.warmup ?? 2;
    this.maxGraphs = opts.maxGraphs ?? 4;
    this.captureFn = opts.capture ?? captureCudaGraph;
    if (!(this.maxGraphs >= 1)) throw new Error(`maxGraphs must be at least 1, got ${opts.maxGraphs}`);
  }

  /** forward(x), from the graph for x's shape (captured on first use). */
  run(x: Tensor): Tensor {
    const key = `${x.device} ${x.dtype} ${x.shape.join('x')}`;
    let graph = this.graphs.get(key);
    if (graph)
      this.graphs.delete(key); // re-inserted below: the Map's order is the LRU order
    else graph = this.capture(x);
    this.graphs.set(key, graph);
    graph.input.copy_(x);
    graph.capture.replay();
    this.replays++;
    return graph.capture.output.clone();
  }

  /** Frees every graph and its memory. */
  dispose(): void {
    for (const g of this.graphs.values()) release(g);
    this.graphs.clear();
  }

  get size(): number {
    return this.graphs.size;
  }

  private capture(x: Tensor): Graph {
    while (this.graphs.size >= this.maxGraphs) {
      const [oldest, g] = this.graphs.entries().next().value as [string, Graph];
      this.graphs.delete(oldest);
      release(g);
    }
    // the graph's tensors outlive the caller's tidy scopes: kept out of them
    const input = keep(x.clone());
    try {
      for (let i = 0; i < this.warmup; i++) tidy(() => void this.forward(input));
      const capture = this.captureFn(
        () => withoutHostReads('a CUDA graph capture', () => tidy(() => this.forward(input))),
        x.device,
      );
      keep(capture.output);
      this.captures++;
      return { input, capture };
    } catch (e) {
      input.dispose();
      throw e;
    }
  }
}

function release(g: Graph): void {
  g.capture.dispose();
  g.input.dispose();
}
