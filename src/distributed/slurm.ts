/**
 * Slurm's environment, read as Slurm writes it: host lists (SLURM_JOB_NODELIST / SLURM_NODELIST)
 * in the hostlist grammar, tasks per node (SLURM_TASKS_PER_NODE "2(x3),1"), and the CPU share of
 * each worker.
 *
 * Host lists: comma-separated expressions; each expression is text with any number of bracket
 * groups, each group a comma-separated list of numbers and ranges `lo-hi`, zero-padded to the
 * width of `lo` when it has leading zeros ("node[01-10]" -> node01..node10); several groups are a
 * product, in order ("rack[1-2]-node[01-02]" -> rack1-node01, rack1-node02, rack2-node01, ...).
 */

/** Refuses lists that would expand past this (a typo such as [1-1000000000]). */
export const MAX_HOSTS = 1_000_000;

function expandGroup(group: string, where: string): string[] {
  const out: string[] = [];
  for (const part of group.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`${where}: "[${group}]" has "${part}", expected a number or a range lo-hi`);
    const lo = Number(m[1]),
      hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new Error(`${where}: range ${part} runs backwards`);
    if (hi - lo + 1 > MAX_HOSTS) throw new Error(`${where}: range ${part} has more than ${MAX_HOSTS} hosts`);
    const width = m[1]!.length > 1 && m[1]!.startsWith('0') ? m[1]!.length : 0;
    for (let v = lo; v <= hi; v++) out.push(String(v).padStart(width, '0'));
  }
  return out;
}

/** Top-level commas only (commas inside brackets belong to a group). */
function splitTop(list: string, where: string): string[] {
  const out: string[] = [];
  let depth = 0,
    start = 0;
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (c === '[') {
      if (depth) throw new Error(`${where}: nested "[" at position ${i}`);
      depth = 1;
    } else if (c === ']') {
      if (!depth) throw new Error(`${where}: "]" without "[" at position ${i}`);
      depth = 0;
    } else if (c === ',' && !depth) {
      out.push(list.slice(start, i));
      start = i + 1;
    }
  }
  if (depth) throw new Error(`${where}: "[" is not closed`);
  out.push(list.slice(start));
  return out.map((s) => s.trim()).filter((s) => s !== '');
}

/** Every host of a Slurm host list, in Slurm's order. */
export function expandHostlist(list: string, where = `host list ${JSON.stringify(list)}`): string[] {
  const hosts: string[] = [];
  for (const expr of splitTop(list, where)) {
    // alternating text and bracket groups: text [g] text [g] ... text
    let names = [''];
    const re = /([^[]*)(?:\[([^\]]*)\])?/g;
    let m: RegExpExecArray | null;
    while ((m = re.exec(expr)) && m[0] !== '') {
      const text = m[1]!,
        group = m[2];
      const values = group === undefined ? [''] : expandGroup(group, where);
      if (names.length * values.length > MAX_HOSTS) throw new Error(`${where}: more than ${MAX_HOSTS} hosts`);
      names = names.flatMap((n) => values.map((v) => n + text + v));
    }
    hosts.push(...names);
    if (hosts.length > MAX_HOSTS) throw new Error(`${where}: more than ${MAX_HOSTS} hosts`);
  }
  if (!hosts.length) throw new Error(`${where}: no hosts`);
  return hosts;
}

/** Tasks on each node from SLURM_TASKS_PER_NODE ("2(x3),1" -> [2, 2, 2, 1]). */
export function tasksPerNode(value: string): number[] {
  const out: number[] = [];
  for (const part of value.split(',')) {
    const m = /^\s*(\d+)(?:\(x(\d+)\))?\s*$/.exec(part);
    if (!m) throw new Error(`SLURM_TASKS_PER_NODE=${JSON.stringify(value)}: cannot read "${part}"`);
    const reps = Number(m[2] ?? 1);
    if (reps > MAX_HOSTS) throw new Error(`SLURM_TASKS_PER_NODE=${JSON.stringify(value)}: too many nodes`);
    for (let i = 0; i < reps; i++) out.push(Number(m[1]));
  }
  return out;
}

function positive(v: string | undefined): number | undefined {
  const n = Number(v);
  return v !== undefined && Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * libtorch threads for one worker of a distributed run: the CPUs Slurm gave the task
 * (SLURM_CPUS_PER_TASK, else this machine's cores) shared among the workers that task or node
 * runs (LOCAL_WORLD_SIZE under a launcher or torchrun; under plain srun, where each task is a
 * worker, 1 with SLURM_CPUS_PER_TASK, else this node's task count). undefined: not a worker
 * sharing a machine (libtorch's default, every core).
 */
export function workerThreads(env: NodeJS.ProcessEnv, cores: number): number | undefined {
  const cpusPerTask = positive(env.SLURM_CPUS_PER_TASK);
  let share = positive(env.LOCAL_WORLD_SIZE);
  if (share === undefined && env.SLURM_PROCID !== undefined) {
    if (cpusPerTask) share = 1;
    else if (env.SLURM_NTASKS_PER_NODE) share = positive(env.SLURM_NTASKS_PER_NODE);
    else if (env.SLURM_TASKS_PER_NODE) share = tasksPerNode(env.SLURM_TASKS_PER_NODE)[Number(env.SLURM_NODEID ?? 0)];
  }
  if (share === undefined || (share === 1 && !cpusPerTask)) return undefined;
  return Math.max(1, Math.floor((cpusPerTask ?? cores) / share));
}
