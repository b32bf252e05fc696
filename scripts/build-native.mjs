#!/usr/bin/env node
// Builds native/build/beitseg.node with g++ against libtorch, without node-gyp or network:
//   LIBTORCH=/path (a libtorch folder or a PyTorch install's torch/ folder) selects the build;
//   otherwise Debian's libtorch-dev, installed with apt when missing (as root).
// NAPI_INCLUDE overrides the folder holding node_api.h (default: this Node's headers).
// Objects are compiled in parallel and reused when their source is unchanged.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = path.join(root, 'native', 'src');
const outDir = path.join(root, 'native', 'build');
const shimDir = path.join(root, 'native', 'shim');
const DEBIAN_INCLUDE = '/usr/include/torch';
const DEBIAN_LIB = '/usr/lib/x86_64-linux-gnu';

function log(msg) { process.stderr.write(`[build-native] ${msg}\n`); }

function findLibtorch() {
  const env = process.env.LIBTORCH;
  if (env) {
    const inc = path.join(env, 'include');
    if (!fs.existsSync(path.join(inc, 'ATen', 'ATen.h'))) throw new Error(`LIBTORCH=${env}: no include/ATen/ATen.h there`);
    return { include: [inc, path.join(inc, 'torch', 'csrc', 'api', 'include')], lib: path.join(env, 'lib') };
  }
  if (!fs.existsSync(path.join(DEBIAN_INCLUDE, 'csrc'))) {
    const cmd = 'apt-get update && apt-get install -y libtorch-dev';
    if (process.getuid && process.getuid() === 0) {
      log(`libtorch not found; installing Debian's libtorch-dev: ${cmd}`);
      execFileSync('bash', ['-c', `DEBIAN_FRONTEND=noninteractive ${cmd}`], { stdio: ['ignore', 'inherit', 'inherit'] });
    } else {
      throw new Error(`libtorch not found. Install it with:  sudo ${cmd}   (or set LIBTORCH=/path/to/libtorch)`);
    }
  }
  // c10d's Gloo process group header includes gloo's own headers (Debian: libgloo-dev)
  if (!fs.existsSync('/usr/include/gloo/rendezvous/store.h')) {
    const cmd = 'apt-get update && apt-get install -y libgloo-dev';
    if (process.getuid && process.getuid() === 0) {
      log(`gloo headers not found; installing: ${cmd}`);
      execFileSync('bash', ['-c', `DEBIAN_FRONTEND=noninteractive ${cmd}`], { stdio: ['ignore', 'inherit', 'inherit'] });
    } else {
      throw new Error(`gloo headers (for c10d's Gloo process group) not found. Install them with:  sudo ${cmd}`);
    }
  }
  // ATen and torch headers sit directly in /usr/include there (never pass that as -isystem).
  return { include: [path.join(DEBIAN_INCLUDE, 'csrc', 'api', 'include')], lib: DEBIAN_LIB };
}

