#!/usr/bin/env node
// Builds native/build/beitseg.node with g++ against libtorch, without node-gyp or network:
//   LIBTORCH=/path (a libtorch folder or a PyTorch install's torch/ folder) selects the build;
//   otherwise Debian's libtorch-dev. npm's install step runs this file, so it first makes sure
//   of the Debian packages the addon needs (SYSTEM_PACKAGES): as root it installs the missing
//   ones with apt; otherwise it stops before compiling with the one apt command to run.
// NAPI_INCLUDE overrides the folder holding node_api.h (default: this Node's headers).
// Objects are compiled in parallel and reused when their source is unchanged.
// BEITSEG_NATIVE_OBJECTS=dir reuses objects from another build (e.g. a checkout's native/build):
// an object there whose name (flags and source hashes) matches is copied instead of compiled.
// The addon is optional (docs/install.md): `--optional` (npm's install step) turns a failed or
// impossible build into one line and exit 0, so the package installs everywhere and its ONNX
// path works; BEITSEG_NATIVE=0 skips the build, BEITSEG_NATIVE=1 makes a failure fail the install.
// npm (7+) hides an install script's stdout and stderr unless it fails or runs with
// --foreground-scripts, so each stage is also written to /dev/tty where there is one, and to
// native/build/build.log.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = path.join(root, 'native', 'src');
const outDir = path.join(root, 'native', 'build');
const shimDir = path.join(root, 'native', 'shim');
const DEBIAN_INCLUDE = '/usr/include/torch';
const DNNL_HEADER = '/usr/include/dnnl.hpp';

// Debian packages the addon needs to build and to run fast, each with how to see it is there.
// libtorch's fp32 matmuls call whatever libblas.so.3 is installed: Debian's default is the
// reference BLAS (about 70x slower); OpenBLAS is what python3-torch recommends. A LIBTORCH
// build brings its own torch and BLAS, so only the compiler is needed then.
const SYSTEM_PACKAGES = [
  { pkg: 'g++', present: () => Boolean(process.env.CXX) || hasCommand('g++') },
  { pkg: 'libtorch-dev', present: () => fs.existsSync(path.join(DEBIAN_INCLUDE, 'csrc')), debianTorchOnly: true },
  { pkg: 'libopenblas0-pthread', present: () => dpkgInstalled('libopenblas0-pthread'), debianTorchOnly: true },
  // c10d's Gloo process group header includes gloo's own headers (a PyTorch install ships them)
  { pkg: 'libgloo-dev', present: () => fs.existsSync('/usr/include/gloo/rendezvous/store.h'), debianTorchOnly: true },
  // oneDNN's headers for the Winograd 3x3 convolution (native/src/conv_winograd.cc), against the
  // libdnnl Debian's libtorch already links
  { pkg: 'libdnnl-dev', present: () => fs.existsSync(DNNL_HEADER), debianTorchOnly: true },
];

const LOG_FILE = path.join(outDir, 'build.log');
let tty = null;
try {
  // only when stderr is not the terminal already (under npm), so a direct run prints each line once
  if (!process.stderr.isTTY) tty = fs.openSync('/dev/tty', 'w');
} catch {
  /* no controlling terminal (CI, containers): stderr and the log file only */
}

function log(msg) {
  const line = `[beitseg build-native] ${msg}\n`;
  process.stderr.write(line);
  if (tty !== null) {
    try {
      fs.writeSync(tty, line);
    } catch {
      tty = null;
    }
  }
  try {
    fs.mkdirSync(outDir, { recursive: true });
    fs.appendFileSync(LOG_FILE, `${new Date().toISOString()} ${msg}\n`);
  } catch {
    /* a read-only package folder: the terminal line is enough */
  }
}

const NEEDS_ADDON =
  'training, libtorch inference and distributed runs need it; ONNX inference works without it. ' +
  'Build it later with "npm rebuild beitseg" (Linux, g++ and libtorch: docs/install.md)';

