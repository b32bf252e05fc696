/**
 * The process-wide default group (torch.distributed's WORLD): set once a worker has joined,
 * read by SyncBN, the engine and evaluation. Without one, everything runs as one process.
 */
import type { ProcessGroup } from './process_group.js';

let defaultGroup: ProcessGroup | null = null;

export function setDefaultGroup(pg: ProcessGroup | null): void {
  defaultGroup = pg;
}

/** The default group when more than one process takes part, else null. */
export function distributedGroup(): ProcessGroup | null {
  return defaultGroup && defaultGroup.worldSize > 1 ? defaultGroup : null;
}

export function getRank(): number {
  return defaultGroup?.rank ?? 0;
}

export function getWorldSize(): number {
  return defaultGroup?.worldSize ?? 1;
}

/** mmengine's is_main_process: rank 0 writes logs, checkpoints and plots. */
export function isMainProcess(): boolean {
  return getRank() === 0;
}
