/**
 * Reads of tensor elements by the host (item(), typed-array copies) block until the device has
 * computed them. Inside a CUDA-graph capture nothing is computed, so such a read cannot be
 * answered, and a copy between host and device memory (to('cuda') of a CPU tensor, or back)
 * cannot be recorded: CUDA invalidates the capture with an opaque error. Capturing code runs
 * under `withoutHostReads`, which turns the first such read or copy into an error naming it.
 */
let forbiddenBy: string | null = null;

/** Runs `fn` with host reads of tensor elements forbidden (`what`: the capture, for the error). */
export function withoutHostReads<T>(what: string, fn: () => T): T {
  const outer = forbiddenBy;
  forbiddenBy = what;
  try {
    return fn();
  } finally {
    forbiddenBy = outer;
  }
}

/** Throws where a host read is forbidden; called by every Tensor method that reads elements. */
export function assertHostReadAllowed(op: string): void {
  if (forbiddenBy !== null) {
    throw new Error(
      `${op}: reads or copies a tensor's elements on the host inside ${forbiddenBy}, which records device ` +
        'work without running it (keep the value on the device, or read it after the replay)',
    );
  }
}
