/**
 * Small synchronous file helpers shared by the checkpoint readers and writers.
 *
 * Reads go into buffers that own their ArrayBuffer (`allocUnsafeSlow`), so that tensor views
 * taken from them start at byte offset 0 of the ArrayBuffer and keep the file's alignment
 * (a pooled Buffer could start at any offset and break zero-copy Float32Array views).
 * Writes go to a temporary file in the destination directory that is renamed into place only
 * once complete, so a crash or an error never leaves a half-written output under the final name.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { constants as bufferConstants } from 'node:buffer';

/** Largest single read/write call: node rejects lengths >= 2 GiB per call. */
const IO_CHUNK = 1 << 30;

/** Reads `length` bytes at `position` from an open file into a fresh buffer; fails on a short file. */
export function readExactly(fd: number, position: number, length: number, what: string): Buffer {
  if (length > bufferConstants.MAX_LENGTH) {
    throw new Error(
      `${what}: ${length} bytes exceed the largest buffer node can allocate (${bufferConstants.MAX_LENGTH})`,
    );
  }
  const buf = Buffer.allocUnsafeSlow(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, Math.min(IO_CHUNK, length - done), position + done);
    if (n === 0) throw new Error(`${what}: unexpected end of file after ${done} of ${length} bytes (file truncated?)`);
    done += n;
  }
  return buf;
}

/** Reads a whole file into one buffer that owns its memory. Errors name the file. */
export function readWholeFile(file: string): Buffer {
  const fd = openForReading(file);
  try {
    const size = fs.fstatSync(fd).size;
    return readExactly(fd, 0, size, file);
  } finally {
    fs.closeSync(fd);
  }
}

/** fs.openSync with an error message that names the file and says what went wrong in words. */
export function openForReading(file: string): number {
  try {
    return fs.openSync(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${file}: no such file`);
    if (code === 'EISDIR') throw new Error(`${file}: is a directory, not a checkpoint file`);
    if (code === 'EACCES') throw new Error(`${file}: permission denied`);
    throw new Error(`${file}: cannot open (${(err as Error).message})`);
  }
}

/** Reads up to `n` leading bytes of a file (fewer if the file is shorter). */
export function readHead(file: string, n: number): Buffer {
  const fd = openForReading(file);
  try {
    const buf = Buffer.alloc(n);
    const got = fs.readSync(fd, buf, 0, n, 0);
    return buf.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes all of `data` at the current position of `fd`, in chunks node accepts. */
export function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.byteLength) {
    const len = Math.min(IO_CHUNK, data.byteLength - done);
    done += fs.writeSync(fd, data, done, len);
  }
}

/**
 * Creates `dst` atomically: `produce` writes into a temporary file in the same directory (same
 * filesystem, so the final rename is atomic), which is fsynced and renamed over `dst`. On any
 * error the temporary file is removed and `dst` is left as it was.
 */
export function writeFileAtomic(dst: string, produce: (fd: number) => void): void {
  const dir = path.dirname(path.resolve(dst));
  if (!fs.existsSync(dir)) throw new Error(`${dst}: output directory ${dir} does not exist`);
  const tmp = path.join(dir, `.${path.basename(dst)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx');
    produce(fd);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, dst);
  } catch (err) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        /* already failing; keep the first error */
      }
    }
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* may not exist */
    }
    throw err;
  }
  fsyncDir(dir); // persists the rename itself
}

/** fsync of a directory (its entries: renames, new files); not possible on every platform, and not fatal if refused. */
export function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    /* directory fsync unsupported here */
  }
}
