/**
 * Prometheus metrics of one server (its own registry, so several servers in one process, as in
 * the tests, do not mix): requests by route and status, latency histogram, queue depth, images
 * segmented (a counter, and images per second over the last minute as a gauge), CPU tensor
 * memory (bytes live and cached, live tensor handles: a leak shows there first), plus
 * prom-client's process metrics (RSS, CPU, event-loop lag).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { cpuMemory } from '../tensor/runtime.js';

const RATE_WINDOW_MS = 60_000;

export class ServeMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'status'>;
  private readonly latency: Histogram<'route'>;
  private readonly images: Counter;
  private readonly recent: number[] = [];

  constructor(queueDepth: () => number, queueCapacity: number) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'beitseg_http_requests_total',
      help: 'HTTP requests by route and status code',
      labelNames: ['route', 'status'],
      registers,
    });
    this.latency = new Histogram({
      name: 'beitseg_http_request_duration_seconds',
      help: 'HTTP request latency (arrival to answer)',
      labelNames: ['route'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.images = new Counter({
      name: 'beitseg_images_segmented_total',
      help: 'Images segmented successfully',
      registers,
    });
    new Gauge({
      name: 'beitseg_queue_depth',
      help: 'Segmentation requests waiting or computing',
      registers,
      collect() {
        this.set(queueDepth());
      },
    });
    new Gauge({ name: 'beitseg_queue_capacity', help: 'Most requests admitted at once (--queue)', registers }).set(
      queueCapacity,
    );
    const recent = this.recent;
    new Gauge({
      name: 'beitseg_images_per_second',
      help: 'Images segmented per second over the last minute',
      registers,
      collect() {
        pruneOlderThan(recent, Date.now() - RATE_WINDOW_MS);
        this.set(recent.length / (RATE_WINDOW_MS / 1000));
      },
    });
    new Gauge({
      name: 'beitseg_tensor_cpu_bytes',
      help: 'Bytes of CPU tensor memory held by beitseg, by state (live: in tensors; cached: kept for reuse)',
      labelNames: ['state'],
      registers,
      collect() {
        const mem = cpuMemory();
        if (mem.liveBytes !== null) this.set({ state: 'live' }, mem.liveBytes);
        if (mem.cachedBytes !== null) this.set({ state: 'cached' }, mem.cachedBytes);
      },
    });
    new Gauge({
      name: 'beitseg_tensor_handles',
      help: 'Tensors referenced from JavaScript (neither disposed nor collected)',
      registers,
      collect() {
        this.set(cpuMemory().tensorHandles);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'beitseg_' });
  }

  observeRequest(route: string, status: number, seconds: number): void {
    this.requests.inc({ route, status: String(status) });
    this.latency.observe({ route }, seconds);
  }

  imageDone(): void {
    this.images.inc();
    this.recent.push(Date.now());
    pruneOlderThan(this.recent, Date.now() - RATE_WINDOW_MS);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

function pruneOlderThan(times: number[], cutoff: number): void {
  let n = 0;
  while (n < times.length && times[n] < cutoff) n++;
  if (n > 0) times.splice(0, n);
}
