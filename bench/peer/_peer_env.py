"""Process environment for the CPU peer scripts: BLAS library and memory allocator.
Both must be chosen before torch is loaded, so ``maybe_reexec()`` re-executes the script
once with the right LD_LIBRARY_PATH / LD_PRELOAD / env (call it before ``import torch``).

1. BLAS

Debian's torch 1.13 is built with BLAS_INFO=generic: fp32 Linear/matmul/bmm call whatever
``libblas.so.3`` the dynamic loader finds. On a bare dev machine that is the netlib
*reference* BLAS (libblas3): ~5 GFLOP/s on the 1600x768x3072 GEMM, ~60x slower than a tuned
BLAS - not a fair picture of PyTorch. OpenBLAS (what Debian's python3-torch recommends)
gives ~335 GFLOP/s on 2 threads here. (When libopenblas0-pthread is installed system-wide,
the Debian alternative already points at it and --blas system gets OpenBLAS too; the
library actually mapped is reported by blas_meta().)

``maybe_reexec()`` (call it at the very top of a script, before ``import torch``):
  --blas system    : leave the process alone.
  --blas openblas  : re-exec with LD_LIBRARY_PATH pointing at an OpenBLAS libblas.so.3
                     (error if none can be found).
  --blas auto      : (default) like openblas when one can be found, else system.
OpenBLAS is looked up in $PEER_OPENBLAS_DIR, the system openblas-pthread directory, or
extracted with ``dpkg -x`` from a libopenblas0-pthread .deb already in /var/cache/apt/archives
into ~/.cache/beitseg-peer/openblas (no download, no system change).

The re-exec'd process gets OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = --threads (torch's
set_num_threads does not reach OpenBLAS's own thread pool) and OPENBLAS_CORETYPE removed
(the environment here pins it to Haswell, which halves GEMM speed on this AVX-512 CPU;
set PEER_KEEP_OPENBLAS_CORETYPE=1 to keep it).

2. Allocator (--alloc)
On this VM (firecracker, 2 vCPUs) first-touch page faults are extremely expensive:
writing a freshly malloc'ed 123 MB tensor (one 12x1601x1601 attention map) costs 300-800 ms,
computing into already-touched memory 30-60 ms. glibc serves such blocks with mmap and
returns them with munmap on free, so stock PyTorch pays the faults again on every op.
  --alloc jemalloc : (default when available) LD_PRELOAD libjemalloc.so.2 with
                     MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1 (freed pages are kept
                     and reused: the CPU analogue of a caching allocator).
  --alloc thp      : glibc with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (transparent huge
                     pages on malloc'ed memory: 512x fewer faults, still re-zeroed).
  --alloc glibc    : stock glibc malloc (what a plain `python3 script.py` gets).
  --alloc auto     : jemalloc if found, else thp.
jemalloc is looked up in $PEER_JEMALLOC, the system library, or extracted with ``dpkg -x``
from a libjemalloc2 .deb already in /var/cache/apt/archives into ~/.cache/beitseg-peer/.
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys

_CACHE = os.path.join(os.path.expanduser('~'), '.cache', 'beitseg-peer')
_OPENBLAS_REL = 'usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3'
_JEMALLOC_REL = 'usr/lib/x86_64-linux-gnu/libjemalloc.so.2'


def _argv_value(argv, flag, default):
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + '='):
            return a.split('=', 1)[1]
    return default


def _find_library(env_var, rel, deb_pattern, cache_name):
    """Path of a library file: $env_var (a file, or a folder holding the file), the system's
    /rel, an earlier extraction, or extracted now with ``dpkg -x`` from a .deb already in
    /var/cache/apt/archives (no download, no system change). None when none is found."""
    cache = os.path.join(_CACHE, cache_name)
    cands = []
    if os.environ.get(env_var):
        given = os.environ[env_var]
        cands.append(os.path.join(given, os.path.basename(rel)) if os.path.isdir(given) else given)
    cands += ['/' + rel, os.path.join(cache, rel)]
    for p in cands:
        if os.path.exists(p):
            return p
    debs = sorted(glob.glob(os.path.join('/var/cache/apt/archives', deb_pattern)))
    if not debs:
        return None
    os.makedirs(cache, exist_ok=True)
    try:
        subprocess.run(['dpkg', '-x', debs[-1], cache], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError):
        return None
    p = os.path.join(cache, rel)
    return p if os.path.exists(p) else None


def find_openblas_dir():
    """The folder holding an OpenBLAS libblas.so.3 ($PEER_OPENBLAS_DIR first), or None."""
    lib = _find_library('PEER_OPENBLAS_DIR', _OPENBLAS_REL, 'libopenblas0-pthread_*.deb', 'openblas')
    return os.path.dirname(lib) if lib else None


def find_jemalloc():
    """Path of libjemalloc.so.2 ($PEER_JEMALLOC first), or None."""
    return _find_library('PEER_JEMALLOC', _JEMALLOC_REL, 'libjemalloc2_*.deb', 'jemalloc')


def _prepend(env, key, value):
    """env[key] = value, ahead of what it held (':'-separated, as these variables are)."""
    old = env.get(key)
    env[key] = value + (':' + old if old else '')


def maybe_reexec(argv=None):
    """Re-exec once (marker _PEER_ENV_DONE) with the requested BLAS and allocator."""
    argv = sys.argv if argv is None else argv
    if os.environ.get('_PEER_ENV_DONE'):
        return
    blas = _argv_value(argv, '--blas', 'auto')
    alloc = _argv_value(argv, '--alloc', 'auto')
    threads = _argv_value(argv, '--threads', None)
    if blas not in ('auto', 'openblas', 'system'):
        sys.exit(f'--blas must be auto, openblas or system (got {blas!r})')
    if alloc not in ('auto', 'jemalloc', 'thp', 'glibc'):
        sys.exit(f'--alloc must be auto, jemalloc, thp or glibc (got {alloc!r})')
    env = dict(os.environ)
    env['_PEER_ENV_DONE'] = '1'
    if threads:
        env['OMP_NUM_THREADS'] = str(threads)
    env['PEER_BLAS'] = 'system'
    if blas != 'system':
        d = find_openblas_dir()
        if d is None and blas == 'openblas':
            sys.exit('OpenBLAS not found (set PEER_OPENBLAS_DIR to a dir holding libblas.so.3)')
        if d is not None:
            _prepend(env, 'LD_LIBRARY_PATH', d)
            env['PEER_BLAS'] = 'openblas'
            if threads:
                env['OPENBLAS_NUM_THREADS'] = str(threads)
            if not env.get('PEER_KEEP_OPENBLAS_CORETYPE'):
                env.pop('OPENBLAS_CORETYPE', None)
    chosen = 'glibc'
    if alloc in ('auto', 'jemalloc'):
        je = find_jemalloc()
        if je is None and alloc == 'jemalloc':
            sys.exit('libjemalloc.so.2 not found (set PEER_JEMALLOC)')
        if je is not None:
            _prepend(env, 'LD_PRELOAD', je)
            env.setdefault('MALLOC_CONF', 'dirty_decay_ms:-1,muzzy_decay_ms:-1')
            chosen = 'jemalloc'
        else:
            alloc = 'thp'
    if alloc == 'thp':
        _prepend(env, 'GLIBC_TUNABLES', 'glibc.malloc.hugetlb=1')
        chosen = 'thp'
    env['PEER_ALLOC'] = chosen
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable] + list(argv), env)


def loaded_blas() -> str:
    """Path of the BLAS library mapped into this process (after torch is imported)."""
    try:
        with open('/proc/self/maps') as f:
            paths = {line.split()[-1] for line in f if len(line.split()) >= 6}
    except OSError:
        return 'unknown'
    hits = sorted(p for p in paths if 'openblas' in p or 'libblas' in p or 'mkl_' in p)
    if not hits:
        return 'none-loaded'
    return ','.join(os.path.realpath(p) for p in hits)


def openblas_core() -> str:
    """The kernel set the loaded OpenBLAS chose for this CPU (openblas_get_corename), or ''."""
    import ctypes
    for path in loaded_blas().split(','):
        if 'openblas' not in path:
            continue
        try:
            fn = ctypes.CDLL(path).openblas_get_corename
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_char_p
        return fn().decode()
    return ''


def blas_meta() -> dict:
    lib = loaded_blas()
    kind = 'openblas' if 'openblas' in lib else ('mkl' if 'mkl' in lib else
                                                 ('reference' if 'libblas' in lib else lib))
    return {'blas': kind, 'blas_lib': lib, 'alloc': os.environ.get('PEER_ALLOC', 'glibc'),
            'openblas_coretype': os.environ.get('OPENBLAS_CORETYPE', ''),
            'blas_core': openblas_core(),
            'openblas_num_threads': os.environ.get('OPENBLAS_NUM_THREADS', '')}


def machine_busy_jiffies():
    """(busy, total) jiffies of the whole machine from /proc/stat (all processes)."""
    try:
        with open('/proc/stat') as f:
            v = [int(t) for t in f.readline().split()[1:]]
    except OSError:
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v[:8]) - idle, sum(v[:8])


class CpuMeter:
    """Cores kept busy by this process and by the whole machine between start() and stop()."""

    def start(self):
        import resource
        import time
        r = resource.getrusage(resource.RUSAGE_SELF)
        self._cpu0 = r.ru_utime + r.ru_stime
        self._m0 = machine_busy_jiffies()
        self._t0 = time.perf_counter()
        return self

    def stop(self) -> dict:
        import resource
        import time
        wall = max(time.perf_counter() - self._t0, 1e-9)
        r = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu_s = r.ru_utime + r.ru_stime - self._cpu0
        out = {'cores_busy_ours': round(self.cpu_s / wall, 2)}
        m1 = machine_busy_jiffies()
        if self._m0 and m1:
            out['cores_busy_machine'] = round((m1[0] - self._m0[0]) / os.sysconf('SC_CLK_TCK')
                                              / wall, 2)
        return out
