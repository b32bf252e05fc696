/**
 * Child process for isolated checkpoint reads (see isolated.ts): reads each file named in the
 * JSON list given as argv[2] with readCheckpoint and prints one JSON line per event, so that the
 * parent can tell which case was running if this process is killed (memory, time, V8 abort).
 * Without an argument it does nothing (the test runner may load every file under test/).
 */
import * as fs from 'node:fs';
import { readCheckpoint } from '../../src/checkpoint/read_checkpoint.js';

export interface ChildEvent {
  i: number;
  phase: 'start' | 'done';
  ok?: boolean;
  /** Error class name and message, for a case that threw. */
  errorName?: string;
  message?: string;
  ms?: number;
  /** Resident set size after the case, in bytes. */
  rss?: number;
}

function emit(e: ChildEvent): void {
  fs.writeSync(1, `${JSON.stringify(e)}\n`);
}

async function main(listFile: string): Promise<void> {
  const files = JSON.parse(fs.readFileSync(listFile, 'utf8')) as { i: number; file: string }[];
  for (const { i, file } of files) {
    emit({ i, phase: 'start' });
    const t0 = performance.now();
    try {
      const r = await readCheckpoint(file);
      emit({
        i,
        phase: 'done',
        ok: true,
        message: r.description.summary,
        ms: performance.now() - t0,
        rss: process.memoryUsage().rss,
      });
    } catch (err) {
      const e = err instanceof Error ? err : new Error(`non-Error thrown: ${String(err)}`);
      emit({
        i,
        phase: 'done',
        ok: false,
        errorName: err instanceof Error ? e.constructor.name : 'non-Error',
        message: e.message,
        ms: performance.now() - t0,
        rss: process.memoryUsage().rss,
      });
    }
  }
}

const listFile = process.argv[2];
if (listFile?.endsWith('.json')) await main(listFile);
