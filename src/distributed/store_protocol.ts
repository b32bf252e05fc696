/**
 * The key-value store of a c10d rendezvous, speaking libtorch 1.13's TCPStore wire protocol so
 * that libtorch's own TCPStore client (native/src/distributed.cc) and Gloo use it unchanged.
 * Why not libtorch's server: it listens on every interface (`*:PORT`, IPv4 and IPv6) and
 * cannot be told an address; this one binds the master address only (store_server.ts).
 *
 * Requests: one byte of query type, then its arguments; a string or byte vector is a
 * little-endian uint64 length and the bytes; numbers are little-endian (x86-64/arm64 hosts).
 * The store answers anyone who reaches it (like c10d's): it belongs on a private network.
 */
import type net from 'node:net';

enum Query {
  Set = 0,
  CompareSet = 1,
  Get = 2,
  Add = 3,
  Check = 4,
  Wait = 5,
  GetNumKeys = 6,
  WatchKey = 7,
  DeleteKey = 8,
}

/** Bounds that keep a stray or hostile client from exhausting the host's memory. */
export const STORE_LIMITS = { keyBytes: 4096, valueBytes: 16 << 20, keysPerQuery: 65536, totalBytes: 256 << 20 };

class Incomplete extends Error {}

class Reader {
  off = 0;
  constructor(private readonly buf: Buffer) {}
  need(n: number): void {
    if (this.off + n > this.buf.length) throw new Incomplete();
  }
  u8(): number {
    this.need(1);
    return this.buf[this.off++]!;
  }
  u64(): number {
    this.need(8);
    const v = this.buf.readBigUInt64LE(this.off);
    this.off += 8;
    if (v > BigInt(STORE_LIMITS.totalBytes)) throw new Error(`length ${v} exceeds the store's limits`);
    return Number(v);
  }
  i64(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64LE(this.off);
    this.off += 8;
    return v;
  }
  bytes(max: number): Buffer {
    const n = this.u64();
    if (n > max) throw new Error(`a key or value of ${n} bytes exceeds the limit of ${max}`);
    this.need(n);
    const b = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return Buffer.from(b);
  }
  key(): string {
    return this.bytes(STORE_LIMITS.keyBytes).toString('latin1');
  }
  keys(): string[] {
    const n = this.u64();
    if (n > STORE_LIMITS.keysPerQuery) throw new Error(`${n} keys in one query exceeds ${STORE_LIMITS.keysPerQuery}`);
    return Array.from({ length: n }, () => this.key());
  }
}

function vec(b: Buffer): Buffer {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(b.length));
  return Buffer.concat([len, b]);
}

function i64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(v);
  return b;
}

/** The store's state and request handling, independent of how sockets are accepted. */
export class StoreState {
  private readonly data = new Map<string, Buffer>();
  private bytes = 0;
  private readonly waiters = new Set<{ socket: net.Socket; keys: string[] }>();

  /** Local access (tests, and the host's own view). */
  get(key: string): Buffer | undefined {
    return this.data.get(key);
  }

  private put(key: string, value: Buffer): void {
    const old = this.data.get(key);
    const grown = this.bytes + value.length + key.length - (old ? old.length + key.length : 0);
    if (grown > STORE_LIMITS.totalBytes) throw new Error(`the store would exceed ${STORE_LIMITS.totalBytes} bytes`);
    this.bytes = grown;
    this.data.set(key, value);
    for (const w of this.waiters) {
      if (w.keys.every((k) => this.data.has(k))) {
        this.waiters.delete(w);
        if (!w.socket.destroyed) w.socket.write(Buffer.from([0]));
      }
    }
  }

  /** Attaches a connection: requests are parsed as they arrive and answered in order. */
  attach(socket: net.Socket): void {
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      if (pending.length > STORE_LIMITS.valueBytes + 3 * STORE_LIMITS.keyBytes + 64) {
        socket.destroy();
        return;
      }
      for (;;) {
        const r = new Reader(pending);
        try {
          this.handle(r, socket);
        } catch (e) {
          if (e instanceof Incomplete) break;
          socket.destroy();
          return;
        }
        pending = pending.subarray(r.off);
        if (!pending.length) break;
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      for (const w of this.waiters) if (w.socket === socket) this.waiters.delete(w);
    });
  }

  private handle(r: Reader, socket: net.Socket): void {
    const q = r.u8();
    switch (q) {
      case Query.Set: {
        const key = r.key();
        this.put(key, r.bytes(STORE_LIMITS.valueBytes));
        return;
      }
      case Query.CompareSet: {
        const key = r.key(),
          expected = r.bytes(STORE_LIMITS.valueBytes),
          desired = r.bytes(STORE_LIMITS.valueBytes);
        const cur = this.data.get(key);
        if (cur === undefined) {
          // as c10d: a missing key is created only when the expected value is empty
          if (expected.length === 0) this.put(key, desired);
          socket.write(vec(expected.length === 0 ? desired : expected));
        } else {
          if (cur.equals(expected)) this.put(key, desired);
          socket.write(vec(this.data.get(key)!));
        }
        return;
      }
      case Query.Get:
        socket.write(vec(this.data.get(r.key()) ?? Buffer.alloc(0)));
        return;
      case Query.Add: {
        const key = r.key(),
          delta = r.i64();
        const cur = this.data.get(key);
        const next = (cur ? BigInt.asIntN(64, BigInt(cur.toString('latin1') || '0')) : 0n) + delta;
        this.put(key, Buffer.from(next.toString(), 'latin1'));
        socket.write(i64(next));
        return;
      }
      case Query.Check:
        socket.write(Buffer.from([r.keys().every((k) => this.data.has(k)) ? 0 : 1]));
        return;
      case Query.Wait: {
        const keys = r.keys();
        if (keys.every((k) => this.data.has(k))) socket.write(Buffer.from([0]));
        else this.waiters.add({ socket, keys });
        return;
      }
      case Query.GetNumKeys:
        socket.write(i64(BigInt(this.data.size)));
        return;
      case Query.DeleteKey: {
        const key = r.key();
        const old = this.data.get(key);
        if (old) this.bytes -= old.length + key.length;
        socket.write(i64(this.data.delete(key) ? 1n : 0n));
        return;
      }
      default:
        // WATCH_KEY (callbacks) is not served: nothing beitseg runs uses it
        throw new Error(`unsupported store query ${q}`);
    }
  }
}