function hasCommand(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function dpkgInstalled(pkg) {
  try {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own ${field} format, not a JS template
    const status = execFileSync('dpkg-query', ['-W', '-f', '${db:Status-Status}', pkg], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return status.toString().trim() === 'installed';
  } catch {
    return false;
  }
}

/** Installs the missing system packages as root, or stops with the exact apt command. */
function ensureSystemPackages() {
  const needed = SYSTEM_PACKAGES.filter((p) => !(p.debianTorchOnly && process.env.LIBTORCH));
  const missing = needed.filter((p) => !p.present()).map((p) => p.pkg);
  if (missing.length === 0) return;
  const install = `apt-get install -y ${missing.join(' ')}`;
  const isRoot = process.getuid && process.getuid() === 0;
  if (!hasCommand('apt-get')) {
    throw new Error(
      `missing ${missing.join(', ')} and no apt-get here: ` +
        'install them (or set LIBTORCH=/path/to/libtorch and CXX)',
    );
  }
  if (!isRoot) {
    throw new Error(
      `missing system packages ${missing.join(', ')}; install them, then run npm install again:  ` +
        `sudo apt-get update && sudo ${install}`,
    );
  }
  log(`installing missing system packages: apt-get update && ${install}`);
  execFileSync('bash', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${install}`], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

// Debian's multiarch library folder for this machine (/usr/lib/x86_64-linux-gnu, /usr/lib/aarch64-linux-gnu, ...).
function debianLibDir() {
  const tries = [
    [process.env.CXX || 'g++', ['-print-multiarch']],
    ['dpkg-architecture', ['-qDEB_HOST_MULTIARCH']],
  ];
  for (const [cmd, args] of tries) {
    try {
      const triplet = execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim();
      const dir = triplet ? path.join('/usr/lib', triplet) : '';
      if (dir && fs.existsSync(path.join(dir, 'libtorch.so'))) return dir;
    } catch {
      /* try the next way */
    }
  }
  const found = fs.readdirSync('/usr/lib').find((d) => fs.existsSync(path.join('/usr/lib', d, 'libtorch.so')));
  if (found) return path.join('/usr/lib', found);
  throw new Error('libtorch-dev is installed but no /usr/lib/<multiarch>/libtorch.so was found');
}

function findLibtorch() {
  const env = process.env.LIBTORCH;
  if (env) {
    const inc = path.join(env, 'include');
    if (!fs.existsSync(path.join(inc, 'ATen', 'ATen.h')))
      throw new Error(`LIBTORCH=${env}: no include/ATen/ATen.h there`);
    return { include: [inc, path.join(inc, 'torch', 'csrc', 'api', 'include')], lib: path.join(env, 'lib') };
  }
  // ATen and torch headers sit directly in /usr/include there (never pass that as -isystem).
  return { include: [path.join(DEBIAN_INCLUDE, 'csrc', 'api', 'include')], lib: debianLibDir() };
}

function napiInclude() {
  const candidates = [
    process.env.NAPI_INCLUDE,
    path.join(path.dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
  ];
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
  log(`checking for g++ and libtorch (${process.platform}-${process.arch}, Node ${process.versions.node})`);
  if (process.platform !== 'linux' && !process.env.LIBTORCH)
    throw new Error(`no libtorch build for ${process.platform} here (set LIBTORCH=/path/to/libtorch to try one)`);
  ensureSystemPackages();
  const torch = findLibtorch();
  const withCuda = fs.existsSync(path.join(torch.lib, 'libc10_cuda.so'));
  const cudaInclude = withCuda ? findCudaInclude(torch.lib) : null;
  if (withCuda && !cudaInclude)
    log('CUDA runtime headers not found (set CUDA_HOME): building without GPU memory statistics or CUDA graphs');
  const version = torchVersion(torch.include);
  // Only with Debian's libtorch, which links the system's libdnnl: a PyTorch install carries its
  // own oneDNN inside libtorch_cpu, and a second copy beside it is not worth the risk.
  const withDnnl = !process.env.LIBTORCH && fs.existsSync(DNNL_HEADER);
  // Resolved like any dependency: in a consumer's project npm may hoist it above this package.
  const addonApiPkg = createRequire(path.join(root, 'package.json')).resolve('node-addon-api/package.json');
  const addonApi = path.dirname(addonApiPkg);
  const addonApiVersion = JSON.parse(fs.readFileSync(addonApiPkg, 'utf8')).version;
  // libtorch 2.12+ headers require C++20; the addon itself is C++17.
  const std = version && (version[0] > 2 || (version[0] === 2 && version[1] >= 12)) ? 'c++20' : 'c++17';
  const flags = [
    `-std=${std}`,
    '-O2',
    '-fPIC',
    '-fvisibility=hidden',
    '-D_GLIBCXX_USE_CXX11_ABI=1',
    '-DNAPI_VERSION=8',
    '-DNAPI_CPP_EXCEPTIONS',
    '-DNODE_ADDON_API_DISABLE_DEPRECATED',
    '-Wno-deprecated-declarations',
    '-Wno-unused-parameter',
    ...(withCuda ? ['-DBEITSEG_WITH_CUDA'] : []),
    ...(withDnnl ? ['-DBEITSEG_WITH_DNNL'] : []),
    // c10d's NCCL header is empty unless USE_C10D_NCCL is set: only where a CUDA libtorch ships it
    ...(withCuda && ncclHeader(torch.include) ? ['-DUSE_C10D_NCCL', '-DBEITSEG_WITH_NCCL'] : []),
    ...(cudaInclude ? ['-DBEITSEG_CUDA_STATS', '-DBEITSEG_CUDA_HEADERS', `-isystem${cudaInclude}`] : []),
    ...torch.include.map((d) => `-isystem${d}`),
    `-I${napiInclude()}`,
    `-I${addonApi}`,
    // after libtorch's folders: stand-ins for headers a libtorch package may lack (native/shim)
    `-idirafter${shimDir}`,
  ];
  // PyTorch wheels are built with the pre-C++11 ABI on some versions; follow the library.
  if (process.env.LIBTORCH) {
    const abi = process.env.TORCH_CXX11_ABI ?? detectAbi(torch.lib);
    flags[4] = `-D_GLIBCXX_USE_CXX11_ABI=${abi}`;
  }
  fs.mkdirSync(outDir, { recursive: true });
  const sources = fs
    .readdirSync(srcDir)
    .filter((f) => f.endsWith('.cc'))
    .sort();
  const headerHash = hashFiles([
    ...fs
      .readdirSync(srcDir)
      .filter((f) => f.endsWith('.h'))
      .map((f) => path.join(srcDir, f)),
    ...fs
      .readdirSync(shimDir, { recursive: true })
      .filter((f) => f.endsWith('.h'))
      .map((f) => path.join(shimDir, f)),
  ]);
  // The key names what the objects depend on, not where this copy sits, so other builds' objects can be reused.
  const identity = flags
    .map((f) => (f === `-I${addonApi}` ? `node-addon-api@${addonApiVersion}` : f))
    .map((f) => (f.startsWith('-I') && f.endsWith(path.join('include', 'node')) ? `node@${process.versions.node}` : f))
    .map((f) => (f === `-idirafter${shimDir}` ? '-idirafter<native/shim>' : f));
  const key = createHash('sha1').update(JSON.stringify(identity)).update(headerHash).digest('hex').slice(0, 12);
  const reuseDir = process.env.BEITSEG_NATIVE_OBJECTS;
  const jobs = Math.max(1, Math.min(os.cpus().length, sources.length));
  log(
    `libtorch ${version ? version.join('.') : '?'}: ${torch.lib}${withCuda ? ' (CUDA)' : ''}; compiling ` +
      `${sources.length} files, ${jobs} at a time (a full build takes about 4-6 minutes on 2 cores)`,
  );
  let done = 0;
  const objects = [];
  const queue = [...sources];
  async function worker() {
    for (let f = queue.shift(); f; f = queue.shift()) {
      const src = path.join(srcDir, f);
      const obj = path.join(outDir, `${f}.${key}.${hashFiles([src]).slice(0, 12)}.o`);
      objects.push(obj);
      if (fs.existsSync(obj)) continue;
      const reusable = reuseDir ? path.join(reuseDir, path.basename(obj)) : null;
      if (reusable && fs.existsSync(reusable)) {
        fs.copyFileSync(reusable, `${obj}.tmp`);
        fs.renameSync(`${obj}.tmp`, obj);
        continue;
      }
      const t0 = Date.now();
      await run(process.env.CXX || 'g++', [...flags, '-c', src, '-o', `${obj}.tmp`]);
      fs.renameSync(`${obj}.tmp`, obj);
      done++;
      log(`compiled ${f} (${done} compiled so far, ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
  }
  await Promise.all(Array.from({ length: jobs }, worker));
  log('linking beitseg.node');
  const libs = [
    '-ltorch',
    '-ltorch_cpu',
    '-lc10',
    ...(withCuda ? ['-ltorch_cuda', '-lc10_cuda'] : []),
    ...(withDnnl ? ['-ldnnl'] : []),
  ];
  const target = path.join(outDir, 'beitseg.node');
  await run(process.env.CXX || 'g++', [
    '-shared',
    '-o',
    `${target}.tmp`,
    ...objects.sort(),
    `-L${torch.lib}`,
    `-Wl,-rpath,${torch.lib}`,
    '-Wl,--no-as-needed',
    ...libs,
  ]);
  fs.renameSync(`${target}.tmp`, target);
  for (const f of fs.readdirSync(outDir)) {
    if (f.endsWith('.o') && !objects.includes(path.join(outDir, f))) fs.rmSync(path.join(outDir, f));
  }
  log(`built ${path.relative(root, target)}`);
}

// Whether the libtorch headers include c10d's NCCL process group (CUDA builds).
function ncclHeader(includes) {
  return [...includes, '/usr/include'].some((d) =>
    fs.existsSync(path.join(d, 'torch', 'csrc', 'distributed', 'c10d', 'ProcessGroupNCCL.hpp')),
  );
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
  const candidates = [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda']
    .filter(Boolean)
    .map((d) => path.join(d, 'include'));
  try {
    const nvcc = execFileSync('bash', ['-c', 'command -v nvcc || true']).toString().trim();
    if (nvcc) candidates.push(path.join(path.dirname(fs.realpathSync(nvcc)), '..', 'include'));
  } catch {
    /* no nvcc */
  }
  const nvidia = path.join(torchLib, '..', '..', 'nvidia');
  if (fs.existsSync(nvidia)) {
    for (const d of fs.readdirSync(nvidia)) candidates.push(path.join(nvidia, d, 'include'));
  }
  return candidates.find((d) => fs.existsSync(path.join(d, 'cuda_runtime_api.h'))) ?? null;
}

function hashFiles(files) {
  const h = createHash('sha1');
  // By file name, not path: the same sources give the same key in any copy of the package.
  for (const f of files.sort()) h.update(path.basename(f)).update(fs.readFileSync(f));
  return h.digest('hex');
}

// libtorch built with the old ABI exports std::string symbols without "__cxx11".
function detectAbi(libDir) {
  try {
    const out = execFileSync('bash', [
      '-c',
      `nm -D --defined-only ${path.join(libDir, 'libc10.so')} | grep -c __cxx11 || true`,
    ])
      .toString()
      .trim();
    return Number(out) > 0 ? '1' : '0';
  } catch {
    return '1';
  }
}

const optional = process.argv.includes('--optional') && process.env.BEITSEG_NATIVE !== '1';
if (process.env.BEITSEG_NATIVE === '0') {
  log(`native addon skipped (BEITSEG_NATIVE=0): ${NEEDS_ADDON}`);
} else {
  main().catch((err) => {
    if (!optional) {
      log(`failed: ${err.message}`);
      process.exit(1);
    }
    log(`native addon not built (${err.message}): ${NEEDS_ADDON}`);
  });
}
