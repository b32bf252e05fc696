/**
 * Reads checkpoint files in a child process with a memory cap and a time limit, so that a file
 * that would hang the reader, exhaust memory or abort V8 shows up as a failed case instead of
 * taking the test runner down. Used by the limits tests and the checkpoint fuzz suite.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildEvent } from './read_cases_child.js';

const childScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'read_cases_child.js');

export interface IsolatedBudget {
  /** V8 heap cap of the child (--max-old-space-size), MiB. */
  heapMb: number;
  /** Address-space cap of the child (ulimit -v), MiB: catches huge Buffer allocations too. */
  addressSpaceMb: number;
  /** Time allowed per case, ms (the child is killed when one case runs longer). */
  caseMs: number;
}

export const DEFAULT_BUDGET: IsolatedBudget = { heapMb: 384, addressSpaceMb: 3072, caseMs: 5000 };

export type CaseOutcome =
  | { kind: 'ok'; summary: string; ms: number; rss: number }
  | { kind: 'error'; name: string; message: string; ms: number; rss: number }
  | { kind: 'crash'; detail: string }
  | { kind: 'timeout'; detail: string };

/** Runs readCheckpoint on every file, each in a capped child; a crashed child is restarted after its case. */
export async function readIsolated(
  files: string[],
  workDir: string,
  budget: IsolatedBudget = DEFAULT_BUDGET,
): Promise<CaseOutcome[]> {
  const outcomes: (CaseOutcome | undefined)[] = new Array(files.length);
  let next = 0;
  let round = 0;
  while (next < files.length) {
    const list = files.slice(next).map((file, k) => ({ i: next + k, file }));
    const listFile = path.join(workDir, `cases-${round++}.json`);
    fs.writeFileSync(listFile, JSON.stringify(list));
    const { events, exit } = await runChild(listFile, budget);
    let running: number | null = null;
    for (const e of events) {
      if (e.phase === 'start') {
        running = e.i;
        continue;
      }
      running = null;
      outcomes[e.i] = e.ok
        ? { kind: 'ok', summary: e.message ?? '', ms: e.ms ?? 0, rss: e.rss ?? 0 }
        : { kind: 'error', name: e.errorName ?? '?', message: e.message ?? '', ms: e.ms ?? 0, rss: e.rss ?? 0 };
    }
    if (running === null) {
      if (exit.timedOut || exit.code !== 0) {
        // Died between cases (should not happen): blame the next case so the loop advances.
        const i = events.length ? events[events.length - 1]!.i + 1 : next;
        if (i < files.length) outcomes[i] = { kind: 'crash', detail: `child exited (${exit.describe}) outside a case` };
        next = i + 1;
      } else {
        next = files.length;
      }
      continue;
    }
    outcomes[running] = exit.timedOut
      ? { kind: 'timeout', detail: `no result within ${budget.caseMs} ms` }
      : { kind: 'crash', detail: `child died: ${exit.describe}; stderr: ${exit.stderrTail}` };
    next = running + 1;
  }
  return outcomes as CaseOutcome[];
}

interface ChildExit {
  code: number | null;
  timedOut: boolean;
  describe: string;
  stderrTail: string;
}

function runChild(listFile: string, budget: IsolatedBudget): Promise<{ events: ChildEvent[]; exit: ChildExit }> {
  return new Promise((resolve) => {
    const nodeArgs = [`--max-old-space-size=${budget.heapMb}`, childScript, listFile];
    const quoted = [process.execPath, ...nodeArgs].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
    const child = spawn('/bin/bash', ['-c', `ulimit -v ${budget.addressSpaceMb * 1024}; exec ${quoted}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const events: ChildEvent[] = [];
    let buffered = '';
    let stderr = '';
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, budget.caseMs);
    };
    arm();
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.trim()) {
          events.push(JSON.parse(line) as ChildEvent);
          arm();
        }
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-2000);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({
        events,
        exit: {
          code,
          timedOut,
          describe: signal ? `signal ${signal}` : `exit code ${code}`,
          stderrTail: stderr.trim().split('\n').slice(-3).join(' | '),
        },
      });
    });
  });
}

/** A clean error: an Error whose one-line message names the file, printable, not too long. */
export function isCleanError(o: CaseOutcome, file: string): boolean {
  return (
    o.kind === 'error' &&
    o.message.includes(file) &&
    !/[\u0000-\u001f\u007f-\u009f]/.test(o.message) &&
    o.message.length <= 2000
  );
}
