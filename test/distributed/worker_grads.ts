/**
 * Rank worker for ddp.test: one training forward/backward of the tiny model on sample `rank`
 * of a fixed batch of 2, through DDP and SyncBN; writes the averaged gradients and the BN
 * running statistics (float32) to argv[2].rank<r>.
 */
import fs from 'node:fs';
import { DistributedDataParallel } from '../../src/distributed/ddp.js';
import { joinFromEnv } from '../../src/distributed/init.js';
import { buildSegmentor } from '../../src/models/builder.js';
import type { Dict } from '../../src/config/schema.js';
import { manualSeed } from '../../src/tensor/runtime.js';
import { fixedBatch } from './worker_inputs.js';
import { deterministicTinyConfig, flatGradsAndStats } from './tiny.js';

async function main(): Promise<void> {
  const joined = await joinFromEnv({ timeoutMs: 30000 });
  if (!joined) throw new Error('run by runRanks: RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set, 2+ ranks');
  const { pg } = joined;
  // a different seed on rank 1: the broadcast from rank 0 must make the weights equal
  manualSeed(pg.rank === 0 ? 0 : 99);
  const model = buildSegmentor(deterministicTinyConfig('/nonexistent').model as Dict).train();
  const params = model.namedParameters().map(([, p]) => p);
  const ddp = new DistributedDataParallel(
    pg,
    params,
    model.namedBuffers().map(([, b]) => b),
  );
  const { img, label } = fixedBatch(pg.rank, 1);
  ddp.prepareBackward();
  model.loss(img, label).loss.backward();
  ddp.finish();
  fs.writeFileSync(
    `${process.argv[2]}.rank${pg.rank}`,
    flatGradsAndStats(model.namedParameters(), model.namedBuffers()),
  );
  console.log(JSON.stringify({ rank: pg.rank, buckets: ddp.buckets, bytes: ddp.bytesPerStep, mode: ddp.mode }));
}

if (process.env.BEITSEG_TEST_WORKER) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  });
}
