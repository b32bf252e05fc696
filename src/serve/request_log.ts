/**
 * Request ids and the request log: one JSON line per request, with the timings an operator
 * needs to tell a slow model from a long queue, and the reason of a refusal.
 */
import crypto from 'node:crypto';

export interface RequestLog {
  time: string;
  reqId: string;
  method: string;
  /** The matched route pattern (not the raw URL: bounded cardinality, no client text). */
  route: string;
  status: number;
  /** Milliseconds from the request's arrival to the end of the answer. */
  ms: number;
  /** Milliseconds the segmentation waited in the queue, then computed. */
  queueMs?: number;
  computeMs?: number;
  pixels?: number;
  /** The one-line error sent with a 4xx/5xx. */
  reason?: string;
}

const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The client's X-Request-Id when it is a plain token of at most 128 characters, else a new UUID. */
export function requestIdOf(header: string | string[] | undefined): string {
  const v = Array.isArray(header) ? header[0] : header;
  return v !== undefined && SAFE_ID.test(v) ? v : crypto.randomUUID();
}

export function writeRequestLog(sink: (line: string) => void, entry: RequestLog): void {
  sink(JSON.stringify(entry));
}
