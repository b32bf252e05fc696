/** Rank worker for collectives.test: runs each collective and prints what it got as JSON. */
import { readDistEnv } from '../../src/distributed/env.js';
import { ProcessGroup } from '../../src/distributed/process_group.js';
import { tensor } from '../../src/tensor/tensor.js';

async function main(): Promise<void> {
  const env = readDistEnv()!;
  const mode = process.argv[2] ?? 'ok';
  // a rank that never joins (the rendezvous must name it)
  if (mode === 'rank2-absent' && env.rank === 2) return;
  const pg = await ProcessGroup.init({
    masterAddr: env.masterAddr,
    masterPort: env.masterPort,
    rank: env.rank,
    worldSize: env.worldSize,
    timeoutMs: Number(process.env.TEST_TIMEOUT_MS ?? 20000),
    localWorldSize: Number(process.env.LOCAL_WORLD_SIZE) || undefined,
  });
  const r = pg.rank;
  if (mode === 'peer-exits') {
    // rank 1 leaves after the rendezvous; rank 0's next all-reduce must fail, not hang
    if (r === 1) process.exit(0);
    await new Promise((res) => setTimeout(res, 300));
    const t0 = Date.now();
    try {
      pg.allReduce(tensor([1, 2]));
      console.log(JSON.stringify({ rank: r, error: null }));
    } catch (e) {
      console.log(JSON.stringify({ rank: r, error: (e as Error).message, ms: Date.now() - t0 }));
    }
    return;
  }
  if (mode === 'peer-hangs') {
    // rank 1 stays alive but never joins the collective: rank 0 must time out
    if (r === 1) {
      await new Promise((res) => setTimeout(res, 10000));
      process.exit(0);
    }
    const t0 = Date.now();
    try {
      await pg.allReduceAsync(tensor([1, 2]));
      console.log(JSON.stringify({ rank: r, error: null }));
    } catch (e) {
      console.log(JSON.stringify({ rank: r, error: (e as Error).message, ms: Date.now() - t0 }));
    }
    process.exit(0);
  }
  const sum = pg.allReduce(tensor([r + 1, 10 * (r + 1)])).toFloat32Array();
  const max = pg.allReduce(tensor([r, -r]), 'max').toFloat32Array();
  const mean = pg.allReduceMean(tensor([r + 1])).toFloat32Array();
  const asyncSum = (await pg.allReduceAsync(tensor([1]))).toFloat32Array();
  const bcast = pg.broadcast(tensor([r + 5, r + 6]), 1).toFloat32Array();
  const gathered = pg.allGather(tensor([r, r * r])).map((t) => Array.from(t.toFloat32Array()));
  const ints = pg.allReduce(tensor([r + 1], [1], 'int64')).item();
  const coalesced = [tensor([r, r]), tensor([r * 3], [1], 'int64')];
  pg.broadcastCoalesced(coalesced, 0);
  await pg.barrier();
  console.log(
    JSON.stringify({
      rank: r,
      size: pg.worldSize,
      sum: Array.from(sum),
      max: Array.from(max),
      mean: Array.from(mean),
      asyncSum: Array.from(asyncSum),
      bcast: Array.from(bcast),
      gathered,
      ints,
      coalesced: [Array.from(coalesced[0]!.toFloat32Array()), coalesced[1]!.item()],
    }),
  );
}

if (process.env.BEITSEG_TEST_WORKER) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
  });
}
