/**
 * The rendezvous every rank runs on the store before Gloo connects: a job check (a rank from
 * another job that reached this store by a shared port is refused, naming both jobs), a
 * duplicate-rank check, then the arrival count with "waiting for N of M ranks" progress and, at
 * the timeout, an error naming the ranks (and their hosts) that arrived and those that did not.
 */
import os from 'node:os';

/** The store operations the rendezvous needs (native TCPStore client; an in-memory one in tests). */
export interface KeyStore {
  set(key: string, value: string): void;
  get(key: string): string;
  add(key: string, delta: number): number;
  check(keys: string[]): boolean;
  compareSet(key: string, expected: string, desired: string): string;
}

export interface RendezvousOptions {
  rank: number;
  worldSize: number;
  timeoutMs: number;
  /** This job's identity; ranks of one job share it (see jobToken). '' when unknown. */
  token: string;
  /** Where the store is, for messages. */
  where: string;
  /** Ranks per node, to name the node of a missing rank (LOCAL_WORLD_SIZE); 0 when unknown. */
  localWorldSize?: number;
  /** Progress lines (rank 0 prints them). */
  log?: (line: string) => void;
  /** Between progress lines (ms); default a tenth of the timeout, 1 to 30 s. */
  progressMs?: number;
}

/**
 * The job identity ranks compare at the store: BEITSEG_RUN_TOKEN (set by the launcher), else
 * Slurm's job id (and step), else torchrun's run id; '' when none is set.
 */
export function jobToken(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BEITSEG_RUN_TOKEN) return `run ${env.BEITSEG_RUN_TOKEN}`;
  if (env.SLURM_JOB_ID) return `slurm job ${env.SLURM_JOB_ID}${env.SLURM_STEP_ID ? `.${env.SLURM_STEP_ID}` : ''}`;
  if (env.TORCHELASTIC_RUN_ID) return `torchrun ${env.TORCHELASTIC_RUN_ID}`;
  return '';
}

/** "0-3,7,9-10" */
export function rankRanges(ranks: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < ranks.length; ) {
    let j = i;
    while (j + 1 < ranks.length && ranks[j + 1] === ranks[j]! + 1) j++;
    out.push(i === j ? `${ranks[i]}` : `${ranks[i]}-${ranks[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Who has arrived: "ranks 0-1 (host a), 2 (host b)"; who is missing: "ranks 3 (node 1)". */
function census(store: KeyStore, o: RendezvousOptions): { arrived: string; missing: string } {
  const byHost = new Map<string, number[]>();
  const missing: number[] = [];
  for (let r = 0; r < o.worldSize; r++) {
    const key = `rank/${r}`;
    if (store.check([key])) {
      const host = store.get(key).split(' ')[0] ?? '?';
      byHost.set(host, [...(byHost.get(host) ?? []), r]);
    } else missing.push(r);
  }
  const arrived = [...byHost].map(([h, rs]) => `${rankRanges(rs)} on ${h}`).join('; ');
  let miss = rankRanges(missing);
  const lws = o.localWorldSize ?? 0;
  if (lws > 0 && missing.length) {
    const nodes = [...new Set(missing.map((r) => Math.floor(r / lws)))];
    miss += ` (node rank${nodes.length > 1 ? 's' : ''} ${rankRanges(nodes)})`;
  }
  return { arrived: arrived || 'none', missing: miss || 'none' };
}

/** Resolves once all ranks have arrived; rejects with a one-line error naming who is missing. */
export async function rendezvous(store: KeyStore, o: RendezvousOptions): Promise<void> {
  const { rank, worldSize } = o;
  const me = o.token || '(no job id)';
  const seen = store.compareSet('job', '', me);
  if (seen !== me) {
    throw new Error(
      `rank ${rank}: the store at ${o.where} belongs to another job (${seen}; this rank is ${me}): ` +
        'two jobs on one port? give each job its own MASTER_PORT',
    );
  }
  const id = `${os.hostname()} pid ${process.pid}`;
  const holder = store.compareSet(`rank/${rank}`, '', id);
  if (holder !== id) throw new Error(`rank ${rank}: another process already joined as rank ${rank} (${holder})`);
  store.add('arrived', 1);
  const t0 = Date.now();
  const progressMs = o.progressMs ?? Math.min(30_000, Math.max(1000, o.timeoutMs / 10));
  let nextProgress = t0 + progressMs;
  let pause = 20;
  for (;;) {
    let n: number;
    try {
      n = store.add('arrived', 0);
    } catch (e) {
      throw new Error(
        `rank ${rank}: the rendezvous store at ${o.where} went away while waiting (the process hosting it, ` +
          `rank 0 or node 0's launcher, ended: see its error): ${(e as Error).message.split('\n')[0]}`,
      );
    }
    if (n >= worldSize) return;
    const now = Date.now();
    if (now - t0 >= o.timeoutMs) {
      const c = census(store, o);
      throw new Error(
        `rank ${rank}: rendezvous at ${o.where} timed out after ${o.timeoutMs / 1000} s with ${n} of ${worldSize} ` +
          `ranks: arrived ${c.arrived}; missing ${c.missing}`,
      );
    }
    if (now >= nextProgress) {
      nextProgress = now + progressMs;
      if (rank === 0 && o.log) {
        const c = census(store, o);
        o.log(
          `rendezvous: waiting for ${worldSize - n} of ${worldSize} ranks (missing ${c.missing}) ` +
            `[${Math.round((now - t0) / 1000)} s of ${o.timeoutMs / 1000} s]`,
        );
      }
    }
    await sleep(pause);
    pause = Math.min(250, pause * 2);
  }
}