function napiInclude() {
  const candidates = [process.env.NAPI_INCLUDE, path.join(path.dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node'];
  for (const c of candidates) if (c && fs.existsSync(path.join(c, 'node_api.h'))) return c;
  throw new Error('node_api.h not found: set NAPI_INCLUDE to the folder holding it');
}

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}`))));
  });
}

async function main() {
  const torch = findLibtorch();
  const withCuda = fs.existsSync(path.join(torch.lib, 'libc10_cuda.so'));
  const cudaInclude = withCuda ? findCudaInclude(torch.lib) : null;
  if (withCuda && !cudaInclude) log('CUDA runtime headers not found (set CUDA_HOME): building without GPU memory statistics');
  const version = torchVersion(torch.include);
  const addonApi = path.join(root, 'node_modules', 'node-addon-api');
  // libtorch 2.12+ headers require C++20; the addon itself is C++17.
  const std = version && (version[0] > 2 || (version[0] === 2 && version[1] >= 12)) ? 'c++20' : 'c++17';
  const flags = [`-std=${std}`, '-O2', '-fPIC', '-fvisibility=hidden', '-D_GLIBCXX_USE_CXX11_ABI=1',
    '-DNAPI_VERSION=8', '-DNAPI_CPP_EXCEPTIONS', '-DNODE_ADDON_API_DISABLE_DEPRECATED',
    '-Wno-deprecated-declarations', '-Wno-unused-parameter',
    ...(withCuda ? ['-DBEITSEG_WITH_CUDA'] : []),
    // c10d's NCCL header is empty unless USE_C10D_NCCL is set: only where a CUDA libtorch ships it
    ...(withCuda && ncclHeader(torch.include) ? ['-DUSE_C10D_NCCL', '-DBEITSEG_WITH_NCCL'] : []),
    ...(cudaInclude ? ['-DBEITSEG_CUDA_STATS', `-isystem${cudaInclude}`] : []),
    ...torch.include.map((d) => `-isystem${d}`), `-I${napiInclude()}`, `-I${addonApi}`,
    // after libtorch's folders: stand-ins for headers a libtorch package may lack (native/shim)
    `-idirafter${shimDir}`];
  // PyTorch wheels are built with the pre-C++11 ABI on some versions; follow the library.
  if (process.env.LIBTORCH) {
    const abi = process.env.TORCH_CXX11_ABI ?? detectAbi(torch.lib);
    flags[4] = `-D_GLIBCXX_USE_CXX11_ABI=${abi}`;
  }
  fs.mkdirSync(outDir, { recursive: true });
  const sources = fs.readdirSync(srcDir).filter((f) => f.endsWith('.cc')).sort();
  const headerHash = hashFiles([...fs.readdirSync(srcDir).filter((f) => f.endsWith('.h')).map((f) => path.join(srcDir, f)),
    ...fs.readdirSync(shimDir, { recursive: true }).filter((f) => f.endsWith('.h')).map((f) => path.join(shimDir, f))]);
  const key = createHash('sha1').update(JSON.stringify(flags)).update(headerHash).digest('hex').slice(0, 12);
  const jobs = Math.max(1, Math.min(os.cpus().length, sources.length));
  log(`libtorch ${version ? version.join('.') : '?'}: ${torch.lib}${withCuda ? ' (CUDA)' : ''}; compiling ${sources.length} files, ${jobs} at a time`);
  const objects = [];
  const queue = [...sources];
  async function worker() {
    for (let f = queue.shift(); f; f = queue.shift()) {
      const src = path.join(srcDir, f);
      const obj = path.join(outDir, `${f}.${key}.${hashFiles([src]).slice(0, 12)}.o`);
      objects.push(obj);
      if (fs.existsSync(obj)) continue;
      log(`compile ${f}`);
      await run(process.env.CXX || 'g++', [...flags, '-c', src, '-o', `${obj}.tmp`]);
      fs.renameSync(`${obj}.tmp`, obj);
    }
  }
  await Promise.all(Array.from({ length: jobs }, worker));
  const libs = ['-ltorch', '-ltorch_cpu', '-lc10', ...(withCuda ? ['-ltorch_cuda', '-lc10_cuda'] : [])];
  const target = path.join(outDir, 'beitseg.node');
  await run(process.env.CXX || 'g++', ['-shared', '-o', `${target}.tmp`, ...objects.sort(), `-L${torch.lib}`,
    `-Wl,-rpath,${torch.lib}`, '-Wl,--no-as-needed', ...libs]);
  fs.renameSync(`${target}.tmp`, target);
  for (const f of fs.readdirSync(outDir)) {
    if (f.endsWith('.o') && !objects.includes(path.join(outDir, f))) fs.rmSync(path.join(outDir, f));
  }
  log(`built ${path.relative(root, target)}`);
}

// Whether the libtorch headers include c10d's NCCL process group (CUDA builds).
function ncclHeader(includes) {
  return [...includes, '/usr/include'].some((d) => fs.existsSync(path.join(d, 'torch', 'csrc', 'distributed', 'c10d', 'ProcessGroupNCCL.hpp')));
}

// [major, minor, patch] from torch/version.h, or null.
function torchVersion(includes) {
  for (const dir of [...includes, '/usr/include']) {
    const file = path.join(dir, 'torch', 'version.h');
    if (!fs.existsSync(file)) continue;
    const text = fs.readFileSync(file, 'utf8');
    const num = (name) => Number((text.match(new RegExp(`#define TORCH_VERSION_${name}\\s+(\\d+)`)) ?? [])[1]);
    const v = [num('MAJOR'), num('MINOR'), num('PATCH')];
    if (v.every(Number.isFinite)) return v;
  }
  return null;
}

// The folder holding cuda_runtime_api.h: CUDA_HOME/CUDA_PATH, the toolkit beside nvcc or in
// /usr/local/cuda, or the nvidia-* wheels installed next to a PyTorch install.
function findCudaInclude(torchLib) {
  const candidates = [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda'].filter(Boolean).map((d) => path.join(d, 'include'));
  try {
    const nvcc = execFileSync('bash', ['-c', 'command -v nvcc || true']).toString().trim();
    if (nvcc) candidates.push(path.join(path.dirname(fs.realpathSync(nvcc)), '..', 'include'));
  } catch { /* no nvcc */ }
  const nvidia = path.join(torchLib, '..', '..', 'nvidia');
  if (fs.existsSync(nvidia)) {
    for (const d of fs.readdirSync(nvidia)) candidates.push(path.join(nvidia, d, 'include'));
  }
  return candidates.find((d) => fs.existsSync(path.join(d, 'cuda_runtime_api.h'))) ?? null;
}

function hashFiles(files) {
  const h = createHash('sha1');
  for (const f of files.sort()) h.update(f).update(fs.readFileSync(f));
  return h.digest('hex');
}

// libtorch built with the old ABI exports std::string symbols without "__cxx11".
function detectAbi(libDir) {
  try {
    const out = execFileSync('bash', ['-c', `nm -D --defined-only ${path.join(libDir, 'libc10.so')} | grep -c __cxx11 || true`]).toString().trim();
    return Number(out) > 0 ? '1' : '0';
  } catch {
    return '1';
  }
}

main().catch((err) => {
  log(`failed: ${err.message}`);
  process.exit(1);
});
