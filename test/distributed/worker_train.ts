/**
 * Rank worker for train.test: trains the deterministic tiny config through the Trainer with
 * the distributed options (DDP, SyncBN, rank-split loader, sharded validation), work dir
 * argv[2]/rank<r>, config JSON in argv[3]; prints the final validation metrics.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readDistEnv } from '../../src/distributed/env.js';
import { setDefaultGroup } from '../../src/distributed/context.js';
import { ProcessGroup } from '../../src/distributed/process_group.js';
import { distributedTrainOptions } from '../../src/engine/distributed.js';
import { train } from '../../src/engine/trainer.js';
import type { Dict } from '../../src/models/config.js';

async function main(): Promise<void> {
  const env = readDistEnv()!;
  const pg = await ProcessGroup.init({ masterAddr: env.masterAddr, masterPort: env.masterPort, rank: env.rank, worldSize: env.worldSize, timeoutMs: 30000 });
  setDefaultGroup(pg);
  const config = JSON.parse(fs.readFileSync(process.argv[3]!, 'utf8')) as Dict;
  const result = await train(distributedTrainOptions(pg, {
    config, configPath: 'tiny.json', workDir: path.join(process.argv[2]!, `rank${pg.rank}`), device: 'cpu', numWorkers: 0,
    log: () => undefined,
  }));
  console.log(JSON.stringify({ rank: pg.rank, iteration: result.iteration, metrics: result.lastValidation }));
  result.model.dispose();
}

if (process.env.BEITSEG_TEST_WORKER) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  });
}
