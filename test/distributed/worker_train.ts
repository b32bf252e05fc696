/**
 * Rank worker for train.test: trains the deterministic tiny config through the Trainer with
 * the distributed options (DDP, SyncBN, rank-split loader, sharded validation), work dir
 * argv[2]/rank<r>, config JSON in argv[3]; prints the final validation metrics.
 */
import fs from 'node:fs';
import path from 'node:path';
import { joinFromEnv } from '../../src/distributed/init.js';
import { distributedTrainOptions } from '../../src/engine/distributed.js';
import { train } from '../../src/engine/trainer.js';
import { latestCheckpoint } from '../../src/engine/training_checkpoint.js';
import type { Dict } from '../../src/config/schema.js';

async function main(): Promise<void> {
  const joined = await joinFromEnv({ timeoutMs: 30000 });
  if (!joined) throw new Error('run by runRanks: RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set, 2+ ranks');
  const { pg } = joined;
  const stopAt = process.argv[4]?.startsWith('stop-at-') ? Number(process.argv[4].slice(8)) : 0;
  const config = JSON.parse(fs.readFileSync(process.argv[3]!, 'utf8')) as Dict;
  const result = await train(
    distributedTrainOptions(pg, {
      config,
      configPath: 'tiny.json',
      workDir: path.join(process.argv[2]!, `rank${pg.rank}`),
      device: 'cpu',
      numWorkers: 0,
      log: () => undefined,
      // argv[4]: "stop-at-N" asks rank 1 only to stop after iteration N (the stop is agreed by all ranks);
      // "resume" continues from the latest checkpoint (rank 1 reads rank 0's work dir, as on a shared disk)
      onIteration: stopAt
        ? (it, trainer) => {
            if (pg.rank === 1 && it === stopAt) trainer.requestStop();
          }
        : undefined,
      resume: process.argv[4] === 'resume' ? latestCheckpoint(path.join(process.argv[2]!, 'rank0'))!.dir : undefined,
    }),
  );
  console.log(JSON.stringify({ rank: pg.rank, iteration: result.iteration, metrics: result.lastValidation }));
  result.model.dispose();
}

if (process.env.BEITSEG_TEST_WORKER) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  });
}
