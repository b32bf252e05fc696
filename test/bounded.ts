/**
 * Runs a Node script in a child process with a memory cap (ulimit -v, virtual memory) and a
 * timeout, for tests whose input could make the code under test allocate without bound: a
 * failure then shows as a failed assertion, never as a machine out of memory.
 */
import { spawn } from 'node:child_process';

export interface BoundedOptions {
  /** Virtual memory cap of the child in MiB. */
  memoryMb: number;
  /** The child is killed after this long. */
  timeoutMs: number;
  /** Killed when it prints nothing on stdout for this long (a per-step budget); default: timeoutMs. */
  idleMs?: number;
  /**
   * How long the child may take to print its first line (loading Node, the addon and sharp), default
   * 60 s: start-up is not a step, and a busy machine can take longer than one step's budget for it.
   */
  startMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface BoundedResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Why the parent killed it, when it did. */
  killed: 'timeout' | 'idle' | null;
  ms: number;
}

export function runBounded(script: string, args: string[], opts: BoundedOptions): Promise<BoundedResult> {
  const start = Date.now();
  const child = spawn(
    'bash',
    ['-c', `ulimit -v ${opts.memoryMb * 1024} && exec "$0" "$@"`, process.execPath, script, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env },
  );
  let stdout = '';
  let stderr = '';
  let killed: BoundedResult['killed'] = null;
  const kill = (why: 'timeout' | 'idle'): void => {
    killed ??= why;
    child.kill('SIGKILL');
  };
  const total = setTimeout(() => kill('timeout'), opts.timeoutMs);
  let idle = setTimeout(() => kill('idle'), Math.max(opts.startMs ?? 60_000, opts.idleMs ?? 0));
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    clearTimeout(idle);
    idle = setTimeout(() => kill('idle'), opts.idleMs ?? opts.timeoutMs);
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(total);
      clearTimeout(idle);
      resolve({ code, signal, stdout, stderr, killed, ms: Date.now() - start });
    });
  });
}
