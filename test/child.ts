/**
 * The tests' child-process harness (issue 31.7): runs a Node script in a child process, collects
 * its output and kills it (SIGKILL) when it outlives its limit, so a hung child fails its test in
 * bounded time. test/bounded.ts adds a memory cap and output-idle limits on top of the same idea.
 */
import { execFile, type ExecFileOptions, spawn } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './helpers.js';

/** bin/beitseg.js, the command-line entry the CLI tests run. */
export const cliPath = path.join(repoRoot, 'bin', 'beitseg.js');

/**
 * Runs a program as execFile does, bounded: resolves { stdout, stderr } on exit status 0, rejects with an
 * Error carrying `code`, `signal`, `stdout` and `stderr` otherwise (SIGKILL after `timeout`, 10 min unless
 * given). Output up to 64 MiB.
 */
export function exec(
  file: string,
  args: string[],
  o: ExecFileOptions = {},
): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(file, args, {
    maxBuffer: 64 * 1024 * 1024,
    timeout: 600_000,
    killSignal: 'SIGKILL',
    ...o,
    encoding: 'utf8',
  });
}

/** `node bin/beitseg.js ...args` through exec(). */
export function beitseg(args: string[], o: ExecFileOptions = {}): Promise<{ stdout: string; stderr: string }> {
  return exec(process.execPath, [cliPath, ...args], o);
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  pid: number;
}

export interface ChildOptions {
  /** The child's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Killed after this long (ms). */
  limitMs: number;
  /** Called with the child's pid once it is spawned. */
  onStart?: (pid: number) => void;
}

/** Runs `node script ...args`; resolves when the child exits, whatever its exit status. */
export function runNode(script: string, args: string[], o: ChildOptions): Promise<ChildResult> {
  return runProgram(process.execPath, [script, ...args], o);
}

/** Runs `file ...args` (any program); resolves when the child exits, whatever its exit status. */
export function runProgram(file: string, args: string[], o: ChildOptions): Promise<ChildResult> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(file, args, {
      env: o.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '',
      stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    o.onStart?.(child.pid!);
    const timer = setTimeout(() => child.kill('SIGKILL'), o.limitMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0, pid: child.pid! });
    });
  });
}
