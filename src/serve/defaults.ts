/**
 * The service's default limits, in a module of their own so that `beitseg serve --help` can
 * show them without loading Fastify and the model code.
 */
export const DEFAULT_SERVE_OPTIONS = {
  maxPixels: 40_000_000,
  maxBodyMb: 50,
  queue: 16,
  timeoutS: 120,
  bodyTimeoutS: 30,
  idleTimeoutS: 60,
} as const;
